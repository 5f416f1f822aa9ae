/**
 * The set-up record of one virtio-mem device: what a device is built from before a driver sees
 * it. One record serves every place a device is made: the adapter contract (the device a vector
 * runs against), the model host, the vhost-user back-end's default device and the payload of its
 * control extension's SETUP message (decoded into this record).
 */

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
}
