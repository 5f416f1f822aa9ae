/**
 * Where a loaded module's code lies, read from its `struct module` through the gdbstub: the
 * hook must be armed while the module is initialised, before /proc/kallsyms can be read, so its
 * address is the module's text base (as `struct module` holds it then) plus the hook's distance
 * from that base, learnt on an earlier load of the same module.
 *
 * Linux keeps the text base as the first two fields of a small struct inside `struct module`: a
 * pointer `base` and an `unsigned int size` (Linux 6.1: `core_layout`, one block holding the
 * module's text and data; from 6.4 on: `mem[MOD_TEXT]`, the text alone, placed apart from the
 * data, so `struct module` and the code no longer keep one distance). Which offset it is at
 * depends on the kernel's configuration, so it is found, not assumed: on a load whose hook
 * address is known, the field is the one pair (page-aligned pointer, size) whose block holds
 * the hook. Pure.
 */

/** How many bytes of `struct module` are searched for the text base (the struct is 1–2 KiB). */
export const MODULE_STRUCT_WINDOW = 2048;
/** x86-64's page: module memory blocks begin on one. */
const PAGE = 4096n;
/** A block larger than this is not one module's code. */
const MOST_TEXT_BYTES = 64n << 20n;

/** Where the text base lies in `struct module`, and the hook's distance from it. */
export interface ModuleTextField {
  /** Byte offset of the `base` pointer (an `unsigned int size` follows it). */
  readonly offset: number;
  /** The hook's address minus the text base. */
  readonly hookFromText: bigint;
}

function u64At(bytes: Uint8Array, at: number): bigint {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readBigUInt64LE(at);
}

function u32At(bytes: Uint8Array, at: number): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32LE(at);
}

/** The text block at `offset` of the struct's bytes: its base and size, or undefined when the bytes stop short. */
export function textBlockAt(moduleBytes: Uint8Array, offset: number): { base: bigint; size: bigint } | undefined {
  if (offset < 0 || offset % 8 !== 0 || offset + 12 > moduleBytes.length) return undefined;
  return { base: u64At(moduleBytes, offset), size: BigInt(u32At(moduleBytes, offset + 8)) };
}

/**
 * Finds the text base field in the bytes of a loaded module's `struct module`, given where its
 * hook lies now: the first 8-aligned pointer that is page-aligned and followed by a size whose
 * block holds the hook. Undefined when no field fits (the hook cannot then be armed ahead).
 */
export function findModuleTextField(moduleBytes: Uint8Array, hookAddress: bigint): ModuleTextField | undefined {
  for (let offset = 0; offset + 12 <= moduleBytes.length; offset += 8) {
    const block = textBlockAt(moduleBytes, offset)!;
    if (block.base === 0n || block.base % PAGE !== 0n) continue;
    if (block.size === 0n || block.size > MOST_TEXT_BYTES) continue;
    if (hookAddress >= block.base && hookAddress < block.base + block.size)
      return { offset, hookFromText: hookAddress - block.base };
  }
  return undefined;
}

/** The hook of a module being initialised, from its `struct module` bytes and a learnt field; undefined when it does not fit. */
export function hookAddressIn(moduleBytes: Uint8Array, field: ModuleTextField): bigint | undefined {
  const block = textBlockAt(moduleBytes, field.offset);
  if (!block || block.base % PAGE !== 0n || field.hookFromText >= block.size) return undefined;
  return block.base + field.hookFromText;
}
