/**
 * Reading a virtio-pci device's registers from inside a guest, through the
 * `VIRTIO_PCI_CAP_PCI_CFG` window (virtio 1.x §4.1.4.9): write bar/offset/length into the
 * capability through sysfs `config`, then read the data field. It needs no boot parameter and
 * no mapping of a BAR the driver owns.
 *
 * The host parses the capability list and builds the shell text; every number in that text is
 * computed here from the device's own config space, never taken from a vector.
 */

/** virtio-pci capability types (`cfg_type`). */
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_PCI_CFG = 5;

/** One virtio vendor capability. */
export interface VirtioCap {
  /** Offset of the capability in config space. */
  readonly position: number;
  readonly cfgType: number;
  readonly bar: number;
  readonly offset: number;
  readonly length: number;
}

/** The capabilities the window needs. */
export interface VirtioPciLayout {
  readonly pciCfg: VirtioCap;
  readonly deviceCfg: VirtioCap;
  readonly commonCfg: VirtioCap;
}

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

/** Finds the virtio capabilities in a PCI config space (at least 64 bytes; 256 to see capabilities). */
export function parseVirtioCaps(config: Uint8Array): VirtioPciLayout {
  const view = new DataView(config.buffer, config.byteOffset, config.byteLength);
  if (config.length < 256) throw new Error(`PCI config space is ${config.length} bytes; 256 are needed (read it as root)`);
  const status = view.getUint16(0x06, true);
  if ((status & 0x10) === 0) throw new Error('the PCI device has no capability list');
  const caps: VirtioCap[] = [];
  let position = config[0x34]! & 0xfc;
  for (let hops = 0; position !== 0 && hops < 48; hops++) {
    if (position + 16 > config.length) throw new Error(`capability at 0x${position.toString(16)} runs past config space`);
    if (config[position] === 0x09) {
      caps.push({ position, cfgType: config[position + 3]!, bar: config[position + 4]!, offset: view.getUint32(position + 8, true), length: view.getUint32(position + 12, true) });
    }
    position = config[position + 1]! & 0xfc;
  }
  const find = (type: number, name: string): VirtioCap => {
    const cap = caps.find((c) => c.cfgType === type);
    if (!cap) throw new Error(`the device has no virtio ${name} capability`);
    return cap;
  };
  return { pciCfg: find(VIRTIO_PCI_CAP_PCI_CFG, 'PCI_CFG'), deviceCfg: find(VIRTIO_PCI_CAP_DEVICE_CFG, 'DEVICE_CFG'), commonCfg: find(VIRTIO_PCI_CAP_COMMON_CFG, 'COMMON_CFG') };
}

/** A sysfs PCI device folder, checked so it can go into shell text unquoted. */
export function checkedSysfsDevice(p: string): string {
  if (!/^\/sys\/bus\/pci\/devices\/[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(p)) throw new Error(`not a PCI device folder: '${p}'`);
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
export function windowReadScript(device: string, cap: VirtioCap, reads: readonly WindowRead[]): string {
  const config = `${checkedSysfsDevice(device)}/config`;
  const pos = integer(cap.position, 'capability position', 0xf0);
  if (pos % 4 !== 0) throw new Error(`PCI_CFG capability at 0x${pos.toString(16)} is not 4-byte aligned`);
  const lines: string[] = [];
  let bar = -1;
  let length = -1;
  for (const r of reads) {
    if (r.bar !== bar) {
      bar = integer(r.bar, 'bar', 5);
      lines.push(`printf '${octalBytes(bar, 1)}' | dd of=${config} bs=1 seek=${pos + 4} count=1 conv=notrunc 2>/dev/null`);
    }
    if (r.length !== length) {
      length = r.length;
      lines.push(`printf '${octalBytes(length, 4)}' | dd of=${config} bs=4 seek=${(pos + 12) / 4} count=1 conv=notrunc 2>/dev/null`);
    }
    lines.push(`printf '${octalBytes(integer(r.offset, 'offset'), 4)}' | dd of=${config} bs=4 seek=${(pos + 8) / 4} count=1 conv=notrunc 2>/dev/null`);
    lines.push(`dd if=${config} bs=4 skip=${(pos + 16) / 4} count=1 2>/dev/null | od -An -tx1 -v`);
  }
  return lines.join('\n');
}

/** The values of a {@link windowReadScript}'s output, one per read (little-endian). */
export function parseWindowOutput(output: string, reads: readonly WindowRead[]): Uint8Array[] {
  const lines = output.split('\n').filter((l) => l.trim().length > 0);
  if (lines.length !== reads.length) throw new Error(`expected ${reads.length} window reads, got ${lines.length} lines`);
  return lines.map((line, i) => {
    const bytes = parseHexDump(line);
    if (bytes.length !== 4) throw new Error(`window read ${i} gave ${bytes.length} bytes`);
    return bytes.slice(0, reads[i]!.length);
  });
}

/** Offset of `config_generation` in the common configuration (virtio 1.x §4.1.4.3). */
export const COMMON_CONFIG_GENERATION = 0x15;
/** Offsets of `device_feature_select` and `device_feature`. */
export const COMMON_DEVICE_FEATURE_SELECT = 0x00;
export const COMMON_DEVICE_FEATURE = 0x04;

/** The reads of one consistent config snapshot: generation, `size` bytes in dwords, generation. */
export function configSnapshotReads(layout: VirtioPciLayout, size: number): WindowRead[] {
  const generation: WindowRead = { bar: layout.commonCfg.bar, offset: layout.commonCfg.offset + COMMON_CONFIG_GENERATION, length: 1 };
  const reads: WindowRead[] = [generation];
  for (let at = 0; at < size; at += 4) reads.push({ bar: layout.deviceCfg.bar, offset: layout.deviceCfg.offset + at, length: 4 });
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
      `printf '${octalBytes(layout.commonCfg.bar, 1)}' | dd of=${config} bs=1 seek=${pos + 4} count=1 conv=notrunc 2>/dev/null`,
      `printf '${octalBytes(4, 4)}' | dd of=${config} bs=4 seek=${(pos + 12) / 4} count=1 conv=notrunc 2>/dev/null`,
      `printf '${octalBytes(layout.commonCfg.offset + COMMON_DEVICE_FEATURE_SELECT, 4)}' | dd of=${config} bs=4 seek=${(pos + 8) / 4} count=1 conv=notrunc 2>/dev/null`,
      `printf '${octalBytes(word, 4)}' | dd of=${config} bs=4 seek=${(pos + 16) / 4} count=1 conv=notrunc 2>/dev/null`,
      `printf '${octalBytes(layout.commonCfg.offset + COMMON_DEVICE_FEATURE, 4)}' | dd of=${config} bs=4 seek=${(pos + 8) / 4} count=1 conv=notrunc 2>/dev/null`,
      `dd if=${config} bs=4 skip=${(pos + 16) / 4} count=1 2>/dev/null | od -An -tx1 -v`,
    ].join('\n');
  return `${select(0)}\n${select(1)}`;
}

/** Little-endian unsigned value of up to 8 bytes. */
export function leValue(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}
