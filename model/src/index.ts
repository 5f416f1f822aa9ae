/**
 * `model/`: the executable reference model of virtio-mem — codec, device and reference driver.
 * Pure: imports only `spec/`, does no I/O, reads no clock and uses no randomness.
 */
export * from './codec/codec';
export * from './blocks/bitmap';
export * from './device/profiles';
export * from './device/outcomes';
export * from './device/invariants';
export * from './device/memory';
export * from './device/device';
export { singleRequestChain } from './device/chain';
// The registers a driver's handshake runs over (the handshake itself is the virtio layer's).
export { deviceRegisters } from './device/registers';
export type { ModelDeviceRegisters } from './device/registers';
export * from './device/steering';
export * from './driver/driver';
export * from './loop';
export * from './driver-session';
export * from './host/model-host';
