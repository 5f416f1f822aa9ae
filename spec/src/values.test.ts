import fc from 'fast-check';
import { SIZE_STYLES, SizeStyle, formatHex, formatSize, isPowerOfTwo, parseValue, ParsedValue } from './values';

const KiB = 1n << 10n;
const MiB = 1n << 20n;
const GiB = 1n << 30n;
const TiB = 1n << 40n;
const PiB = 1n << 50n;
const U64_MAX = (1n << 64n) - 1n;

/** The parsed value, failing the test with the reason when the text was refused. */
function valueOf(input: string | number | bigint): bigint {
  const parsed = parseValue(input);
  if (!parsed.ok) throw new Error(`expected ${String(input)} to parse, got refusal: ${parsed.reason}`);
  return parsed.value;
}

/** The refusal reason, failing the test when the text was accepted. */
function reasonOf(input: string | number | bigint): string {
  const parsed: ParsedValue = parseValue(input);
  if (parsed.ok) throw new Error(`expected ${String(input)} to be refused, got ${parsed.value}`);
  expect(parsed.reason.length).toBeGreaterThan(0);
  return parsed.reason;
}

describe('parseValue', () => {
  describe('decimal', () => {
    test.each([
      ['0', 0n],
      ['1', 1n],
      ['123', 123n],
      ['007', 7n],
      ['4096', 4096n],
      ['9007199254740993', 9007199254740993n], // 2^53 + 1: beyond a JS number, exact as bigint
      ['18446744073709551615', U64_MAX],
    ])('should parse %s as %p', (text, expected) => {
      expect(valueOf(text)).toBe(expected);
    });

    test('should ignore surrounding whitespace', () => {
      expect(valueOf('  42\t')).toBe(42n);
      expect(valueOf('\n2MiB ')).toBe(2n * MiB);
    });
  });

  describe('hexadecimal', () => {
    test.each([
      ['0x0', 0n],
      ['0x7b', 123n],
      ['0x7B', 123n],
      ['0X7b', 123n],
      ['0xdeadBEEF', 0xdeadbeefn],
      ['0x200000', 2n * MiB],
      ['0x000000000000000000000001', 1n],
    ])('should parse %s as %p', (text, expected) => {
      expect(valueOf(text)).toBe(expected);
    });

    test('should keep every bit of 64-bit values', () => {
      expect(valueOf('0xffffffffffffffff')).toBe(U64_MAX);
      expect(valueOf('0xFFFFFFFFFFFFFFFF')).toBe(U64_MAX);
      expect(valueOf('0x8000000000000001')).toBe((1n << 63n) + 1n);
      expect(valueOf('0x1fffffffffffff')).toBe(BigInt(Number.MAX_SAFE_INTEGER));
      expect(valueOf('0x20000000000001')).toBe(2n ** 53n + 1n);
    });

    test('should parse every 64-bit value written in hex, in either case', () => {
      fc.assert(
        fc.property(fc.bigUintN(64), fc.boolean(), (value, upper) => {
          const digits = value.toString(16);
          const text = `0x${upper ? digits.toUpperCase() : digits}`;
          expect(valueOf(text)).toBe(value);
        }),
      );
    });
  });

  describe('units', () => {
    const units: readonly [string, bigint][] = [
      ['B', 1n],
      ['K', KiB],
      ['KB', KiB],
      ['KiB', KiB],
      ['M', MiB],
      ['MB', MiB],
      ['MiB', MiB],
      ['G', GiB],
      ['GB', GiB],
      ['GiB', GiB],
      ['T', TiB],
      ['TB', TiB],
      ['TiB', TiB],
      ['P', PiB],
      ['PB', PiB],
      ['PiB', PiB],
    ];

    test.each(units)('should read unit %s as a multiple of %p bytes', (unit, factor) => {
      expect(valueOf(`3${unit}`)).toBe(3n * factor);
      expect(valueOf(`3${unit.toLowerCase()}`)).toBe(3n * factor);
      expect(valueOf(`3${unit.toUpperCase()}`)).toBe(3n * factor);
      expect(valueOf(`3 ${unit}`)).toBe(3n * factor);
      expect(valueOf(`0${unit}`)).toBe(0n);
    });

    test('should accept any letter case of a unit', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...units),
          fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
          fc.bigUintN(16),
          ([unit, factor], cases, count) => {
            const mixed = [...unit].map((c, i) => (cases[i] ? c.toUpperCase() : c.toLowerCase())).join('');
            expect(valueOf(`${count}${mixed}`)).toBe(count * factor);
          },
        ),
      );
    });

    test('should use powers of 1024 for the common sizes', () => {
      expect(valueOf('2MiB')).toBe(2097152n);
      expect(valueOf('1 GiB')).toBe(1073741824n);
      expect(valueOf('4k')).toBe(4096n);
      expect(valueOf('1KB')).toBe(1024n); // KB means KiB, as in QEMU's size syntax
      expect(valueOf('1TiB')).toBe(1099511627776n);
      expect(valueOf('16383PiB')).toBe(16383n * PiB);
      expect(valueOf('16384PiB')).toBe(1n << 64n);
    });
  });

  describe('numbers and bigints', () => {
    test('should accept non-negative safe integers', () => {
      expect(valueOf(0)).toBe(0n);
      expect(valueOf(-0)).toBe(0n);
      expect(valueOf(4096)).toBe(4096n);
      expect(valueOf(Number.MAX_SAFE_INTEGER)).toBe(9007199254740991n);
    });

    test('should accept non-negative bigints unchanged, including 64-bit ones', () => {
      expect(valueOf(0n)).toBe(0n);
      expect(valueOf(U64_MAX)).toBe(U64_MAX);
      fc.assert(fc.property(fc.bigUintN(64), (v) => expect(valueOf(v)).toBe(v)));
    });

    test('should agree with BigInt for every safe non-negative integer', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
          expect(valueOf(n)).toBe(BigInt(n));
          expect(valueOf(String(n))).toBe(BigInt(n));
        }),
      );
    });
  });

  describe('refusals', () => {
    test('should refuse negative bigints and say they are negative', () => {
      expect(reasonOf(-1n)).toMatch(/negative/i);
      expect(reasonOf(-(1n << 64n))).toMatch(/negative/i);
    });

    test('should refuse negative numbers and say a non-negative integer is needed', () => {
      expect(reasonOf(-1)).toMatch(/-1.*non-negative integer/);
      expect(reasonOf(-4096)).toMatch(/non-negative integer/);
    });

    test('should refuse negative text and quote it', () => {
      expect(reasonOf('-1')).toContain("'-1'");
      expect(reasonOf('-2MiB')).toContain("'-2MiB'");
      expect(reasonOf('-0x10')).toContain("'-0x10'");
    });

    test('should refuse fractions and quote them', () => {
      expect(reasonOf('1.5GiB')).toContain("'1.5GiB'");
      expect(reasonOf('0.5')).toContain("'0.5'");
      expect(reasonOf('2.0')).toContain("'2.0'");
      expect(reasonOf(1.5)).toMatch(/1\.5.*non-negative integer/);
    });

    test('should refuse an unknown unit and name the unit and the known ones', () => {
      const reason = reasonOf('3XB');
      expect(reason).toMatch(/unknown unit/i);
      expect(reason).toContain("'XB'");
      expect(reason).toContain("'3XB'");
      expect(reason).toMatch(/MiB/);
      expect(reasonOf('4 blocks')).toContain("'blocks'");
      expect(reasonOf('1Ki')).toMatch(/unknown unit 'Ki'/);
      expect(reasonOf('1EiB')).toMatch(/unknown unit 'EiB'/);
    });

    test('should refuse empty and blank text', () => {
      expect(reasonOf('')).toMatch(/'' is not a number/);
      expect(reasonOf('   ')).toMatch(/'' is not a number/);
    });

    test('should refuse malformed hexadecimal', () => {
      expect(reasonOf('0x')).toContain("'0x'");
      expect(reasonOf('0xg1')).toContain("'0xg1'");
      expect(reasonOf('0x10MiB')).toContain("'0x10MiB'");
      expect(reasonOf('x10')).toContain("'x10'");
    });

    test('should explain a 0x prefix without hex digits as bad hex, not as an unknown unit', () => {
      for (const text of ['0x', '0X', '0xfg', '0x12z']) {
        const reason = reasonOf(text);
        expect(reason).toContain(`'${text}'`);
        expect(reason).toMatch(/hex/i);
        expect(reason).not.toMatch(/unknown unit/i);
      }
    });

    test('should refuse other text that is not a value', () => {
      for (const text of ['MiB', 'abc', '+5', '1_000', '1,000', '1e3', '0b101', '1 2', 'Infinity', 'NaN']) {
        expect(reasonOf(text)).toContain(`'${text}'`);
      }
    });

    test('should refuse unsafe, fractional and non-finite JS numbers and suggest hex', () => {
      for (const n of [2 ** 53, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, 1e300, Infinity, -Infinity, NaN, 0.1]) {
        const reason = reasonOf(n);
        expect(reason).toContain(String(n));
        expect(reason).toMatch(/non-negative integer/);
        expect(reason).toMatch(/hex/);
      }
    });
  });
});

