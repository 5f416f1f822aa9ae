/**
 * The driver side of one split virtqueue (VIRTIO 1.4 §2.7), over a {@link GuestMemoryPort}: the
 * part of a virtio driver that places a chain, publishes it, notifies the device and collects the
 * used element. The QEMU adapter runs it over qtest, the vhost-user adapter over its memfd.
 *
 * The driver keeps one chain in flight and always uses the same shape of ring:
 * - the chain's buffers sit back to back (8-byte aligned) from {@link SplitQueueDriverOptions.buffers},
 *   so one write stores the readable bytes and pre-fills the writable ones with the suite's
 *   poison pattern ({@link writablePoison}: a device that reports more bytes than it wrote shows
 *   poison, not an earlier answer, and the runner can tell, §2.7.8.2) and one read collects what it wrote;
 * - the chain always starts at descriptor 0, so every avail ring entry (zeroed at set-up) already
 *   names the head and publishing is one write of `avail.idx`;
 * - the descriptor table is rewritten only when the chain's shape (sizes, directions) changes.
 *
 * A whole request is then one exchange of the port (one qtest batch): buffers, table if needed,
 * `avail.idx`, notify, then `used.idx`, the next used element and the writable buffers.
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
  virtqDescTableBytes,
  virtqUsedBytes,
  virtqUsedElemOffset,
  readLe16,
  le16Bytes,
  writablePoison,
} from '../../../spec/src/index';
import type { GuestMemoryAccess, GuestMemoryPort, SplitRingAddresses } from './guest-memory';

/** Where the driver keeps its queue and its buffers. */
export interface SplitQueueDriverOptions {
  readonly port: GuestMemoryPort;
  /** The queue's index (what a notification names). */
  readonly queueIndex: number;
  /** Queue size (entries), as the device reported it. */
  readonly size: number;
  readonly rings: SplitRingAddresses;
  /** Guest-physical address of the buffer area. */
  readonly buffers: bigint;
  /** Bytes of the buffer area: a chain whose laid-out buffers need more is refused. */
  readonly bufferBytes: number;
}

/** A chain to submit: device-readable buffers (in order) and the sizes of device-writable ones. */
export interface ChainBuffers {
  readonly readable: readonly Uint8Array[];
  readonly writableSizes: readonly number[];
}

/** What {@link SplitQueueDriver.submit} came back with. */
export type SubmitResult =
  /** The used element: the length the device reported and the first `length` bytes it wrote. */
  | { readonly kind: 'used'; readonly length: number; readonly written: Uint8Array }
  /** The device did not return the chain (the caller's wait gave up). */
  | { readonly kind: 'no-used-entry' }
  /** The chain does not fit this queue (nothing was submitted). */
  | { readonly kind: 'unfit'; readonly problem: string }
  /** The device broke the ring protocol (used index moved by more than one, or a foreign head). */
  | { readonly kind: 'bad-used-entry'; readonly problem: string };

/**
 * Called while the used index has not moved after a notification: resolves true to look again,
 * false to give up. It is where an adapter waits (an interrupt, a timer) and decides its bound.
 */
export type AwaitUsed = () => Promise<boolean>;

/** Where a chain's buffers go and the bytes to put there. */
export interface ChainPlacement {
  /** Descriptor count. */
  readonly count: number;
  /** Every buffer's size, readable ones first: with `readableOffsets.length`, the chain's shape. */
  readonly sizes: readonly number[];
  /** Bytes from the first buffer to the end of the last. */
  readonly total: number;
  /** Offsets of the readable buffers in the area. */
  readonly readableOffsets: readonly number[];
  /** The descriptor table for the chain (head 0). */
  readonly table: Uint8Array;
  /** Offsets of the writable buffers in the area, and their sizes. */
  readonly writableOffsets: readonly number[];
  readonly writableSizes: readonly number[];
  /** Where the writable part starts (`total` when there is none). */
  readonly writableStart: number;
}

