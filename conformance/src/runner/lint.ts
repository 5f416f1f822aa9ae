/**
 * Meaning checks beyond the schema: does a vector expect something no conforming device could
 * produce? Each device vector is dry-run — by the same step handlers `vmemct run` uses — against
 * a device of the reference model (`spec` profile), supplied by the caller so this layer needs
 * no concrete adapter. At every request step each outcome the vector grades pass, acceptable or
 * informational must be in the oracle's conforming set (NACK for UNPLUG, say, never is);
 * non-strict and fail grades may name anything. A step the dry run cannot perform (an
 * expression that cannot be evaluated, say) is a problem too.
 */
import type { DeviceSession, DeviceSetup } from '../../../adapters/core/src/contract';
import { describeOutcome } from '../../../model/src/index';
import type { LoadProblem, Vector } from '../loader/types';
import { DeviceRun } from './device-run';
import { outcomeLabel } from '../judge/oracle';
import { evaluateSetup } from './setup';

/** Opens a device of the reference model (`spec` profile) built from a set-up. */
export type OpenReferenceDevice = (setup: DeviceSetup) => Promise<DeviceSession>;

/** Lints loaded vectors; returns problems with file and line. */
export async function lintVectors(
  vectors: readonly Vector[],
  openReferenceDevice: OpenReferenceDevice,
): Promise<LoadProblem[]> {
  const problems: LoadProblem[] = [];
  for (const v of vectors) {
    if (/\b(MUST|SHOULD|MAY)\b/.test(v.title)) {
      problems.push({
        file: v.source.file,
        line: v.source.line,
        field: 'title',
        reason: 'titles describe the scenario; the requirement level lives in the catalogue (drop MUST/SHOULD/MAY)',
      });
    }
    if (v.target === 'device') problems.push(...(await dryRun(v, openReferenceDevice)));
  }
  return problems;
}

async function dryRun(v: Vector, open: OpenReferenceDevice): Promise<LoadProblem[]> {
  const file = v.source.file;
  const evaluated = evaluateSetup(v);
  if (!evaluated.ok) return [{ file, line: v.source.line, field: 'setup', reason: evaluated.reason }];
  let session: DeviceSession;
  try {
    session = await open(evaluated.setup);
  } catch (e) {
    return [{ file, line: v.source.line, field: 'setup', reason: (e as Error).message }];
  }
  const problems: LoadProblem[] = [];
  const run = new DeviceRun(v, session, evaluated.setup, {
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
  });
  const problemAt = (stepIndex: number, reason: string): LoadProblem => {
    const step = v.steps[stepIndex - 1];
    return { file, line: step ? step.line : v.source.line, field: step ? `steps[${stepIndex - 1}]` : 'steps', reason };
  };
  try {
    await run.run();
    const error = run.findings.find((f) => f.verdict === 'error' && f.step > 0);
    if (error) problems.push(problemAt(error.step, error.message));
  } catch (e) {
    problems.push(problemAt(run.stepIndex, (e as Error).message));
  } finally {
    await session.close();
  }
  return problems;
}
