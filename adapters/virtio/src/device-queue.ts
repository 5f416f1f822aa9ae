/**
 * The device side of a split virtqueue (VIRTIO 1.4 §2.7): take the chains the driver made
 * available, one at a time, and return each as a used element.
 *
 * Like rust-vmm's virtio-queue `Queue`, this knows rings and descriptors and nothing about the
 * device: a chain comes out as its readable bytes and its writable buffers, and the device's
 * answer goes back with {@link DeviceSplitQueue.complete}. Everything the driver wrote is checked
 * before it is used: descriptor indices against the table, the chain against loops, every buffer
 * against the mapped memory, and the order (device-readable buffers before device-writable ones).
 */
import {
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_IDX_MASK,
  VirtqAvailHeaderLayout,
  VirtqDescLayout,
  VirtqUsedElemLayout,
  VirtqUsedHeaderLayout,
  decodeStruct,
  encodeStructInto,
  virtqAvailBytes,
  virtqAvailEntryOffset,
  virtqDescTableBytes,
  virtqUsedBytes,
  virtqUsedElemOffset,
  readLe16,
  VIRTQ_MAX_SIZE,
} from '../../../spec/src/index';
import type { MappedGuestMemory, SplitRingAddresses } from './guest-memory';

/** The largest device-readable buffer the device side accepts (one descriptor). */
export const MAX_READABLE_BUFFER_BYTES = 1 << 20;

/**
 * Bounds on one chain's buffers, in bytes. Readable bytes are copied out of guest memory, so
 * their total bounds the memory one chain can cost; writable bytes are bounded alike so a chain
 * cannot claim more room than its device can use.
 */
export interface ChainLimits {
  /** Most device-readable bytes in one chain (all its readable descriptors together). */
  readonly readableBytes: number;
  /** Most device-writable bytes in one chain. */
  readonly writableBytes: number;
}

/** The limits when the device states none: one readable buffer's worth each. */
export const DEFAULT_CHAIN_LIMITS: ChainLimits = {
  readableBytes: MAX_READABLE_BUFFER_BYTES,
  writableBytes: MAX_READABLE_BUFFER_BYTES,
};

/**
 * How far the device got, in the free-running 16-bit ring indices. The queue updates it in
 * place, so the owner (a vhost-user back-end's vring record) keeps it across walks and can
 * report `nextAvail` (GET_VRING_BASE) or set both (SET_VRING_BASE).
 */
export interface SplitQueuePosition {
  /** The avail index of the next chain to take. */
  nextAvail: number;
  /** The used index the next used element gets. */
  nextUsed: number;
}

/** A device-writable buffer of a chain. */
export interface WritableBuffer {
  readonly addr: bigint;
  readonly len: number;
}

/** One chain taken from the avail ring. */
export interface DeviceChain {
  /** Its head descriptor (the id of its used element). */
  readonly head: number;
  /** The device-readable buffers' bytes, in chain order. */
  readonly readable: readonly Uint8Array[];
  /** The device-writable buffers, in chain order. */
  readonly writable: readonly WritableBuffer[];
}

/** What {@link DeviceSplitQueue.pop} found. */
export type PopResult =
  | { readonly kind: 'empty' }
  | { readonly kind: 'chain'; readonly chain: DeviceChain }
  /** The driver made a chain available that cannot be walked; it has been taken (nextAvail moved past it). */
  | { readonly kind: 'malformed'; readonly head: number; readonly problem: string };

/** The device's view of one split queue over mapped guest memory. */
export class DeviceSplitQueue {
  private constructor(
    private readonly memory: MappedGuestMemory,
    /** Queue size (entries). */
    readonly size: number,
    readonly rings: SplitRingAddresses,
    /** Updated in place as chains are taken and completed. */
    readonly position: SplitQueuePosition,
    readonly limits: ChainLimits,
  ) {}

