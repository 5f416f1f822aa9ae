/**
 * Fixed-size little-endian structures of the virtio transport (split-ring elements, virtio-pci
 * capabilities and common configuration), each declared once as data with its record type derived
 * from the declaration.
 *
 * A layout is written `as const satisfies StructLayout`, so its field names stay literal and
 * {@link StructValues} turns it into the record type: no interface is written beside the table.
 * The virtio-mem structures themselves keep their richer tables in `layouts.ts` (mutability,
 * feature conditions); these transport structures need only offsets and widths.
 */

/** How a field is stored: an unsigned little-endian integer of 1, 2, 4 or 8 bytes. */
export type StructFieldType = 'u8' | 'u16' | 'u32' | 'u64';

/** One field of a {@link StructLayout}. */
export interface StructField {
  /** Byte offset from the start of the structure. */
  readonly offset: number;
  readonly type: StructFieldType;
}

/** A fixed-size little-endian structure: its name (the spec's C name), size and fields. */
export interface StructLayout {
  readonly name: string;
  readonly size: number;
  readonly fields: Readonly<Record<string, StructField>>;
}

/** The decoded record of a layout: `u64` fields as bigint, the others as number. */
export type StructValues<L extends StructLayout> = {
  -readonly [K in keyof L['fields']]: L['fields'][K]['type'] extends 'u64' ? bigint : number;
};

/** Width in bytes of each field type. */
export const STRUCT_FIELD_BYTES: Readonly<Record<StructFieldType, 1 | 2 | 4 | 8>> = { u8: 1, u16: 2, u32: 4, u64: 8 };

/**
 * Decodes a layout found at `at` in `bytes`.
 * @throws RangeError when `bytes` does not hold `layout.size` bytes from `at`.
 */
export function decodeStruct<L extends StructLayout>(layout: L, bytes: Uint8Array, at = 0): StructValues<L> {
  if (at < 0 || at + layout.size > bytes.length)
    throw new RangeError(`${layout.name}: ${layout.size} bytes at offset ${at} do not fit in ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, layout.size);
  const out: Record<string, number | bigint> = {};
  for (const [name, field] of Object.entries(layout.fields)) {
    const o = field.offset;
    out[name] =
      field.type === 'u64'
        ? view.getBigUint64(o, true)
        : field.type === 'u32'
          ? view.getUint32(o, true)
          : field.type === 'u16'
            ? view.getUint16(o, true)
            : view.getUint8(o);
  }
  return out as StructValues<L>;
}

/**
 * Writes a layout's values into `into` at `at` (missing fields are written as zero; bytes no field
 * covers are left as they are). Values are truncated to their field's width.
 * @throws RangeError when `into` does not hold `layout.size` bytes from `at`.
 */
export function encodeStructInto<L extends StructLayout>(
  layout: L,
  values: Partial<StructValues<L>>,
  into: Uint8Array,
  at = 0,
): void {
  if (at < 0 || at + layout.size > into.length)
    throw new RangeError(`${layout.name}: ${layout.size} bytes at offset ${at} do not fit in ${into.length}`);
  const view = new DataView(into.buffer, into.byteOffset + at, layout.size);
  for (const [name, field] of Object.entries(layout.fields)) {
    const value = (values as Record<string, number | bigint | undefined>)[name] ?? 0;
    const o = field.offset;
    if (field.type === 'u64') view.setBigUint64(o, BigInt.asUintN(64, BigInt(value)), true);
    else if (field.type === 'u32') view.setUint32(o, Number(value) >>> 0, true);
    else if (field.type === 'u16') view.setUint16(o, Number(value) & 0xffff, true);
    else view.setUint8(o, Number(value) & 0xff);
  }
}

/** The little-endian 16-bit value at `at` in `bytes` (a ring index, a PCI register). */
export function readLe16(bytes: Uint8Array, at = 0): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(at, true);
}

/** `value` as two little-endian bytes. */
export function le16Bytes(value: number): Uint8Array {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setUint16(0, value & 0xffff, true);
  return out;
}
