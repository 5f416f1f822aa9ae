/**
 * Reading a virtio-pci device's registers from inside a guest, through the
 * `VIRTIO_PCI_CAP_PCI_CFG` window (virtio 1.x §4.1.4.9): write bar/offset/length into the
 * capability through sysfs `config`, then read the data field. It needs no boot parameter and
 * no mapping of a BAR the driver owns.
 *
 * The host walks the capability list (the walk the QEMU adapter uses too, in adapters/virtio)
 * and builds the shell text; every number in that text is computed here from the device's own
 * config space and the spec's layouts, never taken from a vector.
 */
import { PCI_CONFIG_SPACE_BYTES, VirtioPciCfgCapLayout, VirtioPciCommonCfgLayout } from '../../../spec/src/index';
import { VirtioPciCapability, VirtioPciLayout, findVirtioPciLayout } from '../../virtio/src/index';

export type { VirtioPciLayout } from '../../virtio/src/index';

/** Offsets inside the PCI_CFG capability of the window's fields. */
const WINDOW = {
  bar: VirtioPciCfgCapLayout.fields.bar.offset,
  offset: VirtioPciCfgCapLayout.fields.offset.offset,
  length: VirtioPciCfgCapLayout.fields.length.offset,
  data: VirtioPciCfgCapLayout.fields.pci_cfg_data.offset,
} as const;

/** Names of the capability types, for messages. */
const CAP_NAMES: Readonly<Record<number, string>> = {
  1: 'COMMON_CFG',
  2: 'NOTIFY_CFG',
  3: 'ISR_CFG',
  4: 'DEVICE_CFG',
  5: 'PCI_CFG',
};

/** Parses `od -An -tx1 -v` output into bytes. */
export function parseHexDump(text: string): Uint8Array {
  const bytes = text
    .split(/\s+/)
    .filter((t) => t.length > 0)
    .map((t) => {
      if (!/^[0-9a-f]{2}$/i.test(t)) throw new Error(`not a hex byte: '${t}'`);
      return parseInt(t, 16);
    });
  return Uint8Array.from(bytes);
}

/**
 * Finds the virtio capabilities in a PCI config space (all 256 bytes, which sysfs shows only to root).
 * @throws Error when the space is short, has no capability list or lacks a virtio structure.
 */
export function parseVirtioCaps(config: Uint8Array): VirtioPciLayout {
  if (config.length < PCI_CONFIG_SPACE_BYTES)
    throw new Error(
      `PCI config space is ${config.length} bytes; ${PCI_CONFIG_SPACE_BYTES} are needed (read it as root)`,
    );
  const found = findVirtioPciLayout(config);
  if (found.ok) return found.layout;
  if (found.reason === 'no-capability-list') throw new Error('the PCI device has no capability list');
  if (found.reason === 'missing-capabilities')
    throw new Error(
      `the device has no virtio ${found.missing.map((t) => CAP_NAMES[t] ?? `type ${t}`).join(', ')} capability`,
    );
  throw new Error(found.detail);
}

/** A sysfs PCI device folder, checked so it can go into shell text unquoted. */
export function checkedSysfsDevice(p: string): string {
  if (!/^\/sys\/bus\/pci\/devices\/[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(p))
    throw new Error(`not a PCI device folder: '${p}'`);
  return p;
}

function octalBytes(value: number, count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) text += `\\${((value >>> (8 * i)) & 0xff).toString(8).padStart(3, '0')}`;
  return text;
}

function integer(n: number, what: string, max = 0xffffffff): number {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new RangeError(`${what} out of range: ${n}`);
  return n;
}

/** One access through the window: `length` 1, 2 or 4 bytes at `offset` in the capability's BAR. */
export interface WindowRead {
  readonly bar: number;
  readonly offset: number;
  readonly length: 1 | 2 | 4;
}

/**
 * Shell text that performs `reads` in order and prints one line of hex bytes (4 per line, the
 * data field) for each. Only the first `length` bytes of a line are the value.
 */
