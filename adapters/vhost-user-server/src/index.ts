/**
 * `adapters/vhost-user-server/`: `vmemct serve-vhost-user`, a vhost-user back-end serving the
 * reference model. A device server, not an adapter: the adapters (the front-end among them) test
 * an implementation; this is one.
 *
 * Split along rust-vmm's vhost-user-backend seam:
 * - `messages.ts`: the front-end messages as data (payload sizes, fds);
 * - `connection.ts` and `vring.ts`: the generic message handler and its request queue (over the
 *   virtio layer's device-side split queue);
 * - `device.ts`: the device interface the handler calls, with "unsupported" defaults;
 * - `model-device.ts`: the model device (a ModelHost plus the page-discard convention);
 * - `control-extension.ts`: vmemct's control extension, a codec over the ModelHost;
 * - `server.ts`: the listening socket, one connection per front-end.
 */
export { BACKEND_MAX_MEM_SLOTS } from './connection';
export type { BackendOptions } from './server';
export { BackendStartError, VhostUserBackend } from './server';
