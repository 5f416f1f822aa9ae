import fc from 'fast-check';
import { VIRTIO_CONFIG_S_NEEDS_RESET } from '../../../spec/src/index';
import {
  DEVICE_PROFILES,
  DeviceProfile,
  InvariantViolation,
  NO_USED_ENTRY,
  ProcessResult,
  SPEC_PROFILE,
  VirtioMemDevice,
  encodeRequest,
} from '../index';
import { BASE, BS, MiB, activated } from './test/device-fixture';

const BLOCKS = 64;

/** Every profile, and variants that reach the branches no shipped profile takes (strict layouts, skipped checks, accepted over-budget plugs). */
const PROFILES: readonly DeviceProfile[] = [
  ...Object.values(DEVICE_PROFILES),
  {
    ...SPEC_PROFILE,
    name: 'variant-exact-24',
    layoutStrictness: 'exact-24',
    overBudget: 'accept',
    unknownType: 'used-length-zero',
    malformedChain: 'error-response',
  },
  { ...SPEC_PROFILE, name: 'variant-budget-only', plugCheckOrder: ['budget'], overBudget: 'ERROR' },
];

type Op =
  | { readonly kind: 'request'; readonly bytes: Uint8Array }
  | { readonly kind: 'inject-busy'; readonly count: number }
  | { readonly kind: 'host-busy'; readonly busy: boolean }
  | { readonly kind: 'resize'; readonly size: bigint }
  | { readonly kind: 'needs-reset' }
  | { readonly kind: 'device-reset' }
  | { readonly kind: 'system-reset' }
  | { readonly kind: 'write'; readonly block: number };

/** Requests of every type, valid and not: block boundaries, unaligned and far addresses, short and long buffers, dirty padding. */
const request: fc.Arbitrary<Op> = fc
  .record({
    type: fc.oneof(
      { weight: 20, arbitrary: fc.integer({ min: 0, max: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom(4, 0xffff) },
    ),
    addr: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: 11 }).map((b) => BASE + BigInt(b) * BS) },
      { weight: 1, arbitrary: fc.integer({ min: -2, max: BLOCKS + 2 }).map((b) => BASE + BigInt(b) * BS) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }).map((k) => BASE + BigInt(k) * MiB) },
      { weight: 1, arbitrary: fc.constantFrom(0n, 1n << 52n, 1n << 53n, (1n << 64n) - BS) },
    ),
    nb: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) },
      { weight: 2, arbitrary: fc.integer({ min: 0, max: BLOCKS + 2 }) },
      { weight: 1, arbitrary: fc.constant(0xffff) },
    ),
    padding: fc.boolean(),
    length: fc.oneof(
      { weight: 20, arbitrary: fc.constant(24) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 40 }) },
    ),
  })
  .map(({ type, addr, nb, padding, length }) => {
    const encoded = encodeRequest({
      type,
      addr,
      nb_blocks: nb,
      ...(padding
        ? { padding: Uint8Array.of(1, 2, 3, 4, 5, 6), payload_padding: Uint8Array.of(7, 7, 7, 7, 7, 7) }
        : {}),
    });
    const bytes = new Uint8Array(length);
    bytes.set(encoded.subarray(0, Math.min(length, encoded.length)));
    if (length > encoded.length) bytes.fill(0xaa, encoded.length);
    return { kind: 'request' as const, bytes };
  });

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 16, arbitrary: request },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }).map((count) => ({ kind: 'inject-busy' as const, count })) },
  { weight: 1, arbitrary: fc.boolean().map((busy) => ({ kind: 'host-busy' as const, busy })) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.integer({ min: 0, max: BLOCKS + 1 }).map((b) => BigInt(b) * BS),
        fc.constant(BS + MiB),
      )
      .map((size) => ({ kind: 'resize' as const, size })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'needs-reset' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'device-reset' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'system-reset' as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 11 }).map((block) => ({ kind: 'write' as const, block })) },
);

