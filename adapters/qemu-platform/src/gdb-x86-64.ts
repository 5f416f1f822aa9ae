/**
 * The x86-64 registers as QEMU's gdbstub numbers and orders them (GDB's `i386:x86-64` core
 * feature): the `g` reply lists them in this order, little-endian, and `p`/`P` address them by
 * number. Only the registers the injection needs are declared; the rest of a `g` reply (segment
 * bases, control, FPU and vector registers) is ignored.
 */

/** One register of the gdbstub's x86-64 register file. */
export interface GdbRegisterSpec {
  readonly name: string;
  /** The register's number in `p`/`P` packets. */
  readonly number: number;
  /** Bytes in the `g` reply and in `p`/`P` (little-endian). */
  readonly size: 4 | 8;
}

/** The leading registers of QEMU's x86-64 `g` reply, in order (numbers 0 to 23). */
export const X86_64_REGISTERS = [
  { name: 'rax', number: 0, size: 8 },
  { name: 'rbx', number: 1, size: 8 },
  { name: 'rcx', number: 2, size: 8 },
  { name: 'rdx', number: 3, size: 8 },
  { name: 'rsi', number: 4, size: 8 },
  { name: 'rdi', number: 5, size: 8 },
  { name: 'rbp', number: 6, size: 8 },
  { name: 'rsp', number: 7, size: 8 },
  { name: 'r8', number: 8, size: 8 },
  { name: 'r9', number: 9, size: 8 },
  { name: 'r10', number: 10, size: 8 },
  { name: 'r11', number: 11, size: 8 },
  { name: 'r12', number: 12, size: 8 },
  { name: 'r13', number: 13, size: 8 },
  { name: 'r14', number: 14, size: 8 },
  { name: 'r15', number: 15, size: 8 },
  { name: 'rip', number: 16, size: 8 },
  { name: 'eflags', number: 17, size: 4 },
  { name: 'cs', number: 18, size: 4 },
  { name: 'ss', number: 19, size: 4 },
  { name: 'ds', number: 20, size: 4 },
  { name: 'es', number: 21, size: 4 },
  { name: 'fs', number: 22, size: 4 },
  { name: 'gs', number: 23, size: 4 },
] as const satisfies readonly GdbRegisterSpec[];

/** The name of a declared x86-64 register. */
export type X86_64Register = (typeof X86_64_REGISTERS)[number]['name'];

/** Register values by name, as read from a `g` reply. */
export type X86_64RegisterFile = Readonly<Record<X86_64Register, bigint>>;

/** The declaration of register `name`. */
export function registerSpec(name: X86_64Register): GdbRegisterSpec {
  return X86_64_REGISTERS.find((r) => r.name === name)!;
}

/** Bytes of the declared registers at the start of a `g` reply. */
export const X86_64_DECLARED_BYTES = X86_64_REGISTERS.reduce((sum, r) => sum + r.size, 0);

/** Little-endian value of `bytes`. */
export function readLittleEndian(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

/** `value` as `size` little-endian bytes (the value must fit). */
export function writeLittleEndian(value: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let v = value;
  for (let i = 0; i < size; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/**
 * The declared registers of a `g` reply's bytes, or a message naming why they cannot be read
 * (a reply shorter than the declared registers).
 */
export function decodeRegisterFile(
  bytes: Uint8Array,
):
  | { readonly kind: 'ok'; readonly registers: X86_64RegisterFile }
  | { readonly kind: 'short'; readonly message: string } {
  if (bytes.length < X86_64_DECLARED_BYTES)
    return {
      kind: 'short',
      message: `the 'g' reply has ${bytes.length} bytes; the x86-64 registers rax..gs need ${X86_64_DECLARED_BYTES}`,
    };
  const registers: Partial<Record<X86_64Register, bigint>> = {};
  let at = 0;
  for (const r of X86_64_REGISTERS) {
    registers[r.name] = readLittleEndian(bytes.subarray(at, at + r.size));
    at += r.size;
  }
  return { kind: 'ok', registers: registers as X86_64RegisterFile };
}
