/**
 * A small reader of the kernel's BTF type information (`/sys/kernel/btf/<module>`), only as far
 * as finding a struct by name and its members' byte offsets needs: the header, the type
 * section's records (to walk past every kind) and the string section.
 *
 * A module's BTF is split BTF: its name offsets below the base (vmlinux) string section's length
 * name strings of vmlinux, the others strings of the module's own section, shifted by that
 * length. The caller supplies those base strings ({@link BtfStrings}).
 */

/** BTF's magic number (little-endian in the blob: 9f eb). */
export const BTF_MAGIC = 0xeb9f;

/** The BTF header's fields, in order, each a little-endian u32 after magic, version and flags. */
export const BTF_HEADER_FIELDS = ['hdrLen', 'typeOff', 'typeLen', 'strOff', 'strLen'] as const;

/** Bytes of the header a reader needs: `magic` (u16), `version` and `flags` (u8 each), then the u32 fields. */
export const BTF_HEADER_SIZE = 4 + 4 * BTF_HEADER_FIELDS.length;

/** A BTF header. */
export type BtfHeader = Readonly<Record<(typeof BTF_HEADER_FIELDS)[number], number>> & {
  readonly version: number;
  readonly flags: number;
};

/**
 * The BTF kinds, by number: the bytes that follow each record's 12-byte common part (`fixed`,
 * plus `perItem` bytes for each of the record's `vlen` items).
 */
export const BTF_KINDS = [
  { kind: 0, name: 'UNKN', fixed: 0, perItem: 0 },
  { kind: 1, name: 'INT', fixed: 4, perItem: 0 },
  { kind: 2, name: 'PTR', fixed: 0, perItem: 0 },
  { kind: 3, name: 'ARRAY', fixed: 12, perItem: 0 },
  { kind: 4, name: 'STRUCT', fixed: 0, perItem: 12 },
  { kind: 5, name: 'UNION', fixed: 0, perItem: 12 },
  { kind: 6, name: 'ENUM', fixed: 0, perItem: 8 },
  { kind: 7, name: 'FWD', fixed: 0, perItem: 0 },
  { kind: 8, name: 'TYPEDEF', fixed: 0, perItem: 0 },
  { kind: 9, name: 'VOLATILE', fixed: 0, perItem: 0 },
  { kind: 10, name: 'CONST', fixed: 0, perItem: 0 },
  { kind: 11, name: 'RESTRICT', fixed: 0, perItem: 0 },
  { kind: 12, name: 'FUNC', fixed: 0, perItem: 0 },
  { kind: 13, name: 'FUNC_PROTO', fixed: 0, perItem: 8 },
  { kind: 14, name: 'VAR', fixed: 4, perItem: 0 },
  { kind: 15, name: 'DATASEC', fixed: 0, perItem: 12 },
  { kind: 16, name: 'FLOAT', fixed: 0, perItem: 0 },
  { kind: 17, name: 'DECL_TAG', fixed: 4, perItem: 0 },
  { kind: 18, name: 'TYPE_TAG', fixed: 0, perItem: 0 },
  { kind: 19, name: 'ENUM64', fixed: 0, perItem: 12 },
] as const;

/** A BTF kind's name. */
export type BtfKindName = (typeof BTF_KINDS)[number]['name'];

/** One member of a STRUCT or UNION. */
export interface BtfMember {
  readonly nameOff: number;
  readonly typeId: number;
  /** Offset from the start of the struct, in bits. */
  readonly bitOffset: number;
  /** Bitfield width (0 when not a bitfield, or when the struct's kflag is clear). */
  readonly bitSize: number;
}

/** One type record. */
export interface BtfType {
  readonly kind: BtfKindName;
  readonly nameOff: number;
  /** `size` (INT, STRUCT, UNION, ENUM, DATASEC, FLOAT) or `type` (the others), as stored. */
  readonly sizeOrType: number;
  readonly members: readonly BtfMember[];
}

/** A parsed BTF blob. */
export interface BtfBlob {
  readonly header: BtfHeader;
  readonly types: readonly BtfType[];
  /** The string section's bytes. */
  readonly strings: Uint8Array;
}

/** The outcome of reading BTF. */
export type BtfRead<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

function le16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

function le32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** The header of a BTF blob (at least {@link BTF_HEADER_SIZE} bytes). */
export function parseBtfHeader(bytes: Uint8Array, what = 'BTF'): BtfRead<BtfHeader> {
  if (bytes.length < BTF_HEADER_SIZE)
    return { ok: false, reason: `${what}: ${bytes.length} bytes, shorter than a BTF header` };
  const magic = le16(bytes, 0);
  if (magic !== BTF_MAGIC)
    return {
      ok: false,
      reason: `${what}: magic 0x${magic.toString(16)}, not 0x${BTF_MAGIC.toString(16)} (little-endian BTF)`,
    };
  const header: Record<string, number> = { version: bytes[2]!, flags: bytes[3]! };
  BTF_HEADER_FIELDS.forEach((name, i) => (header[name] = le32(bytes, 4 + 4 * i)));
  const h = header as BtfHeader;
  if (h.version !== 1) return { ok: false, reason: `${what}: BTF version ${h.version}, this reader knows 1` };
  if (h.hdrLen < BTF_HEADER_SIZE) return { ok: false, reason: `${what}: header length ${h.hdrLen} is too short` };
  return { ok: true, value: h };
}

