/**
 * The host side of QEMU (QMP) agrees with the device's config space, and instance reuse gives
 * each vector the starting state it asked for.
 */
import { decodeConfig, encodeRequest } from '../../../model/src/codec/codec';
import { VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_STATE } from '../../../spec/src/index';
import type { DeviceSession } from '../../core/src/contract';
import { QemuDeviceSession, createQemuAdapter } from '../src/qemu-adapter';
import { QEMU, SMALL_DEVICE, alive } from './qemu-test-support';

const MiB = 1n << 20n;

async function config(session: DeviceSession) {
  const decoded = decodeConfig(await session.readConfig());
  if (!decoded.ok) throw new Error('config did not decode');
  return decoded.value;
}

async function plug(session: DeviceSession, first: number, count: number): Promise<void> {
  const c = await session.submit({
    readable: [
      encodeRequest({
        type: VIRTIO_MEM_REQ_PLUG,
        addr: SMALL_DEVICE.addr + BigInt(first) * SMALL_DEVICE.block_size,
        nb_blocks: count,
      }),
    ],
    writableSizes: [10],
  });
  expect(c).toMatchObject({ kind: 'used', length: 10 });
}

test('query-memory-devices, MEMORY_DEVICE_SIZE_CHANGE and the config space tell the same story', async () => {
  const adapter = createQemuAdapter({ located: QEMU });
  try {
    const session = (await adapter.openDevice(SMALL_DEVICE)) as QemuDeviceSession;
    await session.initialise((offered) => offered);
    expect(await session.hostView()).toEqual({
      size: 0n,
      requestedSize: 64n * MiB,
      blockSize: 2n * MiB,
      maxSize: 1024n * MiB,
      memaddr: 4n << 30n,
      node: 0,
    });

    await plug(session, 0, 5);
    expect(await session.nextSizeChange(3000)).toBe(10n * MiB);
    expect((await session.hostView()).size).toBe((await config(session)).plugged_size);

    const before = await session.notificationCount();
    expect(await session.resize!(128n * MiB)).toEqual({ kind: 'applied' });
    expect(await session.notificationCount()).toBe(before + 1);
    expect((await session.hostView()).requestedSize).toBe(128n * MiB);
    expect((await config(session)).requested_size).toBe(128n * MiB);
    expect(await session.resize!(3n * MiB)).toMatchObject({
      kind: 'refused',
      reason: expect.stringMatching(/multiples of 'block-size'/),
    });

    await session.systemReset!();
    await session.initialise((offered) => offered);
    expect((await session.hostView()).size).toBe(0n);
    expect((await config(session)).plugged_size).toBe(0n);
    await session.close();
  } finally {
    await adapter.dispose();
  }
});

test('a reused QEMU starts the next vector from its own set-up: requested_size, initial blocks, no notification pending', async () => {
  const started: number[] = [];
  const adapter = createQemuAdapter({ located: QEMU, onStart: (pid) => started.push(pid!) });
  try {
    const first = await adapter.openDevice(SMALL_DEVICE);
    await first.initialise((offered) => offered);
    await plug(first, 0, 20);
    await first.resize!(256n * MiB);
    await first.close();

    const second = await adapter.openDevice({
      ...SMALL_DEVICE,
      requested_size: 16n * MiB,
      plugged: [{ first: 3, count: 2 }],
    });
    expect(await second.notificationCount()).toBe(0);
    expect(await second.readStatus()).toBe(0);
    await second.initialise((offered) => offered);
    const c = await config(second);
    expect(c.requested_size).toBe(16n * MiB);
    expect(c.plugged_size).toBe(4n * MiB);
    // QEMU's usable extent: requested + 256 MiB, recomputed by the UNPLUG ALL between vectors.
    expect(c.usable_region_size).toBe(272n * MiB);
    expect(await second.notificationCount()).toBe(0);
    await second.close();
    expect(started).toHaveLength(1);

    const other = await adapter.openDevice({ ...SMALL_DEVICE, block_size: 4n * MiB });
    await other.close();
    expect(started).toHaveLength(2);
  } finally {
    await adapter.dispose();
  }
});

test('the ring keeps working across the 16-bit index wrap (66,000 requests on one queue)', async () => {
  const adapter = createQemuAdapter({ located: QEMU });
  try {
    const session = await adapter.openDevice({ ...SMALL_DEVICE, plugged: [{ first: 0, count: 2 }] });
    await session.initialise((offered) => offered);
    const state = {
      readable: [encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: SMALL_DEVICE.addr, nb_blocks: 4 })],
      writableSizes: [10],
    };
    const mixed = Buffer.from('00000000000000000200', 'hex');
    let wrong = 0;
    for (let i = 0; i < 66_000; i++) {
      const c = await session.submit(state);
      if (c.kind !== 'used' || c.length !== 10 || !Buffer.from(c.written).equals(mixed)) wrong++;
    }
    expect(wrong).toBe(0);
    await session.close();
  } finally {
    await adapter.dispose();
  }
});

test('after a device reset no request is answered until a handshake sets the queue up again', async () => {
  const adapter = createQemuAdapter({ located: QEMU });
  try {
    const session = await adapter.openDevice(SMALL_DEVICE);
    await session.initialise((offered) => offered);
    await plug(session, 0, 1);
    await session.deviceReset!();
    const after = await session.submit({
      readable: [encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: SMALL_DEVICE.addr, nb_blocks: 1 })],
      writableSizes: [10],
    });
    expect(after).toEqual({ kind: 'no-used-entry' });
    await session.initialise((offered) => offered);
    await plug(session, 1, 1);
    await session.close();
  } finally {
    await adapter.dispose();
  }
});

test('dispose while a device is still opening ends that QEMU too', async () => {
  const started: number[] = [];
  const adapter = createQemuAdapter({ located: QEMU, onStart: (pid) => started.push(pid!) });
  const opening = adapter.openDevice(SMALL_DEVICE);
  await new Promise((r) => setTimeout(r, 20));
  await adapter.dispose();
  await expect(opening).rejects.toThrow(/disposed/);
  expect(started.filter(alive)).toEqual([]);
});
