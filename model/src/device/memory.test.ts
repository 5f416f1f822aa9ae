import fc from 'fast-check';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  featureMask,
} from '../../../spec/src/index';
import {
  CLOUD_HYPERVISOR_PROFILE,
  DeviceParams,
  DeviceProfile,
  MEMORY_PAGE_SIZE,
  MemoryAccessResult,
  QEMU_PROFILE,
  SPEC_PROFILE,
  SparseMemory,
  VirtioMemDevice,
  encodeRequest,
} from '../index';

const KiB = 1n << 10n;
const MiB = 1n << 20n;
const GiB = 1n << 30n;
const BS = 2n * MiB;
const BASE = 4n * GiB;
const V1 = featureMask(VIRTIO_F_VERSION_1);
const UI = featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);

/** 64 blocks of 2 MiB at 4 GiB, 16 blocks requested (the spec profile makes them the usable region). */
function makeDevice(overrides: Partial<DeviceParams> = {}, profile: DeviceProfile = SPEC_PROFILE): VirtioMemDevice {
  return new VirtioMemDevice(
    { block_size: BS, addr: BASE, region_size: 64n * BS, requested_size: 16n * BS, ...overrides },
    profile,
  );
}

const at = (block: number, offset = 0n): bigint => BASE + BigInt(block) * BS + offset;

function send(device: VirtioMemDevice, type: number, block: number, nb_blocks: number): string {
  const result = device.processRequest(encodeRequest({ type, addr: at(block), nb_blocks }));
  expect(result.violations).toEqual([]);
  return ['ACK', 'NACK', 'BUSY', 'ERROR'][result.response?.type ?? 3];
}

