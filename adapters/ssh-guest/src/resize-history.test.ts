import { DriverActivity, DriverEvent } from '../../core/src/contract';
import { withConfigBeforeResizes } from './resize-history';

const AFTER = new Uint8Array([2]);
const BEFORE_FIRST = new Uint8Array([0]);
const BEFORE_SECOND = new Uint8Array([1]);

function request(atMs: number | undefined): DriverEvent {
  return {
    kind: 'request',
    exchange: { request: new Uint8Array(24), response: null, config: AFTER, ...(atMs === undefined ? {} : { atMs }) },
  };
}

const activity = (events: DriverEvent[]): DriverActivity => ({ events, settled: true, stop: 'x', waitedMs: 0 });

describe('withConfigBeforeResizes', () => {
  test('a request stamped before a resize carries the configuration before the first resize after it', () => {
    const write: DriverEvent = { kind: 'memory-write', addr: 0n, length: 1 };
    const out = withConfigBeforeResizes(
      activity([request(100), request(250), write, request(400), request(undefined)]),
      [
        { sentAtMs: 200, before: BEFORE_FIRST },
        { sentAtMs: 300, before: BEFORE_SECOND },
      ],
    );
    const configs = out.events.map((e) => (e.kind === 'request' ? e.exchange.config : e.kind));
    expect(configs).toEqual([BEFORE_FIRST, BEFORE_SECOND, 'memory-write', AFTER, AFTER]);
  });

  test('without resizes the activity is returned as it is', () => {
    const a = activity([request(1)]);
    expect(withConfigBeforeResizes(a, [])).toBe(a);
  });
});
