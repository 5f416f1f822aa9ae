/**
 * The QEMU platform: what the `qemu` and `ssh-guest` adapters share about driving a QEMU from the
 * host (the QMP client, the virtio-mem device over QMP, finding QEMU and tending processes). This
 * file is the folder's only door; the layering test holds other folders to it.
 */
export { QmpClient, QmpError, encodeMessage } from './qmp';
export type { QmpEvent, QmpTcpAddress } from './qmp';
export { QemuMemoryDevice, listVirtioMemDevices } from './memory-device';
export type { FoundMemoryDevice, HostView, MemoryDeviceEntry, SystemResetOutcome } from './memory-device';
export { QemuMissingError, findOnPath, forgetChild, killOnExit, locateQemu, processAlive } from './host-processes';
export type { QemuBinary } from './host-processes';
