import { virtioHandshakeSync } from '../../../adapters/virtio/src/index';
import fc from 'fast-check';
import {
  ProcessResult,
  QEMU_PROFILE,
  SPEC_PROFILE,
  ReferenceDriver,
  VirtioMemDevice,
  DeviceProfile,
  encodeConfig,
  encodeResponse,
  runDriverLoop,
  decodeRequest,
  DriverUsageError,
  MEMORY_INIT_BYTES,
  deviceRegisters,
} from '../index';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  featureMask,
} from '../../../spec/src/index';

const MiB = 1n << 20n;
const BS = 2n * MiB;
const BASE = 1n << 32n;

interface Scenario {
  readonly blocks: number;
  readonly usableBlocks: number;
  readonly requestedBlocks: number;
  readonly plugged: { first: number; count: number }[];
}

/** Random consistent device states: plugged runs inside the usable region. */
const scenarioArb: fc.Arbitrary<Scenario> = fc.integer({ min: 1, max: 300 }).chain((blocks) =>
  fc.integer({ min: 0, max: blocks }).chain((usableBlocks) =>
    fc.record({
      blocks: fc.constant(blocks),
      usableBlocks: fc.constant(usableBlocks),
      requestedBlocks: fc.integer({ min: 0, max: usableBlocks }),
      plugged: fc
        .array(fc.tuple(fc.nat(Math.max(0, usableBlocks - 1)), fc.integer({ min: 1, max: 20 })), { maxLength: 6 })
        .map((pairs) =>
          usableBlocks === 0
            ? []
            : pairs.map(([first, count]) => ({ first, count: Math.min(count, usableBlocks - first) })),
        ),
    }),
  ),
);

function deviceFor(s: Scenario, profile: DeviceProfile = SPEC_PROFILE): VirtioMemDevice {
  return new VirtioMemDevice(
    {
      block_size: BS,
      addr: BASE,
      region_size: BigInt(s.blocks) * BS,
      requested_size: BigInt(s.requestedBlocks) * BS,
      usable_region_size: BigInt(s.usableBlocks) * BS,
      plugged: s.plugged,
    },
    profile,
  );
}

/** Checks the driver-side properties on every step. */
function checkStream(steps: readonly ProcessResult[]): void {
  for (const step of steps) {
    // A conforming driver never provokes ERROR from a conforming device.
    expect(step.response?.type).not.toBe(3);
    expect(step.request?.nb_blocks ?? 0).toBeLessThanOrEqual(65535);
    expect(step.violations).toEqual([]);
  }
}

