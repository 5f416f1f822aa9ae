/**
 * The QEMU command line of a guest: the device and machine options (`GuestDeviceOptions`), checked
 * against the rules QEMU would refuse them by, and turned into an argument vector. Pure.
 */
import { SizeStyle, formatSize } from '../../../spec/src/index';
import type { GuestManifest } from './guest-build';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
/** Where q35's device memory begins when boot memory fits below 4 GiB. */
const DEVICE_MEMORY_BASE = 4n * GiB;

/** The guest could not be booted or found. */
export class GuestVmError extends Error {
  override readonly name: string = 'GuestVmError';
}

/** A device or machine value QEMU would refuse (a usage error for `guest up`). */
export class GuestOptionError extends GuestVmError {
  override readonly name = 'GuestOptionError';
}

/** The device and machine a guest boots with. */
export interface GuestDeviceOptions {
  /** virtio-mem block size (default 2 MiB). */
  readonly blockSize?: bigint;
  /** Size of the memory backend = the device region (default 1 GiB). */
  readonly regionSize?: bigint;
  /** requested_size at boot (default 0). */
  readonly requestedSize?: bigint;
  /** Offer VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE (`unplugged-inaccessible=on`). */
  readonly unpluggedInaccessible?: boolean;
  /** Guest-physical start of the device region (`memaddr`; default: QEMU places it). */
  readonly addr?: bigint;
  /** NUMA node of the device (default 0; nodes 0 to it are created, boot memory on node 0). */
  readonly node?: number;
  /** Boot memory (default 1 GiB). */
  readonly memory?: bigint;
  /** Leave the virtio-mem device out (to check how a guest without one is reported). */
  readonly withoutVirtioMem?: boolean;
  /**
   * Machine type (default q35). i440fx (`pc`) keeps up to 3.5 GiB of boot memory below 4 GiB,
   * so a guest with more than q35's 2.75 GiB still has its device memory begin at 4 GiB.
   */
  readonly machine?: 'q35' | 'pc';
  /** Physical address bits of the vCPU (`-cpu max,phys-bits=N`; default QEMU's 40 under TCG: 1 TiB). */
  readonly physBits?: number;
  /**
   * Allow `requestedSize` above the region: QEMU accepts such a requested-size on the command
   * line (and only there; `qom-set` refuses it).
   */
  readonly requestedBeyondRegion?: boolean;
  /**
   * Guest time from the instruction counter (`-icount shift=auto,sleep=off`) on one vCPU: while
   * the guest idles its clock jumps to the next timer, so the driver's BUSY back-off (50 s,
   * doubling to 300 s) passes in a fraction of a second. With two vCPUs such a guest hangs at
   * boot, hence `-smp 1`.
   */
  readonly icount?: boolean;
  /**
   * Enable ACPI S3 on q35 (`-global ICH9-LPC.disable_s3=0`) so the guest can suspend to RAM
   * (`suspend` steps). QEMU ≥ 9.2 then offers PERSISTENT_SUSPEND; 7.2 never does.
   */
  readonly suspendToRam?: boolean;
  /**
   * Further virtio-mem devices (QOM ids `vm1`, `vm2`, …), each on its own NUMA node, for
   * multi-device vectors. With them the guest gets one NUMA node per node number up to the
   * highest, boot memory split by `memdev` over the nodes and one CPU per node where there are
   * CPUs (a node with neither CPU nor memory is missing from the guest's SRAT, and Linux maps its
   * memory to node 0).
   */
  readonly extraDevices?: readonly GuestExtraDevice[];
}

/** A further virtio-mem device of a multi-device guest. */
export interface GuestExtraDevice {
  /** NUMA node of the device. */
  readonly node: number;
  /** Its block size (default: the first device's). */
  readonly blockSize?: bigint;
  /** Offer VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE (default off). */
  readonly unpluggedInaccessible?: boolean;
  /** Size of its memory backend = its region (default 1 GiB). */
  readonly regionSize?: bigint;
  /** Guest-physical start of its region (`memaddr`; default: QEMU places it). */
  readonly addr?: bigint;
}

/** The QOM id of the guest's virtio-mem device. */
export const GUEST_DEVICE_ID = 'vm0';

/** The kernel command line. */
export const GUEST_KERNEL_ARGS = 'console=ttyS0 memhp_default_state=online_movable panic=-1';

/** QEMU's size syntax, in whole MiB where possible (`-m` reads a bare number as MiB, so memory is always whole MiB). */
const QEMU_MIB: SizeStyle = { units: [[20n, 'M']], separator: '', bytesUnit: '', zero: '0M' };

function sizeArg(bytes: bigint): string {
  return formatSize(bytes, QEMU_MIB);
}

