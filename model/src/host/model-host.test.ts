import { virtioHandshakeSync } from '../../../adapters/virtio/src/index';
import {
  DeviceSetup,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  featureMask,
} from '../../../spec/src/index';
import { decodeResponse, encodeRequest } from '../codec/codec';
import { deviceRegisters } from '../device/registers';
import { QEMU_PROFILE, SPEC_PROFILE } from '../device/profiles';
import { ModelHost } from './model-host';

const BS = 2n << 20n;
const ADDR = 4n << 30n;
const SETUP: DeviceSetup = {
  block_size: BS,
  region_size: 64n * BS,
  addr: ADDR,
  requested_size: 16n * BS,
  node_id: 0,
  plugged: [],
};

function ready(setup: Partial<DeviceSetup> = {}, profile = SPEC_PROFILE): ModelHost {
  const r = ModelHost.create({ ...SETUP, ...setup }, profile);
  if (r.kind !== 'ready') throw new Error(r.reason);
  return r.host;
}

function request(type: number, first = 0, count = 0): { readable: Uint8Array[]; writableSizes: number[] } {
  return {
    readable: [encodeRequest({ type, addr: ADDR + BigInt(first) * BS, nb_blocks: count })],
    writableSizes: [10],
  };
}

const ALL = featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);

describe('ModelHost', () => {
  test('should refuse a set-up the model cannot build, naming the field', () => {
    expect(ModelHost.create({ ...SETUP, block_size: 0n })).toMatchObject({ kind: 'refused', field: 'block_size' });
    expect(ModelHost.create({ ...SETUP, plugged: [{ first: 60, count: 8 }] })).toMatchObject({
      kind: 'refused',
      field: 'plugged',
    });
  });

  test('should answer a chain with a used entry and name the blocks an UNPLUG unplugged', () => {
    const host = ready();
    virtioHandshakeSync(deviceRegisters(host.device), (offered) => offered);
    const plug = host.submit(request(VIRTIO_MEM_REQ_PLUG, 2, 4));
    expect(plug).toMatchObject({ kind: 'used', length: 10, unplugged: [] });
    const unplug = host.submit(request(VIRTIO_MEM_REQ_UNPLUG, 3, 2));
    expect(unplug.unplugged).toEqual([{ first: 3, count: 2 }]);
    expect(unplug.kind === 'used' && decodeResponse(unplug.written).ok).toBe(true);
  });

  test('should name every formerly plugged run after UNPLUG ALL, also when the request is split over descriptors', () => {
    const host = ready({
      plugged: [
        { first: 1, count: 2 },
        { first: 9, count: 1 },
      ],
    });
    virtioHandshakeSync(deviceRegisters(host.device), (offered) => offered);
    const bytes = encodeRequest({ type: VIRTIO_MEM_REQ_UNPLUG_ALL, addr: 0n, nb_blocks: 0 });
    const done = host.submit({ readable: [bytes.subarray(0, 1), bytes.subarray(1)], writableSizes: [10] });
    expect(done.unplugged).toEqual([
      { first: 1, count: 2 },
      { first: 9, count: 1 },
    ]);
    expect(host.config().plugged_size).toBe(0n);
  });

  test('should apply or refuse a host resize as the profile validates it', () => {
    const host = ready({}, QEMU_PROFILE);
    virtioHandshakeSync(deviceRegisters(host.device), (offered) => offered);
    expect(host.resize(32n * BS)).toEqual({ kind: 'applied', notified: true });
    expect(host.notificationCount).toBe(1);
    expect(host.resize(BS + 1n)).toMatchObject({
      kind: 'refused',
      reason: expect.stringMatching(/multiple of block_size/),
    });
  });

  test('should report the blocks a system reset unplugged', () => {
    const host = ready({ plugged: [{ first: 0, count: 3 }] });
    expect(host.systemReset()).toEqual({ unplugged: [{ first: 0, count: 3 }] });
  });

  test.each([
    ['without PERSISTENT_SUSPEND (qemu unplugs)', featureMask(VIRTIO_F_VERSION_1), false, [{ first: 0, count: 2 }]],
    [
      'with PERSISTENT_SUSPEND (blocks survive)',
      featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND),
      true,
      [],
    ],
  ])('should suspend and wake %s', (_name, features, persistent, unplugged) => {
    const host = ready({ plugged: [{ first: 0, count: 2 }], features }, QEMU_PROFILE);
    virtioHandshakeSync(deviceRegisters(host.device), (offered) => offered);
    expect(host.suspendAndWake()).toEqual({ kind: 'woken', persistent, unplugged });
  });

  test('should refuse access to unplugged blocks once UNPLUGGED_INACCESSIBLE is negotiated', () => {
    const host = ready({ plugged: [{ first: 0, count: 1 }], features: ALL });
    virtioHandshakeSync(deviceRegisters(host.device), (offered) => offered);
    expect(host.checkAccess(ADDR, 4096, 'read')).toEqual({ kind: 'allowed' });
    expect(host.checkAccess(ADDR + BS, 4096, 'write')).toMatchObject({
      kind: 'refused',
      reason: expect.stringMatching(/^inaccessible: write touches unplugged block 1/),
    });
    expect(host.checkAccess(ADDR - 1n, 1, 'read')).toMatchObject({
      kind: 'refused',
      reason: expect.stringMatching(/^outside-region: /),
    });
  });

  test('should answer BUSY to the next requests after an injection', () => {
    const host = ready();
    virtioHandshakeSync(deviceRegisters(host.device), (offered) => offered);
    host.injectBusy(1);
    const busy = host.submit(request(VIRTIO_MEM_REQ_PLUG, 0, 1));
    const then = host.submit(request(VIRTIO_MEM_REQ_PLUG, 0, 1));
    const type = (c: typeof busy): number | undefined =>
      c.kind === 'used' ? (decodeResponse(c.written) as { ok: true; value: { type: number } }).value.type : undefined;
    expect([type(busy), type(then)]).toEqual([2, 0]);
  });

  test('should mark the device NEEDS_RESET when the transport cannot process the queue', () => {
    const host = ready();
    virtioHandshakeSync(deviceRegisters(host.device), (offered) => offered);
    host.markNeedsReset();
    expect(host.submit(request(VIRTIO_MEM_REQ_PLUG, 0, 1))).toEqual({ kind: 'no-used-entry', unplugged: [] });
  });
});