/** Lays a chain's buffers out back to back (each 8-byte aligned) from `buffers` and builds its table. */
export function placeChain(chain: ChainBuffers, buffers: bigint): ChainPlacement {
  const sizes = [...chain.readable.map((b) => b.length), ...chain.writableSizes];
  const offsets: number[] = [];
  let at = 0;
  for (const size of sizes) {
    offsets.push(at);
    at += Math.ceil(size / 8) * 8;
  }
  const total = sizes.length > 0 ? offsets[offsets.length - 1]! + sizes[sizes.length - 1]! : 0;
  const table = new Uint8Array(VirtqDescLayout.size * sizes.length);
  sizes.forEach((len, i) => {
    const last = i + 1 === sizes.length;
    const flags = (last ? 0 : VIRTQ_DESC_F_NEXT) | (i >= chain.readable.length ? VIRTQ_DESC_F_WRITE : 0);
    encodeStructInto(
      VirtqDescLayout,
      { addr: buffers + BigInt(offsets[i]!), len, flags, next: last ? 0 : i + 1 },
      table,
      VirtqDescLayout.size * i,
    );
  });
  const writableOffsets = offsets.slice(chain.readable.length);
  return {
    count: sizes.length,
    sizes,
    total,
    readableOffsets: offsets.slice(0, chain.readable.length),
    table,
    writableOffsets,
    writableSizes: chain.writableSizes,
    writableStart: writableOffsets[0] ?? total,
  };
}

/** The driver's view of one split queue. */
export class SplitQueueDriver {
  private availIndex = 0;
  private usedIndex = 0;
  /** The placement whose descriptor table is in the ring (it is rewritten only when the chain's shape changes). */
  private placed: ChainPlacement | undefined;

  constructor(readonly options: SplitQueueDriverOptions) {}

  /**
   * Zeroes the descriptor table and both rings and starts again from index 0: what a driver does
   * before handing the queue's addresses to the device.
   */
  async clear(): Promise<void> {
    const { port, rings, size } = this.options;
    await port.exchange([
      { kind: 'zero', addr: rings.desc, length: virtqDescTableBytes(size) },
      { kind: 'zero', addr: rings.avail, length: virtqAvailBytes(size, true) },
      { kind: 'zero', addr: rings.used, length: virtqUsedBytes(size, true) },
    ]);
    this.availIndex = 0;
    this.usedIndex = 0;
    this.placed = undefined;
  }

  /**
   * Places `chain` on the queue, notifies the device and collects the used element: one exchange,
   * then `awaitUsed` and a new look at the used ring for as long as the used index has not moved
   * and `awaitUsed` says to look again.
   */
  async submit(chain: ChainBuffers, awaitUsed: AwaitUsed): Promise<SubmitResult> {
    const { port, size, rings, buffers, bufferBytes, queueIndex } = this.options;
    const placement = this.placed && sameShape(this.placed, chain) ? this.placed : placeChain(chain, buffers);
    if (placement.count === 0) return { kind: 'unfit', problem: 'a chain needs at least one buffer' };
    if (placement.count > size)
      return { kind: 'unfit', problem: `a chain of ${placement.count} descriptors does not fit a queue of ${size}` };
    if (placement.total > bufferBytes)
      return {
        kind: 'unfit',
        problem: `a chain of ${placement.total} bytes exceeds the ${bufferBytes}-byte buffer area`,
      };

    const accesses: GuestMemoryAccess[] = [];
    if (placement.total > 0) accesses.push({ kind: 'write', addr: buffers, bytes: chainImage(chain, placement) });
    if (placement !== this.placed) {
      accesses.push({ kind: 'write', addr: rings.desc, bytes: placement.table });
      this.placed = placement;
    }
    this.availIndex = (this.availIndex + 1) & VIRTQ_IDX_MASK;
    accesses.push({
      kind: 'write',
      addr: rings.avail + BigInt(VirtqAvailHeaderLayout.fields.idx.offset),
      bytes: le16Bytes(this.availIndex),
    });
    accesses.push({ kind: 'notify', queue: queueIndex });
    accesses.push(...this.collect(placement));
    let collected = await port.exchange(accesses);
    while (readLe16(collected[0]!) === this.usedIndex) {
      const again = await awaitUsed();
      collected = await port.exchange(this.collect(placement));
      if (!again && readLe16(collected[0]!) === this.usedIndex) return { kind: 'no-used-entry' };
    }
    return this.completion(placement, collected);
  }