/** Negotiates `accepted` (status ACKNOWLEDGE|DRIVER|FEATURES_OK). */
function negotiate(device: VirtioMemDevice, accepted: bigint): void {
  device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  device.writeDriverFeatures(accepted);
  const result = device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  expect(result.refusal).toBeUndefined();
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

function okData(result: MemoryAccessResult): Uint8Array {
  if (!result.ok) throw new Error(`access refused: ${result.reason}: ${result.detail}`);
  return result.data;
}

describe('SparseMemory', () => {
  test('zero clears exactly the stored bytes inside the range, of kept blocks only, like a write of zeros', () => {
    const memory = new SparseMemory(8n * KiB);
    const ones = new Uint8Array(3 * 8192).fill(1);
    memory.write(0n, ones, () => true);
    const before = memory.digest;
    memory.zero(8192n - 10n, 8192 + 20, (block) => block !== 1);
    expect(memory.digest).not.toBe(before);
    const out = new Uint8Array(3 * 8192);
    memory.read(0n, out);
    const expected = ones.slice();
    expected.fill(0, 8192 - 10, 8192); // block 0's tail
    expected.fill(0, 2 * 8192, 2 * 8192 + 10); // block 2's head; block 1 is not kept
    expect(out).toEqual(expected);
    const unchanged = memory.digest;
    memory.zero(100n * 8192n, 8192, () => true);
    expect(memory.digest).toBe(unchanged);
  });

  test('should read zeros where nothing was written and what was written elsewhere, across page and block boundaries', () => {
    const memory = new SparseMemory(8n * KiB);
    const data = Uint8Array.from({ length: 10_000 }, (_, i) => (i % 251) + 1);
    memory.write(8192n - 100n, data, () => true);
    const out = new Uint8Array(10_200);
    memory.read(8192n - 200n, out);
    expect(out.subarray(0, 100).every((b) => b === 0)).toBe(true);
    expect(out.subarray(100, 10_100)).toEqual(data);
    expect(out.subarray(10_100).every((b) => b === 0)).toBe(true);
    // [8092, 18092) touches blocks 0, 1 and 2.
    expect(memory.storedBlocks).toBe(3);
  });

  test('should skip chunks of blocks the keep predicate rejects', () => {
    const memory = new SparseMemory(4n * KiB);
    memory.write(4096n - 2n, bytes(1, 2, 3, 4), (block) => block === 1);
    const out = new Uint8Array(4);
    memory.read(4096n - 2n, out);
    expect(out).toEqual(bytes(0, 0, 3, 4));
  });

  test('should store nothing for zeros written to pages never written', () => {
    const memory = new SparseMemory(2n * MiB);
    memory.write(12_345n, new Uint8Array(3 * MEMORY_PAGE_SIZE), () => true);
    expect(memory.storedBytes).toBe(0);
    memory.write(0n, bytes(7), () => true);
    memory.write(0n, bytes(0), () => true);
    const out = new Uint8Array(1);
    memory.read(0n, out);
    expect(out[0]).toBe(0);
    expect(memory.storedBytes).toBe(MEMORY_PAGE_SIZE);
  });

  test('should handle blocks smaller than a page and block sizes that are not multiples of it', () => {
    for (const blockSize of [1n, 3n, 1000n, 6n * KiB]) {
      const memory = new SparseMemory(blockSize);
      const data = Uint8Array.from({ length: 9000 }, (_, i) => ((i * 7) % 256) | 1);
      memory.write(5n, data, () => true);
      const out = new Uint8Array(9000);
      memory.read(5n, out);
      expect(out).toEqual(data);
      expect(memory.storedBytes).toBeLessThanOrEqual(9000 + 2 * MEMORY_PAGE_SIZE);
    }
  });

  test('should forget discarded blocks and change the digest when content changes', () => {
    const memory = new SparseMemory(4n * KiB);
    const d0 = memory.digest;
    memory.write(0n, new Uint8Array(3 * 4096).fill(9), () => true);
    const d1 = memory.digest;
    expect(d1).not.toBe(d0);
    memory.discardBlocks(1, 1);
    const out = new Uint8Array(3 * 4096);
    memory.read(0n, out);
    expect(out.subarray(0, 4096).every((b) => b === 9)).toBe(true);
    expect(out.subarray(4096, 8192).every((b) => b === 0)).toBe(true);
    expect(out.subarray(8192).every((b) => b === 9)).toBe(true);
    expect(memory.storedBytes).toBe(2 * 4096);
    expect(memory.digest).not.toBe(d1);
    // Discarding blocks with no content changes nothing.
    const d2 = memory.digest;
    memory.discardBlocks(5, 1000);
    expect(memory.digest).toBe(d2);
    memory.discardBlocks(0, 1000);
    expect(memory.storedBlocks).toBe(0);
    memory.discardAll();
    expect(memory.storedBytes).toBe(0);
  });

  test('should refuse a block size of 0', () => {
    expect(() => new SparseMemory(0n)).toThrow(RangeError);
  });
});

describe('device memory: plugged blocks (dev.op.4, dev.op.3)', () => {
  test('dev.op.4: should read back exactly what was written to plugged blocks, zeros where never written', () => {
    const device = makeDevice();
    expect(send(device, 0, 2, 3)).toBe('ACK');
    expect(device.writeMemory(at(2, 10n), bytes(1, 2, 3))).toEqual({ ok: true, data: new Uint8Array(0) });
    expect(okData(device.readMemory(at(2, 8n), 7))).toEqual(bytes(0, 0, 1, 2, 3, 0, 0));
    // A write spanning two plugged blocks.
    expect(device.writeMemory(at(3, -2n), bytes(4, 5, 6, 7)).ok).toBe(true);
    expect(okData(device.readMemory(at(3, -2n), 4))).toEqual(bytes(4, 5, 6, 7));
    expect(okData(device.readMemory(at(4), 16))).toEqual(new Uint8Array(16));
  });

  test('dev.op.3: should not alter plugged contents when other blocks are plugged and unplugged', () => {
    const device = makeDevice();
    send(device, 0, 0, 1);
    device.writeMemory(at(0, 100n), bytes(0xaa, 0xbb));
    send(device, 0, 1, 4);
    send(device, 1, 1, 4);
    device.processRequest(encodeRequest({ type: 3, addr: at(0), nb_blocks: 8 }));
    expect(okData(device.readMemory(at(0, 100n), 2))).toEqual(bytes(0xaa, 0xbb));
  });

  test('dev.op.2: should discard the content of blocks on UNPLUG (re-plugged memory reads zeros)', () => {
    const device = makeDevice();
    send(device, 0, 0, 2);
    device.writeMemory(at(0), bytes(1));
    device.writeMemory(at(1), bytes(2));
    expect(device.contentBytes).toBe(2 * MEMORY_PAGE_SIZE);
    send(device, 1, 1, 1);
    expect(device.contentBytes).toBe(MEMORY_PAGE_SIZE);
    send(device, 0, 1, 1);
    expect(okData(device.readMemory(at(0), 1))).toEqual(bytes(1));
    expect(okData(device.readMemory(at(1), 1))).toEqual(bytes(0));
  });

  test('dev.op.2 dev.unplugall.4: should discard all content on UNPLUG ALL', () => {
    const device = makeDevice();
    send(device, 0, 0, 4);
    device.writeMemory(at(3), bytes(5));
    send(device, 2, 0, 0);
    expect(device.contentBytes).toBe(0);
    send(device, 0, 3, 1);
    expect(okData(device.readMemory(at(3), 1))).toEqual(bytes(0));
  });

  test('dev.op.7: a system reset that unplugs everything discards content; one that keeps blocks keeps it', () => {
    const qemu = makeDevice({ plugged: [{ first: 0, count: 2 }] }, QEMU_PROFILE);
    qemu.writeMemory(at(1), bytes(3));
    expect(qemu.systemReset()).toEqual([]);
    expect(qemu.contentBytes).toBe(0);
    const ch = makeDevice({ plugged: [{ first: 0, count: 2 }] }, CLOUD_HYPERVISOR_PROFILE);
    ch.writeMemory(at(1), bytes(3));
    ch.systemReset();
    expect(okData(ch.readMemory(at(1), 1))).toEqual(bytes(3));
  });

  test('dev.init.3 dev.init.2: a device reset keeps block states and the contents of plugged blocks', () => {
    const device = makeDevice({ plugged: [{ first: 4, count: 2 }] });
    negotiate(device, V1);
    device.writeMemory(at(4, 1234n), bytes(9, 8, 7));
    const before = device.snapshot(true);
    expect(device.deviceReset()).toEqual([]);
    expect(device.writeStatus(0).status).toBe(0);
    const after = device.snapshot(true);
    expect(after.blocksDigest).toBe(before.blocksDigest);
    expect(after.contentDigest).toBe(before.contentDigest);
    expect(okData(device.readMemory(at(4, 1234n), 3))).toEqual(bytes(9, 8, 7));
  });
});

describe('device memory: unplugged blocks (dev.op.5, drv.op.1 … drv.op.5)', () => {
  test('dev.op.5: without UNPLUGGED_INACCESSIBLE unplugged memory inside the usable region reads as zeros', () => {
    const device = makeDevice({ features: V1 | UI });
    // Offered but not negotiated (no driver yet): reads must work.
    expect(okData(device.readMemory(at(7), 64))).toEqual(new Uint8Array(64));
    negotiate(device, V1);
    expect(okData(device.readMemory(at(15, BS - 1n), 1))).toEqual(bytes(0));
  });

  test('drv.op.1 dev.op.2: a write to unplugged memory inside the usable region is accepted but not kept', () => {
    const device = makeDevice();
    expect(device.writeMemory(at(5), bytes(1, 2, 3)).ok).toBe(true);
    expect(device.contentBytes).toBe(0);
    send(device, 0, 5, 1);
    expect(okData(device.readMemory(at(5), 3))).toEqual(bytes(0, 0, 0));
  });

  test('drv.op.5: with UNPLUGGED_INACCESSIBLE negotiated unplugged blocks are inaccessible; plugged ones are not', () => {
    const device = makeDevice({ features: V1 | UI, plugged: [{ first: 0, count: 1 }] });
    negotiate(device, V1 | UI);
    expect(device.readMemory(at(1), 1)).toMatchObject({
      ok: false,
      reason: 'inaccessible',
      detail: expect.stringMatching(/block 1 .*UNPLUGGED_INACCESSIBLE/),
    });
    expect(device.writeMemory(at(1), bytes(1))).toMatchObject({
      ok: false,
      reason: 'inaccessible',
      detail: expect.stringMatching(/drv\.op\.1/),
    });
    expect(device.writeMemory(at(0), bytes(1)).ok).toBe(true);
    expect(okData(device.readMemory(at(0), 1))).toEqual(bytes(1));
    // A device reset forgets the negotiation: reads of unplugged memory work again (dev.op.5).
    device.writeStatus(0);
    expect(device.readMemory(at(1), 1).ok).toBe(true);
  });

  test('accessRefusal judges like readMemory/writeMemory and stores nothing', () => {
    const device = makeDevice({ features: V1 | UI, plugged: [{ first: 0, count: 1 }] });
    negotiate(device, V1 | UI);
    expect(device.accessRefusal(at(0), 16, 'write')).toBeUndefined();
    expect(device.accessRefusal(at(1), 1, 'read')).toMatchObject({
      ok: false,
      reason: 'inaccessible',
      detail: expect.stringMatching(/drv\.op\.5/),
    });
    expect(device.accessRefusal(at(1), 1, 'write')).toMatchObject({
      ok: false,
      reason: 'inaccessible',
      detail: expect.stringMatching(/drv\.op\.1/),
    });
    expect(device.accessRefusal(at(16), 1, 'read')).toMatchObject({ ok: false, reason: 'beyond-usable' });
    expect(device.accessRefusal(BASE - 1n, 2, 'read')).toMatchObject({ ok: false, reason: 'outside-region' });
    expect(device.contentBytes).toBe(0);
    expect(() => device.accessRefusal(at(0), -1, 'read')).toThrow(RangeError);
  });

  test('drv.op.2: unplugged blocks beyond usable_region_size are refused, with or without UNPLUGGED_INACCESSIBLE', () => {
    for (const accepted of [V1, V1 | UI]) {
      const device = makeDevice({ features: V1 | UI });
      negotiate(device, accepted);
      expect(device.readMemory(at(16), 1)).toMatchObject({
        ok: false,
        reason: 'beyond-usable',
        detail: expect.stringMatching(/drv\.op\.2/),
      });
      expect(device.writeMemory(at(63, BS - 1n), bytes(1))).toMatchObject({ ok: false, reason: 'beyond-usable' });
    }
  });

  test('should refuse accesses reaching outside the region, including a tail that is not a whole block', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 1 }] });
    expect(device.readMemory(BASE - 1n, 1)).toMatchObject({ ok: false, reason: 'outside-region' });
    expect(device.readMemory(BASE - 1n, 2)).toMatchObject({ ok: false, reason: 'outside-region' });
    expect(device.writeMemory(at(64), bytes(1))).toMatchObject({ ok: false, reason: 'outside-region' });
    expect(device.readMemory(at(63, BS - 1n), 2)).toMatchObject({ ok: false, reason: 'outside-region' });
    expect(device.readMemory(at(64), 0)).toEqual({ ok: true, data: new Uint8Array(0) });
    const ragged = makeDevice({
      region_size: 64n * BS + MiB,
      plugged: [{ first: 63, count: 1 }],
      usable_region_size: 64n * BS,
      requested_size: 0n,
    });
    expect(ragged.readMemory(at(64), 1)).toMatchObject({ ok: false, reason: 'outside-region' });
    expect(() => device.readMemory(BASE, -1)).toThrow(RangeError);
  });

  test('a range over plugged and unplugged blocks is judged per block: the first failing block decides, and nothing is stored', () => {
    const device = makeDevice({ features: V1 | UI, plugged: [{ first: 14, count: 2 }] });
    // Without UNPLUGGED_INACCESSIBLE: plugged + unplugged-in-usable is fine, the plugged part is kept.
    expect(device.writeMemory(at(14, -1n), bytes(1, 2)).ok).toBe(true);
    expect(okData(device.readMemory(at(13, BS - 1n), 3))).toEqual(bytes(0, 2, 0));
    // Plugged + beyond the usable region fails as a whole.
    expect(device.writeMemory(at(16, -1n), bytes(7, 7))).toMatchObject({ ok: false, reason: 'beyond-usable' });
    expect(okData(device.readMemory(at(16, -1n), 1))).toEqual(bytes(0));
    negotiate(device, V1 | UI);
    // Unplugged in usable (block 13) comes before beyond usable (block 16): 'inaccessible' wins.
    expect(device.readMemory(at(13), Number(4n * BS))).toMatchObject({
      ok: false,
      reason: 'inaccessible',
      detail: expect.stringMatching(/block 13/),
    });
    expect(device.writeMemory(at(14, BS - 1n), bytes(5, 5, 5, 5))).toMatchObject({ ok: true });
    expect(device.writeMemory(at(13, BS - 1n), bytes(6, 6))).toMatchObject({ ok: false, reason: 'inaccessible' });
    // The refused write stored nothing in plugged block 14 either.
    expect(okData(device.readMemory(at(14), 1))).toEqual(bytes(2));
  });
});

