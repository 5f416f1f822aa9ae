/**
 * A fixed-size bitmap of memory blocks (bit set = plugged), with word-wise range operations so
 * that a 65,535-block STATE or an UNPLUG_ALL over a 1 TiB region never loops per block.
 *
 * 1 TiB of 2 MiB blocks is 524,288 bits = 64 KiB of words.
 *
 * The bitmap also keeps the span of words that may hold set bits: searches for set blocks, the
 * runs, clearing everything, copies and comparisons look only inside it, so whole-device
 * operations on a large region cost time in proportion to where blocks are plugged, not to the
 * region (an empty 2^30-block bitmap is cleared, walked and copied in constant time).
 */

import type { BlockRange } from '../../../spec/src/index';

/** Largest number of blocks the model tracks (128 MiB of bitmap); larger regions are refused. */
export const MAX_TRACKED_BLOCKS = 2 ** 30;

/** Words {@link BlockBitmap.fill} folds between checks for an early answer (8,192 blocks). */
const FILL_CHUNK_WORDS = 256;

/** How a range of blocks is plugged. */
export type RangeFill = 'all' | 'none' | 'mixed';

function popcount32(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Mask of bits [from, to) inside one 32-bit word (0 ≤ from < to ≤ 32). */
function wordMask(from: number, to: number): number {
  const high = to === 32 ? 0xffffffff : ((1 << to) >>> 0) - 1;
  const low = from === 0 ? 0 : ((1 << from) >>> 0) - 1;
  return (high & ~low) >>> 0;
}

/** Plugged/unplugged state of every block of a region. */
export class BlockBitmap {
  private readonly words: Uint32Array;
  /** The same words read as signed 32-bit integers: a scan compares them without leaving small-integer arithmetic. */
  private readonly signedWords: Int32Array;
  private ones = 0;
  /** Words outside [spanFirst, spanEnd) are all zero (the span is empty when spanFirst ≥ spanEnd). */
  private spanFirst = 0;
  private spanEnd = 0;

  /**
   * @param length number of blocks (0 ≤ length ≤ {@link MAX_TRACKED_BLOCKS}).
   * @throws RangeError when the length is not a non-negative integer within the limit.
   */
  constructor(readonly length: number) {
    if (!Number.isInteger(length) || length < 0 || length > MAX_TRACKED_BLOCKS) {
      throw new RangeError(`bitmap length ${length} is outside 0..${MAX_TRACKED_BLOCKS}`);
    }
    this.words = new Uint32Array(Math.ceil(length / 32));
    this.signedWords = new Int32Array(this.words.buffer);
    this.spanFirst = this.words.length;
  }

  /** Number of set (plugged) blocks. */
  get count(): number {
    return this.ones;
  }

  /** Bytes of memory the bitmap occupies. */
  get byteLength(): number {
    return this.words.byteLength;
  }

  /** True when block `index` is set. */
  get(index: number): boolean {
    return ((this.words[index >>> 5] >>> (index & 31)) & 1) === 1;
  }

  private assertRange(first: number, count: number): void {
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || first + count > this.length) {
      throw new RangeError(`block range [${first}, ${first + count}) is outside the bitmap of ${this.length} blocks`);
    }
  }

  // The range operations below walk [first, first+count) word by word: a masked first word, whole
  // middle words, a masked last word. No closures and no allocation, so a 65,535-block range
  // costs about 2,048 word reads.

  /** Number of set blocks in [first, first+count). */
  countRange(first: number, count: number): number {
    this.assertRange(first, count);
    if (count === 0) return 0;
    const end = first + count;
    const firstWord = first >>> 5;
    const lastWord = (end - 1) >>> 5;
    const words = this.words;
    if (firstWord === lastWord)
      return popcount32((words[firstWord] & wordMask(first & 31, end - firstWord * 32)) >>> 0);
    let total = popcount32((words[firstWord] & wordMask(first & 31, 32)) >>> 0);
    for (let w = firstWord + 1; w < lastWord; w++) total += popcount32(words[w]);
    return total + popcount32((words[lastWord] & wordMask(0, end - lastWord * 32)) >>> 0);
  }

  /**
   * Whether [first, first+count) is all set, all clear, or mixed. An empty range is 'none'.
   * Stops at the first word that shows both states.
   */
  fill(first: number, count: number): RangeFill {
    this.assertRange(first, count);
    if (count === 0) return 'none';
    const end = first + count;
    const firstWord = first >>> 5;
    const lastWord = (end - 1) >>> 5;
    const headMask = wordMask(first & 31, firstWord === lastWord ? end - firstWord * 32 : 32) | 0;
    const head = this.signedWords[firstWord] & headMask;
    let sawSet = head !== 0;
    let sawClear = head !== headMask;
    if (firstWord === lastWord || (sawSet && sawClear)) return sawSet ? (sawClear ? 'mixed' : 'all') : 'none';
    // Whole middle words, in chunks folded without branches (AND is -1 when all set, OR is 0 when all clear); the first chunk that shows both states ends the scan.
    const words = this.signedWords;
    for (let w = firstWord + 1; w < lastWord;) {
      const stop = Math.min(w + FILL_CHUNK_WORDS, lastWord);
      let and = -1;
      let or = 0;
      for (; w < stop; w++) {
        const v = words[w];
        and &= v;
        or |= v;
      }
      if (or !== 0) sawSet = true;
      if (and !== -1) sawClear = true;
      if (sawSet && sawClear) return 'mixed';
    }
    const tailMask = wordMask(0, end - lastWord * 32) | 0;
    const tail = words[lastWord] & tailMask;
    if (tail !== 0) sawSet = true;
    if (tail !== tailMask) sawClear = true;
    return sawSet ? (sawClear ? 'mixed' : 'all') : 'none';
  }

  /** Whether any block of [first, first+count) is set (false for an empty range). Stops at the first set word. */
  anySet(first: number, count: number): boolean {
    this.assertRange(first, count);
    const end = first + count;
    // Words outside the span hold no set bit.
    const from = Math.max(first >>> 5, this.spanFirst);
    const to = Math.min(count === 0 ? 0 : ((end - 1) >>> 5) + 1, this.spanEnd);
    const words = this.words;
    for (let w = from; w < to; w++) {
      const mask = wordMask(w === first >>> 5 ? first & 31 : 0, w === (end - 1) >>> 5 ? end - w * 32 : 32);
      if ((words[w] & mask) !== 0) return true;
    }
    return false;
  }

  /** Whether every block of [first, first+count) is set (true for an empty range). Stops at the first word with a clear block. */
  allSet(first: number, count: number): boolean {
    this.assertRange(first, count);
    if (count > this.ones) return false;
    return count === 0 || this.fill(first, count) === 'all';
  }

  /** Sets [first, first+count); returns how many blocks changed. */
  setRange(first: number, count: number): number {
    this.assertRange(first, count);
    if (count === 0) return 0;
    const end = first + count;
    const firstWord = first >>> 5;
    const lastWord = (end - 1) >>> 5;
    const words = this.words;
    let changed = 0;
    for (let w = firstWord; w <= lastWord; w++) {
      const mask = wordMask(w === firstWord ? first & 31 : 0, w === lastWord ? end - w * 32 : 32);
      const before = words[w];
      changed += popcount32((mask & ~before) >>> 0);
      words[w] = (before | mask) >>> 0;
    }
    this.ones += changed;
    if (firstWord < this.spanFirst) this.spanFirst = firstWord;
    if (lastWord + 1 > this.spanEnd) this.spanEnd = lastWord + 1;
    return changed;
  }

  /** Clears [first, first+count); returns how many blocks changed. */
  clearRange(first: number, count: number): number {
    this.assertRange(first, count);
    if (count === 0) return 0;
    const end = first + count;
    const firstWord = first >>> 5;
    const lastWord = (end - 1) >>> 5;
    const words = this.words;
    let changed = 0;
    for (let w = firstWord; w <= lastWord; w++) {
      const mask = wordMask(w === firstWord ? first & 31 : 0, w === lastWord ? end - w * 32 : 32);
      const before = words[w];
      changed += popcount32((before & mask) >>> 0);
      words[w] = (before & ~mask) >>> 0;
    }
    this.ones -= changed;
    if (this.ones === 0) this.emptySpan();
    return changed;
  }

  /** Clears every block. */
  clearAll(): void {
    if (this.spanFirst < this.spanEnd) this.words.fill(0, this.spanFirst, this.spanEnd);
    this.ones = 0;
    this.emptySpan();
  }

  private emptySpan(): void {
    this.spanFirst = this.words.length;
    this.spanEnd = 0;
  }

  /** Index of the first block ≥ `from` whose state is `set`, or -1. */
  findNext(set: boolean, from: number, limit: number = this.length): number {
    let index = Math.max(0, from);
    let end = Math.min(limit, this.length);
    if (set) {
      // No set block lies outside the span.
      index = Math.max(index, this.spanFirst * 32);
      end = Math.min(end, this.spanEnd * 32);
    } else if (index < end && (index < this.spanFirst * 32 || index >= this.spanEnd * 32)) {
      return index;
    }
    while (index < end) {
      const wordIndex = index >>> 5;
      const bit = index & 31;
      let word = set ? this.words[wordIndex] : ~this.words[wordIndex] >>> 0;
      word = (word & wordMask(bit, 32)) >>> 0;
      if (word !== 0) {
        const found = wordIndex * 32 + (31 - Math.clz32(word & -word));
        return found < end ? found : -1;
      }
      index = (wordIndex + 1) * 32;
    }
    return -1;
  }

  /** Index of the last block < `before` whose state is `set`, or -1. */
  findPrevious(set: boolean, before: number, floor = 0): number {
    floor = Math.max(0, floor, set ? this.spanFirst * 32 : 0);
    let index = Math.min(before, this.length, set ? this.spanEnd * 32 : Infinity) - 1;
    while (index >= floor) {
      const wordIndex = index >>> 5;
      const bit = index & 31;
      let word = set ? this.words[wordIndex] : ~this.words[wordIndex] >>> 0;
      word = (word & wordMask(0, bit + 1)) >>> 0;
      if (word !== 0) {
        const found = wordIndex * 32 + (31 - Math.clz32(word));
        return found >= floor ? found : -1;
      }
      index = wordIndex * 32 - 1;
    }
    return -1;
  }

  /** The runs of set blocks, in ascending order. */
  runs(): BlockRange[] {
    const result: BlockRange[] = [];
    let start = this.findNext(true, 0);
    while (start !== -1) {
      const stop = this.findNext(false, start);
      const end = stop === -1 ? this.length : stop;
      result.push({ first: start, count: end - start });
      start = end >= this.length ? -1 : this.findNext(true, end);
    }
    return result;
  }

  /** An independent copy. */
  clone(): BlockBitmap {
    const copy = new BlockBitmap(this.length);
    if (this.spanFirst < this.spanEnd)
      copy.words.set(this.words.subarray(this.spanFirst, this.spanEnd), this.spanFirst);
    copy.ones = this.ones;
    copy.spanFirst = this.spanFirst;
    copy.spanEnd = this.spanEnd;
    return copy;
  }

  /** True when both bitmaps have the same length and bits. */
  equals(other: BlockBitmap): boolean {
    if (other.length !== this.length || other.ones !== this.ones) return false;
    // Outside both spans every word is zero.
    const first = Math.min(this.spanFirst, other.spanFirst);
    const end = Math.max(this.spanEnd, other.spanEnd);
    for (let i = first; i < end; i++) if (this.words[i] !== other.words[i]) return false;
    return true;
  }
}
