import { BTF_KINDS, BtfStrings, baseNameOffsets, findModuleStruct, parseBtf, parseBtfHeader, stringAt } from './btf';
import {
  DRIVER_HOOK,
  HookShell,
  hookOffsets,
  parseKallsyms,
  parseOdBytes,
  resolveDriverHook,
  sendRequestAddress,
} from './driver-hook';

// ------------------------------------------------------------------------------------------------
// A synthetic split BTF blob, built record by record as the kernel lays it out

const BASE_STR_LEN = 1000;
/** Base (vmlinux) strings by offset, as the guest would give them. */
const BASE_NAMES = new Map<number, string>([
  [100, 'req'],
  [200, 'resp'],
  [300, 'vdev'],
  [400, 'virtio_mem'],
]);

function kindNumber(name: string): number {
  return BTF_KINDS.find((k) => k.name === name)!.kind;
}

class BlobBuilder {
  private readonly types: number[] = [];
  private readonly strings: number[] = [0];

  /** A module string: its split-BTF name offset (past the base strings). */
  name(text: string): number {
    const at = this.strings.length;
    for (const c of Buffer.from(text, 'latin1')) this.strings.push(c);
    this.strings.push(0);
    return BASE_STR_LEN + at;
  }

  private u32(v: number): void {
    this.types.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }

  record(kind: string, nameOff: number, vlen: number, sizeOrType: number, extra: number[] = [], kflag = false): this {
    this.u32(nameOff);
    this.u32(((kflag ? 1 : 0) << 31) | (kindNumber(kind) << 24) | vlen);
    this.u32(sizeOrType);
    for (const v of extra) this.u32(v);
    return this;
  }

  struct(nameOff: number, size: number, members: [number, number, number][], kflag = false): this {
    return this.record('STRUCT', nameOff, members.length, size, members.flat(), kflag);
  }

  build(): Uint8Array {
    const header = [0x9f, 0xeb, 1, 0];
    const fields = [24, 0, this.types.length, this.types.length, this.strings.length];
    const out = [...header];
    for (const f of fields) out.push(f & 0xff, (f >>> 8) & 0xff, (f >>> 16) & 0xff, (f >>> 24) & 0xff);
    return new Uint8Array([...out, ...this.types, ...this.strings]);
  }
}

/** A module blob with kinds of every size around a `struct virtio_mem` with req at 88 and resp at 112. */
function moduleBlob(options: { withResp?: boolean; size?: number } = {}): Uint8Array {
  const b = new BlobBuilder();
  const own = b.name('virtio_mem');
  const other = b.name('virtio_mem_req');
  b.record('INT', b.name('u16'), 0, 2, [16])
    .record('PTR', 0, 0, 1)
    .record('ARRAY', 0, 0, 0, [1, 1, 4])
    .record('ENUM', b.name('virtio_mem_bbm_bb_state'), 2, 4, [b.name('A'), 0, b.name('B'), 1])
    .record('FUNC_PROTO', 0, 2, 0, [0, 1, 0, 2])
    .struct(other, 24, [[b.name('type'), 1, 0]])
    // A struct named virtio_mem by a base string: not the module's own.
    .struct(400, 8, [[100, 1, 0]])
    .record('VAR', b.name('x'), 0, 1, [1])
    .record('DATASEC', b.name('.data'), 1, 8, [1, 0, 8])
    .record('ENUM64', b.name('e64'), 1, 8, [b.name('C'), 0, 0])
    .record('DECL_TAG', b.name('tag'), 0, 1, [0]);
  const members: [number, number, number][] = [
    [300, 2, 0],
    [0, 3, 64],
    [100, 6, 88 * 8],
  ];
  if (options.withResp !== false) members.push([200, 6, 112 * 8]);
  b.struct(own, options.size ?? 544, members);
  // A bitfield struct (kflag set): offsets in the low 24 bits, widths in the high 8.
  b.struct(b.name('bits'), 4, [[b.name('lo'), 1, (3 << 24) | 5]], true);
  return b.build();
}

const STRINGS: BtfStrings = { baseStrLen: BASE_STR_LEN, base: BASE_NAMES };