describe('device memory: sparse storage', () => {
  test('a 1 TiB region allocates no content up front and a few bytes written cost one page', () => {
    const device = new VirtioMemDevice({
      block_size: BS,
      addr: 0n,
      region_size: 1n << 40n,
      requested_size: 1n << 40n,
      plugged: [{ first: 0, count: 1 << 19 }],
    });
    expect(device.contentBytes).toBe(0);
    expect(device.writeMemory((1n << 40n) - 16n, new Uint8Array(16).fill(0x5a)).ok).toBe(true);
    expect(device.writeMemory(1n << 39n, bytes(1)).ok).toBe(true);
    expect(device.contentBytes).toBe(2 * MEMORY_PAGE_SIZE);
    expect(device.stateBytes).toBeLessThanOrEqual(256 * 1024);
    expect(okData(device.readMemory((1n << 40n) - 17n, 17))).toEqual(Uint8Array.from([0, ...new Array(16).fill(0x5a)]));
    // UNPLUG ALL over 1 TiB discards without visiting blocks.
    device.processRequest(encodeRequest({ type: 2 }));
    expect(device.contentBytes).toBe(0);
  });

  test('dev.op.3 dev.op.4: reads always match a byte-level reference model under random plug, unplug and write sequences', () => {
    const blocks = 12;
    const bs = 8192n;
    type Op =
      | { kind: 'plug' | 'unplug'; first: number; count: number }
      | { kind: 'write'; offset: number; length: number; value: number }
      | { kind: 'unplug-all' };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        kind: fc.constantFrom('plug' as const, 'unplug' as const),
        first: fc.nat(blocks - 1),
        count: fc.integer({ min: 1, max: 3 }),
      }),
      fc.record({
        kind: fc.constant('write' as const),
        offset: fc.nat(blocks * 8192 - 1),
        length: fc.integer({ min: 1, max: 20_000 }),
        value: fc.integer({ min: 0, max: 255 }),
      }),
      fc.constant({ kind: 'unplug-all' as const }),
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
        const device = new VirtioMemDevice({
          block_size: bs,
          addr: 0n,
          region_size: BigInt(blocks) * bs,
          requested_size: BigInt(blocks) * bs,
        });
        const plugged = new Set<number>();
        const reference = new Map<number, number>();
        for (const op of ops) {
          if (op.kind === 'write') {
            const length = Math.min(op.length, blocks * 8192 - op.offset);
            expect(device.writeMemory(BigInt(op.offset), new Uint8Array(length).fill(op.value)).ok).toBe(true);
            for (let i = op.offset; i < op.offset + length; i++)
              if (plugged.has(Math.floor(i / 8192))) reference.set(i, op.value);
          } else if (op.kind === 'unplug-all') {
            device.processRequest(encodeRequest({ type: 2 }));
            plugged.clear();
            reference.clear();
          } else {
            const count = Math.min(op.count, blocks - op.first);
            const result = device.processRequest(
              encodeRequest({ type: op.kind === 'plug' ? 0 : 1, addr: BigInt(op.first) * bs, nb_blocks: count }),
            );
            if (result.response?.type !== 0) continue;
            for (let b = op.first; b < op.first + count; b++) {
              if (op.kind === 'plug') plugged.add(b);
              else {
                plugged.delete(b);
                for (let i = b * 8192; i < (b + 1) * 8192; i++) reference.delete(i);
              }
            }
          }
        }
        const all = okData(device.readMemory(0n, blocks * 8192));
        for (let i = 0; i < all.length; i++)
          if (all[i] !== (reference.get(i) ?? 0)) throw new Error(`byte ${i}: ${all[i]} ≠ ${reference.get(i) ?? 0}`);
      }),
      { numRuns: 80, seed: 0x6d656d },
    );
  });
});

describe('writing zeros without their bytes', () => {
  test('a 6 GiB write of {zeros} over plugged memory is judged like a write, clears stored content and allocates nothing', () => {
    const device = makeDevice({ region_size: 4096n * BS, requested_size: 4096n * BS });
    expect(send(device, 0, 0, 3072)).toBe('ACK');
    expect(device.writeMemory(at(5, 4n), bytes(7, 7, 7)).ok).toBe(true);
    const started = Date.now();
    expect(device.writeMemory(at(0), { zeros: Number(3072n * BS) }).ok).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(okData(device.readMemory(at(5, 4n), 3))).toEqual(bytes(0, 0, 0));
    const refused = device.writeMemory(at(0), { zeros: Number(5000n * BS) });
    expect(refused.ok).toBe(false);
  });
});
