import type { DeviceSetup } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import {
  DescriptorChain,
  DeviceParams,
  DeviceProfile,
  ProcessResult,
  QEMU_7_2_PROFILE,
  VirtioMemDevice,
} from '../../../model/src/index';
import { VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_REQ_UNPLUG } from '../../../spec/src/index';
import { Operation, compareSessions, generateOperations } from './differential';
import { OpenPair, formatShrunkMismatch, shrinkMismatch } from './shrink';

const MiB = 1n << 20n;
const SETUP: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 1024n * MiB,
  addr: 4n << 30n,
  requested_size: 64n * MiB,
  node_id: 0,
  plugged: [],
};

function requestType(op: Operation): number | undefined {
  return op.kind === 'request' ? op.bytes[0]! | (op.bytes[1]! << 8) : undefined;
}

/** Flips the response type of chains whose request type is `type`, when `when(device)` holds. */
function corrupting(type: number, when: (device: VirtioMemDevice) => boolean) {
  return class extends VirtioMemDevice {
    override processChain(chain: DescriptorChain): ProcessResult {
      const first = chain.readable[0];
      const matches = first !== undefined && first.length >= 2 && (first[0]! | (first[1]! << 8)) === type;
      const corrupt = matches && when(this);
      const result = super.processChain(chain);
      if (!corrupt || !result.used) return result;
      const written = Uint8Array.from(result.used.written);
      written[0]! ^= 0xff;
      return { ...result, used: { length: result.used.length, written } };
    }
  };
}

function pairWith(device: ReturnType<typeof corrupting>): { open: OpenPair; opens: () => number } {
  const good = createModelAdapter({ profile: QEMU_7_2_PROFILE });
  const broken = createModelAdapter({
    profile: QEMU_7_2_PROFILE,
    deviceFactory: (params: DeviceParams, profile: DeviceProfile) => new device(params, profile),
  });
  let count = 0;
  return {
    open: async () => {
      count++;
      return { left: await good.openDevice(SETUP), right: await broken.openDevice(SETUP) };
    },
    opens: () => count,
  };
}

describe('shrinkMismatch', () => {
  const ops = generateOperations(7, 3000, SETUP);

  test('a mismatch that needs no history shrinks to the one operation that differs', async () => {
    const { open } = pairWith(corrupting(VIRTIO_MEM_REQ_UNPLUG, () => true));
    const { left, right } = await open();
    const found = (await compareSessions(left, right, ops))!;
    expect(found.index).toBeGreaterThan(0);
    const shrunk = await shrinkMismatch(open, ops, found);
    expect(shrunk.prefixLength).toBe(found.index + 1);
    expect(shrunk.reproduced).toBe(true);
    expect(shrunk.operations).toHaveLength(1);
    expect(requestType(shrunk.operations[0]!)).toBe(VIRTIO_MEM_REQ_UNPLUG);
    expect(shrunk.mismatch.index).toBe(0);
  });

  test('a mismatch that needs plugged memory keeps a plug before the request that differs', async () => {
    const { open, opens } = pairWith(corrupting(VIRTIO_MEM_REQ_STATE, (d) => d.readConfig().plugged_size > 0n));
    const { left, right } = await open();
    const found = (await compareSessions(left, right, ops))!;
    expect(found.index).toBeGreaterThan(2);
    const shrunk = await shrinkMismatch(open, ops, found, 200);
    // A PLUG (after a resize when the generated PLUG needs a larger requested_size), then the STATE.
    const types = shrunk.operations.map(requestType);
    expect(types.length).toBeLessThanOrEqual(3);
    expect(types.slice(-2)).toEqual([VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_STATE]);
    expect(shrunk.mismatch.index).toBe(types.length - 1);
    // Every replay opened one fresh pair.
    expect(opens()).toBe(1 + shrunk.replays);
    const text = formatShrunkMismatch(found, shrunk, 'QEMU', 'model', 7);
    expect(text).toContain(`seed 7, shortest failing prefix: the first ${found.index + 1} operations`);
    expect(text).toContain(`these ${types.length} of the first ${found.index + 1} operations still differ`);
    expect(text).toMatch(new RegExp(`  ${types.length - 2}: request PLUG 0x[0-9a-f]+ \\d+ \\[`));
    expect(text).toMatch(new RegExp(`  ${types.length - 1}: request STATE `));
  });

  test('stops within its replay budget', async () => {
    const { open } = pairWith(corrupting(VIRTIO_MEM_REQ_STATE, (d) => d.readConfig().plugged_size > 0n));
    const { left, right } = await open();
    const found = (await compareSessions(left, right, ops))!;
    const shrunk = await shrinkMismatch(open, ops, found, 3);
    expect(shrunk.replays).toBe(3);
    // What it returns still differs at its last operation.
    expect(shrunk.mismatch.index).toBe(shrunk.operations.length - 1);
    const { left: l, right: r } = await open();
    expect((await compareSessions(l, r, shrunk.operations))?.index).toBe(shrunk.operations.length - 1);
  });

  test('says when the prefix does not differ again on fresh devices', async () => {
    let first = true;
    const flaky = corrupting(VIRTIO_MEM_REQ_UNPLUG, () => {
      const now = first;
      first = false;
      return now;
    });
    const { open } = pairWith(flaky);
    const { left, right } = await open();
    const found = (await compareSessions(left, right, ops))!;
    const shrunk = await shrinkMismatch(open, ops, found);
    expect(shrunk).toMatchObject({ reproduced: false, replays: 1, prefixLength: found.index + 1 });
    expect(formatShrunkMismatch(found, shrunk, 'QEMU', 'model', 7)).toContain('did not differ again');
  });

  test('a handshake mismatch has nothing to shrink', async () => {
    const shrunk = await shrinkMismatch(
      async () => {
        throw new Error('no replay expected');
      },
      [],
      {
        index: -1,
        operation: 'initial handshake',
        left: { outcome: 'a', config: '', status: 0, notified: false },
        right: { outcome: 'b', config: '', status: 0, notified: false },
      },
    );
    expect(shrunk).toMatchObject({ prefixLength: 0, operations: [], replays: 0 });
  });
});
