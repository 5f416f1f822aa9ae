import fc from 'fast-check';
import type { BlockRange } from '../../../spec/src/index';
import { BlockBitmap, MAX_TRACKED_BLOCKS, RangeFill } from './bitmap';

/** The obviously-correct model the bitmap is compared with: one boolean per block. */
class NaiveBitmap {
  readonly bits: boolean[];

  constructor(readonly length: number) {
    this.bits = new Array<boolean>(length).fill(false);
  }

  get count(): number {
    return this.bits.filter((b) => b).length;
  }

  countRange(first: number, count: number): number {
    return this.bits.slice(first, first + count).filter((b) => b).length;
  }

  fill(first: number, count: number): RangeFill {
    const set = this.countRange(first, count);
    if (set === 0) return 'none';
    return set === count ? 'all' : 'mixed';
  }

  private assign(first: number, count: number, value: boolean): number {
    let changed = 0;
    for (let i = first; i < first + count; i++) {
      if (this.bits[i] !== value) changed++;
      this.bits[i] = value;
    }
    return changed;
  }

  setRange(first: number, count: number): number {
    return this.assign(first, count, true);
  }

  clearRange(first: number, count: number): number {
    return this.assign(first, count, false);
  }

  clearAll(): void {
    this.bits.fill(false);
  }

  findNext(set: boolean, from: number, limit = this.length): number {
    for (let i = Math.max(0, from); i < Math.min(limit, this.length); i++) if (this.bits[i] === set) return i;
    return -1;
  }

  findPrevious(set: boolean, before: number, floor = 0): number {
    for (let i = Math.min(before, this.length) - 1; i >= Math.max(0, floor); i--) if (this.bits[i] === set) return i;
    return -1;
  }

  runs(): BlockRange[] {
    const result: BlockRange[] = [];
    for (let i = 0; i < this.length; i++) {
      if (!this.bits[i]) continue;
      const first = i;
      while (i < this.length && this.bits[i]) i++;
      result.push({ first, count: i - first });
    }
    return result;
  }
}

type Op =
  | { readonly kind: 'set'; readonly first: number; readonly count: number }
  | { readonly kind: 'clear'; readonly first: number; readonly count: number }
  | { readonly kind: 'clearAll' };

/** Interesting lengths: empty, one block, and either side of one and two 32-bit words. */
const EDGE_LENGTHS = [0, 1, 31, 32, 33, 63, 64, 65, 1000] as const;
const lengths = fc.oneof(fc.constantFrom(...EDGE_LENGTHS), fc.integer({ min: 0, max: 300 }));

/** A position in 0..length, biased toward word boundaries and the ends. */
function position(length: number): fc.Arbitrary<number> {
  const boundaries = [0, 1, 31, 32, 33, 63, 64, 65, length - 1, length].filter((p) => p >= 0 && p <= length);
  return fc.oneof(fc.integer({ min: 0, max: length }), fc.constantFrom(...boundaries));
}

/** A valid range [first, first+count) of a bitmap of `length` blocks. */
function range(length: number): fc.Arbitrary<{ first: number; count: number }> {
  return fc
    .tuple(position(length), position(length))
    .map(([a, b]) => ({ first: Math.min(a, b), count: Math.abs(a - b) }));
}

function op(length: number): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 5, arbitrary: range(length).map((r) => ({ kind: 'set' as const, ...r })) },
    { weight: 4, arbitrary: range(length).map((r) => ({ kind: 'clear' as const, ...r })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'clearAll' as const }) },
  );
}

/** A query index that may fall outside the bitmap on either side. */
function looseIndex(length: number): fc.Arbitrary<number> {
  return fc.oneof(position(length), fc.integer({ min: -5, max: length + 40 }));
}

interface Scenario {
  readonly length: number;
  readonly ops: readonly Op[];
  readonly ranges: readonly { first: number; count: number }[];
  readonly searches: readonly { set: boolean; at: number; bound: number }[];
}

const scenarios: fc.Arbitrary<Scenario> = lengths.chain((length) =>
  fc.record({
    length: fc.constant(length),
    ops: fc.array(op(length), { maxLength: 25 }),
    ranges: fc.array(range(length), { maxLength: 10 }),
    searches: fc.array(fc.record({ set: fc.boolean(), at: looseIndex(length), bound: looseIndex(length) }), {
      maxLength: 10,
    }),
  }),
);

