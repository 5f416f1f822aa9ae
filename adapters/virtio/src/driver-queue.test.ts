import {
  VirtqDescLayout,
  VirtqUsedElemLayout,
  encodeStructInto,
  writablePoison,
  writablePoisonByte,
} from '../../../spec/src/index';
import { FlatMemory } from '../test/flat-memory';
import {
  ChainBuffers,
  DeviceChain,
  DeviceSplitQueue,
  GuestMemoryAccess,
  GuestMemoryPort,
  SplitQueueDriver,
  SplitQueuePosition,
  mappedMemoryPort,
  placeChain,
} from './index';

const RINGS = { desc: 0x1000n, avail: 0x2000n, used: 0x3000n } as const;
const BUFFERS = 0x10000n;
const BUFFER_BYTES = 0x8000;

/** What the test device does with a chain: the bytes it writes and the used length it reports. */
type Behaviour = (chain: DeviceChain) => { written: Uint8Array; length: number } | 'ignore';

/** A driver and a device meeting in one flat memory; the device runs on each notification. */
function pair(behaviour: Behaviour, size = 16, onExchange?: (accesses: readonly GuestMemoryAccess[]) => void) {
  const memory = new FlatMemory(0x20000);
  const position: SplitQueuePosition = { nextAvail: 0, nextUsed: 0 };
  const malformed: string[] = [];
  const device = (): void => {
    const queue = DeviceSplitQueue.open(memory, size, RINGS, position);
    if (typeof queue === 'string') throw new Error(queue);
    for (let popped = queue.pop(); popped.kind !== 'empty'; popped = queue.pop()) {
      if (popped.kind === 'malformed') {
        malformed.push(popped.problem);
        continue;
      }
      const answer = behaviour(popped.chain);
      if (answer !== 'ignore') queue.complete(popped.chain, answer.written, answer.length);
    }
  };
  const inner = mappedMemoryPort(memory, device);
  const port: GuestMemoryPort = {
    exchange: (accesses) => {
      onExchange?.(accesses);
      return inner.exchange(accesses);
    },
  };
  const driver = new SplitQueueDriver({
    port,
    queueIndex: 0,
    size,
    rings: RINGS,
    buffers: BUFFERS,
    bufferBytes: BUFFER_BYTES,
  });
  return { memory, position, malformed, driver };
}

/** Echoes the readable bytes reversed into the writable buffers. */
const reverser: Behaviour = (chain) => {
  const input = Uint8Array.from(chain.readable.flatMap((b) => [...b])).reverse();
  const room = chain.writable.reduce((n, w) => n + w.len, 0);
  const written = input.slice(0, room);
  return { written, length: written.length };
};

const never = (): Promise<boolean> => Promise.resolve(false);

