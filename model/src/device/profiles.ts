/**
 * Device profiles: the deterministic choices a concrete implementation makes where the spec
 * leaves room. A profile never changes what is *conforming* (the model always reports the full
 * conforming set); it only decides which outcome the model device itself produces.
 *
 * The knobs follow the differences observed between implementations; a profile for another
 * device is a new entry in {@link DEVICE_PROFILES}.
 */
import {
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_ACPI_PXM,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  featureMask,
} from '../../../spec/src/index';

/** One check a device performs on a PLUG request. */
export type PlugCheck = 'range' | 'budget' | 'state';

/** How the device sizes `usable_region_size` for a given `requested_size`. */
export type UsablePolicy =
  /** min(region, requested + extent), rounded up or down to block_size; 0 when requested is 0. */
  | { readonly kind: 'extent'; readonly extent: bigint; readonly round: 'up' | 'down' }
  /** Always the whole region. */
  | { readonly kind: 'whole-region' }
  /** Grows to requested rounded up to `slotSize` when requested exceeds it; starts at 0. */
  | { readonly kind: 'slot'; readonly slotSize: bigint };

/** What a device does with a chain it cannot process (unknown type, short buffers). */
export type ViolationHandling =
  /** Marks itself broken (NEEDS_RESET, config interrupt) and returns no used entry. */
  | 'needs-reset'
  /** Writes an ERROR response (only possible when the response buffer has room). */
  | 'error-response'
  /** Returns the chain with a used length of 0 and writes nothing. */
  | 'used-length-zero'
  /** Returns nothing at all and does not flag itself: the driver waits forever. */
  | 'no-used-entry';

/** Which descriptor arrangements of the request the device accepts. */
export type LayoutStrictness =
  /** Any split of the 24 request bytes over device-readable descriptors (what Message Framing asks). */
  | 'any-split'
  /** The whole request in the first descriptor, at least 24 bytes. */
  | 'single-descriptor'
  /** The whole request in the first descriptor, exactly 24 bytes. */
  | 'exact-24';

/** The knobs of a device profile. */
export interface DeviceProfile {
  /** Name used on the command line (`--profile qemu`). */
  readonly name: string;
  /** One line: which implementation and version this reproduces. */
  readonly title: string;
  /** Where the behaviour was taken from. */
  readonly source: string;
  /** Order in which PLUG checks run; the first that fails decides the response. */
  readonly plugCheckOrder: readonly PlugCheck[];
  /** Response to a PLUG that would take plugged_size beyond requested_size. */
  readonly overBudget: 'NACK' | 'ERROR' | 'accept';
  readonly usablePolicy: UsablePolicy;
  /** What UNPLUG ALL does to usable_region_size: recompute from the policy, keep it, or set 0. */
  readonly unplugAllUsable: 'recompute' | 'keep' | 'zero';
  /** Handling of a request with an unknown type. */
  readonly unknownType: ViolationHandling;
  /** Handling of a chain whose request or response buffer is too short, or whose layout it refuses. */
  readonly malformedChain: ViolationHandling;
  readonly layoutStrictness: LayoutStrictness;
  /** Checks on a host-side change of requested_size. */
  readonly resizeValidation: {
    readonly aligned: boolean;
    readonly withinRegion: boolean;
    readonly mustDiffer: boolean;
  };
  /** Whether a resize to the current value still sends a config notification (dev.cfg.11 allows it). */
  readonly notifyOnUnchangedResize: boolean;
  /** What a system reset does to blocks: unplug everything (dev.op.7) or keep them. */
  readonly systemReset: 'unplug-all' | 'keep';
  /** What happens when UNPLUGGED_INACCESSIBLE is offered but not accepted (dev.init.1). */
  readonly unpluggedInaccessibleRequired: 'no' | 'refuse-features-ok' | 'fail-driver-ok';
  /**
   * What a wake-up from suspend-to-RAM does to the blocks when VIRTIO_MEM_F_PERSISTENT_SUSPEND
   * was not negotiated (the spec leaves it open): unplug everything as a system reset would, or
   * keep them. With the feature negotiated blocks are always kept (dev.op.8).
   */
  readonly suspendWithoutPersistence: 'unplug-all' | 'keep';
  /**
   * Whether the platform can suspend to RAM with plugged blocks and keep them; when it can, the
   * device should offer VIRTIO_MEM_F_PERSISTENT_SUSPEND (dev.init.4).
   */
  readonly platformCanSuspend: boolean;
  /**
   * Whether CPU accesses to unplugged blocks are refused (`guarded`: beyond the usable region
   * always, and everywhere with UNPLUGGED_INACCESSIBLE negotiated) or the whole region is plain
   * RAM (`open`: every access inside the region succeeds, writes to unplugged blocks are kept
   * until the next unplug discards them). The refusals are the driver's obligations (drv.op.1,
   * drv.op.2, drv.op.5); a device need not enforce them.
   */
  readonly unpluggedMemory: 'guarded' | 'open';
  /**
   * What UNPLUG ALL answers while the host holds the device busy and nothing is plugged: BUSY,
   * as for any request while busy, or ACK at once, since there is nothing to unplug. Both are
   * conforming (dev.unplugall.3 permits BUSY, dev.unplugall.4 the ACK).
   */
  readonly unplugAllWhileBusy: 'busy' | 'ack-when-empty';
  /**
   * What a system reset does to the blocks while the host holds the device busy: what
   * `systemReset` says, or keep them (a device that unplugs on reset only when not busy).
   */
  readonly systemResetWhileBusy: 'as-system-reset' | 'keep';
  /** Features offered when a vector does not say. */
  readonly defaultFeatures: bigint;
  /** Caveats: what is inferred rather than observed. */
  readonly notes: readonly string[];
}