/** Applies the scenario's operations to both bitmaps, checking each return value on the way. */
function replay(scenario: Scenario): { bitmap: BlockBitmap; naive: NaiveBitmap } {
  const bitmap = new BlockBitmap(scenario.length);
  const naive = new NaiveBitmap(scenario.length);
  for (const o of scenario.ops) {
    if (o.kind === 'set') expect(bitmap.setRange(o.first, o.count)).toBe(naive.setRange(o.first, o.count));
    else if (o.kind === 'clear') expect(bitmap.clearRange(o.first, o.count)).toBe(naive.clearRange(o.first, o.count));
    else {
      bitmap.clearAll();
      naive.clearAll();
    }
    expect(bitmap.count).toBe(naive.count);
  }
  return { bitmap, naive };
}

function bitsOf(bitmap: BlockBitmap): boolean[] {
  return Array.from({ length: bitmap.length }, (_, i) => bitmap.get(i));
}

describe('BlockBitmap against a boolean[] model', () => {
  test('should return the number of changed blocks from setRange and clearRange and keep count', () => {
    fc.assert(
      fc.property(scenarios, (s) => void replay(s)),
      { numRuns: 300 },
    );
  });

  test('should agree on get for every block', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const { bitmap, naive } = replay(s);
        expect(bitsOf(bitmap)).toEqual(naive.bits);
      }),
      { numRuns: 300 },
    );
  });

  test('should agree on countRange and fill, and on anySet and allSet (word-wise with early exits)', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const { bitmap, naive } = replay(s);
        expect(bitmap.countRange(0, s.length)).toBe(naive.count);
        for (const r of [
          ...s.ranges,
          ...s.ops.filter((o): o is Exclude<Op, { kind: 'clearAll' }> => o.kind !== 'clearAll'),
        ]) {
          expect(bitmap.countRange(r.first, r.count)).toBe(naive.countRange(r.first, r.count));
          expect(bitmap.fill(r.first, r.count)).toBe(naive.fill(r.first, r.count));
          expect(bitmap.anySet(r.first, r.count)).toBe(naive.countRange(r.first, r.count) > 0);
          expect(bitmap.allSet(r.first, r.count)).toBe(naive.countRange(r.first, r.count) === r.count);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('should agree on findNext with and without a limit, including out-of-range arguments', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const { bitmap, naive } = replay(s);
        for (const { set, at, bound } of s.searches) {
          expect(bitmap.findNext(set, at)).toBe(naive.findNext(set, at));
          expect(bitmap.findNext(set, at, bound)).toBe(naive.findNext(set, at, bound));
        }
        // Every start position, so a wrong word step or mask shows up whatever was generated;
        // walking backwards keeps the expected answers in O(1) each.
        const next = { set: -1, clear: -1 };
        const expected: number[] = [];
        const actual: number[] = [];
        for (let from = s.length; from >= 0; from--) {
          if (from < s.length) next[naive.bits[from] ? 'set' : 'clear'] = from;
          expected.push(next.set, next.clear);
          actual.push(bitmap.findNext(true, from), bitmap.findNext(false, from));
        }
        expect(actual).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  test('should agree on findPrevious with and without a floor', () => {
    fc.assert(
      fc.property(scenarios, fc.nat(), (s, floorSeed) => {
        const { bitmap, naive } = replay(s);
        for (const { set, at } of s.searches) {
          const floor = (floorSeed % (s.length + 8)) - 5; // -5..length+2
          expect(bitmap.findPrevious(set, at)).toBe(naive.findPrevious(set, at));
          expect(bitmap.findPrevious(set, at, floor)).toBe(naive.findPrevious(set, at, floor));
        }
        const previous = { set: -1, clear: -1 };
        const expected: number[] = [];
        const actual: number[] = [];
        for (let before = 0; before <= s.length; before++) {
          if (before > 0) previous[naive.bits[before - 1] ? 'set' : 'clear'] = before - 1;
          expected.push(previous.set, previous.clear);
          actual.push(bitmap.findPrevious(true, before), bitmap.findPrevious(false, before));
        }
        expect(actual).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  test('should agree on runs()', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const { bitmap, naive } = replay(s);
        const runs = bitmap.runs();
        expect(runs).toEqual(naive.runs());
        expect(runs.reduce((sum, r) => sum + r.count, 0)).toBe(bitmap.count);
      }),
      { numRuns: 300 },
    );
  });

  test('should make clones that are equal but independent', () => {
    fc.assert(
      fc.property(scenarios, lengths, (s, otherLength) => {
        const { bitmap, naive } = replay(s);
        const copy = bitmap.clone();
        expect(copy.length).toBe(bitmap.length);
        expect(copy.count).toBe(bitmap.count);
        expect(copy.equals(bitmap)).toBe(true);
        expect(bitmap.equals(copy)).toBe(true);
        expect(bitsOf(copy)).toEqual(naive.bits);

        // Flipping one block in the copy makes them differ, and leaves the original alone.
        if (s.length > 0) {
          const index = s.length - 1;
          if (copy.get(index)) copy.clearRange(index, 1);
          else copy.setRange(index, 1);
          expect(copy.equals(bitmap)).toBe(false);
          expect(bitmap.equals(copy)).toBe(false);
          expect(bitsOf(bitmap)).toEqual(naive.bits);
        }

        // A bitmap of another length is never equal, even when both are empty.
        if (otherLength !== s.length) {
          expect(bitmap.equals(new BlockBitmap(otherLength))).toBe(false);
          expect(new BlockBitmap(otherLength).equals(new BlockBitmap(s.length))).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('should tell apart bitmaps with the same count but different blocks', () => {
    const a = new BlockBitmap(65);
    const b = new BlockBitmap(65);
    a.setRange(0, 3);
    b.setRange(62, 3);
    expect(a.count).toBe(b.count);
    expect(a.equals(b)).toBe(false);
    b.clearAll();
    b.setRange(0, 3);
    expect(a.equals(b)).toBe(true);
  });
});

describe('BlockBitmap examples', () => {
  test('should walk, clear, copy and compare a 2^30-block bitmap in time proportional to its plugged span', () => {
    const started = Date.now();
    for (let round = 0; round < 20; round++) {
      const b = new BlockBitmap(MAX_TRACKED_BLOCKS);
      expect(b.runs()).toEqual([]);
      expect(b.findPrevious(true, b.length)).toBe(-1);
      b.setRange(64, 100);
      b.setRange(4096, 1);
      expect(b.runs()).toEqual([
        { first: 64, count: 100 },
        { first: 4096, count: 1 },
      ]);
      expect(b.findPrevious(true, b.length)).toBe(4096);
      expect(b.findNext(false, 64)).toBe(164);
      expect(b.findNext(false, 5000)).toBe(5000);
      const copy = b.clone();
      expect(copy.equals(b)).toBe(true);
      b.clearRange(4096, 1);
      expect(copy.equals(b)).toBe(false);
      b.clearAll();
      expect(b.runs()).toEqual([]);
      expect(b.count).toBe(0);
      copy.clearRange(64, 100);
      copy.clearRange(4096, 1);
      expect(copy.equals(b)).toBe(true);
    }
    // A dense walk of 2^25 words takes a second or more per round (20 s or more in all); walking
    // only the span takes milliseconds. The bound sits far from both so a loaded machine passes.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('should start empty', () => {
    for (const length of EDGE_LENGTHS) {
      const b = new BlockBitmap(length);
      expect(b.length).toBe(length);
      expect(b.count).toBe(0);
      expect(b.runs()).toEqual([]);
      expect(b.findNext(true, 0)).toBe(-1);
      expect(b.findNext(false, 0)).toBe(length === 0 ? -1 : 0);
      expect(b.findPrevious(false, length)).toBe(length - 1);
      expect(b.byteLength).toBe(Math.ceil(length / 32) * 4);
    }
  });

  test('should report runs that cross word boundaries and reach the end', () => {
    const b = new BlockBitmap(100);
    b.setRange(30, 5); // 30..34 crosses the first word boundary
    b.setRange(64, 1);
    b.setRange(95, 5); // up to the last block
    expect(b.runs()).toEqual([
      { first: 30, count: 5 },
      { first: 64, count: 1 },
      { first: 95, count: 5 },
    ]);
    expect(b.fill(30, 5)).toBe('all');
    expect(b.fill(29, 5)).toBe('mixed');
    expect(b.fill(35, 29)).toBe('none');
    expect(b.fill(50, 0)).toBe('none');
    expect(b.setRange(0, 100)).toBe(89);
    expect(b.runs()).toEqual([{ first: 0, count: 100 }]);
    expect(b.clearRange(0, 100)).toBe(100);
    expect(b.count).toBe(0);
  });

  test('should return 0 changed blocks when nothing changes', () => {
    const b = new BlockBitmap(64);
    expect(b.clearRange(0, 64)).toBe(0);
    expect(b.setRange(10, 40)).toBe(40);
    expect(b.setRange(10, 40)).toBe(0);
    expect(b.setRange(20, 0)).toBe(0);
    expect(b.count).toBe(40);
  });

  describe('out-of-range arguments', () => {
    const b = new BlockBitmap(65);
    const bad: readonly [number, number][] = [
      [-1, 1],
      [0, -1],
      [0, 66],
      [65, 1],
      [64, 2],
      [66, 0],
      [0.5, 1],
      [0, 1.5],
      [NaN, 1],
      [0, NaN],
      [0, Infinity],
      [Number.MAX_SAFE_INTEGER, 1],
    ];

    test.each(bad)('should throw RangeError for [%p, +%p) and change nothing', (first, count) => {
      b.setRange(10, 3);
      const before = b.clone();
      expect(() => b.setRange(first, count)).toThrow(RangeError);
      expect(() => b.clearRange(first, count)).toThrow(RangeError);
      expect(() => b.countRange(first, count)).toThrow(RangeError);
      expect(() => b.fill(first, count)).toThrow(RangeError);
      expect(b.equals(before)).toBe(true);
      expect(b.count).toBe(3);
    });

    test('should accept the empty range at the very end', () => {
      expect(b.countRange(65, 0)).toBe(0);
      expect(b.setRange(65, 0)).toBe(0);
      expect(b.clearRange(65, 0)).toBe(0);
    });
  });

  describe('constructor', () => {
    test.each([-1, 0.5, 1.5, NaN, Infinity, -Infinity, MAX_TRACKED_BLOCKS + 1, 2 ** 40])(
      'should refuse length %p with a RangeError',
      (length) => {
        expect(() => new BlockBitmap(length)).toThrow(RangeError);
      },
    );

    test('should name the limit when refusing a length', () => {
      expect(() => new BlockBitmap(MAX_TRACKED_BLOCKS + 1)).toThrow(String(MAX_TRACKED_BLOCKS));
    });

    test('should cap tracking at 2^30 blocks', () => {
      expect(MAX_TRACKED_BLOCKS).toBe(2 ** 30);
    });
  });

  test('should track a 1 TiB region of 2 MiB blocks in 64 KiB', () => {
    const blocks = Number((1n << 40n) / (2n << 20n));
    expect(blocks).toBe(524288);
    const b = new BlockBitmap(blocks);
    expect(b.byteLength).toBe(65536);

    expect(b.setRange(0, blocks)).toBe(blocks);
    expect(b.count).toBe(blocks);
    expect(b.countRange(0, blocks)).toBe(blocks);
    expect(b.countRange(1, blocks - 2)).toBe(blocks - 2);
    expect(b.countRange(100_000, 65_535)).toBe(65_535);
    expect(b.fill(0, blocks)).toBe('all');

    expect(b.clearRange(200_003, 65_535)).toBe(65_535);
    expect(b.countRange(0, blocks)).toBe(blocks - 65_535);
    expect(b.countRange(200_000, 65_541)).toBe(6);
    expect(b.fill(200_003, 65_535)).toBe('none');
    expect(b.findNext(false, 0)).toBe(200_003);
    expect(b.findNext(true, 200_003)).toBe(265_538);
    expect(b.findPrevious(false, blocks)).toBe(265_537);
    expect(b.runs()).toEqual([
      { first: 0, count: 200_003 },
      { first: 265_538, count: blocks - 265_538 },
    ]);

    b.clearAll();
    expect(b.count).toBe(0);
    expect(b.countRange(0, blocks)).toBe(0);
  });

  test('should treat a negative floor of findPrevious like floor 0', () => {
    // findNext clamps a negative `from` to 0; findPrevious must not search below block 0 either.
    const full = new BlockBitmap(5);
    full.setRange(0, 5);
    expect(full.findPrevious(false, 5, -1)).toBe(-1);
    expect(full.findPrevious(false, 5, -100)).toBe(-1);

    const partial = new BlockBitmap(40);
    partial.setRange(0, 40);
    partial.clearRange(3, 1);
    expect(partial.findPrevious(false, 40, -1)).toBe(3);
    expect(partial.findPrevious(false, 3, -1)).toBe(-1);

    // With set = true on an empty bitmap the unclamped floor used to wrap to index 2^32-1 and loop.
    const empty = new BlockBitmap(70);
    expect(empty.findPrevious(true, 70, -1)).toBe(-1);
    expect(empty.findPrevious(true, 0, -3)).toBe(-1);
  });
});

describe('BlockBitmap.fill over many words (folded in chunks)', () => {
  const length = 200_000;
  // A range of 100,000 blocks starting mid-word spans several 256-word chunks.
  const first = 1_000 + 7;
  const count = 100_000;
  test.each([first, first + 40, first + 256 * 32, first + 3 * 256 * 32 + 17, first + count - 1])(
    'should tell one odd block at %i apart from a uniform range, in both directions',
    (odd) => {
      const plugged = new BlockBitmap(length);
      plugged.setRange(first, count);
      expect(plugged.fill(first, count)).toBe('all');
      plugged.clearRange(odd, 1);
      expect(plugged.fill(first, count)).toBe('mixed');
      expect(plugged.allSet(first, count)).toBe(false);
      const empty = new BlockBitmap(length);
      expect(empty.fill(first, count)).toBe('none');
      empty.setRange(odd, 1);
      expect(empty.fill(first, count)).toBe('mixed');
      expect(empty.anySet(first, count)).toBe(true);
      expect(empty.fill(odd + 1, first + count - odd - 1)).toBe('none');
    },
  );
});