describe('SplitQueueDriver with DeviceSplitQueue', () => {
  test('should carry a chain to the device and its answer back, across unaligned buffers', async () => {
    const { driver, malformed } = pair(reverser);
    await driver.clear();
    const chain: ChainBuffers = { readable: [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5)], writableSizes: [3, 4] };
    expect(await driver.submit(chain, never)).toEqual({
      kind: 'used',
      length: 5,
      written: Uint8Array.of(5, 4, 3, 2, 1),
    });
    expect(malformed).toEqual([]);
  });

  test('should report only the first used-length bytes and show the poison pre-fill where the device wrote nothing', async () => {
    const { driver } = pair(() => ({ written: Uint8Array.of(7), length: 3 }));
    await driver.clear();
    // Poison is numbered across the writable part: offsets 1 and 2 (the second buffer starts at 2).
    expect(await driver.submit({ readable: [Uint8Array.of(1)], writableSizes: [2, 2] }, never)).toEqual({
      kind: 'used',
      length: 3,
      written: Uint8Array.of(7, writablePoisonByte(1), writablePoisonByte(2)),
    });
  });

  test('should pre-fill again for every chain, so an earlier answer never shows through', async () => {
    let answer: Uint8Array = Uint8Array.of(1, 2, 3, 4);
    const { driver } = pair(() => ({ written: answer, length: 4 }));
    await driver.clear();
    await driver.submit({ readable: [Uint8Array.of(1)], writableSizes: [4] }, never);
    answer = Uint8Array.of(9);
    expect(await driver.submit({ readable: [Uint8Array.of(1)], writableSizes: [4] }, never)).toEqual({
      kind: 'used',
      length: 4,
      written: Uint8Array.of(9, ...writablePoison(3, 1)),
    });
  });

  test('should wrap both 16-bit ring indices past 65535', async () => {
    const { driver, position } = pair(reverser, 8);
    await driver.clear();
    const chain: ChainBuffers = { readable: [Uint8Array.of(0, 0)], writableSizes: [2] };
    for (let i = 0; i < 65536 + 3; i++) {
      const bytes = Uint8Array.of(i & 0xff, (i >> 8) & 0xff);
      const result = await driver.submit({ ...chain, readable: [bytes] }, never);
      if (result.kind !== 'used' || result.written[0] !== bytes[1] || result.written[1] !== bytes[0])
        throw new Error(`request ${i}: ${JSON.stringify(result)}`);
    }
    expect(position).toEqual({ nextAvail: 3, nextUsed: 3 });
  });

  test('should rewrite the descriptor table only when the chain shape changes', async () => {
    const tableWrites: number[] = [];
    let exchanges = 0;
    const { driver } = pair(reverser, 16, (accesses) => {
      exchanges++;
      if (accesses.some((a) => a.kind === 'write' && a.addr === RINGS.desc)) tableWrites.push(exchanges);
    });
    await driver.clear();
    const small: ChainBuffers = { readable: [new Uint8Array(24)], writableSizes: [10] };
    const other: ChainBuffers = { readable: [new Uint8Array(24)], writableSizes: [16] };
    for (const chain of [small, small, other, other, small])
      expect((await driver.submit(chain, never)).kind).toBe('used');
    // Exchange 1 is clear(); then one exchange per request.
    expect(tableWrites).toEqual([2, 4, 6]);
    expect(exchanges).toBe(6);
  });

  test('should wait with awaitUsed until the device answers, then look again', async () => {
    let pending: DeviceChain | undefined;
    const { driver, memory, position } = pair((chain) => {
      pending = chain;
      return 'ignore';
    });
    await driver.clear();
    let waits = 0;
    const result = await driver.submit({ readable: [Uint8Array.of(9)], writableSizes: [1] }, () => {
      waits++;
      if (waits === 3) {
        const queue = DeviceSplitQueue.open(memory, 16, RINGS, position);
        if (typeof queue === 'string') throw new Error(queue);
        queue.complete(pending!, Uint8Array.of(42), 1);
      }
      return Promise.resolve(true);
    });
    expect(waits).toBe(3);
    expect(result).toEqual({ kind: 'used', length: 1, written: Uint8Array.of(42) });
  });

  test('should give up when awaitUsed does and the device never answered', async () => {
    const { driver } = pair(() => 'ignore');
    await driver.clear();
    let waits = 0;
    const result = await driver.submit({ readable: [Uint8Array.of(1)], writableSizes: [1] }, () =>
      Promise.resolve(++waits < 4),
    );
    expect(result).toEqual({ kind: 'no-used-entry' });
    expect(waits).toBe(4);
  });

  test.each([
    ['no buffer', { readable: [], writableSizes: [] }, 'a chain needs at least one buffer'],
    [
      'more descriptors than entries',
      { readable: [], writableSizes: new Array<number>(17).fill(1) },
      'a chain of 17 descriptors does not fit a queue of 16',
    ],
    [
      'more bytes than the buffer area',
      { readable: [new Uint8Array(BUFFER_BYTES - 4)], writableSizes: [8] },
      `a chain of ${BUFFER_BYTES + 8} bytes exceeds the ${BUFFER_BYTES}-byte buffer area`,
    ],
  ] as const)('should refuse a chain with %s and submit nothing', async (_name, chain, problem) => {
    let exchanges = 0;
    const { driver } = pair(reverser, 16, () => void exchanges++);
    await driver.clear();
    expect(await driver.submit(chain as ChainBuffers, never)).toEqual({ kind: 'unfit', problem });
    expect(exchanges).toBe(1);
  });

  test('should flag a used element that names another head', async () => {
    const memory = new FlatMemory(0x20000);
    const port = mappedMemoryPort(memory, () => {
      encodeStructInto(VirtqUsedElemLayout, { id: 5, len: 0 }, memory.bytes, Number(RINGS.used) + 4);
      memory.setU16(RINGS.used + 2n, 1);
    });
    const driver = new SplitQueueDriver({
      port,
      queueIndex: 0,
      size: 16,
      rings: RINGS,
      buffers: BUFFERS,
      bufferBytes: BUFFER_BYTES,
    });
    await driver.clear();
    expect(await driver.submit({ readable: [Uint8Array.of(1)], writableSizes: [] }, never)).toEqual({
      kind: 'bad-used-entry',
      problem: "the used entry names descriptor 5, not the chain's head 0",
    });
  });

  test('should flag a used index that moves by more than one', async () => {
    const memory = new FlatMemory(0x20000);
    const port = mappedMemoryPort(memory, () => memory.setU16(RINGS.used + 2n, 2));
    const driver = new SplitQueueDriver({
      port,
      queueIndex: 0,
      size: 16,
      rings: RINGS,
      buffers: BUFFERS,
      bufferBytes: BUFFER_BYTES,
    });
    await driver.clear();
    expect(await driver.submit({ readable: [Uint8Array.of(1)], writableSizes: [] }, never)).toEqual({
      kind: 'bad-used-entry',
      problem: 'the used index moved from 0 to 2 for one chain',
    });
  });
});

describe('placeChain', () => {
  test('should lay buffers out 8-byte aligned with head 0 and chained descriptors', () => {
    const p = placeChain({ readable: [new Uint8Array(3), new Uint8Array(8)], writableSizes: [10, 1] }, 0x1000n);
    expect(p.readableOffsets).toEqual([0, 8]);
    expect(p.writableOffsets).toEqual([16, 32]);
    expect(p.total).toBe(33);
    expect(p.writableStart).toBe(16);
    const descs = [0, 1, 2, 3].map((i) => {
      const view = new DataView(p.table.buffer, VirtqDescLayout.size * i, VirtqDescLayout.size);
      return [view.getBigUint64(0, true), view.getUint32(8, true), view.getUint16(12, true), view.getUint16(14, true)];
    });
    expect(descs).toEqual([
      [0x1000n, 3, 1, 1],
      [0x1008n, 8, 1, 2],
      [0x1010n, 10, 3, 3],
      [0x1020n, 1, 2, 0],
    ]);
  });
});
