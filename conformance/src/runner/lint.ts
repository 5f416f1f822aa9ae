/**
 * Meaning checks beyond the schema: does a vector expect something no conforming device could
 * produce? Each device vector is dry-run — by the same step handlers `vmemct run` uses — against
 * a device of the reference model (`spec` profile), supplied by the caller so this layer needs
 * no concrete adapter. The device follows the vector ({@link followVector}): where the vector
 * states a conforming choice (a response, usable_region_size after a resize) the device makes
 * it, so the dry run walks the states the vector describes, whichever conforming device it was
 * written for. At every request step each outcome the vector grades pass, acceptable or
 * informational must be in the oracle's conforming set (NACK for UNPLUG, say, never is);
 * non-strict and fail grades may name anything. A step the dry run cannot perform (an
 * expression that cannot be evaluated, say) is a problem too.
 */
import type { DeviceSession, DeviceSetup } from '../../../adapters/core/src/contract';
import { DeviceSteering, describeOutcome } from '../../../model/src/index';
import type { LoadProblem, Vector } from '../loader/types';
import { DeviceRun } from './device-run';
import { outcomeLabel } from '../judge/oracle';
import { evaluateSetup } from './setup';
import { followVector } from './follow-vector';

/**
 * Opens a device of the reference model (`spec` profile) built from a set-up, making the
 * conforming choices `steering` asks for instead of the profile's own.
 */
export type OpenReferenceDevice = (setup: DeviceSetup, steering: DeviceSteering) => Promise<DeviceSession>;

/**
 * How long lint's dry runs may take: {@link LINT_BUDGET}`.perVectorMs` for one vector (checked
 * before each call into the reference device, so one very costly operation may overrun it) and
 * `totalMs` for all of them. The whole shipped corpus dry-runs in well under a second; a vector
 * on a region of 2^30 blocks costs about a second per whole-device operation, so a file of many
 * such vectors would otherwise keep lint busy for minutes.
 */
export const LINT_BUDGET = { perVectorMs: 1_000, totalMs: 10_000 } as const;

/** A vector lint could not dry-run to its end within the budget (not a problem: the file may be fine). */
export interface UnfinishedDryRun {
  readonly file: string;
  readonly line: number;
  readonly id: string;
  /** Why, e.g. `stopped before step 12: over the 1000 ms budget per vector`. */
  readonly reason: string;
}

/** What lint found: problems (exit 3) and the vectors whose dry run the budget cut short. */
export interface LintReport {
  readonly problems: LoadProblem[];
  readonly unfinished: UnfinishedDryRun[];
}

/** Raised by the budgeted session: the vector's dry run is over its time. */
class BudgetSpent extends Error {}

/** Lints loaded vectors; returns problems with file and line (vectors the budget cut short are left out). */
export async function lintVectors(
  vectors: readonly Vector[],
  openReferenceDevice: OpenReferenceDevice,
  budget: { readonly perVectorMs: number; readonly totalMs: number } = LINT_BUDGET,
): Promise<LoadProblem[]> {
  return (await lintReport(vectors, openReferenceDevice, budget)).problems;
}

/** Lints loaded vectors within `budget`: problems with file and line, and the dry runs it could not finish. */
export async function lintReport(
  vectors: readonly Vector[],
  openReferenceDevice: OpenReferenceDevice,
  budget: { readonly perVectorMs: number; readonly totalMs: number } = LINT_BUDGET,
): Promise<LintReport> {
  const problems: LoadProblem[] = [];
  const unfinished: UnfinishedDryRun[] = [];
  const lintDeadline = Date.now() + budget.totalMs;
  for (const v of vectors) {
    if (/\b(MUST|SHOULD|MAY)\b/.test(v.title)) {
      problems.push({
        file: v.source.file,
        line: v.source.line,
        field: 'title',
        reason: 'titles describe the scenario; the requirement level lives in the catalogue (drop MUST/SHOULD/MAY)',
      });
    }
    if (v.target !== 'device') continue;
    const unfinishedAs = (reason: string): void => {
      unfinished.push({ file: v.source.file, line: v.source.line, id: v.id, reason });
    };
    if (Date.now() > lintDeadline) {
      unfinishedAs(`not dry-run: lint's ${budget.totalMs} ms budget was spent`);
      continue;
    }
    const deadline = Math.min(lintDeadline, Date.now() + budget.perVectorMs);
    const outcome = await dryRun(v, openReferenceDevice, deadline);
    for (const problem of outcome.problems) problems.push(problem);
    if (outcome.stoppedBefore !== undefined)
      unfinishedAs(
        `dry run stopped at step ${outcome.stoppedBefore} of ${v.steps.length}: over the budget (${budget.perVectorMs} ms per vector, ${budget.totalMs} ms in all)`,
      );
  }
  return { problems, unfinished };
}

/** `session` with every call but `close` refused once `deadline` has passed; `spent()` tells whether that happened. */
function budgeted(session: DeviceSession, deadline: number): { session: DeviceSession; spent: () => boolean } {
  let spent = false;
  const wrapped = new Proxy(session, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function' || key === 'close') return value;
      return (...args: unknown[]) => {
        if (Date.now() > deadline) {
          spent = true;
          throw new BudgetSpent('the dry run is over its time budget');
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { session: wrapped, spent: () => spent };
}

async function dryRun(
  v: Vector,
  open: OpenReferenceDevice,
  deadline: number,
): Promise<{ problems: LoadProblem[]; stoppedBefore?: number }> {
  const file = v.source.file;
  const evaluated = evaluateSetup(v);
  if (!evaluated.ok) return { problems: [{ file, line: v.source.line, field: 'setup', reason: evaluated.reason }] };
  let opened: DeviceSession;
  // The device follows the run's current step; the run exists only once the device does.
  let run: DeviceRun | undefined;
  try {
    opened = await open(
      evaluated.setup,
      followVector(v, () => run?.stepIndex ?? 0),
    );
  } catch (e) {
    return { problems: [{ file, line: v.source.line, field: 'setup', reason: (e as Error).message }] };
  }
  const { session, spent } = budgeted(opened, deadline);
  const problems: LoadProblem[] = [];
  run = new DeviceRun(v, session, evaluated.setup, {
    observer: {
      requestEvaluated(step, evaluation) {
        const labels = evaluation.outcomes.map(outcomeLabel);
        for (const [outcome, cls] of step.expect.response ?? []) {
          if ((cls === 'pass' || cls === 'acceptable' || cls === 'informational') && !labels.includes(outcome)) {
            problems.push({
              file,
              line: step.line,
              field: `steps[${step.index - 1}].expect.response`,
              reason: `${outcome} is not something a conforming device answers here (conforming: ${evaluation.outcomes.map(describeOutcome).join(', ')})`,
            });
          }
        }
      },
    },
  });
  const dryRun = run;
  const problemAt = (stepIndex: number, reason: string): LoadProblem => {
    const step = v.steps[stepIndex - 1];
    return { file, line: step ? step.line : v.source.line, field: step ? `steps[${stepIndex - 1}]` : 'steps', reason };
  };
  try {
    await dryRun.run();
    // Once the budget is spent, the error that stopped the run is the budget's, not the vector's.
    const error = dryRun.findings.find((f) => f.verdict === 'error' && f.step > 0);
    if (error && !spent()) problems.push(problemAt(error.step, error.message));
  } catch (e) {
    if (!spent()) problems.push(problemAt(dryRun.stepIndex, (e as Error).message));
  } finally {
    await opened.close();
  }
  return spent() ? { problems, stoppedBefore: Math.max(1, dryRun.stepIndex) } : { problems };
}
