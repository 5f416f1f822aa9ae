/**
 * The set-up record of one virtio-mem device: what a device is built from before a driver sees
 * it. One record serves every place a device is made: the adapter contract (the device a vector
 * runs against), the model host, the vhost-user back-end's default device and the payload of its
 * control extension's SETUP message (decoded into this record).
 */
import { formatHex } from './values';

/** A run of consecutive blocks, by index from the start of the device region. */
export interface BlockRange {
  readonly first: number;
  readonly count: number;
}

/** How to build a device. Sizes and addresses are bytes (`bigint`: they are 64-bit fields). */
export interface DeviceSetup {
  /** `block_size` of the configuration. */
  readonly block_size: bigint;
  /** `region_size` of the configuration. */
  readonly region_size: bigint;
  /** `addr` of the configuration: guest-physical start of the device region. */
  readonly addr: bigint;
  /** `requested_size` when the device starts. */
  readonly requested_size: bigint;
  /** `node_id` of the configuration. */
  readonly node_id: number;
  /** Features the device offers; `undefined` means the implementation's default. */
  readonly features?: bigint;
  /** Blocks plugged before a driver sees the device (empty for a fresh device). */
  readonly plugged: readonly BlockRange[];
  /**
   * `usable_region_size` when the device starts; `undefined` leaves it to the device (its
   * usable-region policy). A device that chooses its own (QEMU) cannot be told: a run then
   * compares this value with what the device chose.
   */
  readonly usable_region_size?: bigint;
}

/**
 * Why a set-up's `usable_region_size` is one no conforming device starts with, or undefined when
 * it is fine (or not stated): it must be a multiple of `block_size` (dev.cfg.6), at least
 * `requested_size` rounded up to a block (dev.cfg.4), at most `region_size`, and cover the
 * initially plugged blocks (the unusable region holds no plugged block).
 */
export function usableRegionSizeProblem(setup: DeviceSetup): string | undefined {
  const usable = setup.usable_region_size;
  if (usable === undefined || setup.block_size <= 0n) return undefined;
  const bs = setup.block_size;
  const requestedBlocks = (setup.requested_size + bs - 1n) / bs;
  const pluggedEnd = setup.plugged.reduce((end, r) => Math.max(end, r.first + r.count), 0);
  if (usable < 0n) return `usable_region_size ${usable} is negative`;
  if (usable % bs !== 0n)
    return `usable_region_size ${formatHex(usable)} is not a multiple of block_size ${formatHex(bs)}`;
  if (usable < requestedBlocks * bs)
    return `usable_region_size ${formatHex(usable)} is below requested_size ${formatHex(setup.requested_size)} (rounded up to a block: ${formatHex(requestedBlocks * bs)})`;
  if (usable > setup.region_size)
    return `usable_region_size ${formatHex(usable)} exceeds region_size ${formatHex(setup.region_size)}`;
  if (BigInt(pluggedEnd) * bs > usable)
    return `usable_region_size ${formatHex(usable)} does not cover the plugged block ${pluggedEnd - 1}`;
  return undefined;
}