/** QEMU's argument vector for a guest (without daemonize/pidfile). Pure; checked values only. */
export function guestQemuArguments(
  manifest: Pick<GuestManifest, 'kernel' | 'initrd'>,
  files: {
    qmpSocket: string;
    controlSocket: string;
    traceLog: string;
    consoleLog: string;
    gdbSocket?: string;
    memoryFile?: string;
  },
  sshPort: number,
  device: GuestDeviceOptions,
): string[] {
  const blockSize = device.blockSize ?? 2n * MiB;
  const regionSize = device.regionSize ?? 1n * GiB;
  const requested = device.requestedSize ?? 0n;
  const memory = device.memory ?? 1n * GiB;
  if (blockSize < MiB || (blockSize & (blockSize - 1n)) !== 0n)
    throw new GuestOptionError(`--block-size ${blockSize} must be a power of two of at least 1 MiB`);
  if (regionSize <= 0n || regionSize % blockSize !== 0n)
    throw new GuestOptionError(`--region-size ${regionSize} must be a positive multiple of the block size`);
  const requestedLimit = device.requestedBeyondRegion ? requested : regionSize;
  if (requested < 0n || requested > requestedLimit || requested % blockSize !== 0n)
    throw new GuestOptionError(`--requested-size ${requested} must be a multiple of the block size within the region`);
  if (memory < 256n * MiB || memory % MiB !== 0n)
    throw new GuestOptionError(`--memory ${memory} must be a whole number of MiB, at least 256 MiB`);
  if (!Number.isInteger(sshPort) || sshPort < 1 || sshPort > 65535) throw new GuestVmError(`bad SSH port ${sshPort}`);
  const physBits = device.physBits;
  if (physBits !== undefined && (!Number.isInteger(physBits) || physBits < 36 || physBits > 52))
    throw new GuestOptionError(`phys-bits ${physBits} must be a whole number from 36 to 52`);
  const node = device.node ?? 0;
  if (!Number.isInteger(node) || node < 0) throw new GuestOptionError(`node ${node} must be a NUMA node number`);
  if (device.addr !== undefined && (device.addr < DEVICE_MEMORY_BASE || device.addr % blockSize !== 0n))
    throw new GuestOptionError(`addr ${device.addr} must be at or above 4 GiB and aligned to the block size`);
  // Device memory (from 4 GiB on q35 with this little boot memory) must reach the region's end.
  const regionEnd = (device.addr ?? DEVICE_MEMORY_BASE) + regionSize - DEVICE_MEMORY_BASE;
  const extraDevices = device.extraDevices ?? [];
  const roundUp = (bytes: bigint): bigint => ((bytes + GiB - 1n) / GiB) * GiB;
  // Further devices go after the first (or at their own address): device memory must reach the last end.
  let deviceEnd = roundUp(regionEnd);
  for (const extra of extraDevices) {
    const size = extra.regionSize ?? GiB;
    const placed = extra.addr === undefined ? 0n : roundUp(extra.addr + size - DEVICE_MEMORY_BASE);
    deviceEnd = deviceEnd + roundUp(size) > placed ? deviceEnd + roundUp(size) : placed;
  }
  const maxMem = memory + deviceEnd + GiB;
  const args = [
    '-machine',
    device.machine ?? 'q35',
    '-accel',
    'tcg',
    '-cpu',
    physBits === undefined ? 'max' : `max,phys-bits=${physBits}`,
    '-smp',
    device.icount ? '1' : '2',
    '-m',
    `${sizeArg(memory)},maxmem=${sizeArg(maxMem)}`,
    '-nodefaults',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    `file:${files.consoleLog}`,
    '-kernel',
    manifest.kernel,
    '-initrd',
    manifest.initrd,
    '-append',
    GUEST_KERNEL_ARGS,
    '-netdev',
    `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22`,
    '-device',
    'virtio-net-pci,netdev=n0',
    '-qmp',
    `unix:${files.qmpSocket},server=on,wait=off`,
    '-chardev',
    `socket,id=vmemct-control,path=${files.controlSocket},server=on,wait=off`,
    '-mon',
    'chardev=vmemct-control,mode=control',
    '-D',
    files.traceLog,
    '-trace',
    'enable=virtio_mem_*',
    // Wall-clock stamps on trace lines: requests carry the time QEMU took them (retry_delay).
    '-msg',
    'timestamp=on',
  ];
  if (files.gdbSocket) args.push('-gdb', `unix:${files.gdbSocket},server=on,wait=off`);
  if (device.icount) args.push('-icount', 'shift=auto,sleep=off');
  if (device.suspendToRam)
    args.push('-global', device.machine === 'pc' ? 'PIIX4_PM.disable_s3=0' : 'ICH9-LPC.disable_s3=0');
  if (extraDevices.length > 0) args.push(...numaNodeArguments(memory, node, extraDevices));
  else if (node > 0) {
    args.push('-object', `memory-backend-ram,id=vmemct-ram0,size=${sizeArg(memory)}`);
    args.push('-numa', 'node,nodeid=0,memdev=vmemct-ram0');
    for (let n = 1; n <= node; n++) args.push('-numa', `node,nodeid=${n}`);
  }
  if (!device.withoutVirtioMem) {
    const placed = [
      ...(device.addr !== undefined ? [`memaddr=${device.addr}`] : []),
      ...(node > 0 ? [`node=${node}`] : []),
      // Always explicit: QEMU ≥ 8.1 turns it on by default for its newer machine types.
      `unplugged-inaccessible=${device.unpluggedInaccessible ? 'on' : 'off'}`,
    ];
    args.push(
      '-object',
      files.memoryFile
        ? // A file shared with the host: QEMU punches a hole for every block it unplugs.
          `memory-backend-file,id=vmemct-mem0,size=${sizeArg(regionSize)},mem-path=${files.memoryFile},share=on`
        : // reserve=off: a large region is backed only where blocks are plugged (as over qtest).
          `memory-backend-ram,id=vmemct-mem0,size=${sizeArg(regionSize)},reserve=off`,
      '-device',
      [
        `virtio-mem-pci,id=${GUEST_DEVICE_ID},memdev=vmemct-mem0,block-size=${sizeArg(blockSize)},requested-size=${sizeArg(requested)}`,
        ...placed,
      ].join(','),
    );
  }
  args.push(...extraDeviceArguments(blockSize, extraDevices));
  return args;
}

