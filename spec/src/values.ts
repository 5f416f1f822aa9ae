/**
 * The value syntax shared by YAML vectors and the CLI: decimal, `0x` hexadecimal, and sizes with
 * binary units (`2MiB`, `1GiB`). Values are parsed to `bigint` so 64-bit fields never lose bits.
 */

const UNIT_SHIFTS: Readonly<Record<string, bigint>> = {
  b: 0n,
  k: 10n,
  kb: 10n,
  kib: 10n,
  m: 20n,
  mb: 20n,
  mib: 20n,
  g: 30n,
  gb: 30n,
  gib: 30n,
  t: 40n,
  tb: 40n,
  tib: 40n,
  p: 50n,
  pb: 50n,
  pib: 50n,
};

/** Result of parsing a value: the number, or why the text is not one. */
export type ParsedValue =
  { readonly ok: true; readonly value: bigint } | { readonly ok: false; readonly reason: string };

/**
 * Parses `123`, `0x7b`, `2MiB`, `1 GiB`, `4k` (units are powers of 1024; `KB` means KiB here, as
 * in QEMU's size syntax) or a JavaScript number. Negative values and fractions are refused.
 */
export function parseValue(input: string | number | bigint): ParsedValue {
  if (typeof input === 'bigint') {
    return input < 0n ? { ok: false, reason: 'negative values are not allowed' } : { ok: true, value: input };
  }
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      return { ok: false, reason: `${input} is not a non-negative integer (write large values as hex strings)` };
    }
    return { ok: true, value: BigInt(input) };
  }
  const text = input.trim();
  if (/^0x[0-9a-f]+$/i.test(text)) return { ok: true, value: BigInt(text) };
  if (/^0x/i.test(text)) return { ok: false, reason: `'${text}' is not valid hex (0x needs hex digits 0-9, a-f)` };
  const sized = /^([0-9]+)\s*([a-z]*)$/i.exec(text);
  if (sized) {
    const unit = sized[2].toLowerCase();
    const shift = UNIT_SHIFTS[unit === '' ? 'b' : unit];
    if (shift === undefined)
      return { ok: false, reason: `unknown unit '${sized[2]}' in '${text}' (use B, KiB, MiB, GiB, TiB or PiB)` };
    return { ok: true, value: BigInt(sized[1]) << shift };
  }
  return { ok: false, reason: `'${text}' is not a number (use decimal, 0x hex, or a size such as 2MiB)` };
}

/** How {@link formatSize} writes a size. */
export interface SizeStyle {
  /** The units to try, largest first: a shift (the unit is `1 << shift` bytes) and its name. */
  readonly units: readonly (readonly [shift: bigint, name: string])[];
  /** Between the number and the unit. */
  readonly separator: string;
  /** After a count of bytes that no unit divides. */
  readonly bytesUnit: string;
  /** How zero is written (default `0`). */
  readonly zero?: string;
}

const BINARY_UNITS = [
  [40n, 'TiB'],
  [30n, 'GiB'],
  [20n, 'MiB'],
  [10n, 'KiB'],
] as const;

/** The ways sizes are written. */
export const SIZE_STYLES = {
  /** The value syntax above, which {@link parseValue} reads back: `2MiB`, `1536KiB`, `4097B`. */
  value: { units: [[50n, 'PiB'], ...BINARY_UNITS], separator: '', bytesUnit: 'B' },
  /** Prose, as the documentation writes a device set-up: `2 MiB`, `1 GiB`, `4097`. */
  prose: { units: BINARY_UNITS, separator: ' ', bytesUnit: '' },
} as const satisfies Record<string, SizeStyle>;

/** Formats a byte count with the largest unit of `style` that divides it exactly (by default `2MiB`, `1536KiB`). */
export function formatSize(bytes: bigint, style: SizeStyle = SIZE_STYLES.value): string {
  if (bytes === 0n) return style.zero ?? '0';
  for (const [shift, unit] of style.units) {
    if (bytes % (1n << shift) === 0n) return `${bytes >> shift}${style.separator}${unit}`;
  }
  return `${bytes}${style.bytesUnit}`;
}

/** Formats a value as lower-case hex with a `0x` prefix. */
export function formatHex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

/** True when `value` is a power of two (zero is not). */
export function isPowerOfTwo(value: bigint): boolean {
  return value > 0n && (value & (value - 1n)) === 0n;
}