export function windowReadScript(device: string, cap: VirtioPciCapability, reads: readonly WindowRead[]): string {
  const config = `${checkedSysfsDevice(device)}/config`;
  const pos = integer(cap.position, 'capability position', 0xf0);
  if (pos % 4 !== 0) throw new Error(`PCI_CFG capability at 0x${pos.toString(16)} is not 4-byte aligned`);
  const lines: string[] = [];
  let bar = -1;
  let length = -1;
  for (const r of reads) {
    if (r.bar !== bar) {
      bar = integer(r.bar, 'bar', 5);
      lines.push(
        `printf '${octalBytes(bar, 1)}' | dd of=${config} bs=1 seek=${pos + WINDOW.bar} count=1 conv=notrunc 2>/dev/null`,
      );
    }
    if (r.length !== length) {
      length = r.length;
      lines.push(
        `printf '${octalBytes(length, 4)}' | dd of=${config} bs=4 seek=${(pos + WINDOW.length) / 4} count=1 conv=notrunc 2>/dev/null`,
      );
    }
    lines.push(
      `printf '${octalBytes(integer(r.offset, 'offset'), 4)}' | dd of=${config} bs=4 seek=${(pos + WINDOW.offset) / 4} count=1 conv=notrunc 2>/dev/null`,
    );
    lines.push(`dd if=${config} bs=4 skip=${(pos + WINDOW.data) / 4} count=1 2>/dev/null | od -An -tx1 -v`);
  }
  return lines.join('\n');
}

/** The values of a {@link windowReadScript}'s output, one per read (little-endian). */
export function parseWindowOutput(output: string, reads: readonly WindowRead[]): Uint8Array[] {
  const lines = output.split('\n').filter((l) => l.trim().length > 0);
  if (lines.length !== reads.length)
    throw new Error(`expected ${reads.length} window reads, got ${lines.length} lines`);
  return lines.map((line, i) => {
    const bytes = parseHexDump(line);
    if (bytes.length !== 4) throw new Error(`window read ${i} gave ${bytes.length} bytes`);
    return bytes.slice(0, reads[i]!.length);
  });
}

/** Offsets in the common configuration of the registers read through the window. */
const COMMON = VirtioPciCommonCfgLayout.fields;

/** The reads of one consistent config snapshot: generation, `size` bytes in dwords, generation. */
export function configSnapshotReads(layout: VirtioPciLayout, size: number): WindowRead[] {
  const generation: WindowRead = {
    bar: layout.commonCfg.bar,
    offset: layout.commonCfg.offset + COMMON.config_generation.offset,
    length: 1,
  };
  const reads: WindowRead[] = [generation];
  for (let at = 0; at < size; at += 4)
    reads.push({ bar: layout.deviceCfg.bar, offset: layout.deviceCfg.offset + at, length: 4 });
  reads.push(generation);
  return reads;
}

/**
 * Shell text that writes `device_feature_select` (0, then 1) and reads `device_feature`: the
 * 64 feature bits the device offers. The driver does not use these registers after
 * initialisation, so selecting does not disturb it.
 */
export function offeredFeaturesScript(device: string, layout: VirtioPciLayout): string {
  const config = `${checkedSysfsDevice(device)}/config`;
  const pos = layout.pciCfg.position;
  const select = (word: number): string =>
    [
      `printf '${octalBytes(layout.commonCfg.bar, 1)}' | dd of=${config} bs=1 seek=${pos + WINDOW.bar} count=1 conv=notrunc 2>/dev/null`,
      `printf '${octalBytes(4, 4)}' | dd of=${config} bs=4 seek=${(pos + WINDOW.length) / 4} count=1 conv=notrunc 2>/dev/null`,
      `printf '${octalBytes(layout.commonCfg.offset + COMMON.device_feature_select.offset, 4)}' | dd of=${config} bs=4 seek=${(pos + WINDOW.offset) / 4} count=1 conv=notrunc 2>/dev/null`,
      `printf '${octalBytes(word, 4)}' | dd of=${config} bs=4 seek=${(pos + WINDOW.data) / 4} count=1 conv=notrunc 2>/dev/null`,
      `printf '${octalBytes(layout.commonCfg.offset + COMMON.device_feature.offset, 4)}' | dd of=${config} bs=4 seek=${(pos + WINDOW.offset) / 4} count=1 conv=notrunc 2>/dev/null`,
      `dd if=${config} bs=4 skip=${(pos + WINDOW.data) / 4} count=1 2>/dev/null | od -An -tx1 -v`,
    ].join('\n');
  return `${select(0)}\n${select(1)}`;
}

/** Little-endian unsigned value of up to 8 bytes. */
export function leValue(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}
