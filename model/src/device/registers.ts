/**
 * The model device's status and feature registers as a driver's transport reaches them. The
 * driver-side handshake itself is written once, in the virtio layer (`virtioHandshake`,
 * `virtioHandshakeSync`); this view is what it runs over for the model.
 */
import type { VirtioMemDevice } from './device';

/** The registers of `device`, accessed synchronously (a model device lives in-process). */
export interface ModelDeviceRegisters {
  /** Writes 0 to the status register: a device reset. */
  reset(): void;
  readStatus(): number;
  /** The 8-bit configuration generation (virtio-pci `config_generation`). */
  readConfigGeneration(): number;
  writeStatus(status: number): void;
  readDeviceFeatures(): bigint;
  writeDriverFeatures(features: bigint): void;
  /** The model's request queue needs no set-up: chains are handed to the device directly. */
  setUpQueues(): void;
}

/** The status and feature registers of `device`. */
export function deviceRegisters(device: VirtioMemDevice): ModelDeviceRegisters {
  return {
    reset: () => void device.writeStatus(0),
    readStatus: () => device.deviceStatus,
    readConfigGeneration: () => device.configGeneration,
    writeStatus: (status) => void device.writeStatus(status),
    readDeviceFeatures: () => device.offeredFeatures,
    writeDriverFeatures: (features) => device.writeDriverFeatures(features),
    setUpQueues: () => undefined,
  };
}