const scenario = fc.record({
  profile: fc.constantFrom(...PROFILES),
  requestedBlocks: fc.integer({ min: 0, max: BLOCKS }),
  plugged: fc.integer({ min: 0, max: 8 }),
  active: fc.boolean(),
  ops: fc.array(op, { minLength: 20, maxLength: 80 }),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function build(s: Scenario): VirtioMemDevice {
  const device = new VirtioMemDevice(
    {
      block_size: BS,
      addr: BASE,
      region_size: BigInt(BLOCKS) * BS,
      requested_size: BigInt(s.requestedBlocks) * BS,
      plugged: s.plugged > 0 ? [{ first: 3, count: s.plugged }] : [],
    },
    s.profile,
  );
  return s.active ? activated(device) : device;
}

/** Everything a driver, a host or an invariant check can observe of a device. */
function observe(device: VirtioMemDevice): unknown {
  return {
    config: device.readConfig(),
    configBytes: device.readConfigBytes(),
    generation: device.configGeneration,
    notifications: device.notificationCount,
    status: device.deviceStatus,
    runs: device.pluggedRuns(),
    contentBytes: device.contentBytes,
    snapshot: device.snapshot(true),
  };
}

/** Applies a non-request operation to a device. */
function host(device: VirtioMemDevice, o: Exclude<Op, { kind: 'request' }>): void {
  switch (o.kind) {
    case 'inject-busy':
      return device.injectBusy(o.count);
    case 'host-busy':
      return device.setHostBusy(o.busy);
    case 'resize':
      device.setRequestedSize(o.size);
      return;
    case 'needs-reset':
      device.writeStatus(device.deviceStatus | VIRTIO_CONFIG_S_NEEDS_RESET);
      return;
    case 'device-reset':
      device.deviceReset();
      return;
    case 'system-reset':
      device.systemReset();
      return;
    case 'write':
      device.writeMemory(BASE + BigInt(o.block) * BS, Uint8Array.of(1, 2, 3));
      return;
  }
}

/** The used element of the full path as (length, bytes). */
function usedOf(result: ProcessResult): { length: number; bytes: number[] } {
  if (!result.used) return { length: NO_USED_ENTRY, bytes: [] };
  return { length: result.used.length, bytes: [...result.used.written.subarray(0, result.used.length)] };
}

describe('the fast path of request handling', () => {
  test('should give the same response bytes, configuration, notifications and state as the full path, on every profile', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const full = build(s);
        const fast = build(s);
        fast.checkEveryStep = true;
        const fullViolations: InvariantViolation[] = [];
        const response = new Uint8Array(16);
        for (const o of s.ops) {
          if (o.kind === 'request') {
            const result = full.processRequest(o.bytes);
            fullViolations.push(...result.violations);
            response.fill(0xee);
            const length = fast.processRequestFast(o.bytes, response);
            const bytes = length > 0 ? [...response.subarray(0, length)] : [];
            expect({ length, bytes }).toEqual(usedOf(result));
          } else {
            host(full, o);
            host(fast, o);
          }
          expect(observe(fast)).toEqual(observe(full));
        }
        expect(fast.stepViolations).toEqual(fullViolations);
      }),
      { numRuns: 100, seed: 0x21fa57 },
    );
  });

  test('should report, with checkEveryStep, the invariants the full path reports after every step', () => {
    // A block size that is not a power of two breaks dev.cfg.5 on every step.
    const params = { block_size: 3n * MiB, addr: 0n, region_size: 96n * MiB, requested_size: 30n * MiB };
    const full = new VirtioMemDevice(params);
    const fast = new VirtioMemDevice(params);
    fast.checkEveryStep = true;
    const plug = encodeRequest({ type: 0, addr: 3n * MiB, nb_blocks: 2 });
    const expected = full.processRequest(plug).violations;
    expect(fast.processRequestFast(plug, new Uint8Array(10))).toBe(10);
    expect(expected.map((v) => v.invariant)).toContain('block-size-power-of-two');
    expect(fast.stepViolations).toEqual(expected);
  });

  test('should check nothing per step without the switch, and leave the on-demand check to checkInvariants', () => {
    const fast = new VirtioMemDevice({ block_size: 3n * MiB, addr: 0n, region_size: 96n * MiB });
    fast.processRequestFast(encodeRequest({ type: 3, addr: 0n, nb_blocks: 1 }), new Uint8Array(10));
    expect(fast.stepViolations).toEqual([]);
    expect(fast.checkInvariants().map((v) => v.invariant)).toContain('block-size-power-of-two');
  });

  test('should go through a subclass that overrides how requests are processed (a mutant is never bypassed)', () => {
    class AnswersThroughProcessChain extends VirtioMemDevice {
      calls = 0;
      override processChain(...args: Parameters<VirtioMemDevice['processChain']>): ProcessResult {
        this.calls++;
        return super.processChain(...args);
      }
    }
    const device = new AnswersThroughProcessChain({
      block_size: BS,
      addr: BASE,
      region_size: 64n * BS,
      requested_size: BS,
    });
    const response = new Uint8Array(10);
    expect(device.processRequestFast(encodeRequest({ type: 0, addr: BASE, nb_blocks: 1 }), response)).toBe(10);
    expect(device.calls).toBe(1);
    expect(device.isPlugged(0)).toBe(true);
  });

  test('should refuse a response buffer shorter than a response', () => {
    const device = new VirtioMemDevice({ block_size: BS, addr: BASE, region_size: 64n * BS });
    expect(() =>
      device.processRequestFast(encodeRequest({ type: 3, addr: BASE, nb_blocks: 1 }), new Uint8Array(9)),
    ).toThrow(/response buffer holds 9 bytes/);
  });
});
