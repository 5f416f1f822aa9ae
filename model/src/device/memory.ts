/**
 * The content of the device-managed memory, stored sparsely: only pages that were written with
 * nonzero data cost memory, so a 1 TiB region allocates nothing up front.
 *
 * This module only stores bytes. Which block may be read or written (plugged, unplugged inside
 * the usable region, beyond it; VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE) is decided by the device
 * (§5.15.6.1/§5.15.6.2, dev.op.2 … dev.op.5), which also discards the content of blocks it
 * unplugs. Pure: no I/O, no clocks, no randomness.
 */

/** Why an access to device memory was refused. */
export type MemoryAccessFailure =
  /** Some byte lies outside [addr, addr + region_size). */
  | 'outside-region'
  /** Some byte lies in an unplugged block beyond usable_region_size (drv.op.2, drv.op.1). */
  | 'beyond-usable'
  /** Some byte lies in an unplugged block and VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE was negotiated (drv.op.5). */
  | 'inaccessible';

/**
 * Result of a memory read or write. A successful read carries the bytes read; a successful
 * write carries an empty array.
 */
export type MemoryAccessResult =
  | { readonly ok: true; readonly data: Uint8Array }
  | { readonly ok: false; readonly reason: MemoryAccessFailure; readonly detail: string };

/** Granule of the sparse store in bytes; pages never straddle a block boundary. */
export const MEMORY_PAGE_SIZE = 4096;

const PAGE = BigInt(MEMORY_PAGE_SIZE);

/**
 * Sparse byte store over a region of equal blocks, addressed by the byte offset from the start of
 * the region. Content is kept per block (then per page inside the block) so that discarding the
 * content of a block is one map deletion. Bytes never written read as zero.
 */
export class SparseMemory {
  private readonly pages = new Map<number, Map<number, Uint8Array>>();
  private storedByteCount = 0;
  private version = 0;

  /** @param blockSize size of one memory block in bytes (> 0). */
  constructor(readonly blockSize: bigint) {
    if (blockSize <= 0n) throw new RangeError(`block size must be > 0 (got ${blockSize})`);
  }

  /** Bytes of content currently stored (whole pages; the last page of a block may be shorter). */
  get storedBytes(): number {
    return this.storedByteCount;
  }

  /** Number of blocks holding stored content. */
  get storedBlocks(): number {
    return this.pages.size;
  }

  /**
   * A value that changes whenever stored content may have changed (writes, discards): equal
   * digests mean equal contents. Constant time.
   */
  get digest(): string {
    return `v${this.version}`;
  }

  /** Copies the content of the region bytes [offset, offset + out.length) into `out` (zeros where nothing is stored). */
  read(offset: bigint, out: Uint8Array): void {
    out.fill(0);
    if (this.pages.size === 0) return;
    this.forEachChunk(offset, out.length, (block, page, pageOffset, at, length) => {
      const stored = this.pages.get(block)?.get(page);
      if (stored) out.set(stored.subarray(pageOffset, pageOffset + length), at);
    });
  }

  /**
   * Stores `data` at region offset `offset`, skipping every chunk whose block `keep(block)`
   * rejects (the device passes "is plugged", so writes to unplugged blocks are discarded).
   */
  write(offset: bigint, data: Uint8Array, keep: (block: number) => boolean): void {
    let changed = false;
    this.forEachChunk(offset, data.length, (block, page, pageOffset, at, length) => {
      if (!keep(block)) return;
      const chunk = data.subarray(at, at + length);
      let blockPages = this.pages.get(block);
      let stored = blockPages?.get(page);
      if (!stored) {
        // A page never written reads as zero: writing zeros there changes nothing.
        if (chunk.every((b) => b === 0)) return;
        stored = new Uint8Array(this.pageLength(page));
        if (!blockPages) {
          blockPages = new Map();
          this.pages.set(block, blockPages);
        }
        blockPages.set(page, stored);
        this.storedByteCount += stored.length;
      }
      stored.set(chunk, pageOffset);
      changed = true;
    });
    if (changed) this.version++;
  }

  /**
   * Sets the region bytes [offset, offset + length) to zero where `keep(block)` accepts the block,
   * as {@link write} of that many zeros would, in time proportional to the content stored (not to
   * `length`): pages never written already read as zero.
   */
  zero(offset: bigint, length: number, keep: (block: number) => boolean): void {
    const end = offset + BigInt(length);
    let changed = false;
    for (const [block, blockPages] of this.pages) {
      if (!keep(block)) continue;
      const blockStart = BigInt(block) * this.blockSize;
      if (blockStart >= end || blockStart + this.blockSize <= offset) continue;
      for (const [page, stored] of blockPages) {
        const pageStart = blockStart + BigInt(page) * PAGE;
        const from = offset > pageStart ? Number(offset - pageStart) : 0;
        const to = end < pageStart + BigInt(stored.length) ? Number(end - pageStart) : stored.length;
        if (from >= to) continue;
        stored.fill(0, from, to);
        changed = true;
      }
    }
    if (changed) this.version++;
  }

  /** Forgets the content of blocks [first, first + count) (they read as zero afterwards). */
  discardBlocks(first: number, count: number): void {
    if (this.pages.size === 0 || count <= 0) return;
    if (count < this.pages.size) {
      for (let block = first; block < first + count; block++) this.discardBlock(block);
    } else {
      for (const block of [...this.pages.keys()]) if (block >= first && block < first + count) this.discardBlock(block);
    }
  }

  /** Forgets all content. */
  discardAll(): void {
    if (this.pages.size === 0) return;
    this.pages.clear();
    this.storedByteCount = 0;
    this.version++;
  }

  private discardBlock(block: number): void {
    const blockPages = this.pages.get(block);
    if (!blockPages) return;
    for (const page of blockPages.values()) this.storedByteCount -= page.length;
    this.pages.delete(block);
    this.version++;
  }

  /** Length of page `page` of a block: a full page, or what is left of the block. */
  private pageLength(page: number): number {
    const start = BigInt(page) * PAGE;
    const left = this.blockSize - start;
    return left < PAGE ? Number(left) : MEMORY_PAGE_SIZE;
  }

  /** Splits [offset, offset + length) into chunks that each stay inside one page of one block. */
  private forEachChunk(
    offset: bigint,
    length: number,
    visit: (block: number, page: number, pageOffset: number, at: number, length: number) => void,
  ): void {
    let at = 0;
    let cursor = offset;
    while (at < length) {
      const block = cursor / this.blockSize;
      const inBlock = cursor - block * this.blockSize;
      const page = inBlock / PAGE;
      const pageOffset = Number(inBlock - page * PAGE);
      const pageLength = this.pageLength(Number(page));
      const chunk = Math.min(length - at, pageLength - pageOffset);
      visit(Number(block), Number(page), pageOffset, at, chunk);
      at += chunk;
      cursor += BigInt(chunk);
    }
  }
}