describe('the BTF reader', () => {
  test('reads the header, and refuses a wrong magic, version or length', () => {
    const blob = moduleBlob();
    const h = parseBtfHeader(blob);
    expect(h.ok && h.value.hdrLen).toBe(24);
    expect(h.ok && h.value.version).toBe(1);
    const wrong = blob.slice();
    wrong[0] = 0;
    expect(parseBtfHeader(wrong)).toEqual({ ok: false, reason: 'BTF: magic 0xeb00, not 0xeb9f (little-endian BTF)' });
    const v2 = blob.slice();
    v2[2] = 2;
    expect(parseBtfHeader(v2).ok).toBe(false);
    expect(parseBtfHeader(blob.subarray(0, 10)).ok).toBe(false);
    expect(parseBtf(blob.subarray(0, blob.length - 5)).ok).toBe(false);
  });

  test('walks every kind to the right record boundaries', () => {
    const r = parseBtf(moduleBlob());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.types.map((t) => t.kind)).toEqual([
      'INT',
      'PTR',
      'ARRAY',
      'ENUM',
      'FUNC_PROTO',
      'STRUCT',
      'STRUCT',
      'VAR',
      'DATASEC',
      'ENUM64',
      'DECL_TAG',
      'STRUCT',
      'STRUCT',
    ]);
    const bits = r.value.types[12]!;
    expect(bits.members).toEqual([expect.objectContaining({ bitOffset: 5, bitSize: 3 })]);
    expect(stringAt(r.value.strings, 1)).toBe('virtio_mem');
  });

  test('finds the module-defined struct by name with its named members byte offsets', () => {
    const blob = parseBtf(moduleBlob());
    if (!blob.ok) throw new Error(blob.reason);
    expect(baseNameOffsets(blob.value, BASE_STR_LEN, 'virtio_mem')).toEqual([100, 200, 300]);
    const s = findModuleStruct(blob.value, STRINGS, 'virtio_mem');
    expect(s.ok).toBe(true);
    if (!s.ok) return;
    expect(s.value.size).toBe(544);
    expect([...s.value.members]).toEqual([
      ['vdev', 0],
      ['req', 88],
      ['resp', 112],
    ]);
    expect(findModuleStruct(blob.value, STRINGS, 'nothing')).toEqual({
      ok: false,
      reason: "the module's BTF has no struct nothing",
    });
    const unknownBase = findModuleStruct(blob.value, { baseStrLen: BASE_STR_LEN, base: new Map() }, 'virtio_mem');
    expect(unknownBase.ok).toBe(false);
  });
});