  /** Reads of the used index, the next used element and the writable part of the chain. */
  private collect(placement: ChainPlacement): GuestMemoryAccess[] {
    const { rings, buffers, size } = this.options;
    const reads: GuestMemoryAccess[] = [
      { kind: 'read', addr: rings.used + BigInt(VirtqUsedHeaderLayout.fields.idx.offset), length: 2 },
      {
        kind: 'read',
        addr: rings.used + BigInt(virtqUsedElemOffset(this.usedIndex % size)),
        length: VirtqUsedElemLayout.size,
      },
    ];
    const writableBytes = placement.total - placement.writableStart;
    if (writableBytes > 0)
      reads.push({ kind: 'read', addr: buffers + BigInt(placement.writableStart), length: writableBytes });
    return reads;
  }

  private completion(placement: ChainPlacement, collected: readonly Uint8Array[]): SubmitResult {
    const newUsed = readLe16(collected[0]!);
    if (newUsed !== ((this.usedIndex + 1) & VIRTQ_IDX_MASK))
      return {
        kind: 'bad-used-entry',
        problem: `the used index moved from ${this.usedIndex} to ${newUsed} for one chain`,
      };
    this.usedIndex = newUsed;
    const elem = decodeStruct(VirtqUsedElemLayout, collected[1]!);
    if (elem.id !== 0)
      return { kind: 'bad-used-entry', problem: `the used entry names descriptor ${elem.id}, not the chain's head 0` };
    const area = collected[2] ?? new Uint8Array(0);
    // The device-writable buffers, in order, without the alignment gaps between them.
    const written = new Uint8Array(placement.writableSizes.reduce((a, b) => a + b, 0));
    let offset = 0;
    placement.writableOffsets.forEach((at, j) => {
      const size = placement.writableSizes[j]!;
      written.set(area.subarray(at - placement.writableStart, at - placement.writableStart + size), offset);
      offset += size;
    });
    return { kind: 'used', length: elem.len, written: written.slice(0, Math.min(elem.len, written.length)) };
  }
}

/**
 * The bytes of the buffer area for a chain: readable bytes in place, the writable buffers
 * pre-filled with the poison pattern (numbered across the writable part, gaps not counted), zeros
 * in the alignment gaps.
 */
function chainImage(chain: ChainBuffers, placement: ChainPlacement): Uint8Array {
  const image = new Uint8Array(placement.total);
  chain.readable.forEach((b, i) => image.set(b, placement.readableOffsets[i]!));
  let from = 0;
  placement.writableOffsets.forEach((at, j) => {
    const size = placement.writableSizes[j]!;
    image.set(writablePoison(size, from), at);
    from += size;
  });
  return image;
}

/** Whether `chain` has the buffer sizes and directions of `placement` (and so its descriptor table). */
function sameShape(placement: ChainPlacement, chain: ChainBuffers): boolean {
  const readable = chain.readable.length;
  if (readable !== placement.readableOffsets.length || readable + chain.writableSizes.length !== placement.count)
    return false;
  for (let i = 0; i < readable; i++) if (chain.readable[i]!.length !== placement.sizes[i]) return false;
  for (let i = 0; i < chain.writableSizes.length; i++)
    if (chain.writableSizes[i] !== placement.sizes[readable + i]) return false;
  return true;
}