describe('ReferenceDriver convergence', () => {
  test.each([
    ['unplug-all', SPEC_PROFILE],
    ['unplug-all', QEMU_PROFILE],
    ['state-resync', SPEC_PROFILE],
    ['state-resync', QEMU_PROFILE],
  ] as const)(
    'should reach requested_size from random plugged states (init %s, profile %s)',
    (initStrategy, profile) => {
      fc.assert(
        fc.property(scenarioArb, (s) => {
          const device = deviceFor(s, profile);
          const pluggedAtStart = device.readConfig().plugged_size > 0n;
          const driver = new ReferenceDriver({ initStrategy });
          const result = runDriverLoop(driver, device, {}, true);
          expect(result.stop.kind).toBe('idle');
          const config = device.readConfig();
          expect(config.plugged_size).toBe(config.requested_size);
          expect(driver.pluggedRuns()).toEqual(device.pluggedRuns());
          checkStream(result.steps);
          // drv.op.7: one initialisation write per acknowledged PLUG, each accepted by the device.
          const pluggedAcks = result.steps.filter((st) => st.request?.type === 0 && st.response?.type === 0).length;
          expect(result.memoryWrites).toBe(pluggedAcks);
          expect(result.memoryWriteSteps.every((w) => w.result.ok)).toBe(true);
          if (pluggedAtStart && initStrategy === 'unplug-all') expect(result.steps[0].request?.type).toBe(2);
          if (pluggedAtStart && initStrategy === 'state-resync') expect(result.steps[0].request?.type).toBe(3);
          if (!pluggedAtStart) expect(result.steps.every((st) => st.request?.type !== 2)).toBe(true);
        }),
        { numRuns: 150, seed: 0x5eed },
      );
    },
  );

  test('should follow a sequence of host grow and shrink requests', () => {
    fc.assert(
      fc.property(scenarioArb, fc.array(fc.nat(300), { minLength: 1, maxLength: 6 }), (s, targets) => {
        const device = deviceFor(s, QEMU_PROFILE);
        // The driver has brought the device up, so resizes are notified to it.
        virtioHandshakeSync(deviceRegisters(device), (offered) => offered);
        const driver = new ReferenceDriver();
        runDriverLoop(driver, device);
        for (const target of targets) {
          const blocks = Math.min(target, s.blocks);
          const resize = device.setRequestedSize(BigInt(blocks) * BS);
          expect(resize.ok).toBe(true);
          // The transport delivers the configuration-change interrupt to the driver.
          if (resize.ok && resize.notified) driver.onConfigChange();
          const result = runDriverLoop(driver, device, {}, true);
          checkStream(result.steps);
          expect(result.stop.kind).toBe('idle');
          expect(device.readConfig().plugged_size).toBe(BigInt(blocks) * BS);
        }
      }),
      { numRuns: 100, seed: 42 },
    );
  });

  test('should back off on BUSY, doubling up to the cap, and still converge', () => {
    const device = deviceFor({ blocks: 64, usableBlocks: 64, requestedBlocks: 16, plugged: [] });
    device.injectBusy(5);
    const driver = new ReferenceDriver({ initialBackoffMs: 100, maxBackoffMs: 1000 });
    const result = runDriverLoop(driver, device, {}, true);
    expect(result.stop.kind).toBe('idle');
    expect(result.waitedMs).toBe(100 + 200 + 400 + 800 + 1000);
    expect(device.readConfig().plugged_size).toBe(16n * BS);
    expect(result.steps.filter((st) => st.response?.type === 2)).toHaveLength(5);
  });

  test.each([
    ['a fixed 1 s retry', { initialBackoffMs: 1000, backoffFactor: 1 }, [1000, 1000, 1000, 1000]],
    [
      '100 ms tripling up to 2 s',
      { initialBackoffMs: 100, backoffFactor: 3, maxBackoffMs: 2000 },
      [100, 300, 900, 2000],
    ],
    ['the default: 50 s doubling up to 300 s', {}, [50_000, 100_000, 200_000, 300_000]],
  ])('backoff policy %s: the driver waits each time before retrying BUSY, as configured', (_name, options, waits) => {
    const device = deviceFor({ blocks: 64, usableBlocks: 64, requestedBlocks: 16, plugged: [] });
    device.injectBusy(4);
    const driver = new ReferenceDriver(options);
    const stamps: number[] = [];
    const result = runDriverLoop(driver, device, { onRequest: (_r, _a, _c, atMs) => stamps.push(atMs) });
    expect(result.stop.kind).toBe('idle');
    expect(device.readConfig().plugged_size).toBe(16n * BS);
    // Requests 2..5 each come one backoff after the BUSY answer before them.
    expect(stamps.slice(1, 5).map((t, i) => t - stamps[i]!)).toEqual(waits);
  });

  test('should stop plugging after NACK and resume after the configuration changes', () => {
    const device = deviceFor({ blocks: 64, usableBlocks: 64, requestedBlocks: 32, plugged: [] });
    const driver = new ReferenceDriver({ maxBlocksPerRequest: 4 });
    // The host shrinks the target while the driver is plugging: the next plug is NACKed.
    const result = runDriverLoop(
      driver,
      device,
      { beforeRequest: (i, d) => i === 2 && d.setRequestedSize(8n * BS) },
      true,
    );
    expect(result.steps.some((st) => st.response?.type === 1)).toBe(true);
    expect(result.stop.kind).toBe('idle');
    expect(device.readConfig().plugged_size).toBe(8n * BS);
  });

  test('should idle on NACK without spinning when no configuration change comes', () => {
    const driver = new ReferenceDriver();
    driver.onConfig(
      encodeConfig({
        block_size: BS,
        addr: BASE,
        region_size: 64n * BS,
        usable_region_size: 64n * BS,
        requested_size: 4n * BS,
      }),
    );
    const action = driver.next();
    expect(action.kind).toBe('request');
    driver.onResponse(encodeResponse({ type: 1 }));
    expect(driver.next()).toMatchObject({ kind: 'idle', reason: expect.stringMatching(/NACK/) });
    driver.onConfigChange();
    expect(driver.next().kind).toBe('read-config');
  });

  test('should split ranges beyond 65,535 blocks', () => {
    const blocks = 1 << 17;
    const device = new VirtioMemDevice({
      block_size: BS,
      addr: 0n,
      region_size: BigInt(blocks) * BS,
      requested_size: 100_000n * BS,
    });
    const result = runDriverLoop(new ReferenceDriver(), device, {}, true);
    expect(result.steps.map((st) => st.request?.nb_blocks)).toEqual([65535, 100_000 - 65535]);
    expect(device.readConfig().plugged_size).toBe(100_000n * BS);
  });

  test('should resynchronise with STATE in ≤ 65,535-block chunks', () => {
    const blocks = 1 << 17;
    const device = new VirtioMemDevice({
      block_size: BS,
      addr: 0n,
      region_size: BigInt(blocks) * BS,
      requested_size: BigInt(blocks) * BS,
      plugged: [{ first: 70_000, count: 3 }],
    });
    const result = runDriverLoop(new ReferenceDriver({ initStrategy: 'state-resync' }), device, {}, true);
    const states = result.steps.filter((st) => st.request?.type === 3);
    expect(states.length).toBeGreaterThan(2);
    expect(states.every((st) => (st.request?.nb_blocks ?? 0) <= 65535)).toBe(true);
    expect(device.readConfig().plugged_size).toBe(BigInt(blocks) * BS);
  });
});

