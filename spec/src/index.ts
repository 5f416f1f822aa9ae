/**
 * `spec/`: the virtio-mem protocol as data. Pure: imports nothing of the project and does no I/O.
 */
export * from './constants';
export * from './layouts';
export * from './struct-layout';
export * from './virtqueue';
export * from './virtio-pci';
export * from './values';
export * from './requirements';
export * from './requirements-beyond';
export * from './schemas';
export * from './vector-schemas';
export * from './document';
export * from './device-setup';
export * from './handshake';
export * from './harness-protocol';
export * from './harness-protocol-codec';
export * from './harness-protocol-schemas';