const MiB = 1n << 20n;

/**
 * The spec's own profile: the tightest conforming choices. ERROR whenever the spec mandates it
 * (state errors win over the budget), NACK for over-budget plugs as the descriptive text says,
 * usable_region_size exactly requested_size, notifications only on change.
 */
export const SPEC_PROFILE: DeviceProfile = {
  name: 'spec',
  title: 'VIRTIO 1.4 §5.15, tightest conforming choices',
  source: 'oasis-tcs/virtio-spec device-types/mem/description.tex',
  plugCheckOrder: ['range', 'state', 'budget'],
  overBudget: 'NACK',
  usablePolicy: { kind: 'extent', extent: 0n, round: 'up' },
  unplugAllUsable: 'recompute',
  unknownType: 'needs-reset',
  malformedChain: 'needs-reset',
  layoutStrictness: 'any-split',
  resizeValidation: { aligned: true, withinRegion: true, mustDiffer: false },
  notifyOnUnchangedResize: false,
  systemReset: 'unplug-all',
  unpluggedInaccessibleRequired: 'no',
  suspendWithoutPersistence: 'keep',
  platformCanSuspend: true,
  unpluggedMemory: 'guarded',
  // BUSY is for a request the device cannot process right now (§5.15.6.5.2); with nothing
  // plugged there is nothing to process, so the tightest device ACKs.
  unplugAllWhileBusy: 'ack-when-empty',
  // dev.op.7 (a SHOULD) asks for every block unplugged on a system reset; a busy host changes nothing.
  systemResetWhileBusy: 'as-system-reset',
  // The platform can suspend with plugged blocks, so PERSISTENT_SUSPEND is offered (dev.init.4).
  defaultFeatures: featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND),
  notes: [
    'usable_region_size equal to requested_size leaves a driver no placement freedom; it is conforming, and the hardest case for drivers.',
  ],
};

/** QEMU 7.2 `virtio-mem-pci` on x86-64 with a RAM backend. */
export const QEMU_PROFILE: DeviceProfile = {
  name: 'qemu',
  title: 'QEMU 7.2 virtio-mem-pci (x86-64, memory-backend-ram)',
  source: 'qemu/qemu hw/virtio/virtio-mem.c',
  // Range first, then the budget, then the block state: an over-budget plug of plugged blocks is NACKed.
  plugCheckOrder: ['range', 'budget', 'state'],
  overBudget: 'NACK',
  // Two 128 MiB Linux memory blocks of margin on x86-64, rounded up to block_size.
  usablePolicy: { kind: 'extent', extent: 256n * MiB, round: 'up' },
  unplugAllUsable: 'recompute',
  unknownType: 'needs-reset',
  malformedChain: 'needs-reset',
  layoutStrictness: 'any-split',
  resizeValidation: { aligned: true, withinRegion: true, mustDiffer: false },
  notifyOnUnchangedResize: true,
  systemReset: 'unplug-all',
  // unplugged-inaccessible is "auto" for 7.2 machine types, which resolves to off for anonymous
  // RAM; when it is offered, validate_features refuses a driver that does not accept it.
  unpluggedInaccessibleRequired: 'refuse-features-ok',
  // The wake-up from S3 was a full system reset in 7.2: virtio-mem unplugged everything (the
  // WAKEUP reset type that keeps blocks came with PERSISTENT_SUSPEND, which 7.2 does not offer).
  suspendWithoutPersistence: 'unplug-all',
  // Blocks do not survive a suspend, so there is no persistent suspend to offer (dev.init.4 does not apply).
  platformCanSuspend: false,
  // The whole memory backend is mapped into the guest in 7.2 (no per-block protection, even with
  // unplugged-inaccessible=on); unplugging discards a block's pages, plugging does not clear them.
  unpluggedMemory: 'open',
  // 7.2's UNPLUG ALL asks virtio_mem_is_busy() (a migration is active) before looking at the
  // plugged size, so it answers BUSY even with nothing plugged (8.1 moved the check after it).
  unplugAllWhileBusy: 'busy',
  // The system reset unplugs through virtio_mem_unplug_all(), which refuses while a migration is
  // active: the blocks stay plugged (seen on 7.2 and 10.0, vmem.dev.hostbusy.system-reset-while-busy).
  systemResetWhileBusy: 'keep',
  defaultFeatures: featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_ACPI_PXM),
  notes: [
    'BUSY only during migration or host failures; the model produces it when BUSY is injected or the host holds it busy.',
    'A malformed chain or unknown type marks the device broken: NEEDS_RESET, no used entry.',
  ],
};

