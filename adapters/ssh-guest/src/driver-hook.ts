/**
 * Where answers can be injected into the guest's virtio_mem driver: the address of the function
 * through which it sends every request (from the guest's /proc/kallsyms, as root) and the offsets
 * of the request and response buffers in its `struct virtio_mem` (from the module's BTF,
 * /sys/kernel/btf/virtio_mem). Both are read over the SSH shell after the driver is loaded (KASLR
 * and module loading move the address on every load), and checked: a kernel without the symbol,
 * with a renamed clone of it (e.g. `.isra`, whose calling convention may differ), without module
 * BTF or with a struct that lacks the members is `unsupported` with the reason, never guessed.
 */
import { VirtioMemRequestLayout, VirtioMemResponseLayout } from '../../../spec/src/index';
import { BTF_HEADER_SIZE, BtfStrings, baseNameOffsets, findModuleStruct, parseBtf, parseBtfHeader } from './btf';

/** What the hook is, in the Linux driver: declared once. */
export const DRIVER_HOOK = {
  module: 'virtio_mem',
  /** `int virtio_mem_send_request(struct virtio_mem *vm, const struct virtio_mem_req *req)`: returns the response type. */
  sendRequest: 'virtio_mem_send_request',
  struct: 'virtio_mem',
  /** `struct virtio_mem_req req` (what the device is sent) and `struct virtio_mem_resp resp` (what it answered). */
  requestMember: 'req',
  responseMember: 'resp',
} as const;

/** The driver's hook in one loaded instance of the module. */
export interface DriverHook {
  /** Guest-virtual address of `virtio_mem_send_request`'s first instruction. */
  readonly sendRequest: bigint;
  /** Byte offset of `req` in `struct virtio_mem`. */
  readonly requestOffset: number;
  /** Byte offset of `resp` in `struct virtio_mem`. */
  readonly responseOffset: number;
  /** `sizeof(struct virtio_mem)`. */
  readonly structSize: number;
}

/** Whether answers can be injected into this guest's driver, and where. */
export type DriverHookResolution =
  { readonly kind: 'supported'; readonly hook: DriverHook } | { readonly kind: 'unsupported'; readonly reason: string };

/** What the resolver needs of the guest's shell. */
export interface HookShell {
  run(command: string, timeoutMs: number): Promise<{ readonly status: number; readonly output: string }>;
}

/** One line of /proc/kallsyms. */
export interface KallsymsEntry {
  readonly address: bigint;
  readonly type: string;
  readonly name: string;
  readonly module: string | undefined;
}

/** Lines of /proc/kallsyms (`ADDRESS TYPE NAME [MODULE]`); other lines are skipped. */
export function parseKallsyms(text: string): KallsymsEntry[] {
  const entries: KallsymsEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{8,16}) ([A-Za-z]) (\S+)(?:\s+\[(\S+)\])?\s*$/.exec(line);
    if (m) entries.push({ address: BigInt(`0x${m[1]}`), type: m[2]!, name: m[3]!, module: m[4] });
  }
  return entries;
}

/** The hook's function address among kallsyms entries, or why it cannot be used. */
export function sendRequestAddress(entries: readonly KallsymsEntry[]): { address: bigint } | { reason: string } {
  const name = DRIVER_HOOK.sendRequest;
  const exact = entries.filter((e) => e.name === name && e.module === DRIVER_HOOK.module);
  if (exact.length === 0) {
    const clones = entries.filter((e) => e.name.startsWith(`${name}.`)).map((e) => e.name);
    return {
      reason: clones.length
        ? `the driver's ${name} exists only as compiler clones (${clones.join(', ')}), whose calling convention is not known`
        : `the guest's /proc/kallsyms has no ${name} in [${DRIVER_HOOK.module}] (inlined, or the driver is not loaded)`,
    };
  }
  if (exact.length > 1) return { reason: `the guest's /proc/kallsyms has ${exact.length} symbols named ${name}` };
  const e = exact[0]!;
  if (e.address === 0n)
    return { reason: `/proc/kallsyms shows ${name} at address 0: kptr_restrict hides kernel addresses from this user` };
  if (!/^[tT]$/.test(e.type)) return { reason: `${name} is a '${e.type}' symbol, not code` };
  return { address: e.address };
}

/** Bytes of `od -An -tx1 -v` output. */
export function parseOdBytes(text: string): Uint8Array | undefined {
  const digits = text
    .trim()
    .split(/\s+/)
    .filter((d) => d.length > 0);
  if (!digits.every((d) => /^[0-9a-f]{2}$/.test(d))) return undefined;
  return new Uint8Array(digits.map((d) => parseInt(d, 16)));
}

const SHELL_TIMEOUT_MS = 30_000;
/** Bytes read per base string (a member name longer than this is not one the hook needs). */
const BASE_NAME_BYTES = 48;

/**
 * The struct layout the hook needs from the module's split BTF blob, the base header and the
 * base strings the caller read: checked for both members and their sizes.
 */
