/**
 * Which guest a driver vector's device set-up needs, as a decision table: the QEMU options of
 * the guest whose device has that set-up, or why QEMU cannot build it (its own rule, so the
 * vector is `unsupported` with a reason that says what no guest of this QEMU can have).
 *
 * QEMU's rules (QEMU 7.2 on x86-64 unless the binary is newer, checked on a live guest):
 * - `block-size` is a power of two of at least 1 MiB;
 * - the memory backend's size is a positive multiple of the block size (`size=0` is refused);
 * - `memaddr` is aligned to the block size, in device memory (from 4 GiB on x86);
 * - `requested-size` is a multiple of the block size; above the region it is accepted on the
 *   command line only (`qom-set` refuses it), so such a guest boots with it;
 * - the region must end below the vCPU's physical address limit: 1 TiB with TCG's default 40
 *   bits (less the 64-bit PCI hole after device memory); `phys-bits=48` reaches further;
 * - `node` is one of the machine's NUMA nodes (at most 128);
 * - q35 and pc always offer ACPI_PXM (the machine has ACPI and NUMA state); UNPLUGGED_INACCESSIBLE
 *   is a property; PERSISTENT_SUSPEND is offered from QEMU 9.2 on (S3 enabled) and never before.
 *
 * Beyond what QEMU refuses, a large region needs a guest that can use it: the memmap of memory
 * the driver adds (64 bytes per 4 KiB) comes from boot memory, so 1 GiB of boot memory holds it
 * for about 53 GiB only. Such a guest boots with 3.25 GiB on i440fx (`pc`), which keeps the
 * region at 4 GiB (q35 with more than 2.75 GiB moves device memory up). Shrinking such a region
 * takes minutes under TCG (256 GiB: about 229 s), so its guest is drained by a system reset,
 * which unplugs everything at once.
 */
import { DEVICE_TYPE_FEATURES_MASK, FEATURE_MASKS, FEATURE_BITS, formatHex } from '../../../spec/src/index';
import type { DeviceSetup, DriverOptions, NamedDeviceSetup } from '../../core/src/contract';
import type { GuestDeviceOptions, GuestExtraDevice } from './guest-vm';

const MiB = 1n << 20n;
const GiB = 1n << 30n;

/** Where device memory begins on x86 (q35 and pc with boot memory below 4 GiB). */
const DEVICE_MEMORY_BASE = 4n * GiB;
/** QEMU's smallest virtio-mem block size. */
const MIN_BLOCK_SIZE = MiB;
/** QEMU's most NUMA nodes (MAX_NODES). */
const MAX_NUMA_NODES = 128;
/** Room above device memory for the 64-bit PCI hole QEMU places after it. */
const PCI_HOLE_ROOM = 64n * GiB;
/** The physical address space of TCG's vCPU by default (40 bits). */
const DEFAULT_ADDRESS_LIMIT = 1n << 40n;
/** The physical address bits a guest gets when its region ends beyond {@link DEFAULT_ADDRESS_LIMIT}. */
const WIDE_PHYS_BITS = 48;
/** Regions above this get the large-region guest (more boot memory, drained by reset). */
const LARGE_REGION = 64n * GiB;
/** Boot memory of the large-region guest: 3.25 GiB, below i440fx's 3.5 GiB under 4 GiB. */
const LARGE_REGION_MEMORY = 3328n * MiB;
/** The first QEMU version that offers PERSISTENT_SUSPEND on x86 (with S3 enabled). */
const PERSISTENT_SUSPEND_SINCE: readonly [number, number] = [9, 2];

/** The feature bits a set-up is compared on: device-specific (0-23) and VERSION_1. */
const RELEVANT_FEATURES = DEVICE_TYPE_FEATURES_MASK | FEATURE_MASKS.VERSION_1;

/** Everything a driver vector's guest is booted with; equal configurations share a guest. */
export interface DriverGuestConfiguration {
  readonly blockSize: bigint;
  readonly regionSize: bigint;
  readonly addr: bigint;
  readonly node: number;
  readonly unpluggedInaccessible: boolean;
  /** requested-size given on QEMU's command line: only when above the region (else the adapter sets it). */
  readonly bootRequestedSize?: bigint;
  /** The guest's clock runs by instructions (`-icount`, one vCPU): the driver's long timers pass quickly. */
  readonly icount: boolean;
  /** The QEMU binary ('' for the default one). */
  readonly qemu: string;
  /** The further devices of a multi-device guest (`vm1`, `vm2`, …), each with every field set. */
  readonly extraDevices?: readonly Required<GuestExtraDevice>[];
}