/** cloud-hypervisor `virtio-devices/src/mem.rs` (code reading). */
export const CLOUD_HYPERVISOR_PROFILE: DeviceProfile = {
  name: 'cloud-hypervisor',
  title: 'cloud-hypervisor virtio-mem (code reading)',
  source: 'cloud-hypervisor/cloud-hypervisor virtio-devices/src/mem.rs',
  // The budget is checked before the range: nb_blocks = 0 while over budget yields NACK (dev.plug.3 says ERROR).
  plugCheckOrder: ['budget', 'range', 'state'],
  overBudget: 'NACK',
  usablePolicy: { kind: 'whole-region' },
  unplugAllUsable: 'keep',
  unknownType: 'error-response',
  malformedChain: 'used-length-zero',
  layoutStrictness: 'single-descriptor',
  resizeValidation: { aligned: true, withinRegion: true, mustDiffer: true },
  notifyOnUnchangedResize: false,
  systemReset: 'keep',
  unpluggedInaccessibleRequired: 'no',
  suspendWithoutPersistence: 'keep',
  platformCanSuspend: false,
  unpluggedMemory: 'guarded',
  // No host-made busy period in this device; the model's stands in for one and ACKs an empty UNPLUG ALL.
  unplugAllWhileBusy: 'ack-when-empty',
  systemResetWhileBusy: 'as-system-reset',
  defaultFeatures: featureMask(VIRTIO_F_VERSION_1),
  notes: [
    'Behaviour on system reset is not established from the source read; assumed to keep blocks.',
    'No suspend-to-RAM support is known; behaviour on a wake-up is assumed to keep blocks.',
  ],
};

/** Firecracker virtio-mem (added 2025; code reading). */
export const FIRECRACKER_PROFILE: DeviceProfile = {
  name: 'firecracker',
  title: 'Firecracker virtio-mem (code reading)',
  source: 'firecracker-microvm/firecracker src/vmm/src/devices/virtio/mem/',
  plugCheckOrder: ['range', 'budget', 'state'],
  overBudget: 'ERROR',
  usablePolicy: { kind: 'slot', slotSize: 128n * MiB },
  // Sets usable_region_size to 0 even when requested_size > 0, which breaks dev.cfg.4.
  unplugAllUsable: 'zero',
  unknownType: 'no-used-entry',
  malformedChain: 'no-used-entry',
  layoutStrictness: 'single-descriptor',
  resizeValidation: { aligned: true, withinRegion: true, mustDiffer: false },
  notifyOnUnchangedResize: true,
  systemReset: 'keep',
  unpluggedInaccessibleRequired: 'fail-driver-ok',
  suspendWithoutPersistence: 'keep',
  platformCanSuspend: false,
  unpluggedMemory: 'guarded',
  // No host-made busy period in this device; the model's stands in for one and ACKs an empty UNPLUG ALL.
  unplugAllWhileBusy: 'ack-when-empty',
  systemResetWhileBusy: 'as-system-reset',
  defaultFeatures: featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE),
  notes: [
    'Behaviour on system reset is not established from the source read; assumed to keep blocks.',
    'No suspend-to-RAM support is known; behaviour on a wake-up is assumed to keep blocks.',
  ],
};

/** Every profile, by name. */
export const DEVICE_PROFILES: Readonly<Record<string, DeviceProfile>> = {
  spec: SPEC_PROFILE,
  qemu: QEMU_PROFILE,
  'cloud-hypervisor': CLOUD_HYPERVISOR_PROFILE,
  firecracker: FIRECRACKER_PROFILE,
};

/** Finds a profile by name; undefined when there is none. */
export function findDeviceProfile(name: string): DeviceProfile | undefined {
  return Object.prototype.hasOwnProperty.call(DEVICE_PROFILES, name) ? DEVICE_PROFILES[name] : undefined;
}

function roundUp(value: bigint, unit: bigint): bigint {
  return unit === 0n ? value : ((value + unit - 1n) / unit) * unit;
}

function roundDown(value: bigint, unit: bigint): bigint {
  return unit === 0n ? value : (value / unit) * unit;
}

/**
 * The usable_region_size a policy wants for `requested` (before any grow-only rule).
 * `current` matters only for the slot policy, which never shrinks on its own.
 */
export function usableFor(
  policy: UsablePolicy,
  requested: bigint,
  blockSize: bigint,
  regionSize: bigint,
  current: bigint,
): bigint {
  switch (policy.kind) {
    case 'whole-region':
      return regionSize;
    case 'extent': {
      if (requested === 0n) return 0n;
      const wanted = requested + policy.extent < regionSize ? requested + policy.extent : regionSize;
      return policy.round === 'up' ? roundUp(wanted, blockSize) : roundDown(wanted, blockSize);
    }
    case 'slot': {
      if (current >= requested) return current;
      const slots = roundUp(requested, policy.slotSize);
      return slots < regionSize ? slots : regionSize;
    }
  }
}