describe('ReferenceDriver protocol rules', () => {
  const config = (over: Record<string, bigint> = {}) =>
    encodeConfig({
      block_size: BS,
      addr: BASE,
      region_size: 64n * BS,
      usable_region_size: 8n * BS,
      requested_size: 8n * BS,
      ...over,
    });

  test('drv.op.9: never plugs outside the usable region, even when requested exceeds it', () => {
    const driver = new ReferenceDriver();
    driver.onConfig(config({ requested_size: 16n * BS }));
    let action = driver.next();
    const end = BASE + 8n * BS;
    while (action.kind === 'request' || action.kind === 'write-memory') {
      if (action.kind === 'write-memory') {
        // The initialisation write after each ACK stays inside the usable region too.
        expect(action.addr + BigInt(action.length)).toBeLessThanOrEqual(end);
        driver.onMemoryWritten(true);
      } else {
        expect(action.request.addr + BigInt(action.request.nb_blocks) * BS).toBeLessThanOrEqual(end);
        driver.onResponse(encodeResponse({ type: 0 }));
      }
      action = driver.next();
    }
    expect(action).toMatchObject({ kind: 'idle', reason: expect.stringMatching(/usable region/) });
  });

  test('drv.plug.1: looks only at the response type (padding and state ignored)', () => {
    const driver = new ReferenceDriver();
    driver.onConfig(config());
    driver.next();
    driver.onResponse(encodeResponse({ type: 0, padding: Uint8Array.of(9, 9, 9, 9, 9, 9), state: 2 }));
    expect(driver.pluggedBlocks).toBe(8);
  });

  test('drv.state.2: ignores the state of a STATE response that is not ACK', () => {
    const driver = new ReferenceDriver({ initStrategy: 'state-resync' });
    driver.onConfig(config({ plugged_size: 2n * BS }));
    const action = driver.next();
    expect(action).toMatchObject({ kind: 'request', request: { type: 3 } });
    driver.onResponse(encodeResponse({ type: 2, state: 0 }));
    expect(driver.pluggedBlocks).toBe(0);
  });

  test('drv.init.2: retries UNPLUG ALL until it succeeds', () => {
    const driver = new ReferenceDriver({ initialBackoffMs: 10 });
    driver.onConfig(config({ plugged_size: 2n * BS }));
    for (const code of [2, 3, 1]) {
      expect(driver.next()).toMatchObject({ kind: 'request', request: { type: 2 } });
      driver.onResponse(encodeResponse({ type: code }));
      expect(driver.next().kind).toBe('wait');
      driver.onTimer();
    }
    expect(driver.next()).toMatchObject({ kind: 'request', request: { type: 2 } });
    driver.onResponse(encodeResponse({ type: 0 }));
    // After the ACK it re-reads the configuration: usable_region_size may have changed silently.
    expect(driver.next().kind).toBe('read-config');
  });

  test('drv.cfg.1: only ever emits requests (no configuration writes exist in its API) encoded as 24 bytes', () => {
    const driver = new ReferenceDriver();
    driver.onConfig(config());
    const action = driver.next();
    expect(action.kind === 'request' && action.bytes.length).toBe(24);
    if (action.kind === 'request')
      expect(decodeRequest(action.bytes)).toMatchObject({ ok: true, value: { type: 0, addr: BASE, nb_blocks: 8 } });
  });

  test('dev.cfg.5: refuses a device whose block_size is not a power of two', () => {
    const driver = new ReferenceDriver();
    driver.onConfig(
      config({ block_size: 6n * MiB, region_size: 60n * MiB, usable_region_size: 0n, requested_size: 0n }),
    );
    expect(driver.next()).toMatchObject({ kind: 'broken', reason: expect.stringMatching(/power of two/) });
  });

  test('ERROR makes it resynchronise once, and gives up on a second ERROR', () => {
    const driver = new ReferenceDriver();
    driver.onConfig(config());
    driver.next();
    driver.onResponse(encodeResponse({ type: 3 }));
    expect(driver.next()).toMatchObject({ kind: 'request', request: { type: 3 } });
    driver.onResponse(encodeResponse({ type: 3 }));
    expect(driver.next()).toMatchObject({ kind: 'broken' });
  });

  test('a missing response breaks the driver instead of acting on stale data', () => {
    const driver = new ReferenceDriver();
    driver.onConfig(config());
    driver.next();
    driver.onResponse(null);
    expect(driver.next()).toMatchObject({ kind: 'broken', reason: expect.stringMatching(/no response/) });
  });

  test('drv.init.1: accepts UNPLUGGED_INACCESSIBLE when offered', () => {
    expect(new ReferenceDriver().negotiate((1n << 32n) | 2n)).toBe((1n << 32n) | 2n);
    expect(new ReferenceDriver({ supportedFeatures: 1n << 32n }).negotiate((1n << 32n) | 2n)).toBe(1n << 32n);
  });

  test('refuses to be driven out of order', () => {
    expect(() => new ReferenceDriver().onResponse(encodeResponse({ type: 0 }))).toThrow(/no request outstanding/);
  });
});

