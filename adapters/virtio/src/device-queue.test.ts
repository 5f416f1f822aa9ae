import {
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VirtqDescLayout,
  VirtqUsedElemLayout,
  decodeStruct,
  encodeStructInto,
} from '../../../spec/src/index';
import { FlatMemory } from '../test/flat-memory';
import {
  ChainLimits,
  DEFAULT_CHAIN_LIMITS,
  DeviceSplitQueue,
  MAX_READABLE_BUFFER_BYTES,
  SplitQueuePosition,
} from './index';

const SIZE = 8;
const RINGS = { desc: 0x0n, avail: 0x100n, used: 0x200n } as const;

interface Desc {
  addr: bigint;
  len: number;
  flags: number;
  next: number;
}

/** A memory with the descriptors written at their indices and the heads published from avail index `from`. */
function setUp(
  descs: Record<number, Desc>,
  heads: number[],
  from = 0,
  limits: ChainLimits = DEFAULT_CHAIN_LIMITS,
): { memory: FlatMemory; position: SplitQueuePosition; queue: DeviceSplitQueue } {
  const memory = new FlatMemory(0x10000);
  for (const [i, d] of Object.entries(descs))
    encodeStructInto(VirtqDescLayout, d, memory.bytes, Number(RINGS.desc) + 16 * Number(i));
  heads.forEach((h, k) => memory.setU16(RINGS.avail + 4n + 2n * BigInt((from + k) % SIZE), h));
  memory.setU16(RINGS.avail + 2n, (from + heads.length) & 0xffff);
  const position = { nextAvail: from, nextUsed: from };
  const queue = DeviceSplitQueue.open(memory, SIZE, RINGS, position, limits);
  if (typeof queue === 'string') throw new Error(queue);
  return { memory, position, queue };
}

