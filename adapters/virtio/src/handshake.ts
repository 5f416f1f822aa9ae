/**
 * The driver's device initialisation (VIRTIO 1.4 §3.1.1), written once over a
 * {@link VirtioTransport}: reset, ACKNOWLEDGE, DRIVER, read the offered features, write the
 * accepted ones, FEATURES_OK and read it back, set up the queues, DRIVER_OK.
 *
 * The QEMU adapter's transport is the virtio-pci common configuration over qtest, the vhost-user
 * adapter's is SET/GET_STATUS and GET/SET_FEATURES on the socket, the model adapter's the model
 * host's registers. model/ keeps its own synchronous `initialiseDevice` (model/ imports only
 * spec/, and the runner's oracle builds its device synchronously); it performs the same steps in
 * the same order, and a test of the model adapter keeps the two in step.
 */
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../../spec/src/index';
import type { HandshakeResult } from '../../../spec/src/index';

/** How a driver reaches a device's status and feature registers. */
export interface VirtioTransport {
  /**
   * Resets the device (status ← 0) and waits as the transport requires until the reset is done
   * (virtio-pci: until device_status reads 0).
   */
  reset(): Promise<void>;
  /** The device status register. */
  readStatus(): Promise<number>;
  /** Writes the device status register. */
  writeStatus(status: number): Promise<void>;
  /** The 64 feature bits the device offers (virtio-pci reads them 32 at a time through device_feature_select). */
  readDeviceFeatures(): Promise<bigint>;
  /** Writes the 64 feature bits the driver accepts. */
  writeDriverFeatures(features: bigint): Promise<void>;
  /** Sets the device's queues up (after FEATURES_OK stuck, before DRIVER_OK). */
  setUpQueues(): Promise<void>;
}

/**
 * Runs the initialisation: `accept` picks the features to write from those offered (the caller
 * limits them to what its driver implements). When FEATURES_OK does not stick the device is
 * left there (§3.1.1: the device does not support this subset), without queues or DRIVER_OK.
 */
export async function virtioHandshake(
  transport: VirtioTransport,
  accept: (offered: bigint) => bigint,
): Promise<HandshakeResult> {
  await transport.reset();
  await transport.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
  await transport.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  const offered = await transport.readDeviceFeatures();
  const accepted = accept(offered);
  await transport.writeDriverFeatures(accepted);
  await transport.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  // §3.1.1 step 6: re-read device status to ensure FEATURES_OK is still set.
  const afterFeatures = await transport.readStatus();
  const featuresOk = (afterFeatures & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
  if (!featuresOk) return { offered, accepted, featuresOk, status: afterFeatures };
  await transport.setUpQueues();
  await transport.writeStatus(afterFeatures | VIRTIO_CONFIG_S_DRIVER_OK);
  return { offered, accepted, featuresOk, status: await transport.readStatus() };
}
