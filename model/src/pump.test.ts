import { virtioHandshakeSync } from '../../adapters/virtio/src/index';
import { VirtioMemDevice } from './device/device';
import { deviceRegisters } from './device/registers';
import { ReferenceDriver } from './driver/driver';
import { DriverSessionCore, describeStop } from './driver-session';
import {
  DriverDeviceOp,
  SyncDriverDevicePort,
  asyncDevicePort,
  driverPumpSteps,
  runDriverLoop,
  runDriverPump,
  runDriverPumpAsync,
} from './loop';
import { encodeResponse } from './codec/codec';
import { VIRTIO_MEM_RESP_BUSY } from '../../spec/src/index';

const BS = 2n << 20n;

/** A small seeded generator (mulberry32), so a failing case can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Scenario {
  readonly blocks: number;
  readonly requested: number;
  readonly maxBlocksPerRequest: number;
  readonly initialBackoffMs: number;
  readonly initialiseMemory: boolean;
  /** Request indices before which the host resizes to the given block count. */
  readonly resizes: ReadonlyMap<number, number>;
  /** Request indices answered BUSY by the port itself. */
  readonly busy: ReadonlySet<number>;
  readonly maxRequests: number;
  readonly maxWaitMs: number;
}

function scenario(seed: number): Scenario {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const blocks = 8 + int(56);
  const resizes = new Map<number, number>();
  const busy = new Set<number>();
  for (let i = 0; i < 3; i++) resizes.set(int(30), int(blocks + 1));
  for (let i = 0; i < 4; i++) busy.add(int(30));
  return {
    blocks,
    requested: int(blocks + 1),
    maxBlocksPerRequest: 1 + int(8),
    initialBackoffMs: 1 + int(100),
    initialiseMemory: rnd() < 0.5,
    resizes,
    busy,
    maxRequests: 5 + int(60),
    maxWaitMs: int(2000),
  };
}

/** A device, a driver through its handshake, and a port over the device that records every operation and answer. */
function rig(s: Scenario) {
  const device = new VirtioMemDevice({
    block_size: BS,
    addr: 1n << 32n,
    region_size: BigInt(s.blocks) * BS,
    requested_size: BigInt(s.requested) * BS,
  });
  const driver = new ReferenceDriver({
    maxBlocksPerRequest: s.maxBlocksPerRequest,
    initialBackoffMs: s.initialBackoffMs,
    initialiseMemory: s.initialiseMemory,
  });
  virtioHandshakeSync(deviceRegisters(device), (offered) => driver.negotiate(offered));
  const log: unknown[] = [];
  let seen = device.notificationCount;
  const notified = () => {
    const changed = device.notificationCount !== seen;
    seen = device.notificationCount;
    return changed;
  };
  const record = <A>(op: DriverDeviceOp, answer: A): A => {
    log.push({ op, answer });
    return answer;
  };
  const port: SyncDriverDevicePort = {
    readConfig: () => record({ kind: 'read-config' }, { config: device.readConfigBytes(), configChanged: notified() }),
    request: (op) => {
      const resize = s.resizes.get(op.index);
      if (resize !== undefined) device.setRequestedSize(BigInt(resize) * BS);
      if (s.busy.has(op.index))
        return record(op, { response: encodeResponse({ type: VIRTIO_MEM_RESP_BUSY }), configChanged: notified() });
      const step = device.processRequest(op.action.bytes);
      return record(op, { response: step.used ? step.used.written.slice(0, 16) : null, configChanged: notified() });
    },
    writeMemory: (op) =>
      record(op, {
        ok: device.writeMemory(op.action.addr, new Uint8Array(op.action.length)).ok,
        configChanged: notified(),
      }),
  };
  return { device, driver, port, log };
}

describe('the driver pump: one generator, a synchronous and an asynchronous runner', () => {
  test('both runners give identical results and operations over the same device (200 seeded scenarios)', async () => {
    let requests = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const s = scenario(seed);
      const sync = rig(s);
      const async = rig(s);
      const limits = { maxRequests: s.maxRequests, maxWaitMs: s.maxWaitMs };
      const a = runDriverPump(sync.driver, sync.port, limits);
      const b = await runDriverPumpAsync(async.driver, asyncDevicePort(async.port), limits);
      expect({ seed, result: b, log: async.log }).toEqual({ seed, result: a, log: sync.log });
      expect(async.device.snapshot(true)).toEqual(sync.device.snapshot(true));
      requests += a.requests;
    }
    // The scenarios exercise the pump, not only its start.
    expect(requests).toBeGreaterThan(500);
  });

  test('a notification reported by an answer reaches the driver before its next action', () => {
    const s = scenario(7);
    const { driver, port } = rig(s);
    const told: string[] = [];
    const spy = jest.spyOn(driver, 'onConfigChange').mockImplementation(() => told.push('config-change'));
    const steps = driverPumpSteps(driver, { maxRequests: 3 });
    let next = steps.next();
    expect(next.value).toEqual({ kind: 'read-config' });
    next = steps.next({ ...port.readConfig(), configChanged: true });
    expect(told).toEqual(['config-change']);
    expect(next.done).toBe(false);
    spy.mockRestore();
  });

  test('limits.configChanged tells the driver before its first action; a pending request at the limit is handed back', () => {
    const s = { ...scenario(3), requested: 8, maxBlocksPerRequest: 1, initialiseMemory: false };
    const { driver, port } = rig({ ...s, busy: new Set<number>(), resizes: new Map<number, number>() });
    const calls: string[] = [];
    const origNext = driver.next.bind(driver);
    jest.spyOn(driver, 'onConfigChange').mockImplementation(() => calls.push('change'));
    jest.spyOn(driver, 'next').mockImplementation(() => {
      calls.push('next');
      return origNext();
    });
    const run = runDriverPump(driver, port, { maxRequests: 1, configChanged: true });
    expect(calls.slice(0, 2)).toEqual(['change', 'next']);
    expect(run).toMatchObject({ stop: { kind: 'request-limit' }, requests: 1 });
    // A pending request the caller passes back is handed back again while the limit is reached.
    const pending = { kind: 'request', request: {}, bytes: new Uint8Array(24), purpose: 'test' } as never;
    const again = runDriverPump(
      driver,
      { ...port, request: () => ({ response: null, configChanged: false }) },
      {
        maxRequests: 0,
        pending,
      },
    );
    expect(again).toEqual({ stop: { kind: 'request-limit', pending }, requests: 0, waitedMs: 0, memoryWrites: 0 });
  });
});

