/**
 * What driver fuzzing exercised: the scenario side (step kinds, injected answers, set-up
 * features, settle limits) and the driver side (the request types it sent and the answers they
 * got, its memory writes and settle endings), counted into the report's coverage record.
 */
import type { Adapter, DriverActivity, DriverSession } from '../../../adapters/core/src/contract';
import { REQUEST_TYPE_NAMES, RESPONSE_CODE_NAMES } from '../../../spec/src/index';
import { decodeRequest, decodeResponse } from '../../../model/src/index';
import type { DriverScenario } from './driver-scenario';

/** Coverage counts by key (`request:PLUG`, `inject:BUSY`, `outcome:conforming`, …). */
export type CoverageCounts = Record<string, number>;

/** Adds one to `key`. */
export function countIn(coverage: CoverageCounts, key: string): void {
  coverage[key] = (coverage[key] ?? 0) + 1;
}

/** Counts what a scenario asks of the host side. */
export function coverScenario(coverage: CoverageCounts, scenario: DriverScenario): void {
  for (const step of scenario.steps) {
    countIn(coverage, `step:${step.kind}`);
    if (step.kind === 'inject') countIn(coverage, `inject:${step.response}`);
    if (step.kind === 'settle' && step.maxRequests !== undefined) countIn(coverage, 'settle:max-requests');
    if (step.kind === 'settle' && step.timeoutMs !== undefined) countIn(coverage, 'settle:timeout');
    if (step.kind === 'resize' && (step.blocks === 0 || step.blocks === scenario.setup.regionBlocks))
      countIn(coverage, 'resize:region-boundary');
  }
  const s = scenario.setup;
  if (s.plugged.length > 0) countIn(coverage, 'setup:plugged-at-start');
  if (s.configPadding) countIn(coverage, 'setup:config-padding');
  if (s.features) countIn(coverage, 'setup:features');
  if (s.regionBlocks > 0xffff) countIn(coverage, 'setup:over-65535-blocks');
}

/** Counts what a driver did in one settle. */
function coverActivity(coverage: CoverageCounts, activity: DriverActivity): void {
  for (const ev of activity.events) {
    if (ev.kind !== 'request') {
      countIn(coverage, `driver:${ev.kind}`);
      continue;
    }
    const request = decodeRequest(ev.exchange.request);
    const type = request.ok ? (REQUEST_TYPE_NAMES[request.value.type] ?? 'unknown-type') : 'malformed';
    const response = ev.exchange.response ? decodeResponse(ev.exchange.response) : undefined;
    const answer = response?.ok ? (RESPONSE_CODE_NAMES[response.value.type] ?? 'unknown') : 'none';
    countIn(coverage, `request:${type}`);
    countIn(coverage, `response:${type}:${answer}`);
  }
  countIn(coverage, activity.settled ? 'settle:quiet' : 'settle:cut-short');
}

/** A driver session whose settles are counted into `coverage` (every other call goes through unchanged). */
function observedSession(session: DriverSession, coverage: CoverageCounts): DriverSession {
  return new Proxy(session, {
    get(target, key, receiver) {
      if (key === 'settle')
        return async (...args: Parameters<DriverSession['settle']>) => {
          const activity = await target.settle(...args);
          coverActivity(coverage, activity);
          return activity;
        };
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** `adapter` with its driver sessions' settles counted into `coverage`. */
export function observedAdapter(adapter: Adapter, coverage: CoverageCounts): Adapter {
  const openDriver = adapter.openDriver?.bind(adapter);
  if (!openDriver) return adapter;
  return {
    info: adapter.info,
    openDevice: (setup) => adapter.openDevice(setup),
    openDriver: async (setup, options) => observedSession(await openDriver(setup, options), coverage),
    dispose: () => adapter.dispose(),
  };
}