/**
 * The NUMA nodes of a multi-device guest: nodes 0 to the highest device node, boot memory split
 * over them in whole MiB (the last node takes the rest) and CPU n on node n for the two CPUs.
 */
function numaNodeArguments(memory: bigint, firstNode: number, extraDevices: readonly GuestExtraDevice[]): string[] {
  const nodes = Math.max(firstNode, ...extraDevices.map((d) => d.node)) + 1;
  for (const d of extraDevices)
    if (!Number.isInteger(d.node) || d.node < 0)
      throw new GuestOptionError(`node ${d.node} must be a NUMA node number`);
  const share = (memory / BigInt(nodes) / MiB) * MiB;
  if (share < 128n * MiB)
    throw new GuestOptionError(`--memory ${memory} leaves less than 128 MiB of boot memory on each of ${nodes} nodes`);
  const args: string[] = [];
  for (let n = 0; n < nodes; n++) {
    const size = n === nodes - 1 ? memory - share * BigInt(nodes - 1) : share;
    args.push('-object', `memory-backend-ram,id=vmemct-ram${n},size=${sizeArg(size)}`);
    args.push('-numa', `node,nodeid=${n},${n < 2 ? `cpus=${n},` : ''}memdev=vmemct-ram${n}`);
  }
  return args;
}

/** A `virtio-mem-pci` device `vm<i>` (i from 1) per further device, each on its node (block size by default the first device's). */
function extraDeviceArguments(firstBlockSize: bigint, extraDevices: readonly GuestExtraDevice[]): string[] {
  const args: string[] = [];
  extraDevices.forEach((d, i) => {
    const id = `vm${i + 1}`;
    const blockSize = d.blockSize ?? firstBlockSize;
    if (blockSize < MiB || (blockSize & (blockSize - 1n)) !== 0n)
      throw new GuestOptionError(`block size ${blockSize} of ${id} must be a power of two of at least 1 MiB`);
    const regionSize = d.regionSize ?? GiB;
    if (regionSize <= 0n || regionSize % blockSize !== 0n)
      throw new GuestOptionError(`region size ${regionSize} of ${id} must be a positive multiple of the block size`);
    if (d.addr !== undefined && (d.addr < DEVICE_MEMORY_BASE || d.addr % blockSize !== 0n))
      throw new GuestOptionError(`addr ${d.addr} of ${id} must be at or above 4 GiB and aligned to the block size`);
    args.push('-object', `memory-backend-ram,id=vmemct-mem${i + 1},size=${sizeArg(regionSize)},reserve=off`);
    args.push(
      '-device',
      [
        `virtio-mem-pci,id=${id},memdev=vmemct-mem${i + 1},block-size=${sizeArg(blockSize)},requested-size=0`,
        ...(d.addr !== undefined ? [`memaddr=${d.addr}`] : []),
        `node=${d.node}`,
        // As the first device: explicit, since QEMU ≥ 8.1 turns it on by default.
        `unplugged-inaccessible=${d.unpluggedInaccessible ? 'on' : 'off'}`,
      ].join(','),
    );
  });
  return args;
}
