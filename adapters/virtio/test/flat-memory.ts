/**
 * Test memory: one flat byte array of guest-physical memory starting at `base`, usable as the
 * device's {@link MappedGuestMemory} directly.
 */
import type { MappedGuestMemory } from '../src/index';

/** [base, base + size) of guest memory in one array; accesses outside it fail. */
export class FlatMemory implements MappedGuestMemory {
  readonly bytes: Uint8Array;

  constructor(
    readonly size: number,
    readonly base = 0n,
  ) {
    this.bytes = new Uint8Array(size);
  }

  covers(addr: bigint, length: bigint): boolean {
    return addr >= this.base && length >= 0n && addr + length <= this.base + BigInt(this.size);
  }

  read(addr: bigint, length: number): Uint8Array | undefined {
    if (!this.covers(addr, BigInt(length))) return undefined;
    const at = Number(addr - this.base);
    return this.bytes.slice(at, at + length);
  }

  write(addr: bigint, bytes: Uint8Array): boolean {
    if (!this.covers(addr, BigInt(bytes.length))) return false;
    this.bytes.set(bytes, Number(addr - this.base));
    return true;
  }

  u16(addr: bigint): number {
    const at = Number(addr - this.base);
    return this.bytes[at]! | (this.bytes[at + 1]! << 8);
  }

  setU16(addr: bigint, value: number): void {
    const at = Number(addr - this.base);
    this.bytes[at] = value & 0xff;
    this.bytes[at + 1] = (value >> 8) & 0xff;
  }
}
