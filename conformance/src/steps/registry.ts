/**
 * The step-kind registry: every step kind, and what the loader, the schema, the capability
 * derivation and the runners take from it. Adding a step kind is adding its module to
 * {@link STEP_KINDS}.
 */
import type { Capability, Target } from '../../../adapters/core/src/contract';
import type { Step } from '../loader/types';
import { deviceResetStep } from './device-reset';
import { EXPECTATION_VALUES, ExpectKey, Expectation, normaliseExpectation } from './expectations';
import { initialiseStep } from './initialise';
import { nodeMemoryStep } from './node-memory';
import { injectStep } from './inject';
import { injectBusyStep } from './inject-busy';
import { hostBusyStep } from './host-busy';
import { readConfigStep } from './read-config';
import { readMemoryStep } from './read-memory';
import { requestStep } from './request';
import { resizeStep } from './resize';
import { settleStep } from './settle';
import { Site } from './site';
import { startStep } from './start';
import type { DeviceHandler, DriverHandler, StepKind } from './step-kind';
import { suspendStep } from './suspend';
import { systemResetStep } from './system-reset';
import { writeMemoryStep } from './write-memory';

/** Every step kind, in the order the schema and the messages list them. */
export const STEP_KINDS = [
  requestStep,
  resizeStep,
  deviceResetStep,
  systemResetStep,
  readConfigStep,
  initialiseStep,
  injectBusyStep,
  hostBusyStep,
  writeMemoryStep,
  readMemoryStep,
  suspendStep,
  startStep,
  settleStep,
  injectStep,
  nodeMemoryStep,
] as const;

type ActionOf<K> = K extends StepKind<infer A> ? A : never;

/** What a step does: the normalised action of one of the step kinds. */
export type StepAction = ActionOf<(typeof STEP_KINDS)[number]>;

// The kinds are looked up by action kind and YAML key; each handler sees only its own action.
type AnyKind = StepKind<any>;
const KINDS: readonly AnyKind[] = STEP_KINDS;

/** The step kind of an action. */
export function stepKindOf(action: StepAction): AnyKind {
  return KINDS.find((k) => k.kind === action.kind)!;
}

/** The step kinds a target may use, in registry order. */
export function stepKindsFor(target: Target): readonly AnyKind[] {
  return KINDS.filter((k) => k.targets[target] !== undefined);
}

/** The device handler of an action (undefined when the kind is not a device step). */
export function deviceHandlerOf(action: StepAction): DeviceHandler<StepAction, any> | undefined {
  return stepKindOf(action).targets.device;
}

/** The driver handler of an action (undefined when the kind is not a driver step). */
export function driverHandlerOf(action: StepAction): DriverHandler<StepAction, any> | undefined {
  return stepKindOf(action).targets.driver;
}

/** The expectation keys a step kind reads on a target: exactly the keys its handler has checkers for. */
export function expectationKeysOf(kind: AnyKind, target: Target): readonly ExpectKey[] {
  return Object.keys(kind.targets[target]?.expect ?? {}) as ExpectKey[];
}

/** The capabilities a step needs: its kind's, its action's, and those of the expectations it states. */
export function capabilitiesOf(step: Pick<Step, 'action' | 'expect'>): Capability[] {
  const kind = stepKindOf(step.action);
  const out: Capability[] = [];
  if (kind.capability) out.push(kind.capability);
  if (kind.implies) out.push(...kind.implies(step.action));
  for (const def of Object.values(EXPECTATION_VALUES) as { field: string; capability?: Capability }[]) {
    if (def.capability && (step.expect as Record<string, unknown>)[def.field] !== undefined) out.push(def.capability);
  }
  return out;
}

/**
 * Normalises one raw (schema-valid) step of a `target` vector: its one action, the expectation
 * keys its kind reads there, and their values. Problems go to `site`; undefined when there was any.
 */
export function normaliseStep(
  raw: Readonly<Record<string, unknown>>,
  site: Site,
  index: number,
  target: Target,
): Step | undefined {
  const actionKeys = Object.keys(raw).filter((k) => k !== 'expect' && k !== 'note' && k !== 'device');
  if (actionKeys.length !== 1) {
    return site.problem(
      actionKeys.length === 0
        ? 'a step needs one action (request, resize, device_reset, …)'
        : `a step has one action; found ${actionKeys.join(', ')}`,
    );
  }
  const key = actionKeys[0];
  const allowedKinds = stepKindsFor(target);
  const kind = allowedKinds.find((k) => k.key === key);
  if (!kind) {
    // The kinds proper to the target first, then those both targets use.
    const listed = [...allowedKinds].sort((a, b) => Object.keys(a.targets).length - Object.keys(b.targets).length);
    return site.problem(
      `'${key}' is not a step of a ${target} vector (allowed: ${listed.map((k) => k.key).join(', ')})`,
      key,
    );
  }
  const before = site.problemCount;
  const action = kind.normalise(raw[key], site.at(key)) as StepAction | undefined;
  const expectRaw = (raw.expect ?? {}) as Record<string, unknown>;
  const allowed = expectationKeysOf(kind, target);
  for (const k of Object.keys(expectRaw)) {
    if (!(allowed as readonly string[]).includes(k))
      site
        .at('expect')
        .problem(`'${k}' cannot be expected of a '${key}' step (allowed: ${allowed.join(', ') || 'nothing'})`, k);
  }
  const expect: Expectation = normaliseExpectation(expectRaw, site.at('expect'));
  if (site.problemCount > before || !action) return undefined;
  return { index, line: site.source.lineOf(site.path), action, expect, note: raw.note as string | undefined };
}
