/**
 * `adapters/virtio/`: the virtio layer the adapters and the vhost-user back-end share, in the
 * spirit of rust-vmm's virtio-queue. Pure TypeScript over small ports: no Node I/O, no packages.
 *
 * - the device side of a split queue ({@link DeviceSplitQueue}) over {@link MappedGuestMemory}.
 */
export * from './guest-memory';
export * from './device-queue';
