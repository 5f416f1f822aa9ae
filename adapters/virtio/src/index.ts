/**
 * `adapters/virtio/`: the virtio layer the adapters and the vhost-user back-end share, in the
 * spirit of rust-vmm's virtio-queue. Pure TypeScript over small ports: no Node I/O, no packages.
 *
 * - the driver side of a split queue ({@link SplitQueueDriver}) over a {@link GuestMemoryPort};
 * - the device side of a split queue ({@link DeviceSplitQueue}) over {@link MappedGuestMemory};
 * - the device initialisation handshake ({@link virtioHandshake}) over a {@link VirtioTransport};
 * - the virtio-pci capability walk ({@link findVirtioPciLayout}) over a configuration space;
 * - the configuration read under an unchanged `config_generation` ({@link readConsistentConfig})
 *   over a {@link ConfigSnapshotReader};
 * - the bus a virtio-pci driver reaches its function through ({@link PciFunctionBus}), and the
 *   one virtio-pci driver over it ({@link VirtioPciDriver}).
 */
export * from './guest-memory';
export * from './device-queue';
export * from './driver-queue';
export * from './pci-capabilities';
export * from './handshake';
export * from './config-generation';
export * from './pci-bus';
export * from './virtio-pci-driver';
