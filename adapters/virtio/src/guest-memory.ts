/**
 * How the virtio layer reaches guest-physical memory.
 *
 * - {@link MappedGuestMemory}: memory the caller can touch directly and at once, such as a
 *   vhost-user back-end's mappings of the front-end's memfds. The device side of a split queue
 *   walks rings through it.
 */

/** Guest-physical memory reachable synchronously (a mapping). */
export interface MappedGuestMemory {
  /** The bytes of [addr, addr + length), or undefined when the range is not mapped as a whole. */
  read(addr: bigint, length: number): Uint8Array | undefined;
  /** Writes `bytes` at `addr`; false (and nothing written) when the range is not mapped as a whole. */
  write(addr: bigint, bytes: Uint8Array): boolean;
  /** Whether [addr, addr + length) is mapped as a whole. */
  covers(addr: bigint, length: bigint): boolean;
}

/** Where the three areas of a split queue are, as guest-physical addresses. */
export interface SplitRingAddresses {
  /** The descriptor table. */
  readonly desc: bigint;
  /** The driver area (avail ring). */
  readonly avail: bigint;
  /** The device area (used ring). */
  readonly used: bigint;
}
