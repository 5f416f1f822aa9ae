import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  featureMask,
} from '../../../spec/src/index';
import { FIRECRACKER_PROFILE, QEMU_PROFILE, VirtioMemDevice } from '../index';
import { makeDevice } from './test/device-fixture';

describe('feature negotiation', () => {
  const UI = featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
  const V1 = featureMask(VIRTIO_F_VERSION_1);
  const handshake = (device: VirtioMemDevice, accepted: bigint) => {
    device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    device.writeDriverFeatures(accepted);
    return device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  };

  test('dev.init.1: QEMU refuses FEATURES_OK when UNPLUGGED_INACCESSIBLE is offered but not accepted', () => {
    const device = makeDevice({ features: V1 | UI }, QEMU_PROFILE);
    const result = handshake(device, V1);
    expect(result.status & VIRTIO_CONFIG_S_FEATURES_OK).toBe(0);
    expect(result.requirements).toEqual(['dev.init.1']);
    expect(result.refusal).toMatch(/UNPLUGGED_INACCESSIBLE/);
  });

  test('should accept FEATURES_OK when the driver accepts what it must', () => {
    const device = makeDevice({ features: V1 | UI }, QEMU_PROFILE);
    const result = handshake(device, V1 | UI);
    expect(result.status & VIRTIO_CONFIG_S_FEATURES_OK).toBe(VIRTIO_CONFIG_S_FEATURES_OK);
    expect(device.negotiatedFeatures).toBe(V1 | UI);
  });

  test('should refuse features that were not offered, and a driver without VERSION_1', () => {
    expect(handshake(makeDevice({ features: V1 }), V1 | UI).refusal).toMatch(/not offered/);
    expect(handshake(makeDevice({ features: V1 }), 0n).refusal).toMatch(/VERSION_1/);
  });

  test('dev.init.1: Firecracker fails at DRIVER_OK instead', () => {
    const device = makeDevice({}, FIRECRACKER_PROFILE);
    expect(handshake(device, V1).refusal).toBeUndefined();
    const result = device.writeStatus(
      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
    );
    expect(result.refusal).toMatch(/activation failed/);
    expect(device.needsReset).toBe(true);
  });

  test('writing status 0 resets the device', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 1 }] });
    handshake(device, featureMask(VIRTIO_F_VERSION_1));
    expect(device.writeStatus(0).status).toBe(0);
    expect(device.pluggedRuns()).toEqual([{ first: 0, count: 1 }]);
  });
});