/** What the VMM is: which binary, which version (its rules on features depend on it). */
export interface DriverGuestVmm {
  /** The binary ('' for the default one). */
  readonly qemu: string;
  /** Its version, e.g. `7.2.0`. */
  readonly version: string;
}

/** A set-up's guest: its configuration, or why QEMU cannot build its device. */
export type DriverGuestPlan =
  | { readonly kind: 'guest'; readonly configuration: DriverGuestConfiguration }
  | { readonly kind: 'refused'; readonly reason: string };

/** Whether `version` is at least `[major, minor]`. */
function versionAtLeast(version: string, [major, minor]: readonly [number, number]): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

/** Names of the feature bits in `mask`. */
function featureNames(mask: bigint): string {
  const names: string[] = [];
  for (let bit = 0n; mask >> bit !== 0n; bit++) {
    if (((mask >> bit) & 1n) === 0n) continue;
    names.push(FEATURE_BITS.find((f) => BigInt(f.value) === bit)?.name ?? `feature bit ${bit}`);
  }
  return names.join(', ');
}

/** Why QEMU `vmm` cannot offer exactly `features`, or undefined. */
function featureRefusal(features: bigint, vmm: DriverGuestVmm): string | undefined {
  const wanted = features & RELEVANT_FEATURES;
  const persistent = versionAtLeast(vmm.version, PERSISTENT_SUSPEND_SINCE);
  const always =
    FEATURE_MASKS.VERSION_1 | FEATURE_MASKS.ACPI_PXM | (persistent ? FEATURE_MASKS.PERSISTENT_SUSPEND : 0n);
  const never = wanted & ~(always | FEATURE_MASKS.UNPLUGGED_INACCESSIBLE);
  const missing = always & ~wanted;
  // The rule of every QEMU version first: a set-up without ACPI_PXM runs on none of them.
  if ((missing & FEATURE_MASKS.ACPI_PXM) !== 0n)
    return 'QEMU always offers ACPI_PXM on x86: q35 and pc have ACPI and NUMA state, and there is no property to turn it off';
  if ((never & FEATURE_MASKS.PERSISTENT_SUSPEND) !== 0n)
    return `QEMU ${vmm.version} never offers PERSISTENT_SUSPEND (QEMU offers it on x86 from 9.2 on)`;
  if (never !== 0n) return `QEMU ${vmm.version} never offers ${featureNames(never)}`;
  if ((missing & FEATURE_MASKS.PERSISTENT_SUSPEND) !== 0n)
    return `QEMU ${vmm.version} always offers PERSISTENT_SUSPEND on x86 (S3 is enabled), and there is no property to turn it off`;
  if (missing !== 0n) return `QEMU always offers ${featureNames(missing)}`;
  return undefined;
}

/**
 * The guest a driver vector's set-up needs on QEMU `vmm`, or QEMU's rule that refuses it.
 * `icount` says whether the vector needs the guest's timers to run fast. Pure.
 */