describe('ReferenceDriver memory initialisation (drv.op.7, drv.op.1)', () => {
  const config = (over: Record<string, bigint> = {}) =>
    encodeConfig({
      block_size: BS,
      addr: BASE,
      region_size: 64n * BS,
      usable_region_size: 8n * BS,
      requested_size: 8n * BS,
      ...over,
    });

  test('drv.op.7: after an acknowledged PLUG it initialises the start of the plugged range, once', () => {
    const driver = new ReferenceDriver({ maxBlocksPerRequest: 3 });
    driver.onConfig(config());
    const plug = driver.next();
    expect(plug).toMatchObject({ kind: 'request', request: { type: 0, addr: BASE, nb_blocks: 3 } });
    driver.onResponse(encodeResponse({ type: 0 }));
    const write = {
      kind: 'write-memory',
      addr: BASE,
      length: MEMORY_INIT_BYTES,
      purpose: expect.stringMatching(/drv\.op\.7/),
    };
    expect(driver.next()).toMatchObject(write);
    // Asked again without feeding anything: the same action.
    expect(driver.next()).toMatchObject(write);
    driver.onMemoryWritten(true);
    expect(driver.next()).toMatchObject({ kind: 'request', request: { type: 0, addr: BASE + 3n * BS } });
  });

  test('drv.op.7: writes no more than a block when blocks are smaller than a page', () => {
    const small = 1024n;
    const driver = new ReferenceDriver();
    driver.onConfig(
      encodeConfig({
        block_size: small,
        addr: BASE,
        region_size: 64n * small,
        usable_region_size: 8n * small,
        requested_size: 8n * small,
      }),
    );
    driver.next();
    driver.onResponse(encodeResponse({ type: 0 }));
    expect(driver.next()).toMatchObject({ kind: 'write-memory', addr: BASE, length: 1024 });
  });

  test('writes nothing after NACK, BUSY or ERROR, nor after UNPLUG, and nothing at all with initialiseMemory false', () => {
    for (const code of [1, 2, 3]) {
      const driver = new ReferenceDriver();
      driver.onConfig(config());
      driver.next();
      driver.onResponse(encodeResponse({ type: code }));
      expect(driver.next().kind).not.toBe('write-memory');
    }
    const quiet = new ReferenceDriver({ initialiseMemory: false });
    quiet.onConfig(config());
    quiet.next();
    quiet.onResponse(encodeResponse({ type: 0 }));
    expect(quiet.next().kind).toBe('idle');
    const device = deviceFor({ blocks: 64, usableBlocks: 64, requestedBlocks: 16, plugged: [] });
    expect(runDriverLoop(new ReferenceDriver({ initialiseMemory: false }), device).memoryWrites).toBe(0);
  });

  test('drv.op.1: drops the write when its view no longer holds the block plugged', () => {
    const driver = new ReferenceDriver({ initStrategy: 'state-resync' });
    driver.onConfig(config());
    driver.next();
    driver.onResponse(encodeResponse({ type: 0 }));
    // The harness feeds a configuration out of band that disagrees: the driver resynchronises first.
    driver.onConfig(config({ plugged_size: 0n }));
    const action = driver.next();
    expect(action.kind).toBe('request');
    expect(action.kind === 'request' && action.request.type).toBe(3);
  });

  test('a refused initialisation write makes it resynchronise with STATE; feeding it unasked is a usage error', () => {
    const driver = new ReferenceDriver();
    expect(() => driver.onMemoryWritten(true)).toThrow(DriverUsageError);
    driver.onConfig(config());
    driver.next();
    driver.onResponse(encodeResponse({ type: 0 }));
    expect(driver.next().kind).toBe('write-memory');
    driver.onMemoryWritten(false);
    expect(driver.next()).toMatchObject({ kind: 'request', request: { type: 3 } });
  });

  test('drv.op.1 drv.op.7: every write the driver asks for lies inside one block the device has plugged (random states, resizes, features)', () => {
    const UI = featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
    const V1 = featureMask(VIRTIO_F_VERSION_1);
    fc.assert(
      fc.property(
        scenarioArb,
        fc.boolean(),
        fc.constantFrom('unplug-all' as const, 'state-resync' as const),
        fc.array(fc.nat(300), { maxLength: 4 }),
        (s, withUi, initStrategy, targets) => {
          const device = new VirtioMemDevice(
            {
              block_size: BS,
              addr: BASE,
              region_size: BigInt(s.blocks) * BS,
              requested_size: BigInt(s.requestedBlocks) * BS,
              usable_region_size: BigInt(s.usableBlocks) * BS,
              plugged: s.plugged,
              features: withUi ? V1 | UI : V1,
            },
            QEMU_PROFILE,
          );
          const driver = new ReferenceDriver({ initStrategy, maxBlocksPerRequest: 7 });
          device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
          device.writeDriverFeatures(driver.negotiate(device.offeredFeatures));
          device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
          let writes = 0;
          let seen = 0;
          const drive = (): void => {
            for (let guard = 0; guard < 10_000; guard++) {
              if (device.notificationCount !== seen) {
                seen = device.notificationCount;
                driver.onConfigChange();
              }
              const action = driver.next();
              if (action.kind === 'read-config') driver.onConfig(device.readConfigBytes());
              else if (action.kind === 'request')
                driver.onResponse(device.processRequest(action.bytes).used?.written ?? null);
              else if (action.kind === 'write-memory') {
                const block = Number((action.addr - BASE) / BS);
                expect(device.isPlugged(block)).toBe(true);
                expect(action.addr + BigInt(action.length)).toBeLessThanOrEqual(BASE + BigInt(block + 1) * BS);
                expect(device.writeMemory(action.addr, new Uint8Array(action.length).fill(0xee)).ok).toBe(true);
                driver.onMemoryWritten(true);
                writes++;
              } else if (action.kind === 'wait') driver.onTimer();
              else return void expect(action.kind).toBe('idle');
            }
            throw new Error('driver did not settle');
          };
          drive();
          for (const target of targets) {
            device.setRequestedSize(BigInt(Math.min(target, s.blocks)) * BS);
            drive();
          }
          expect(writes).toBe(driver.sentRequests.filter((r) => r.type === 0).length);
        },
      ),
      { numRuns: 120, seed: 0x77 },
    );
  });
});

