/**
 * The model host as a {@link VirtioTransport}: the status and feature registers of the model
 * device ({@link deviceRegisters}), so the model adapter runs the one driver-side handshake
 * ({@link virtioHandshake}) as the QEMU and vhost-user adapters do.
 */
import { deviceRegisters } from '../../../model/src/index';
import type { ModelHost } from '../../../model/src/index';
import { asyncTransport } from '../../virtio/src/index';
import type { VirtioTransport, virtioHandshake } from '../../virtio/src/index';

/** The registers of `host`'s device as a virtio transport. */
export function modelTransport(host: ModelHost): VirtioTransport {
  return asyncTransport(deviceRegisters(host.device));
}
