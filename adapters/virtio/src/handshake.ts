/**
 * The driver's device initialisation (VIRTIO 1.4 §3.1.1), written once: reset, ACKNOWLEDGE,
 * DRIVER, read the offered features, write the accepted ones, FEATURES_OK and read it back, set
 * up the queues, DRIVER_OK.
 *
 * The steps are one generator ({@link handshakeSteps}) that yields register accesses; two
 * drivers run it: {@link virtioHandshake} over an asynchronous {@link VirtioTransport} (the
 * virtio-pci common configuration over qtest, SET/GET_STATUS and GET/SET_FEATURES on a
 * vhost-user socket, the model host's registers) and {@link virtioHandshakeSync} over a
 * synchronous one (the runner's oracle, a model device it builds in a constructor).
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

/** A {@link VirtioTransport} whose accesses complete at once (a model device in-process). */
export type SyncVirtioTransport = {
  readonly [K in keyof VirtioTransport]: (
    ...args: Parameters<VirtioTransport[K]>
  ) => Awaited<ReturnType<VirtioTransport[K]>>;
};

/** One register access of the handshake, as {@link handshakeSteps} yields it. */
export type HandshakeAccess =
  | { readonly kind: 'reset' }
  | { readonly kind: 'read-status' }
  | { readonly kind: 'write-status'; readonly status: number }
  | { readonly kind: 'read-device-features' }
  | { readonly kind: 'write-driver-features'; readonly features: bigint }
  | { readonly kind: 'set-up-queues' };

/**
 * The handshake as a sequence of register accesses: each `yield` is answered with what the
 * access read (a status, the offered features) or nothing. `accept` picks the features to write
 * from those offered (the caller limits them to what its driver implements). When FEATURES_OK
 * does not stick the device is left there (§3.1.1: the device does not support this subset),
 * without queues or DRIVER_OK.
 */
export function* handshakeSteps(
  accept: (offered: bigint) => bigint,
): Generator<HandshakeAccess, HandshakeResult, number | bigint | undefined> {
  yield { kind: 'reset' };
  yield { kind: 'write-status', status: VIRTIO_CONFIG_S_ACKNOWLEDGE };
  yield { kind: 'write-status', status: VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER };
  const offered = (yield { kind: 'read-device-features' }) as bigint;
  const accepted = accept(offered);
  yield { kind: 'write-driver-features', features: accepted };
  yield {
    kind: 'write-status',
    status: VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
  };
  // §3.1.1 step 6: re-read device status to ensure FEATURES_OK is still set.
  const afterFeatures = (yield { kind: 'read-status' }) as number;
  const featuresOk = (afterFeatures & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
  if (!featuresOk) return { offered, accepted, featuresOk, status: afterFeatures };
  yield { kind: 'set-up-queues' };
  yield { kind: 'write-status', status: afterFeatures | VIRTIO_CONFIG_S_DRIVER_OK };
  const status = (yield { kind: 'read-status' }) as number;
  return { offered, accepted, featuresOk, status };
}

/** Performs one access on a transport whose accesses may complete later or at once. */
function perform<R>(transport: SyncVirtioTransport | VirtioTransport, access: HandshakeAccess): R {
  switch (access.kind) {
    case 'reset':
      return transport.reset() as R;
    case 'read-status':
      return transport.readStatus() as R;
    case 'write-status':
      return transport.writeStatus(access.status) as R;
    case 'read-device-features':
      return transport.readDeviceFeatures() as R;
    case 'write-driver-features':
      return transport.writeDriverFeatures(access.features) as R;
    case 'set-up-queues':
      return transport.setUpQueues() as R;
  }
}

/** Runs the handshake ({@link handshakeSteps}) over an asynchronous transport. */
export async function virtioHandshake(
  transport: VirtioTransport,
  accept: (offered: bigint) => bigint,
): Promise<HandshakeResult> {
  const steps = handshakeSteps(accept);
  let next = steps.next();
  while (!next.done) next = steps.next(await perform<Promise<number | bigint | undefined>>(transport, next.value));
  return next.value;
}

/** Runs the same handshake over a synchronous transport. */
export function virtioHandshakeSync(
  transport: SyncVirtioTransport,
  accept: (offered: bigint) => bigint,
): HandshakeResult {
  const steps = handshakeSteps(accept);
  let next = steps.next();
  while (!next.done) next = steps.next(perform<number | bigint | undefined>(transport, next.value));
  return next.value;
}

/** A synchronous transport seen through the asynchronous interface (each access settles at once). */
export function asyncTransport(transport: SyncVirtioTransport): VirtioTransport {
  return {
    reset: async () => transport.reset(),
    readStatus: async () => transport.readStatus(),
    writeStatus: async (status) => transport.writeStatus(status),
    readDeviceFeatures: async () => transport.readDeviceFeatures(),
    writeDriverFeatures: async (features) => transport.writeDriverFeatures(features),
    setUpQueues: async () => transport.setUpQueues(),
  };
}