export function hookOffsets(
  moduleBtf: Uint8Array,
  strings: BtfStrings,
):
  | { readonly requestOffset: number; readonly responseOffset: number; readonly structSize: number }
  | { reason: string } {
  const blob = parseBtf(moduleBtf, `/sys/kernel/btf/${DRIVER_HOOK.module}`);
  if (!blob.ok) return { reason: blob.reason };
  const layout = findModuleStruct(blob.value, strings, DRIVER_HOOK.struct);
  if (!layout.ok) return { reason: layout.reason };
  const req = layout.value.members.get(DRIVER_HOOK.requestMember);
  const resp = layout.value.members.get(DRIVER_HOOK.responseMember);
  if (req === undefined || resp === undefined)
    return {
      reason: `struct ${DRIVER_HOOK.struct} in the module's BTF has no byte-aligned '${DRIVER_HOOK.requestMember}' and '${DRIVER_HOOK.responseMember}' members`,
    };
  const size = layout.value.size;
  if (req + VirtioMemRequestLayout.size > size || resp + VirtioMemResponseLayout.size > size)
    return {
      reason: `struct ${DRIVER_HOOK.struct} (${size} bytes) is too small for req at ${req} and resp at ${resp}`,
    };
  if (Math.abs(resp - req) < VirtioMemRequestLayout.size)
    return { reason: `struct ${DRIVER_HOOK.struct}: req at ${req} and resp at ${resp} overlap` };
  return { requestOffset: req, responseOffset: resp, structSize: size };
}

/** Reads and checks the hook in the guest, whose driver must be loaded. */
export async function resolveDriverHook(shell: HookShell): Promise<DriverHookResolution> {
  const unsupported = (reason: string): DriverHookResolution => ({ kind: 'unsupported', reason });
  const syms = await shell.run(`grep ' ${DRIVER_HOOK.sendRequest}' /proc/kallsyms`, SHELL_TIMEOUT_MS);
  const address = sendRequestAddress(parseKallsyms(syms.output));
  if ('reason' in address) return unsupported(address.reason);

  const btfPath = `/sys/kernel/btf/${DRIVER_HOOK.module}`;
  const moduleRead = await shell.run(`od -An -tx1 -v ${btfPath}`, SHELL_TIMEOUT_MS);
  const moduleBtf = moduleRead.status === 0 ? parseOdBytes(moduleRead.output) : undefined;
  if (!moduleBtf || moduleBtf.length === 0)
    return unsupported(`${btfPath} cannot be read: the kernel has no module BTF (CONFIG_DEBUG_INFO_BTF_MODULES)`);
  const baseRead = await shell.run(
    `head -c ${BTF_HEADER_SIZE} /sys/kernel/btf/vmlinux | od -An -tx1 -v`,
    SHELL_TIMEOUT_MS,
  );
  const baseBytes = baseRead.status === 0 ? parseOdBytes(baseRead.output) : undefined;
  if (!baseBytes) return unsupported('/sys/kernel/btf/vmlinux cannot be read: the kernel has no BTF');
  const baseHeader = parseBtfHeader(baseBytes, '/sys/kernel/btf/vmlinux');
  if (!baseHeader.ok) return unsupported(baseHeader.reason);
  const blob = parseBtf(moduleBtf, btfPath);
  if (!blob.ok) return unsupported(blob.reason);

  const baseStrLen = baseHeader.value.strLen;
  const offsets = baseNameOffsets(blob.value, baseStrLen, DRIVER_HOOK.struct);
  const base = new Map<number, string>();
  if (offsets.length > 0) {
    const start = baseHeader.value.hdrLen + baseHeader.value.strOff;
    const read = await shell.run(
      offsets
        .map(
          (o) =>
            `{ dd if=/sys/kernel/btf/vmlinux bs=${BASE_NAME_BYTES} count=1 skip=${start + o} iflag=skip_bytes 2>/dev/null || dd if=/sys/kernel/btf/vmlinux bs=1 skip=${start + o} count=${BASE_NAME_BYTES} 2>/dev/null; } | od -An -tx1 -v; echo ==`,
        )
        .join('\n'),
      SHELL_TIMEOUT_MS,
    );
    const parts = read.output.split('==').slice(0, offsets.length);
    if (read.status !== 0 || parts.length !== offsets.length)
      return unsupported('the base strings of /sys/kernel/btf/vmlinux cannot be read');
    parts.forEach((part, i) => {
      const bytes = parseOdBytes(part);
      if (!bytes) return;
      const end = bytes.indexOf(0);
      if (end >= 0) base.set(offsets[i]!, Buffer.from(bytes.subarray(0, end)).toString('latin1'));
    });
  }
  const layout = hookOffsets(moduleBtf, { baseStrLen, base });
  if ('reason' in layout) return unsupported(layout.reason);
  return { kind: 'supported', hook: { sendRequest: address.address, ...layout } };
}
