import { createModelAdapter } from './model-adapter';
import { ReferenceDriver } from '../../../model/src/index';
import type { DriverActivity, DriverExchange } from '../../core/src/contract';

const MiB = 1n << 20n;
const SETUP = {
  block_size: 2n * MiB,
  region_size: 1n << 30n,
  addr: 4n << 30n,
  requested_size: 8n * MiB,
  node_id: 0,
  plugged: [],
};

const stamps = (activity: DriverActivity): (number | undefined)[] =>
  activity.events
    .filter((e): e is { kind: 'request'; exchange: DriverExchange } => e.kind === 'request')
    .map((e) => e.exchange.atMs);

describe('the model driver session clock (request time stamps)', () => {
  test('virtual time advances only by the backoffs the driver chose, across settles', async () => {
    const adapter = createModelAdapter();
    const session = await adapter.openDriver!(SETUP, {});
    await session.start();
    await session.injectResponses!({ response: 'BUSY', count: 2, types: ['PLUG'] });
    const first = await session.settle({ maxRequests: 1, timeoutMs: 3_600_000 });
    expect(first.settled).toBe(false);
    expect(stamps(first)).toEqual([0]);
    const second = await session.settle({ maxRequests: 100, timeoutMs: 3_600_000 });
    expect(second.settled).toBe(true);
    // 50 s after the first BUSY, then 100 s after the second; the ACKed PLUG needs no wait.
    expect(stamps(second)).toEqual([50_000, 150_000]);
  });

  test('a settle cut short by its time limit moves the clock by the limit only', async () => {
    const adapter = createModelAdapter({ driverFactory: () => new ReferenceDriver({ initialBackoffMs: 1000 }) });
    const session = await adapter.openDriver!(SETUP, {});
    await session.start();
    await session.injectResponses!({ response: 'BUSY', count: 1, types: ['PLUG'] });
    const cut = await session.settle({ maxRequests: 100, timeoutMs: 400 });
    expect(cut.settled).toBe(false);
    expect(stamps(cut)).toEqual([0]);
    const rest = await session.settle({ maxRequests: 100, timeoutMs: 3_600_000 });
    // The driver starts its 1 s backoff again at 400 ms (the model freezes it between settles).
    expect(stamps(rest)).toEqual([1400]);
  });
});
