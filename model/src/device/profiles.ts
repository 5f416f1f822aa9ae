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
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  featureMask,
} from '../../../spec/src/index';
import { QEMU_10_0_PROFILE, QEMU_7_2_PROFILE } from './qemu-profiles';

export { QEMU_10_0_PROFILE, QEMU_7_2_PROFILE, QEMU_10_0_SOURCE, QEMU_7_2_SOURCE } from './qemu-profiles';

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
  /** Name used on the command line (`--profile qemu-10.0`). */
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
  /**
   * Where each knob's value comes from (a source link and the function that decides it), for
   * profiles of a real implementation; the profiles page shows them beside the values.
   */
  readonly knobSources?: Readonly<Partial<Record<ProfileKnob, string>>>;
  /** Caveats: what is inferred rather than observed. */
  readonly notes: readonly string[];
}

/** The fields of a {@link DeviceProfile} that are behaviour choices (not its name or documentation). */
export type ProfileKnob = Exclude<keyof DeviceProfile, 'name' | 'title' | 'source' | 'knobSources' | 'notes'>;

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

/**
 * The `qemu` profile of earlier releases: QEMU 7.2. `--profile qemu` still selects it (an alias,
 * {@link DEVICE_PROFILE_ALIASES}), so recordings, scripts and docs that say `qemu` keep meaning 7.2.
 */
export const QEMU_PROFILE: DeviceProfile = QEMU_7_2_PROFILE;

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

/** Every profile, by its own name (aliases are not repeated here: one entry, one profile). */
export const DEVICE_PROFILES: Readonly<Record<string, DeviceProfile>> = {
  spec: SPEC_PROFILE,
  'qemu-7.2': QEMU_7_2_PROFILE,
  'qemu-10.0': QEMU_10_0_PROFILE,
  'cloud-hypervisor': CLOUD_HYPERVISOR_PROFILE,
  firecracker: FIRECRACKER_PROFILE,
};

/**
 * Other names a profile answers to on the command line: `qemu` is QEMU 7.2, the one QEMU of
 * earlier releases, so existing scripts, recordings and docs keep their meaning.
 */
export const DEVICE_PROFILE_ALIASES: Readonly<Record<string, string>> = {
  qemu: 'qemu-7.2',
};

function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

/** Finds a profile by name or alias; undefined when there is none. */
export function findDeviceProfile(name: string): DeviceProfile | undefined {
  const canonical = own(DEVICE_PROFILE_ALIASES, name) ?? name;
  return own(DEVICE_PROFILES, canonical);
}

/** The names `--profile` accepts, for help and error texts: `spec, qemu-7.2, …, qemu (= qemu-7.2)`. */
export function deviceProfileNames(): string {
  return [
    ...Object.keys(DEVICE_PROFILES),
    ...Object.entries(DEVICE_PROFILE_ALIASES).map(([alias, name]) => `${alias} (= ${name})`),
  ].join(', ');
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