describe('DeviceSplitQueue', () => {
  test('should take a readable-then-writable chain and publish its used element', () => {
    const { memory, position, queue } = setUp(
      {
        3: { addr: 0x1000n, len: 4, flags: VIRTQ_DESC_F_NEXT, next: 5 },
        5: { addr: 0x2000n, len: 6, flags: VIRTQ_DESC_F_WRITE, next: 0 },
      },
      [3],
    );
    memory.bytes.set([1, 2, 3, 4], 0x1000);
    const popped = queue.pop();
    expect(popped.kind).toBe('chain');
    if (popped.kind !== 'chain') return;
    expect(popped.chain.head).toBe(3);
    expect(popped.chain.readable.map((b) => [...b])).toEqual([[1, 2, 3, 4]]);
    expect(popped.chain.writable).toEqual([{ addr: 0x2000n, len: 6 }]);
    expect(queue.pop()).toEqual({ kind: 'empty' });
    queue.complete(popped.chain, new Uint8Array([9, 8, 7]), 3);
    expect([...memory.bytes.subarray(0x2000, 0x2004)]).toEqual([9, 8, 7, 0]);
    expect(memory.u16(RINGS.used + 2n)).toBe(1);
    expect(decodeStruct(VirtqUsedElemLayout, memory.bytes, Number(RINGS.used) + 4)).toEqual({ id: 3, len: 3 });
    expect(position).toEqual({ nextAvail: 1, nextUsed: 1 });
  });

  test('should wrap the 16-bit ring indices past 65535', () => {
    const { memory, position, queue } = setUp({ 0: { addr: 0x1000n, len: 2, flags: 0, next: 0 } }, [0, 0], 0xffff);
    for (let i = 0; i < 2; i++) {
      const popped = queue.pop();
      if (popped.kind !== 'chain') throw new Error(popped.kind);
      queue.complete(popped.chain, new Uint8Array(0), 0);
    }
    expect(queue.pop().kind).toBe('empty');
    expect(position).toEqual({ nextAvail: 1, nextUsed: 1 });
    expect(memory.u16(RINGS.used + 2n)).toBe(1);
    // 0xffff % 8 = 7, then slot 0.
    expect(decodeStruct(VirtqUsedElemLayout, memory.bytes, Number(RINGS.used) + 4 + 8 * 7).id).toBe(0);
  });

  test.each([
    [
      'a loop',
      {
        0: { addr: 0x1000n, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 1 },
        1: { addr: 0x1000n, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 0 },
      },
      0,
      'the chain loops (descriptor 0 comes twice)',
    ],
    [
      'a descriptor whose next is itself',
      { 0: { addr: 0x1000n, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 0 } },
      0,
      'the chain loops (descriptor 0 comes twice)',
    ],
    [
      'a next index outside the table',
      { 0: { addr: 0x1000n, len: 1, flags: VIRTQ_DESC_F_NEXT, next: SIZE } },
      0,
      `descriptor index ${SIZE} outside the table of ${SIZE}`,
    ],
    ['a head outside the table', {}, 200, `descriptor index 200 outside the table of ${SIZE}`],
    [
      'a readable buffer outside memory',
      { 0: { addr: 0xfffffn, len: 4, flags: 0, next: 0 } },
      0,
      'readable buffer [0xfffff, +4) is not in shared memory',
    ],
    [
      'a writable buffer outside memory',
      { 0: { addr: 0xfff0n, len: 0x20, flags: VIRTQ_DESC_F_WRITE, next: 0 } },
      0,
      'writable buffer [0xfff0, +32) is not in shared memory',
    ],
    [
      'a readable buffer after a writable one',
      {
        0: { addr: 0x1000n, len: 1, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 },
        1: { addr: 0x1000n, len: 1, flags: 0, next: 0 },
      },
      0,
      'a device-readable descriptor follows a device-writable one',
    ],
    [
      'a readable buffer too large',
      { 0: { addr: 0n, len: MAX_READABLE_BUFFER_BYTES + 1, flags: 0, next: 0 } },
      0,
      `readable buffer of ${MAX_READABLE_BUFFER_BYTES + 1} bytes is too large`,
    ],
  ] as const)('should refuse %s and move past it', (_name, descs, head, problem) => {
    const { position, queue } = setUp(descs as Record<number, Desc>, [head]);
    expect(queue.pop()).toEqual({ kind: 'malformed', head, problem });
    expect(position.nextAvail).toBe(1);
    expect(queue.pop().kind).toBe('empty');
  });

  test.each([
    ['readable', 0, `the chain's readable buffers exceed 16 bytes`],
    ['writable', VIRTQ_DESC_F_WRITE, `the chain's writable buffers exceed 16 bytes`],
  ] as const)(
    'should refuse %s buffers beyond the chain limit together, before copying them',
    (_kind, flag, problem) => {
      const descs = {
        0: { addr: 0x1000n, len: 10, flags: flag | VIRTQ_DESC_F_NEXT, next: 1 },
        1: { addr: 0x2000n, len: 7, flags: flag, next: 0 },
      };
      const { queue } = setUp(descs, [0], 0, { readableBytes: 16, writableBytes: 16 });
      expect(queue.pop()).toEqual({ kind: 'malformed', head: 0, problem });
    },
  );

  test('should refuse an avail index more than a queue ahead instead of replaying stale slots', () => {
    const { memory, position, queue } = setUp({ 0: { addr: 0x1000n, len: 2, flags: 0, next: 0 } }, [0]);
    memory.setU16(RINGS.avail + 2n, SIZE + 1);
    const popped = queue.pop();
    expect(popped.kind).toBe('malformed');
    if (popped.kind === 'malformed')
      expect(popped.problem).toMatch(/avail.idx 9 is 9 entries past .* the queue holds 8/);
    expect(position.nextAvail).toBe(0);
    memory.setU16(RINGS.avail + 2n, SIZE);
    expect(queue.pop().kind).toBe('chain');
  });

  test('should refuse to open rings that are not in mapped memory', () => {
    const memory = new FlatMemory(0x1000);
    const position = { nextAvail: 0, nextUsed: 0 };
    expect(DeviceSplitQueue.open(memory, SIZE, { ...RINGS, used: 0xff0n }, position)).toBe(
      'the device area (used ring) is not in mapped memory',
    );
    expect(DeviceSplitQueue.open(memory, SIZE, { ...RINGS, avail: 0xffcn }, position)).toBe(
      'the driver area (avail ring) is not in mapped memory',
    );
    expect(DeviceSplitQueue.open(memory, 256, { ...RINGS, desc: 0x100n }, position)).toBe(
      'the descriptor table is not in mapped memory',
    );
    for (const size of [0, 3, 65536])
      expect(DeviceSplitQueue.open(memory, size, RINGS, position)).toBe(
        `queue size ${size} is not a power of two up to 32768`,
      );
  });
});