export function planDriverGuest(
  setup: DeviceSetup,
  options: DriverOptions,
  vmm: DriverGuestVmm,
  icount: boolean,
): DriverGuestPlan {
  const refuse = (reason: string): DriverGuestPlan => ({ kind: 'refused', reason });
  const { block_size: blockSize, region_size: regionSize, addr, requested_size: requested, node_id: node } = setup;
  if (options.configPadding)
    return refuse('QEMU always reads the config padding as zero (it has no property to set it)');
  if (blockSize < MIN_BLOCK_SIZE || (blockSize & (blockSize - 1n)) !== 0n)
    return refuse(`QEMU requires the block size to be a power of two of at least 1 MiB (got ${formatHex(blockSize)})`);
  if (regionSize === 0n) return refuse('QEMU refuses an empty region (a memory backend of size 0)');
  if (regionSize % blockSize !== 0n)
    return refuse(
      `QEMU requires the region (the memory backend's size) to be a multiple of the block size (got ${formatHex(regionSize)})`,
    );
  if (addr % blockSize !== 0n)
    return refuse(`QEMU requires the region's address to be aligned to the block size (got ${formatHex(addr)})`);
  if (addr < DEVICE_MEMORY_BASE)
    return refuse(`QEMU places device memory at or above 4 GiB on x86 (got ${formatHex(addr)})`);
  if (requested % blockSize !== 0n)
    return refuse(
      `QEMU requires requested-size to be a multiple of the block size (got ${formatHex(requested)}), on the command line and by qom-set`,
    );
  const end = addr + regionSize;
  if (end > (1n << BigInt(WIDE_PHYS_BITS)) - PCI_HOLE_ROOM)
    return refuse(
      `the region ends at ${formatHex(end)}, beyond the ${WIDE_PHYS_BITS} physical address bits an x86 guest addresses with 4-level paging`,
    );
  if (node >= MAX_NUMA_NODES)
    return refuse(`QEMU's 'node' must name one of its NUMA nodes, of which it has at most ${MAX_NUMA_NODES}`);
  if (setup.features !== undefined) {
    const why = featureRefusal(setup.features, vmm);
    if (why !== undefined) return refuse(why);
  }
  return {
    kind: 'guest',
    configuration: {
      blockSize,
      regionSize,
      addr,
      node,
      unpluggedInaccessible: ((setup.features ?? 0n) & FEATURE_MASKS.UNPLUGGED_INACCESSIBLE) !== 0n,
      ...(requested > regionSize ? { bootRequestedSize: requested } : {}),
      icount,
      qemu: vmm.qemu,
    },
  };
}

/** Boot memory of a multi-device guest per NUMA node it has (split evenly over the nodes). */
const MEMORY_PER_NODE = 256n * MiB;
/** The most boot memory a q35 guest keeps below 4 GiB (so device memory still begins there). */
const Q35_LOW_MEMORY = 2816n * MiB;
/** Boot memory when nothing asks for more. */
const DEFAULT_MEMORY = GiB;

/** The boot memory of a guest with `nodes` NUMA nodes, or undefined when a q35 guest cannot hold it below 4 GiB. */
function multiNodeMemory(nodes: number): bigint | undefined {
  const wanted = BigInt(nodes) * MEMORY_PER_NODE;
  if (wanted > Q35_LOW_MEMORY) return undefined;
  return wanted > DEFAULT_MEMORY ? wanted : DEFAULT_MEMORY;
}

/**
 * The guest of a multi-device vector (`devices:`) on QEMU `vmm`: the first device is the guest's
 * `vm0`, the others its further devices, each checked by QEMU's rules as a single device is.
 * Refused besides: regions that overlap, a device that needs a large-region guest or a
 * requested-size above its region (each device is booted asking for nothing), and more NUMA
 * nodes than a q35 guest's boot memory below 4 GiB can be split over. Pure.
 */
export function planDriverGuestGroup(
  devices: readonly NamedDeviceSetup[],
  vmm: DriverGuestVmm,
  icount: boolean,
): DriverGuestPlan {
  if (devices.length === 0) return { kind: 'refused', reason: 'a multi-device vector with no devices' };
  const planned: { name: string; configuration: DriverGuestConfiguration }[] = [];
  for (const device of devices) {
    const plan = planDriverGuest(device.setup, device.options, vmm, icount);
    if (plan.kind === 'refused') return { kind: 'refused', reason: `device ${device.name}: ${plan.reason}` };
    const c = plan.configuration;
    if (c.bootRequestedSize !== undefined || c.regionSize > LARGE_REGION)
      return {
        kind: 'refused',
        reason: `device ${device.name}: a multi-device guest boots each device asking for nothing, with a region of at most 64 GiB`,
      };
    planned.push({ name: device.name, configuration: c });
  }
  for (let i = 0; i < planned.length; i++)
    for (let j = i + 1; j < planned.length; j++) {
      const a = planned[i]!;
      const b = planned[j]!;
      const aEnd = a.configuration.addr + a.configuration.regionSize;
      const bEnd = b.configuration.addr + b.configuration.regionSize;
      if (a.configuration.addr < bEnd && b.configuration.addr < aEnd)
        return { kind: 'refused', reason: `QEMU refuses devices whose regions overlap (${a.name} and ${b.name})` };
    }
  const nodes = Math.max(...planned.map((p) => p.configuration.node)) + 1;
  if (multiNodeMemory(nodes) === undefined)
    return {
      kind: 'refused',
      reason: `a multi-device guest splits its boot memory (below 4 GiB) over ${nodes} NUMA nodes, more than it can hold at ${MEMORY_PER_NODE >> 20n} MiB each`,
    };
  const [first, ...rest] = planned.map((p) => p.configuration);
  return {
    kind: 'guest',
    configuration: {
      ...first!,
      extraDevices: rest.map((c) => ({
        node: c.node,
        blockSize: c.blockSize,
        regionSize: c.regionSize,
        addr: c.addr,
        unpluggedInaccessible: c.unpluggedInaccessible,
      })),
    },
  };
}

