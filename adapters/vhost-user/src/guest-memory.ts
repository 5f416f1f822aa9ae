/**
 * Memory regions shared over vhost-user (SET_MEM_TABLE, ADD_MEM_REG): each is a mapping of the
 * front-end's fd, found by guest-physical address (descriptors) or by front-end user address
 * (SET_VRING_ADDR). It is the {@link MappedGuestMemory} the back-end's split queue walks.
 */
import type { MappedGuestMemory } from '../../virtio/src/index';
import type { MappingHandle, VhostNative } from './native';

/** One mapped region. */
export interface MappedRegion {
  readonly guestAddress: bigint;
  readonly size: bigint;
  readonly userAddress: bigint;
  readonly mmapOffset: bigint;
  /** Maps [0, mmapOffset + size) of the fd; the region starts at `mmapOffset` in it. */
  readonly mapping: MappingHandle;
}

/** A place in one region. */
export interface Located {
  readonly region: MappedRegion;
  /** Offset inside the mapping (mmapOffset already added). */
  readonly offset: bigint;
}

/** The back-end's view of the front-end's memory. */
export class GuestMemory implements MappedGuestMemory {
  private regions: MappedRegion[] = [];

  constructor(private readonly native: VhostNative) {}

  get count(): number {
    return this.regions.length;
  }

  /** Every region, in the order they were added. */
  list(): readonly MappedRegion[] {
    return this.regions;
  }

  /**
   * Maps a region from the front-end's fd. The fd is closed here whatever happens (the mapping
   * keeps the memory alive).
   * @throws Error when the region is empty, overlaps another one in guest addresses, or cannot be mapped.
   */
  add(fd: number, guestAddress: bigint, size: bigint, userAddress: bigint, mmapOffset: bigint): MappedRegion {
    try {
      if (size <= 0n) throw new Error('region of size 0');
      const end = guestAddress + size;
      const clash = this.regions.find((r) => guestAddress < r.guestAddress + r.size && r.guestAddress < end);
      if (clash)
        throw new Error(
          `region [0x${guestAddress.toString(16)}, 0x${end.toString(16)}) overlaps [0x${clash.guestAddress.toString(16)}, 0x${(clash.guestAddress + clash.size).toString(16)})`,
        );
      const mapping = this.native.map(fd, mmapOffset + size, 0);
      const region: MappedRegion = { guestAddress, size, userAddress, mmapOffset, mapping };
      this.regions.push(region);
      return region;
    } finally {
      this.native.close(fd);
    }
  }

  /** Unmaps the region with this guest address and size; false when there is none. */
  remove(guestAddress: bigint, size: bigint): boolean {
    const i = this.regions.findIndex((r) => r.guestAddress === guestAddress && r.size === size);
    if (i < 0) return false;
    this.native.unmap(this.regions[i]!.mapping);
    this.regions.splice(i, 1);
    return true;
  }

  /** Unmaps everything. */
  clear(): void {
    for (const r of this.regions) this.native.unmap(r.mapping);
    this.regions = [];
  }

  /** The region holding [gpa, gpa + length) entirely, or undefined. */
  byGuestAddress(gpa: bigint, length: bigint): Located | undefined {
    for (const r of this.regions) {
      if (gpa >= r.guestAddress && gpa + length <= r.guestAddress + r.size)
        return { region: r, offset: r.mmapOffset + (gpa - r.guestAddress) };
    }
    return undefined;
  }

  /** The region holding front-end user address range [ua, ua + length), or undefined. */
  byUserAddress(ua: bigint, length: bigint): Located | undefined {
    for (const r of this.regions) {
      if (ua >= r.userAddress && ua + length <= r.userAddress + r.size)
        return { region: r, offset: r.mmapOffset + (ua - r.userAddress) };
    }
    return undefined;
  }

  /**
   * The guest-physical address of front-end user address range [ua, ua + length), when one region
   * holds it (vring addresses come as user addresses, descriptors carry guest addresses).
   */
  userToGuest(ua: bigint, length: bigint): bigint | undefined {
    const at = this.byUserAddress(ua, length);
    return at ? at.region.guestAddress + (ua - at.region.userAddress) : undefined;
  }

  /** Whether one region holds [gpa, gpa + length). */
  covers(gpa: bigint, length: bigint): boolean {
    return this.byGuestAddress(gpa, length) !== undefined;
  }

  /** Reads guest memory; undefined when the range is not inside one region. */
  read(gpa: bigint, length: number): Buffer | undefined {
    const at = this.byGuestAddress(gpa, BigInt(length));
    return at ? this.native.read(at.region.mapping, at.offset, length) : undefined;
  }

  /** Writes guest memory; false when the range is not inside one region. */
  write(gpa: bigint, bytes: Uint8Array): boolean {
    const at = this.byGuestAddress(gpa, BigInt(bytes.length));
    if (!at) return false;
    this.native.write(at.region.mapping, at.offset, bytes);
    return true;
  }

  /**
   * Discards [gpa, gpa + length) wherever regions cover it (MADV_REMOVE: the pages are freed
   * and read back as zeros). Returns the bytes discarded.
   */
  discardGuest(gpa: bigint, length: bigint): bigint {
    let done = 0n;
    const end = gpa + length;
    for (const r of this.regions) {
      const from = gpa > r.guestAddress ? gpa : r.guestAddress;
      const to = end < r.guestAddress + r.size ? end : r.guestAddress + r.size;
      if (from >= to) continue;
      this.discardMapping(r.mapping, r.mmapOffset + (from - r.guestAddress), r.mmapOffset + (to - r.guestAddress));
      done += to - from;
    }
    return done;
  }

  /** Frees whole pages of [start, end) and zeroes the partial pages at either edge. */
  private discardMapping(mapping: MappingHandle, start: bigint, end: bigint): void {
    const pageStart = ((start + PAGE - 1n) / PAGE) * PAGE;
    const pageEnd = (end / PAGE) * PAGE;
    if (pageStart < pageEnd) {
      this.native.discard(mapping, pageStart, pageEnd - pageStart);
      this.zero(mapping, start, pageStart);
      this.zero(mapping, pageEnd, end);
    } else {
      this.zero(mapping, start, end);
    }
  }

  private zero(mapping: MappingHandle, start: bigint, end: bigint): void {
    if (end > start) this.native.write(mapping, start, Buffer.alloc(Number(end - start)));
  }
}

const PAGE = 4096n;

/** One mapped region seen as guest memory: the front-end's RAM, where its driver keeps the ring and buffers. */
export class RegionMemory implements MappedGuestMemory {
  constructor(
    private readonly native: VhostNative,
    private readonly mapping: MappingHandle,
    readonly guestAddress: bigint,
    readonly size: bigint,
  ) {}

  /** Whether [gpa, gpa + length) is inside the region. */
  covers(gpa: bigint, length: bigint): boolean {
    return gpa >= this.guestAddress && length >= 0n && gpa + length <= this.guestAddress + this.size;
  }

  /** Reads the region; undefined outside it. */
  read(gpa: bigint, length: number): Buffer | undefined {
    return this.covers(gpa, BigInt(length))
      ? this.native.read(this.mapping, gpa - this.guestAddress, length)
      : undefined;
  }

  /** Writes the region; false (nothing written) outside it. */
  write(gpa: bigint, bytes: Uint8Array): boolean {
    if (!this.covers(gpa, BigInt(bytes.length))) return false;
    this.native.write(this.mapping, gpa - this.guestAddress, bytes);
    return true;
  }
}