describe('the driver hook', () => {
  const kallsyms = [
    'ffffffffc03ac3c0 t virtio_mem_send_request\t[virtio_mem]',
    'ffffffffc03ab000 t virtio_mem_probe\t[virtio_mem]',
    'ffffffff81000000 T _text',
  ].join('\n');

  test('kallsyms: the exact symbol of the module; clones, zero addresses and absence are reasons', () => {
    const entries = parseKallsyms(kallsyms);
    expect(entries[0]).toEqual({
      address: 0xffffffffc03ac3c0n,
      type: 't',
      name: DRIVER_HOOK.sendRequest,
      module: 'virtio_mem',
    });
    expect(entries[2]!.module).toBeUndefined();
    expect(sendRequestAddress(entries)).toEqual({ address: 0xffffffffc03ac3c0n });
    expect(
      sendRequestAddress(parseKallsyms('ffffffffc03ac3c0 t virtio_mem_send_request.isra.0\t[virtio_mem]')),
    ).toEqual({ reason: expect.stringMatching(/only as compiler clones \(virtio_mem_send_request\.isra\.0\)/) });
    expect(sendRequestAddress(parseKallsyms('0000000000000000 t virtio_mem_send_request\t[virtio_mem]'))).toEqual({
      reason: expect.stringMatching(/kptr_restrict/),
    });
    expect(sendRequestAddress(parseKallsyms('ffffffff81000000 T _text'))).toEqual({
      reason: expect.stringMatching(/has no virtio_mem_send_request/),
    });
  });

  test('od output is read as bytes; anything else is refused', () => {
    expect(parseOdBytes(' 9f eb 01 00\n 18 00\n')).toEqual(new Uint8Array([0x9f, 0xeb, 1, 0, 0x18, 0]));
    expect(parseOdBytes('od: no such file')).toBeUndefined();
  });

  test('offsets come from the module struct, and a struct without resp or too small is a reason', () => {
    expect(hookOffsets(moduleBlob(), STRINGS)).toEqual({ requestOffset: 88, responseOffset: 112, structSize: 544 });
    expect(hookOffsets(moduleBlob({ withResp: false }), STRINGS)).toEqual({
      reason: expect.stringMatching(/no byte-aligned 'req' and 'resp' members/),
    });
    expect(hookOffsets(moduleBlob({ size: 120 }), STRINGS)).toEqual({ reason: expect.stringMatching(/too small/) });
  });

  /** A guest shell answering the resolver's commands from fixed files. */
  function fakeShell(files: { kallsyms: string; moduleBtf?: Uint8Array }): HookShell & { commands: string[] } {
    const od = (b: Uint8Array): string => `${[...b].map((x) => x.toString(16).padStart(2, '0')).join(' ')}\n`;
    const baseHeader = new Uint8Array(24);
    baseHeader.set([0x9f, 0xeb, 1, 0, 24, 0, 0, 0]);
    // type_off 0, type_len 5000, str_off 5000, str_len BASE_STR_LEN
    baseHeader.set([0, 0, 0, 0, 0x88, 0x13, 0, 0, 0x88, 0x13, 0, 0, BASE_STR_LEN & 0xff, BASE_STR_LEN >> 8, 0, 0], 8);
    const commands: string[] = [];
    return {
      commands,
      async run(command: string) {
        commands.push(command);
        if (command.includes('/proc/kallsyms')) return { status: 0, output: files.kallsyms };
        if (command.startsWith('od -An -tx1 -v /sys/kernel/btf/virtio_mem'))
          return files.moduleBtf
            ? { status: 0, output: od(files.moduleBtf) }
            : { status: 1, output: 'od: /sys/kernel/btf/virtio_mem: No such file or directory\n' };
        if (command.startsWith('head -c 24 /sys/kernel/btf/vmlinux')) return { status: 0, output: od(baseHeader) };
        if (command.includes('dd if=/sys/kernel/btf/vmlinux')) {
          const parts = command.split('\n').map((line) => {
            const skip = Number(/skip=([0-9]+)/.exec(line)![1]) - 24 - 5000;
            const text = Buffer.concat([Buffer.from(BASE_NAMES.get(skip) ?? 'zz', 'latin1'), Buffer.alloc(48)]);
            return `${od(text.subarray(0, 48))}==\n`;
          });
          return { status: 0, output: parts.join('') };
        }
        return { status: 127, output: 'unknown command' };
      },
    };
  }

  test('resolves the address and offsets over the shell, reading only the base strings it needs', async () => {
    const shell = fakeShell({ kallsyms, moduleBtf: moduleBlob() });
    expect(await resolveDriverHook(shell)).toEqual({
      kind: 'supported',
      hook: { sendRequest: 0xffffffffc03ac3c0n, requestOffset: 88, responseOffset: 112, structSize: 544 },
    });
    const dd = shell.commands.find((c) => c.includes('dd if='))!;
    expect(dd.split('\n')).toHaveLength(3);
  });

  test('a kernel without module BTF or without the symbol is unsupported with the reason', async () => {
    expect(await resolveDriverHook(fakeShell({ kallsyms }))).toEqual({
      kind: 'unsupported',
      reason: expect.stringMatching(/CONFIG_DEBUG_INFO_BTF_MODULES/),
    });
    expect(await resolveDriverHook(fakeShell({ kallsyms: '', moduleBtf: moduleBlob() }))).toEqual({
      kind: 'unsupported',
      reason: expect.stringMatching(/has no virtio_mem_send_request in \[virtio_mem\]/),
    });
  });
});
