/**
 * The scripted answers a driver vector gives right after its first `start`, before anything
 * lets the driver run: a real driver acts as it probes (Linux sends UNPLUG ALL from its probe
 * when the device holds plugged memory), so an adapter arms them before loading it
 * ({@link DriverOptions.scriptAtProbe}).
 */
import type { DriverOptions, ResponseInjection } from '../../../adapters/core/src/contract';
import type { Vector } from '../loader/types';

/** The script of the `inject` steps directly after the first `start` (the last one wins, as steps replace scripts); undefined when none. */
export function scriptAtProbe(vector: Pick<Vector, 'steps'>): DriverOptions['scriptAtProbe'] {
  const start = vector.steps.findIndex((s) => s.action.kind === 'start');
  if (start < 0) return undefined;
  let script: ResponseInjection | undefined;
  for (const step of vector.steps.slice(start + 1)) {
    const action = step.action;
    if (action.kind !== 'inject') break;
    script = {
      response: action.response,
      count: action.count,
      ...(action.types ? { types: action.types } : {}),
      ...(action.trailer ? { trailer: action.trailer } : {}),
    };
  }
  return script;
}
