import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
} from '../../../spec/src/index';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { loadVectorText } from '../loader/load';
import { runVectors } from '../runner/run';
import { fuzzVectorText } from './device-case';
import { StepKnowledge } from './device-knowledge';
import type { FuzzAddress, FuzzOperation } from './device-operations';

const SETUP = {
  block_size: 2n << 20n,
  region_size: 256n << 20n,
  addr: 1n << 32n,
  requested_size: 64n << 20n,
  node_id: 0,
  plugged: [{ first: 30, count: 2 }],
};
const at = (blocks: number, bytes = 0): FuzzAddress => ({ anchor: 'addr', blocks, bytes });
const write = (addr: FuzzAddress, ...bytes: number[]): FuzzOperation => ({
  kind: 'write-memory',
  addr,
  data: Uint8Array.from(bytes),
});
const read = (addr: FuzzAddress, length: number): FuzzOperation => ({ kind: 'read-memory', addr, length });
const request = (type: number, addr: FuzzAddress, nbBlocks: number | 'blocks'): FuzzOperation => ({
  kind: 'request',
  type,
  addr,
  nbBlocks,
});

/** The expectation of the last operation after the others were applied. */
function expectationAfter(ops: readonly FuzzOperation[]) {
  const k = new StepKnowledge(SETUP);
  ops.slice(0, -1).forEach((op) => k.apply(op));
  return k.expectation(ops[ops.length - 1]!);
}

describe('memory content is expected only where the steps determine it', () => {
  const pattern = [write(at(30, 100), 1, 2, 3)];
  test('bytes written to a block plugged at start read back, across a device reset and other requests', () => {
    expect(expectationAfter([...pattern, { kind: 'device-reset' }, read(at(30, 101), 2)])).toEqual({
      kind: 'plugged',
      data: Uint8Array.from([2, 3]),
    });
    expect(
      expectationAfter([
        ...pattern,
        request(VIRTIO_MEM_REQ_UNPLUG, at(0), 4),
        request(VIRTIO_MEM_REQ_PLUG, at(29), 2),
        read(at(30, 100), 3),
      ]),
    ).toEqual({ kind: 'plugged', data: Uint8Array.from([1, 2, 3]) });
  });
  test('a write there must go through; a read of bytes never written expects no data', () => {
    expect(expectationAfter(pattern)).toEqual({ kind: 'plugged' });
    expect(expectationAfter([...pattern, read(at(30, 100), 4)])).toEqual({ kind: 'plugged' });
  });
  test('anything that could unplug the block, and blocks not plugged at start, leave it open', () => {
    for (const unplug of [
      request(VIRTIO_MEM_REQ_UNPLUG_ALL, at(0), 0),
      request(VIRTIO_MEM_REQ_UNPLUG, at(29), 2),
      request(VIRTIO_MEM_REQ_UNPLUG, at(30, 5), 0),
      request(VIRTIO_MEM_REQ_UNPLUG, { anchor: 'usable_end', blocks: -2, bytes: 0 }, 1),
      request(VIRTIO_MEM_REQ_UNPLUG, at(0), 'blocks'),
      { kind: 'system-reset' } as const,
    ])
      expect(expectationAfter([...pattern, unplug, read(at(30, 100), 3)])).toEqual({ kind: 'open' });
    expect(expectationAfter([write(at(3), 1), read(at(3), 1)])).toEqual({ kind: 'open' });
    // A read crossing into the next block (past the region's plugged blocks) is open too.
    expect(expectationAfter([...pattern, read(at(31, Number(SETUP.block_size) - 1), 2)])).toEqual({ kind: 'open' });
  });
});

describe('after a system reset a valid STATE request expects UNPLUGGED', () => {
  const state = (blocks: number, nb: number) => request(VIRTIO_MEM_REQ_STATE, at(blocks), nb);
  const reboot: FuzzOperation = { kind: 'system-reset' };
  test('until something could plug, inside the requested size only', () => {
    expect(expectationAfter([reboot, { kind: 'device-reset' }, state(0, 32)])).toEqual({
      kind: 'unplugged-after-system-reset',
    });
    expect(expectationAfter([state(0, 4)])).toEqual({ kind: 'open' });
    expect(expectationAfter([reboot, state(0, 33)])).toEqual({ kind: 'open' });
    expect(expectationAfter([reboot, request(VIRTIO_MEM_REQ_PLUG, at(40), 1), state(0, 4)])).toEqual({ kind: 'open' });
    expect(expectationAfter([reboot, { kind: 'host-busy', busy: true }, state(0, 4)])).toEqual({ kind: 'open' });
    // A reboot while the host keeps the device busy may leave the blocks as they are.
    expect(expectationAfter([{ kind: 'host-busy', busy: true }, reboot, state(0, 4)])).toEqual({ kind: 'open' });
    expect(
      expectationAfter([{ kind: 'host-busy', busy: true }, { kind: 'host-busy', busy: false }, reboot, state(0, 4)]),
    ).toEqual({ kind: 'unplugged-after-system-reset' });
    const shrink: FuzzOperation = { kind: 'resize', blocks: 2, bytes: 0, regionBlocks: 128 };
    expect(expectationAfter([reboot, shrink, state(0, 3)])).toEqual({ kind: 'open' });
    expect(expectationAfter([reboot, shrink, state(0, 2)])).toEqual({ kind: 'unplugged-after-system-reset' });
  });
});

test('the rendered vector states these expectations, lints as a vector and passes on the model', async () => {
  const ops: FuzzOperation[] = [
    write(at(31, 8), 0xde, 0xad),
    { kind: 'device-reset' },
    read(at(31, 8), 2),
    { kind: 'system-reset' },
    request(VIRTIO_MEM_REQ_STATE, at(0), 32),
  ];
  const text = fuzzVectorText(SETUP, ops, {
    id: 'vmem.dev.fuzz.k',
    title: 'knowledge rendered',
    requirements: ['dev.op.3'],
  });
  expect(text).toContain('plugged: [{first: 30, count: 2}]');
  expect(text).toContain("expect: {access: ok, data: 'dead'}");
  expect(text).toContain('expect: {state: {UNPLUGGED: pass, PLUGGED: non-strict, MIXED: non-strict}}');
  const loaded = loadVectorText('k.yaml', text);
  expect(loaded.problems).toEqual([]);
  const run = await runVectors(createModelAdapter(), loaded.vectors, loaded.vectors, { strict: true });
  expect(run.results[0]!.verdict).toBe('pass');
});
