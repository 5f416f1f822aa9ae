/**
 * The driver-side virtio handshake on the model device (kept apart from the device itself).
 */
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../../spec/src/index';
import type { HandshakeResult } from '../../../spec/src/index';
import type { VirtioMemDevice } from './device';

/**
 * The virtio handshake a driver performs on the device: reset, ACKNOWLEDGE, DRIVER, the
 * accepted features (picked by `accept` from those offered), FEATURES_OK and, if it stuck,
 * DRIVER_OK. Blocks and the configuration are untouched (a device reset keeps them).
 */
export function initialiseDevice(device: VirtioMemDevice, accept: (offered: bigint) => bigint): HandshakeResult {
  device.writeStatus(0);
  device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
  device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  const offered = device.offeredFeatures;
  const accepted = accept(offered);
  device.writeDriverFeatures(accepted);
  const afterFeatures = device.writeStatus(
    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
  ).status;
  const featuresOk = (afterFeatures & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
  const status = featuresOk ? device.writeStatus(afterFeatures | VIRTIO_CONFIG_S_DRIVER_OK).status : afterFeatures;
  return { offered, accepted, featuresOk, status };
}
