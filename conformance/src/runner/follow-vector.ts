/**
 * Lint's reference device follows the vector: where a vector states what the device does (the
 * response of a request, usable_region_size after a resize or an UNPLUG ALL, whether a system
 * reset or a wake-up from suspend kept the plugged blocks) and that is one of
 * the conforming choices, the dry run's device makes that choice instead of its profile's own —
 * as the runner's oracle follows the device under test. So a faithful recording of any
 * conforming device (QEMU's usable-region margin, its NACK where the spec profile says ERROR)
 * replays on the reference model as recorded, and the conforming sets lint judges the vector's
 * statements against are those of the state the vector itself describes.
 *
 * The model honours a choice only when it is conforming ({@link DeviceSteering}); a stated
 * outcome no conforming device produces is left to lint to report.
 */
import type { DeviceOutcome, DeviceSteering, RequestEvaluation, VirtioMemConfig } from '../../../model/src/index';
import { Expr, evaluate, scopeOfConfig } from '../loader/expr';
import type { OutcomeSet, SetClass, Step, Vector } from '../loader/types';
import { outcomeLabel } from '../judge/oracle';

/** How much a vector wants an outcome it grades `class` (lower is preferred); fail grades are never chosen. */
const PREFERENCE: Readonly<Record<SetClass, number | undefined>> = {
  pass: 0,
  acceptable: 1,
  informational: 2,
  'non-strict': 3,
  fail: undefined,
};

/** The preference of an outcome under a stated set (no set states nothing against it). */
function preferenceOf(set: OutcomeSet | undefined, value: string | undefined): number | undefined {
  if (!set) return 0;
  const cls = value === undefined ? undefined : set.get(value);
  return cls === undefined ? undefined : PREFERENCE[cls];
}

/**
 * The conforming outcome a request step states best: among the outcomes of `evaluation` whose
 * response (and, for STATE, block state) the step grades pass, then acceptable, informational,
 * non-strict, the profile's own choice when it is among the best, else the first of them.
 * Undefined when the step states neither response nor state, or names no conforming outcome.
 */
export function statedOutcome(step: Step, evaluation: RequestEvaluation): DeviceOutcome | undefined {
  const { response, state } = step.expect;
  if (!response && !state) return undefined;
  let best: DeviceOutcome[] = [];
  let bestRank = Number.POSITIVE_INFINITY;
  for (const outcome of evaluation.outcomes) {
    const byResponse = preferenceOf(response, outcomeLabel(outcome));
    const byState =
      state && outcome.kind === 'response' && outcome.response === 'ACK' && outcome.state !== undefined
        ? preferenceOf(state, outcome.state)
        : 0;
    if (byResponse === undefined || byState === undefined) continue;
    const rank = Math.max(byResponse, byState);
    if (rank < bestRank) [best, bestRank] = [[outcome], rank];
    else if (rank === bestRank) best.push(outcome);
  }
  return best.includes(evaluation.chosen) ? evaluation.chosen : best[0];
}

/**
 * The usable_region_size a step states for the configuration after it: an `equals` expression
 * evaluated over `proposed` (the configuration the device would leave), `unchanged` as `before`,
 * a range as its nearer bound when `proposed` lies outside it. Undefined when nothing is stated.
 */
export function statedUsable(step: Step, proposed: VirtioMemConfig, before: VirtioMemConfig): bigint | undefined {
  const stated = step.expect.config?.get('usable_region_size');
  if (!stated) return undefined;
  if (stated.kind === 'unchanged') return before.usable_region_size;
  const scope = scopeOfConfig(proposed);
  const valueOf = (e: Expr | undefined): bigint | undefined => {
    const r = e && evaluate(e, scope);
    return r && r.ok ? r.value : undefined;
  };
  if (stated.kind === 'equals') return valueOf(stated.expr);
  const bs = proposed.block_size > 0n ? proposed.block_size : 1n;
  const min = valueOf(stated.min);
  const max = valueOf(stated.max);
  if (min !== undefined && proposed.usable_region_size < min) return ((min + bs - 1n) / bs) * bs;
  if (max !== undefined && proposed.usable_region_size > max) return (max / bs) * bs;
  return undefined;
}

/**
 * Whether a step states that every block was unplugged (plugged_size 0 where blocks were plugged)
 * or that they were kept (plugged_size `unchanged`, or equal to what it was); undefined otherwise.
 */
export function statedResetUnplug(step: Step, before: VirtioMemConfig): boolean | undefined {
  const stated = step.expect.config?.get('plugged_size');
  if (!stated || stated.kind === 'range' || before.plugged_size === 0n) return undefined;
  if (stated.kind === 'unchanged') return false;
  const value = evaluate(stated.expr, scopeOfConfig(before));
  if (!value.ok) return undefined;
  return value.value === 0n ? true : value.value === before.plugged_size ? false : undefined;
}

/** Steering that makes a reference device do what `vector` states at the step `currentStep()` (1-based; 0 before the first). */
export function followVector(vector: Vector, currentStep: () => number): DeviceSteering {
  const step = (): Step | undefined => vector.steps[currentStep() - 1];
  return {
    chooseOutcome(evaluation) {
      const s = step();
      return s && s.action.kind === 'request' ? statedOutcome(s, evaluation) : undefined;
    },
    chooseUsable(_change, proposed, before) {
      const s = step();
      return s ? statedUsable(s, proposed, before) : undefined;
    },
    chooseResetUnplug(_change, _profileUnplugs, before) {
      const s = step();
      return s ? statedResetUnplug(s, before) : undefined;
    },
  };
}