/** One text per configuration (the guest slot's key). */
export function driverConfigurationKey(c: DriverGuestConfiguration): string {
  return [
    `block ${formatHex(c.blockSize)} region ${formatHex(c.regionSize)} at ${formatHex(c.addr)} node ${c.node}`,
    ...(c.extraDevices ?? []).map(
      (d, i) =>
        `vm${i + 1}: block ${formatHex(d.blockSize)} region ${formatHex(d.regionSize)} at ${formatHex(d.addr)} node ${d.node}${d.unpluggedInaccessible ? ' unplugged-inaccessible' : ''}`,
    ),
    ...(c.unpluggedInaccessible ? ['unplugged-inaccessible'] : []),
    ...(c.bootRequestedSize !== undefined ? [`requested ${formatHex(c.bootRequestedSize)} at boot`] : []),
    ...(c.icount ? ['icount'] : []),
    ...(c.qemu ? [`qemu ${c.qemu}`] : []),
  ].join(' ');
}

/** Whether a guest of this configuration is drained by a system reset rather than by shrinking (a large region). */
export function drainsByReset(c: DriverGuestConfiguration): boolean {
  return c.regionSize > LARGE_REGION;
}

/** Linux's memory block on x86-64: device blocks above it are handled whole (Big Block Mode). */
const LINUX_MEMORY_BLOCK = 128n * MiB;

/** How the adapter of a configuration's guest waits: bounds that fit what its driver must do. */
export interface DriverGuestTiming {
  /** How long without progress before an unconverged driver counts as stalled. */
  readonly stallMs?: number;
  /** Bound on each SSH and QMP command. */
  readonly commandTimeoutMs?: number;
  /** Bound on one settle. */
  readonly settleBoundMs?: number;
}

/**
 * The adapter's bounds for a guest of configuration `c` (undefined: the defaults). With blocks
 * above Linux's memory block the driver offlines a whole device block (1 GiB) before it sends an
 * UNPLUG, seconds of silence under TCG; a large region keeps both vCPUs busy adding memory, so
 * the guest answers SSH slowly while it grows, and the driver takes minutes to empty it.
 */
export function driverGuestTiming(c: DriverGuestConfiguration): DriverGuestTiming {
  return {
    ...(c.blockSize > LINUX_MEMORY_BLOCK ? { stallMs: 60_000 } : {}),
    // Emptying 70000 blocks took about 229 s under TCG.
    ...(c.regionSize > LARGE_REGION ? { commandTimeoutMs: 120_000, settleBoundMs: 400_000 } : {}),
  };
}

/** The QEMU options of a guest of configuration `c` (its device and machine). */
export function driverGuestDeviceOptions(c: DriverGuestConfiguration): GuestDeviceOptions {
  const large = c.regionSize > LARGE_REGION;
  const extraDevices = c.extraDevices ?? [];
  const end = [c, ...extraDevices].reduce(
    (most, d) => (d.addr + d.regionSize > most ? d.addr + d.regionSize : most),
    0n,
  );
  const nodes = Math.max(c.node, ...extraDevices.map((d) => d.node)) + 1;
  const memory = extraDevices.length > 0 ? multiNodeMemory(nodes) : undefined;
  return {
    blockSize: c.blockSize,
    regionSize: c.regionSize,
    addr: c.addr,
    node: c.node,
    unpluggedInaccessible: c.unpluggedInaccessible,
    requestedSize: c.bootRequestedSize ?? 0n,
    ...(c.bootRequestedSize !== undefined ? { requestedBeyondRegion: true } : {}),
    ...(end > DEFAULT_ADDRESS_LIMIT - PCI_HOLE_ROOM ? { physBits: WIDE_PHYS_BITS } : {}),
    ...(large ? { machine: 'pc' as const, memory: LARGE_REGION_MEMORY } : {}),
    ...(memory !== undefined && memory !== DEFAULT_MEMORY ? { memory } : {}),
    ...(c.icount ? { icount: true } : {}),
    ...(extraDevices.length > 0 ? { extraDevices } : {}),
  };
}
