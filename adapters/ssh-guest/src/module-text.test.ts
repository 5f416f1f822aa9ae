import { MODULE_STRUCT_WINDOW, findModuleTextField, hookAddressIn, textBlockAt } from './module-text';

/** A `struct module`'s first bytes with a text block (`base`, then a u32 `size`) at `offset`, and other fields around it. */
function moduleStruct(fields: readonly { offset: number; value: bigint; size?: number }[]): Uint8Array {
  const bytes = Buffer.alloc(1024);
  bytes.write('virtio_mem\0', 24, 'latin1');
  for (const f of fields) {
    bytes.writeBigUInt64LE(f.value, f.offset);
    if (f.size !== undefined) bytes.writeUInt32LE(f.size, f.offset + 8);
  }
  return new Uint8Array(bytes);
}

const TEXT = 0xffffffffc0a00000n;
const HOOK = TEXT + 0x1c40n;

describe('the module text base in struct module', () => {
  it('finds the pointer-and-size pair whose page-aligned block holds the hook, past fields that only look like it', () => {
    const bytes = moduleStruct([
      // mod->init: a function at the start of init text (page-aligned), followed by padding, not a size.
      { offset: 304, value: TEXT - 0x40000n },
      // A pointer into the module's data (above the hook) with a size.
      { offset: 320, value: TEXT + 0x8000n, size: 0x2000 },
      // A block that is not page-aligned.
      { offset: 336, value: TEXT + 0x10n, size: 0x9000 },
      // mem[MOD_TEXT]: the text.
      { offset: 384, value: TEXT, size: 0x9000 },
      // mem[MOD_DATA], placed far from the text (Linux from 6.4 on).
      { offset: 448, value: 0xffffffffc1f00000n, size: 0x3000 },
    ]);
    expect(findModuleTextField(bytes, HOOK)).toEqual({ offset: 384, hookFromText: 0x1c40n });
  });

  it('arms the next load at that load’s own text base, wherever the kernel put it', () => {
    const field = findModuleTextField(moduleStruct([{ offset: 384, value: TEXT, size: 0x9000 }]), HOOK)!;
    const moved = 0xffffffffc3450000n;
    expect(hookAddressIn(moduleStruct([{ offset: 384, value: moved, size: 0x9000 }]), field)).toBe(moved + 0x1c40n);
  });

  it('refuses a load whose block at the learnt offset cannot hold the hook (a different module or kernel)', () => {
    const field = { offset: 384, hookFromText: 0x1c40n };
    expect(hookAddressIn(moduleStruct([{ offset: 384, value: TEXT, size: 0x1000 }]), field)).toBeUndefined();
    expect(hookAddressIn(moduleStruct([{ offset: 384, value: TEXT + 8n, size: 0x9000 }]), field)).toBeUndefined();
    expect(hookAddressIn(new Uint8Array(390), field)).toBeUndefined();
  });

  it('finds nothing when no field holds the hook, or the bytes stop short', () => {
    expect(findModuleTextField(moduleStruct([{ offset: 384, value: TEXT, size: 0x1000 }]), HOOK)).toBeUndefined();
    expect(findModuleTextField(new Uint8Array(0), HOOK)).toBeUndefined();
    expect(textBlockAt(new Uint8Array(16), 8)).toBeUndefined();
    expect(MODULE_STRUCT_WINDOW).toBeGreaterThanOrEqual(1024);
  });
});