  /**
   * The queue, or why it cannot be walked: a size that is not a power of two up to
   * {@link VIRTQ_MAX_SIZE} (§2.7), or any of the three areas not mapped as a
   * whole (the event-index fields are not included: vmemct never negotiates them). A chain that
   * loops, is longer than the queue or exceeds `limits` is malformed.
   */
  static open(
    memory: MappedGuestMemory,
    size: number,
    rings: SplitRingAddresses,
    position: SplitQueuePosition,
    limits: ChainLimits = DEFAULT_CHAIN_LIMITS,
  ): DeviceSplitQueue | string {
    if (!Number.isInteger(size) || size <= 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)) !== 0)
      return `queue size ${size} is not a power of two up to ${VIRTQ_MAX_SIZE}`;
    if (!memory.covers(rings.avail, BigInt(virtqAvailBytes(size))))
      return 'the driver area (avail ring) is not in mapped memory';
    if (!memory.covers(rings.used, BigInt(virtqUsedBytes(size))))
      return 'the device area (used ring) is not in mapped memory';
    if (!memory.covers(rings.desc, BigInt(virtqDescTableBytes(size))))
      return 'the descriptor table is not in mapped memory';
    return new DeviceSplitQueue(memory, size, rings, position, limits);
  }

  /** Takes the next available chain, if the driver published one since the last pop. */
  pop(): PopResult {
    const p = this.position;
    const availIdx = this.readU16(this.rings.avail + BigInt(VirtqAvailHeaderLayout.fields.idx.offset));
    if (availIdx === p.nextAvail) return { kind: 'empty' };
    const slot = p.nextAvail % this.size;
    const head = this.readU16(this.rings.avail + BigInt(virtqAvailEntryOffset(slot)));
    // At most `size` chains can be available at once; an index further ahead would make the
    // device replay stale ring slots (QEMU reports it as the driver moving the index too far).
    const published = (availIdx - p.nextAvail) & VIRTQ_IDX_MASK;
    if (published > this.size)
      return {
        kind: 'malformed',
        head,
        problem: `avail.idx ${availIdx} is ${published} entries past the next one to take (${p.nextAvail}); the queue holds ${this.size}`,
      };
    p.nextAvail = (p.nextAvail + 1) & VIRTQ_IDX_MASK;
    const chain = this.walk(head);
    return typeof chain === 'string' ? { kind: 'malformed', head, problem: chain } : { kind: 'chain', chain };
  }

  /**
   * Returns a chain to the driver: copies `written` into its writable buffers in order (as much
   * as fits), then publishes the used element {head, usedLength} and moves the used index.
   */
  complete(chain: DeviceChain, written: Uint8Array, usedLength: number): void {
    let at = 0;
    for (const w of chain.writable) {
      if (at >= written.length) break;
      const piece = written.subarray(at, at + w.len);
      this.memory.write(w.addr, piece);
      at += piece.length;
    }
    const p = this.position;
    const elem = new Uint8Array(VirtqUsedElemLayout.size);
    encodeStructInto(VirtqUsedElemLayout, { id: chain.head, len: usedLength }, elem);
    this.memory.write(this.rings.used + BigInt(virtqUsedElemOffset(p.nextUsed % this.size)), elem);
    p.nextUsed = (p.nextUsed + 1) & VIRTQ_IDX_MASK;
    const idx = new Uint8Array(2);
    new DataView(idx.buffer).setUint16(0, p.nextUsed, true);
    this.memory.write(this.rings.used + BigInt(VirtqUsedHeaderLayout.fields.idx.offset), idx);
  }

  /**
   * The chain's readable bytes and writable buffers, or why it cannot be walked. Every bound is
   * checked before anything is copied: a descriptor seen twice (a loop), more descriptors than
   * the queue has, and more readable or writable bytes than the limits allow.
   */
  private walk(head: number): DeviceChain | string {
    const readable: Uint8Array[] = [];
    const writable: WritableBuffer[] = [];
    const seen = new Uint8Array(this.size);
    let readableBytes = 0;
    let writableBytes = 0;
    let index = head;
    for (let hops = 0; ; hops++) {
      if (index >= this.size) return `descriptor index ${index} outside the table of ${this.size}`;
      if (hops >= this.size) return `the chain is longer than the queue size ${this.size}`;
      if (seen[index]) return `the chain loops (descriptor ${index} comes twice)`;
      seen[index] = 1;
      const raw = this.memory.read(this.rings.desc + BigInt(VirtqDescLayout.size * index), VirtqDescLayout.size);
      if (!raw) return `descriptor ${index} is not in mapped memory`;
      const d = decodeStruct(VirtqDescLayout, raw);
      if (d.flags & VIRTQ_DESC_F_WRITE) {
        writableBytes += d.len;
        if (writableBytes > this.limits.writableBytes)
          return `the chain's writable buffers exceed ${this.limits.writableBytes} bytes`;
        if (!this.memory.covers(d.addr, BigInt(d.len)))
          return `writable buffer [0x${d.addr.toString(16)}, +${d.len}) is not in shared memory`;
        writable.push({ addr: d.addr, len: d.len });
      } else {
        if (writable.length) return 'a device-readable descriptor follows a device-writable one';
        if (d.len > MAX_READABLE_BUFFER_BYTES) return `readable buffer of ${d.len} bytes is too large`;
        readableBytes += d.len;
        if (readableBytes > this.limits.readableBytes)
          return `the chain's readable buffers exceed ${this.limits.readableBytes} bytes`;
        const bytes = this.memory.read(d.addr, d.len);
        if (!bytes) return `readable buffer [0x${d.addr.toString(16)}, +${d.len}) is not in shared memory`;
        readable.push(bytes);
      }
      if (!(d.flags & VIRTQ_DESC_F_NEXT)) break;
      index = d.next;
    }
    return { head, readable, writable };
  }

  private readU16(addr: bigint): number {
    const bytes = this.memory.read(addr, 2);
    // open() checked that both ring areas are mapped.
    if (!bytes) throw new Error(`ring index at 0x${addr.toString(16)} is not in mapped memory`);
    return readLe16(bytes);
  }
}