describe('formatSize', () => {
  test.each([
    [0n, '0'],
    [1n, '1B'],
    [1023n, '1023B'],
    [1024n, '1KiB'],
    [1536n * KiB, '1536KiB'],
    [1536n, '1536B'],
    [2n * MiB, '2MiB'],
    [3n * GiB, '3GiB'],
    [1024n * MiB, '1GiB'],
    [TiB, '1TiB'],
    [5n * PiB, '5PiB'],
    [1024n * PiB, '1024PiB'],
    [1n << 64n, '16384PiB'],
    [U64_MAX, '18446744073709551615B'],
    [U64_MAX - 1023n, '18014398509481983KiB'],
  ])('should format %p as %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });

  const sizes = fc.oneof(
    fc.bigUintN(64),
    fc.bigUintN(72),
    fc.tuple(fc.bigUintN(24), fc.integer({ min: 0, max: 60 })).map(([k, shift]) => k << BigInt(shift)),
    fc.constantFrom(0n, 1n, KiB, MiB, GiB, TiB, PiB, U64_MAX),
  );

  test('should round-trip through parseValue', () => {
    fc.assert(
      fc.property(sizes, (bytes) => {
        expect(valueOf(formatSize(bytes))).toBe(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  test('should use the largest binary unit that divides the value exactly', () => {
    const order = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    fc.assert(
      fc.property(
        sizes.filter((b) => b > 0n),
        (bytes) => {
          const match = /^([1-9][0-9]*)(B|KiB|MiB|GiB|TiB|PiB)$/.exec(formatSize(bytes));
          expect(match).not.toBeNull();
          const [, mantissa, unit] = match as RegExpExecArray;
          const shift = BigInt(order.indexOf(unit) * 10);
          expect(BigInt(mantissa) << shift).toBe(bytes);
          if (unit !== 'PiB') expect(BigInt(mantissa) % 1024n).not.toBe(0n);
        },
      ),
      { numRuns: 1000 },
    );
  });

  test.each([
    [0n, '0'],
    [1536n, '1536'],
    [2n * MiB, '2 MiB'],
    [1024n * MiB, '1 GiB'],
    [PiB, '1024 TiB'],
  ])('should write %p as %s in prose', (bytes, text) => {
    expect(formatSize(bytes, SIZE_STYLES.prose)).toBe(text);
  });

  test("should follow a caller's style, its zero included", () => {
    const mebibytes: SizeStyle = { units: [[20n, 'M']], separator: '', bytesUnit: '', zero: '0M' };
    expect([0n, 4096n, MiB, GiB].map((b) => formatSize(b, mebibytes))).toEqual(['0M', '4096', '1M', '1024M']);
  });
});

describe('formatHex', () => {
  test('should write lower-case hex with a 0x prefix', () => {
    expect(formatHex(0n)).toBe('0x0');
    expect(formatHex(255n)).toBe('0xff');
    expect(formatHex(0xdeadbeefn)).toBe('0xdeadbeef');
    expect(formatHex(U64_MAX)).toBe('0xffffffffffffffff');
    expect(formatHex(255)).toBe('0xff');
    expect(formatHex(0)).toBe('0x0');
    expect(formatHex(Number.MAX_SAFE_INTEGER)).toBe('0x1fffffffffffff');
  });

  test('should round-trip 64-bit values through parseValue', () => {
    fc.assert(
      fc.property(fc.bigUintN(64), (v) => {
        const text = formatHex(v);
        expect(text).toMatch(/^0x[0-9a-f]+$/);
        expect(valueOf(text)).toBe(v);
      }),
    );
  });
});

describe('isPowerOfTwo', () => {
  test('should accept every power of two up to 2^64', () => {
    for (let shift = 0n; shift <= 64n; shift++) expect(isPowerOfTwo(1n << shift)).toBe(true);
  });

  test('should refuse zero, negative values and non-powers', () => {
    for (const v of [0n, -1n, -2n, -(1n << 63n), 3n, 6n, 12n, 1023n, 1025n, 3n * MiB, U64_MAX, (1n << 63n) + 1n]) {
      expect(isPowerOfTwo(v)).toBe(false);
    }
  });

  test('should agree with a count of set bits', () => {
    fc.assert(
      fc.property(fc.bigUintN(66), (v) => {
        const ones = [...v.toString(2)].filter((c) => c === '1').length;
        expect(isPowerOfTwo(v)).toBe(v > 0n && ones === 1);
      }),
    );
  });
});
