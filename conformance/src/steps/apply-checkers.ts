/**
 * Applies a step handler's checkers to what the step observed.
 */
import type { Step } from '../loader/types';
import type { Finding } from '../judge/verdicts';
import { ExpectKey, statedValue } from './expectations';
import { Checker, Checkers, StepOutcome, proceed } from './step-kind';

/**
 * Applies, in the handler's order, the checker of every expectation key the step states — and
 * only those: a key the handler has no checker for was refused by the loader.
 */
export async function applyCheckers<O>(
  checkers: Checkers<O>,
  step: Step,
  observed: O,
): Promise<StepOutcome<Finding[]>> {
  const findings: Finding[] = [];
  for (const key of Object.keys(checkers) as ExpectKey[]) {
    const stated = statedValue(step.expect, key);
    if (stated === undefined) continue;
    const checker = checkers[key] as Checker<typeof key, O>;
    const checked = await checker(stated as never, observed, step.index);
    if (checked.kind === 'stop') return checked;
    findings.push(...checked.value);
  }
  return proceed(findings);
}
