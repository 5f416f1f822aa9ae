/**
 * Runs one driver vector against a {@link DriverSession}: scripts the host side (resizes,
 * injected answers, suspend requests) through each step kind's driver handler and checks the
 * driver's request stream.
 *
 * Always checked, at the spec's level (MUST → fail, SHOULD → non-strict), by driver-checks.ts
 * and the step kinds:
 * - every request is well formed, aligned, inside the usable region and consistent with the
 *   block states the device holds (drv.op.9);
 * - no PLUG takes plugged_size beyond requested_size (drv.op.9);
 * - with memory plugged at start, the first request is UNPLUG ALL or STATE (drv.init.2);
 * - memory writes touch plugged blocks only (drv.op.1); no config writes (drv.cfg.1);
 * - UNPLUGGED_INACCESSIBLE is accepted when offered (drv.init.1);
 * - without PERSISTENT_SUSPEND, no suspend at all (drv.op.11).
 * What a vector states explicitly (`converged: true`, …) fails when not met.
 */
import type { DeviceSetup, DriverSession } from '../../../adapters/core/src/contract';
import { VirtioMemConfig, decodeConfig } from '../../../model/src/index';
import type { Step, Vector } from '../loader/types';
import { driverHandlerOf } from '../steps/registry';
import { DriverStepContext, StepOutcome, proceed, stopWith } from '../steps/step-kind';
import { applyCheckers } from '../steps/apply-checkers';
import { DriverShadow, newDriverShadow } from '../judge/driver-checks';
import type { Finding } from '../judge/verdicts';

/** One driver vector's run: the state the steps share (the context each handler sees). */
export class DriverRun implements DriverStepContext {
  /** What the run found so far. */
  readonly findings: Finding[] = [];
  /** The device configuration as last read. */
  config!: VirtioMemConfig;
  /** Features the driver accepted (known after `start`). */
  negotiated = 0n;
  /** The device's blocks and the driver's progress, as the runner tracks them. */
  readonly shadow: DriverShadow;
  private currentStep = 0;

  /** The 1-based index of the step being run (0 before the first). */
  get stepIndex(): number {
    return this.currentStep;
  }
  /** Checks already reported (a misbehaving driver is reported once per check). */
  private readonly reported = new Set<string>();

  constructor(
    readonly vector: Vector,
    readonly session: DriverSession,
    setup: DeviceSetup,
  ) {
    this.shadow = newDriverShadow(setup);
  }

  /** Runs every step, until one stops the vector. */
  async run(): Promise<void> {
    if (!(await this.begin())) return;
    for (const step of this.vector.steps) if (!(await this.runStep(step))) return;
  }

  /** Reads the configuration the run starts from; false (with the finding recorded) when that stops the run. */
  async begin(): Promise<boolean> {
    const initial = await this.readConfig();
    if (initial.kind === 'stop') this.findings.push(initial.finding);
    return initial.kind !== 'stop';
  }

  /** Runs one step; false (with the finding recorded) when it stops the run. */
  async runStep(step: Step): Promise<boolean> {
    this.currentStep = step.index;
    const outcome = await this.step(step);
    if (outcome.kind === 'stop') this.findings.push(outcome.finding);
    return outcome.kind !== 'stop';
  }

  /** Reads and decodes the configuration, and remembers it. */
  async readConfig(): Promise<StepOutcome<VirtioMemConfig>> {
    const decoded = decodeConfig(await this.session.readConfig());
    if (!decoded.ok)
      return stopWith({
        verdict: 'error',
        step: this.currentStep,
        check: 'step',
        message: 'configuration space unreadable',
      });
    this.config = decoded.value;
    return proceed(decoded.value);
  }

  private async step(step: Step): Promise<StepOutcome<void>> {
    const handler = driverHandlerOf(step.action);
    if (!handler)
      return stopWith({
        verdict: 'error',
        step: step.index,
        check: 'step',
        message: `'${step.action.kind}' is not a driver step`,
      });
    const before = this.config;
    const effect = await handler.execute(this, step.action, step);
    if (effect.kind === 'stop') return effect;
    this.findings.push(...(effect.value.findings ?? []));
    for (const f of effect.value.once ?? []) {
      if (this.reported.has(f.check)) continue;
      this.reported.add(f.check);
      this.findings.push(f);
    }
    const checked = await applyCheckers(handler.expect, step, {
      ...effect.value.observed,
      before,
      configAfter: () => this.readConfig(),
    });
    if (checked.kind === 'stop') return checked;
    this.findings.push(...checked.value);
    return proceed(undefined);
  }
}