/** A whole BTF blob: header, type records and strings, every length checked against the blob. */
export function parseBtf(bytes: Uint8Array, what = 'BTF'): BtfRead<BtfBlob> {
  const head = parseBtfHeader(bytes, what);
  if (!head.ok) return head;
  const h = head.value;
  const typeStart = h.hdrLen + h.typeOff;
  const strStart = h.hdrLen + h.strOff;
  if (typeStart + h.typeLen > bytes.length || strStart + h.strLen > bytes.length)
    return { ok: false, reason: `${what}: its sections run past its ${bytes.length} bytes` };
  const section = bytes.subarray(typeStart, typeStart + h.typeLen);
  const types: BtfType[] = [];
  let at = 0;
  while (at < section.length) {
    if (at + 12 > section.length) return { ok: false, reason: `${what}: a type record is cut off at byte ${at}` };
    const nameOff = le32(section, at);
    const info = le32(section, at + 4);
    const sizeOrType = le32(section, at + 8);
    const kindNumber = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kflag = info >>> 31 === 1;
    const kind = BTF_KINDS[kindNumber];
    if (!kind) return { ok: false, reason: `${what}: type ${types.length + 1} has unknown kind ${kindNumber}` };
    at += 12;
    const members: BtfMember[] = [];
    if (kind.name === 'STRUCT' || kind.name === 'UNION') {
      for (let i = 0; i < vlen; i++) {
        const m = at + i * 12;
        if (m + 12 > section.length) break;
        const offset = le32(section, m + 8);
        members.push({
          nameOff: le32(section, m),
          typeId: le32(section, m + 4),
          bitOffset: kflag ? offset & 0xffffff : offset,
          bitSize: kflag ? offset >>> 24 : 0,
        });
      }
    }
    at += kind.fixed + vlen * kind.perItem;
    if (at > section.length)
      return { ok: false, reason: `${what}: type ${types.length + 1} (${kind.name}) is cut off` };
    types.push({ kind: kind.name, nameOff, sizeOrType, members });
  }
  return { ok: true, value: { header: h, types, strings: bytes.subarray(strStart, strStart + h.strLen) } };
}

/** The NUL-terminated string at `offset` of a string section, or undefined when out of range. */
export function stringAt(section: Uint8Array, offset: number): string | undefined {
  if (offset < 0 || offset >= section.length) return undefined;
  let end = offset;
  while (end < section.length && section[end] !== 0) end++;
  return Buffer.from(section.subarray(offset, end)).toString('latin1');
}

/** Resolves a split BTF's name offsets: the module's own strings, and those of the base it was given. */
export interface BtfStrings {
  /** The base (vmlinux) string section's length: name offsets below it are base strings. */
  readonly baseStrLen: number;
  /** Base strings the caller read, by offset. */
  readonly base: ReadonlyMap<number, string>;
}

/** The name of `nameOff` in a module's split BTF, or undefined when it is not known. */
export function splitName(module: BtfBlob, strings: BtfStrings, nameOff: number): string | undefined {
  if (nameOff < strings.baseStrLen) return strings.base.get(nameOff);
  return stringAt(module.strings, nameOff - strings.baseStrLen);
}

/** A struct's layout as the injection needs it: its size and named members' byte offsets. */
export interface StructLayout {
  readonly name: string;
  readonly size: number;
  readonly members: ReadonlyMap<string, number>;
}

/**
 * The struct named `name` defined by the module itself (its own name in the module's string
 * section), with the byte offsets of its named members; the base strings of its member names must be
 * in `strings.base` (see {@link baseNameOffsets}). Bitfield members are left out.
 */
export function findModuleStruct(module: BtfBlob, strings: BtfStrings, name: string): BtfRead<StructLayout> {
  const candidates = module.types.filter(
    (t) => t.kind === 'STRUCT' && t.nameOff >= strings.baseStrLen && splitName(module, strings, t.nameOff) === name,
  );
  if (candidates.length === 0) return { ok: false, reason: `the module's BTF has no struct ${name}` };
  if (candidates.length > 1)
    return { ok: false, reason: `the module's BTF has ${candidates.length} structs named ${name}` };
  const t = candidates[0]!;
  const members = new Map<string, number>();
  for (const m of t.members) {
    // An anonymous member (a nested union or struct) has no name of its own.
    if (m.nameOff === 0) continue;
    const memberName = splitName(module, strings, m.nameOff);
    if (memberName === undefined)
      return { ok: false, reason: `struct ${name}: a member's name (offset ${m.nameOff}) is unknown` };
    if (m.bitSize === 0 && m.bitOffset % 8 === 0) members.set(memberName, m.bitOffset / 8);
  }
  return { ok: true, value: { name, size: t.sizeOrType, members } };
}

/**
 * The base string offsets a lookup of the module's struct `name` needs: its members' names
 * below `baseStrLen` (names vmlinux also has are kept in the base string section).
 */
export function baseNameOffsets(module: BtfBlob, baseStrLen: number, name: string): number[] {
  const wanted = new Set<number>();
  const strings: BtfStrings = { baseStrLen, base: new Map() };
  for (const t of module.types)
    if (t.kind === 'STRUCT' && t.nameOff >= baseStrLen && splitName(module, strings, t.nameOff) === name)
      for (const m of t.members) if (m.nameOff > 0 && m.nameOff < baseStrLen) wanted.add(m.nameOff);
  return [...wanted].sort((a, b) => a - b);
}