describe('DriverSessionCore', () => {
  const device = () =>
    new VirtioMemDevice({ block_size: BS, addr: 1n << 32n, region_size: 16n * BS, requested_size: 6n * BS });

  test('settles over an async port with request times on the session clock, which goes on across settles', async () => {
    const d = device();
    const session = new DriverSessionCore(() => new ReferenceDriver({ maxBlocksPerRequest: 2, initialBackoffMs: 30 }));
    virtioHandshakeSync(deviceRegisters(d), (offered) => session.driver.negotiate(offered));
    let busyLeft = 1;
    const stamps: number[] = [];
    const port = asyncDevicePort({
      readConfig: () => ({ config: d.readConfigBytes(), configChanged: false }),
      request: (op) => {
        stamps.push(op.atMs);
        if (busyLeft-- > 0) return { response: encodeResponse({ type: VIRTIO_MEM_RESP_BUSY }), configChanged: false };
        const step = d.processRequest(op.action.bytes);
        return { response: step.used!.written.slice(0, 16), configChanged: false };
      },
      writeMemory: (op) => ({
        ok: d.writeMemory(op.action.addr, new Uint8Array(op.action.length)).ok,
        configChanged: false,
      }),
    });
    const first = await session.settleOver(port, { maxRequests: 1, timeoutMs: 1000 }, false);
    expect(first).toEqual({ settled: false, stop: 'request limit (1) reached', waitedMs: 0 });
    expect(session.clockMs).toBe(0);
    const second = await session.settleOver(port, { maxRequests: 2, timeoutMs: 1000 }, false);
    expect(second).toEqual({ settled: false, stop: 'request limit (2) reached', waitedMs: 30 });
    expect(session.clockMs).toBe(30);
    const third = await session.settleOver(port, { maxRequests: 100, timeoutMs: 1000 }, false);
    expect(third).toMatchObject({ settled: true, stop: 'idle: plugged_size equals requested_size' });
    // The BUSY at 0, the retry after the 30 ms backoff, the rest without waiting.
    expect(stamps).toEqual([0, 30, 30, 30]);
    expect(d.readConfig().plugged_size).toBe(6n * BS);
  });

  test('a settle cut by its time limit moves the clock by the limit only; reboot makes a fresh driver', () => {
    const d = device();
    const session = new DriverSessionCore(() => new ReferenceDriver({ initialBackoffMs: 1000 }), 5);
    const first = session.driver;
    virtioHandshakeSync(deviceRegisters(d), (offered) => first.negotiate(offered));
    d.injectBusy(1);
    const limits = { maxRequests: 100, timeoutMs: 400 };
    const run = runDriverLoop(session.driver, d, {
      ...session.pumpLimits(limits),
      notificationsSeen: session.notificationsSeen,
    });
    const outcome = session.finishSettle(run, limits);
    expect(outcome).toEqual({ settled: false, stop: 'still backing off after 1000 ms (limit 400 ms)', waitedMs: 1000 });
    expect(session.clockMs).toBe(400);
    expect(session.notificationsSeen).toBe(run.notificationsSeen);
    session.reboot(9);
    expect(session.driver).not.toBe(first);
    expect(session.notificationsSeen).toBe(9);
    expect(session.clockMs).toBe(400);
    expect(session.maySuspend()).toEqual({
      allowed: false,
      detail: expect.stringContaining('plugged_size has not been read yet'),
    });
  });

  test('describeStop words every stop', () => {
    const limits = { maxRequests: 7, timeoutMs: 10 };
    expect(describeStop({ kind: 'idle', reason: 'converged' }, limits, 0)).toEqual({
      settled: true,
      stop: 'idle: converged',
    });
    expect(describeStop({ kind: 'broken', reason: 'ERROR' }, limits, 0)).toEqual({
      settled: true,
      stop: 'broken: ERROR',
    });
    expect(describeStop({ kind: 'request-limit' }, limits, 0)).toEqual({
      settled: false,
      stop: 'request limit (7) reached',
    });
    expect(describeStop({ kind: 'wait-limit' }, limits, 12)).toEqual({
      settled: false,
      stop: 'still backing off after 12 ms (limit 10 ms)',
    });
  });
});
