/**
 * The QEMU platform: what the `qemu` and `ssh-guest` adapters share about driving a QEMU from the
 * host (the QMP client, the virtio-mem device over QMP, finding QEMU and tending processes). This
 * file is the folder's only door; the layering test holds other folders to it.
 */
export { QmpClient, QmpError, encodeMessage } from './qmp';
export type { QmpEvent, QmpTcpAddress } from './qmp';
export { QemuMemoryDevice, listVirtioMemDevices } from './memory-device';
export { MigrationBusy } from './migration-busy';
export type { FoundMemoryDevice, HostView, MemoryDeviceEntry, SystemResetOutcome } from './memory-device';
export { QemuMissingError, findOnPath, forgetChild, killOnExit, locateQemu, processAlive } from './host-processes';
export type { QemuBinary } from './host-processes';
export { INSTALLED_LAUNCH, UNPACKED_DATA_DIRS, dataDirArguments, qemuLaunchFor } from './unpacked-tree';
export type { QemuLaunch } from './unpacked-tree';
export {
  debianArchiveMirrors,
  parseDeb822Sources,
  parseOneLineSources,
  parseOsRelease,
  renderSuiteSources,
} from './apt-sources';
export type { AptSourceEntry, ArchiveMirror } from './apt-sources';
export {
  QEMU_PACKAGES,
  aptDownloadArgv,
  aptUpdateArgv,
  inSeries,
  privateAptFolders,
  privateAptLayout,
  privateAptOptions,
  upstreamVersion,
} from './debian-archive';
export type { PrivateAptLayout, QemuPackageName } from './debian-archive';
export {
  BINARY_IN_CACHE,
  FETCH_RECORD,
  defaultQemuCacheDir,
  partialDir,
  readFetchedQemu,
  replaceableCache,
} from './qemu-cache';
export type { FetchRecord, FetchedQemu } from './qemu-cache';
export { FETCH_FAILURE_KINDS, SYSTEM_HOST, fetchQemu, probeQemuVersion, readAptSources, runTool } from './qemu-fetch';
export type { FetchFailureKind, FetchHost, FetchOptions, FetchOutcome, ToolResult } from './qemu-fetch';
export {
  GdbRemoteClient,
  bytesToHex,
  framePacket,
  hexToBytes,
  packetChecksum,
  parseStopReply,
  unescapeBinary,
} from './gdb-remote';
export type { GdbClientOptions, GdbFailure, GdbFailureKind, GdbResult, StopReply } from './gdb-remote';
export { X86_64_REGISTERS, decodeRegisterFile, readLittleEndian, writeLittleEndian } from './gdb-x86-64';
export type { GdbRegisterSpec, X86_64Register, X86_64RegisterFile } from './gdb-x86-64';
