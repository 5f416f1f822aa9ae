/**
 * The model host as a {@link VirtioTransport}: the status and feature registers of the model
 * device, so the model adapter runs the one driver-side handshake ({@link virtioHandshake}) as
 * the QEMU and vhost-user adapters do. The model's request queue needs no set-up: chains are
 * handed to the host directly.
 */
import type { ModelHost } from '../../../model/src/index';
import type { VirtioTransport } from '../../virtio/src/index';

/** The registers of `host`'s device as a virtio transport. */
export function modelTransport(host: ModelHost): VirtioTransport {
  return {
    reset: async () => void host.writeStatus(0),
    readStatus: async () => host.readStatus(),
    writeStatus: async (status) => void host.writeStatus(status),
    readDeviceFeatures: async () => host.offeredFeatures,
    writeDriverFeatures: async (features) => host.writeDriverFeatures(features),
    setUpQueues: async () => undefined,
  };
}