describe('ReferenceDriver suspend (drv.op.11)', () => {
  const PS = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);
  const V1 = featureMask(VIRTIO_F_VERSION_1);
  const config = (over: Record<string, bigint> = {}) =>
    encodeConfig({
      block_size: BS,
      addr: BASE,
      region_size: 64n * BS,
      usable_region_size: 8n * BS,
      requested_size: 8n * BS,
      ...over,
    });

  test('drv.op.11: without PERSISTENT_SUSPEND it refuses deep sleep, nothing plugged included', () => {
    const driver = new ReferenceDriver();
    driver.negotiate(V1);
    expect(driver.maySuspend()).toMatchObject({ allowed: false, reason: expect.stringMatching(/not been read/) });
    driver.onConfig(config({ requested_size: 0n }));
    expect(driver.maySuspend()).toEqual({
      allowed: false,
      reason: expect.stringMatching(
        /PERSISTENT_SUSPEND was not negotiated \(drv\.op\.11 .*even with nothing plugged\)/,
      ),
    });
    driver.onConfig(config({ plugged_size: 2n * BS }));
    expect(driver.maySuspend()).toMatchObject({ allowed: false, reason: expect.stringMatching(/drv\.op\.11/) });
  });

  test('drv.op.11: its reason tracks its own acknowledged requests (PLUG in flight, acknowledged, UNPLUG ALL) and it refuses throughout', () => {
    const driver = new ReferenceDriver({ initialiseMemory: false });
    driver.negotiate(V1);
    driver.onConfig(config());
    expect(driver.maySuspend()).toMatchObject({
      allowed: false,
      reason: expect.stringMatching(/even with nothing plugged/),
    });
    driver.next();
    expect(driver.maySuspend()).toMatchObject({ allowed: false, reason: expect.stringMatching(/outstanding/) });
    driver.onResponse(encodeResponse({ type: 0 }));
    expect(driver.maySuspend()).toMatchObject({ allowed: false, reason: expect.stringMatching(/plugged/) });
    const again = new ReferenceDriver();
    again.negotiate(V1);
    again.onConfig(config({ plugged_size: 2n * BS }));
    expect(again.next()).toMatchObject({ kind: 'request', request: { type: 2 } });
    again.onResponse(encodeResponse({ type: 0 }));
    expect(again.pluggedBlocks).toBe(0);
    expect(again.maySuspend()).toMatchObject({
      allowed: false,
      reason: expect.stringMatching(/even with nothing plugged/),
    });
  });

  test('drv.op.11: with PERSISTENT_SUSPEND negotiated it allows deep sleep with plugged memory', () => {
    const driver = new ReferenceDriver();
    expect(driver.negotiate(V1 | PS)).toBe(V1 | PS);
    driver.onConfig(config({ plugged_size: 2n * BS }));
    expect(driver.maySuspend()).toMatchObject({ allowed: true, reason: expect.stringMatching(/PERSISTENT_SUSPEND/) });
  });

  test('drv.op.11: converged against the spec profile (which offers PERSISTENT_SUSPEND) it may suspend; against QEMU 7.2 it may not', () => {
    for (const [profile, allowed] of [
      [SPEC_PROFILE, true],
      [QEMU_PROFILE, false],
    ] as const) {
      const device = deviceFor({ blocks: 64, usableBlocks: 64, requestedBlocks: 4, plugged: [] }, profile);
      const driver = new ReferenceDriver();
      driver.negotiate(device.offeredFeatures);
      expect(runDriverLoop(driver, device).stop.kind).toBe('idle');
      expect(driver.maySuspend().allowed).toBe(allowed);
    }
  });
});
