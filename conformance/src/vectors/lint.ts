/**
 * Meaning checks beyond the schema: does a vector expect something no conforming device could
 * produce? Each device vector is replayed on the `spec` model; at every request step each
 * outcome the vector grades pass, acceptable or informational must be in the model's conforming set
 * (NACK for UNPLUG, say, never is); non-strict and fail grades may name anything.
 */
import { SPEC_PROFILE, VirtioMemDevice, describeOutcome, initialiseDevice } from '../../../model/src/index';
import { buildChain, evaluateSetup } from '../runner/device-run';
import { outcomeLabel } from '../runner/oracle';
import { scopeOfConfig, evaluate } from './expr';
import type { LoadProblem, Vector } from './types';

/** Lints loaded vectors; returns problems with file and line. */
export function lintVectors(vectors: readonly Vector[]): LoadProblem[] {
  const problems: LoadProblem[] = [];
  for (const v of vectors) {
    if (/\b(MUST|SHOULD|MAY)\b/.test(v.title)) {
      problems.push({ file: v.source.file, line: v.source.line, field: 'title', reason: 'titles describe the scenario; the requirement level lives in the catalogue (drop MUST/SHOULD/MAY)' });
    }
    if (v.target === 'device') problems.push(...replay(v));
  }
  return problems;
}

function replay(v: Vector): LoadProblem[] {
  const problems: LoadProblem[] = [];
  let device: VirtioMemDevice;
  try {
    const setup = evaluateSetup(v);
    device = new VirtioMemDevice({ ...setup, plugged: setup.plugged }, SPEC_PROFILE);
  } catch (e) {
    return [{ file: v.source.file, line: v.source.line, field: 'setup', reason: (e as Error).message }];
  }
  const accept = v.setup.accept;
  const init = (): void => void initialiseDevice(device, (offered) => (accept === 'offered' ? offered : accept & offered));
  if (!v.steps.some((step) => step.action.kind === 'initialise')) init();
  for (const step of v.steps) {
    const a = step.action;
    const scope = scopeOfConfig(device.readConfig());
    try {
      if (a.kind === 'request') {
        const chain = buildChain(a.request, a.layout, scope);
        const evaluation = device.evaluate(chain);
        const labels = evaluation.outcomes.map(outcomeLabel);
        for (const [outcome, cls] of step.expect.response ?? []) {
          if ((cls === 'pass' || cls === 'acceptable' || cls === 'informational') && !labels.includes(outcome)) {
            problems.push({
              file: v.source.file,
              line: step.line,
              field: `steps[${step.index - 1}].expect.response`,
              reason: `${outcome} is not something a conforming device answers here (conforming: ${evaluation.outcomes.map(describeOutcome).join(', ')})`,
            });
          }
        }
        device.processChain(chain);
      } else if (a.kind === 'resize') {
        const size = evaluate(a.size, scope);
        if (size.ok) device.setRequestedSize(size.value);
      } else if (a.kind === 'device-reset') {
        init();
      } else if (a.kind === 'system-reset') {
        device.systemReset();
        init();
      } else if (a.kind === 'inject-busy') {
        device.injectBusy(a.count);
      } else if (a.kind === 'initialise') {
        const wanted = a.accept;
        initialiseDevice(device, (offered) => (wanted === 'offered' ? offered : wanted));
      } else if (a.kind === 'write-memory') {
        const addr = evaluate(a.addr, scope);
        if (addr.ok) device.writeMemory(addr.value, a.data);
      } else if (a.kind === 'suspend') {
        device.suspend();
        device.wake();
      }
    } catch (e) {
      problems.push({ file: v.source.file, line: step.line, field: `steps[${step.index - 1}]`, reason: (e as Error).message });
      break;
    }
  }
  return problems;
}
