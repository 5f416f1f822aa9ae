/**
 * How the virtio layer reaches guest-physical memory.
 *
 * - {@link MappedGuestMemory}: memory the caller can touch directly and at once, such as a
 *   vhost-user back-end's mappings of the front-end's memfds. The device side of a split queue
 *   walks rings through it.
 * - {@link GuestMemoryPort}: what the driver side of a split queue needs: a list of accesses (and
 *   the queue notification) performed in order, as one exchange where the transport allows it.
 *   Over qtest that is one batch of commands per request; over a mapping it is direct
 *   ({@link mappedMemoryPort}).
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

/** One access of a {@link GuestMemoryPort} exchange. */
export type GuestMemoryAccess =
  | { readonly kind: 'write'; readonly addr: bigint; readonly bytes: Uint8Array }
  | { readonly kind: 'zero'; readonly addr: bigint; readonly length: number }
  | { readonly kind: 'read'; readonly addr: bigint; readonly length: number }
  /**
   * The driver notifies the device that queue `queue` has new buffers: a write of the queue index
   * to its notify address on virtio-pci, an eventfd signal on vhost-user. It sits among the
   * memory accesses so that a request (publish, notify, collect) can be one exchange.
   */
  | { readonly kind: 'notify'; readonly queue: number };

/** The driver's way to guest memory (and to the queue notification). */
export interface GuestMemoryPort {
  /**
   * Performs `accesses` in order and resolves with the bytes of each `read`, in order.
   * @throws when the transport fails (the caller's error type; the queue does not catch it).
   */
  exchange(accesses: readonly GuestMemoryAccess[]): Promise<Uint8Array[]>;
}

/**
 * A {@link GuestMemoryPort} over mapped memory: accesses happen at once, `notify` calls `notify`.
 * An access outside the mapping throws (the driver only touches memory it placed itself).
 */
export function mappedMemoryPort(memory: MappedGuestMemory, notify: (queue: number) => void): GuestMemoryPort {
  return {
    async exchange(accesses) {
      const reads: Uint8Array[] = [];
      for (const a of accesses) {
        if (a.kind === 'notify') {
          notify(a.queue);
          continue;
        }
        if (a.kind === 'read') {
          const bytes = memory.read(a.addr, a.length);
          if (!bytes) throw new RangeError(`read of [0x${a.addr.toString(16)}, +${a.length}) outside mapped memory`);
          reads.push(bytes);
          continue;
        }
        const bytes = a.kind === 'write' ? a.bytes : new Uint8Array(a.length);
        if (!memory.write(a.addr, bytes))
          throw new RangeError(`write of [0x${a.addr.toString(16)}, +${bytes.length}) outside mapped memory`);
      }
      return reads;
    },
  };
}
