/**
 * The PCI virtio driver the QEMU adapter plays, over qtest: finds the virtio-mem function on
 * bus 0, assigns its memory BAR (no firmware ran), reads the virtio-pci modern capabilities,
 * performs the status/feature handshake and runs one split virtqueue in guest RAM.
 *
 * With TCG, QEMU processes the queue synchronously inside the notify write, so a whole request
 * (buffers, descriptors, avail entry, kick, used index, used entry, response) is one qtest batch.
 * The used index is still polled with a bound when it has not moved yet.
 */
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_VERSION_1,
  featureMask,
} from '../../../spec/src/index';
import type { Chain, Completion, Initialisation } from '../../core/src/contract';
import { QtestClient, answerBytes, answerValue, checkOk, qtestCommand as q } from './qtest';

/** PCI identity of a virtio-mem function (modern virtio-pci: 0x1040 + device ID 24). */
export const VIRTIO_PCI_VENDOR = 0x1af4;
export const VIRTIO_MEM_PCI_DEVICE = 0x1058;

const PCI_CONFIG_ADDRESS = 0xcf8;
const PCI_CONFIG_DATA = 0xcfc;
const PCI_COMMAND = 0x04;
const PCI_STATUS = 0x06;
const PCI_CAPABILITY_LIST = 0x34;
const PCI_BAR0 = 0x10;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;
const PCI_STATUS_CAP_LIST = 0x10;
const PCI_CAP_ID_VENDOR = 0x09;

/** virtio-pci capability types. */
const CAP_COMMON = 1;
const CAP_NOTIFY = 2;
const CAP_ISR = 3;
const CAP_DEVICE = 4;

/** Offsets in the common configuration structure. */
const COMMON = {
  deviceFeatureSelect: 0x00,
  deviceFeature: 0x04,
  driverFeatureSelect: 0x08,
  driverFeature: 0x0c,
  numQueues: 0x12,
  deviceStatus: 0x14,
  configGeneration: 0x15,
  queueSelect: 0x16,
  queueSize: 0x18,
  queueMsixVector: 0x1a,
  queueEnable: 0x1c,
  queueNotifyOff: 0x1e,
  queueDesc: 0x20,
  queueDriver: 0x28,
  queueDevice: 0x30,
} as const;

const VIRTQ_DESC_F_NEXT = 1;
const VIRTQ_DESC_F_WRITE = 2;
const NO_VECTOR = 0xffff;
const ISR_CONFIG = 0x2;

/** Where the adapter keeps its ring and buffers in guest RAM (the VM has 512 MiB of low RAM). */
const RING = {
  desc: 0x0100_0000n,
  avail: 0x0101_0000n,
  used: 0x0102_0000n,
  buffers: 0x0110_0000n,
} as const;

/** Largest total size of a submitted chain's buffers. */
export const MAX_CHAIN_BYTES = 1 << 20;

/** Where the BAR holding the virtio structures is placed: inside the q35 32-bit PCI hole. */
const BAR_BASE = 0xc000_0000n;

/** Transport features the adapter's queue handling implements; others are never accepted. */
const DRIVER_TRANSPORT_FEATURES = featureMask(VIRTIO_F_VERSION_1);
/** Device-specific feature bits (0–23) and the transport range (24–40 and above). */
const DEVICE_FEATURE_BITS = (1n << 24n) - 1n;

/** The virtio-pci structures of the function, as mapped after BAR assignment. */
export interface VirtioPciLayout {
  readonly bdf: number;
  readonly common: bigint;
  readonly isr: bigint;
  readonly device: bigint;
  readonly notifyBase: bigint;
  readonly notifyMultiplier: number;
}

/** The adapter's driver for one virtio-mem PCI function. */
export class VirtioPciDriver {
  private queueSize = 0;
  private notifyAddress = 0n;
  private availIndex = 0;
  private usedIndex = 0;
  /** Hex of the descriptor table last written (it is rewritten only when it changes). */
  private descriptorTable = '';
  /** Configuration-change interrupts seen in the ISR since the session began. */
  configInterrupts = 0;

  private constructor(private readonly qt: QtestClient, readonly layout: VirtioPciLayout) {}

  /** Enumerates bus 0, assigns the BAR and reads the capabilities (again after a system reset). */
  static async probe(qt: QtestClient): Promise<VirtioPciDriver> {
    const bdf = await findFunction(qt);
    const layout = await mapCapabilities(qt, bdf);
    return new VirtioPciDriver(qt, layout);
  }

  /** The status register. */
  async readStatus(): Promise<number> {
    return Number(answerValue(await this.qt.command(q.readb(this.layout.common + BigInt(COMMON.deviceStatus)))));
  }

  /** Writes the status register (0 resets the device) and returns what it reads back. */
  async writeStatus(status: number): Promise<number> {
    const addr = this.layout.common + BigInt(COMMON.deviceStatus);
    const [w, r] = await this.qt.batch([q.writeb(addr, status), q.readb(addr)]);
    checkOk('writeb status', w!);
    return Number(answerValue(r!));
  }

  /** Device reset: status 0, then waits (bounded) for it to read back 0. */
  async reset(): Promise<void> {
    let status = await this.writeStatus(0);
    for (let i = 0; status !== 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 1));
      status = await this.readStatus();
    }
    if (status !== 0) throw new Error(`device status reads ${status} after a reset`);
    // The device forgot the queue: until the next handshake sets it up again there is no ring
    // (and the old one in guest RAM must never be read as an answer).
    this.queueSize = 0;
    this.descriptorTable = '';
    this.availIndex = 0;
    this.usedIndex = 0;
  }

  /**
   * The handshake: reset, ACKNOWLEDGE, DRIVER, features (`accept` of those offered, limited to
   * what this driver implements), FEATURES_OK, queue 0, DRIVER_OK.
   */
  async initialise(accept: (offered: bigint) => bigint): Promise<Initialisation> {
    const c = this.layout.common;
    await this.reset();
    await this.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    await this.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    const f = await this.qt.batch([
      q.writel(c + BigInt(COMMON.deviceFeatureSelect), 0),
      q.readl(c + BigInt(COMMON.deviceFeature)),
      q.writel(c + BigInt(COMMON.deviceFeatureSelect), 1),
      q.readl(c + BigInt(COMMON.deviceFeature)),
    ]);
    const offered = answerValue(f[1]!) | (answerValue(f[3]!) << 32n);
    const accepted = accept(offered) & offered & (DEVICE_FEATURE_BITS | DRIVER_TRANSPORT_FEATURES);
    await this.qt.batch([
      q.writel(c + BigInt(COMMON.driverFeatureSelect), 0),
      q.writel(c + BigInt(COMMON.driverFeature), accepted & 0xffff_ffffn),
      q.writel(c + BigInt(COMMON.driverFeatureSelect), 1),
      q.writel(c + BigInt(COMMON.driverFeature), accepted >> 32n),
    ]);
    const base = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
    const afterFeatures = await this.writeStatus(base | VIRTIO_CONFIG_S_FEATURES_OK);
    const featuresOk = (afterFeatures & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
    if (!featuresOk) return { offered, accepted, featuresOk, status: afterFeatures };
    await this.setUpQueue();
    const status = await this.writeStatus(afterFeatures | VIRTIO_CONFIG_S_DRIVER_OK);
    return { offered, accepted, featuresOk, status };
  }

  private async setUpQueue(): Promise<void> {
    const c = this.layout.common;
    const [, size, , notifyOff] = await this.qt.batch([
      q.writew(c + BigInt(COMMON.queueSelect), 0),
      q.readw(c + BigInt(COMMON.queueSize)),
      q.writew(c + BigInt(COMMON.queueMsixVector), NO_VECTOR),
      q.readw(c + BigInt(COMMON.queueNotifyOff)),
    ]);
    this.queueSize = Number(answerValue(size!));
    if (this.queueSize === 0) throw new Error('queue 0 is not available (queue_size reads 0)');
    this.notifyAddress = this.layout.notifyBase + answerValue(notifyOff!) * BigInt(this.layout.notifyMultiplier);
    const answers = await this.qt.batch([
      q.memset(RING.desc, 16 * this.queueSize, 0),
      q.memset(RING.avail, 6 + 2 * this.queueSize, 0),
      q.memset(RING.used, 6 + 8 * this.queueSize, 0),
      q.writeq(c + BigInt(COMMON.queueDesc), RING.desc),
      q.writeq(c + BigInt(COMMON.queueDriver), RING.avail),
      q.writeq(c + BigInt(COMMON.queueDevice), RING.used),
      q.writew(c + BigInt(COMMON.queueEnable), 1),
    ]);
    answers.forEach((a) => checkOk('queue set-up', a));
    this.descriptorTable = '';
    this.availIndex = 0;
    this.usedIndex = 0;
  }

  /**
   * Places a chain on queue 0, kicks, and collects the used entry: one qtest batch, then a
   * bounded poll of the used index if the device has not answered yet.
   *
   * The chain's buffers sit back to back in guest RAM, so one `write` stores the readable bytes
   * and zeroes the writable ones (a device that reports more bytes than it wrote shows zeros, not
   * an earlier answer) and one `read` collects everything the device wrote.
   */
  async submit(chain: Chain, pollBudgetMs = 50): Promise<Completion> {
    // No queue (no handshake since the last reset, or FEATURES_OK refused): a device without a
    // queue answers nothing, and kicking it would make QEMU walk a ring that is not there.
    if (this.queueSize === 0) return { kind: 'no-used-entry' };
    const layout = chainLayout(chain);
    if (layout.sizes.length === 0) throw new Error('a chain needs at least one buffer');
    if (layout.sizes.length > this.queueSize) throw new Error(`a chain of ${layout.sizes.length} descriptors does not fit a queue of ${this.queueSize}`);
    if (layout.total > MAX_CHAIN_BYTES) throw new Error(`a chain of ${layout.total} bytes exceeds the adapter's ${MAX_CHAIN_BYTES}-byte limit`);

    const commands: string[] = [];
    if (layout.total > 0) commands.push(q.write(RING.buffers, layout.image));
    // The descriptor table is rewritten only when the chain's shape changes.
    if (layout.tableHex !== this.descriptorTable) {
      commands.push(q.write(RING.desc, layout.table));
      this.descriptorTable = layout.tableHex;
    }
    // Every chain starts at descriptor 0 and the avail ring was zeroed at set-up, so its
    // entries already name the head: publishing a chain is one write of avail.idx.
    this.availIndex = (this.availIndex + 1) & 0xffff;
    commands.push(q.writew(RING.avail + 2n, this.availIndex));
    commands.push(q.writew(this.notifyAddress, 0));
    const prefix = commands.length;
    commands.push(...this.collectCommands(layout));
    const answers = await this.qt.batch(commands);
    answers.slice(0, prefix).forEach((a) => checkOk('submit', a));
    let collected = answers.slice(prefix);
    const deadline = Date.now() + pollBudgetMs;
    while (Number(answerValue(collected[0]!)) === this.usedIndex) {
      // No answer yet. A device that flagged itself broken will not answer: no need to wait out the bound.
      const status = Number(answerValue(await this.qt.command(q.readb(this.layout.common + BigInt(COMMON.deviceStatus)))));
      if (status & VIRTIO_CONFIG_S_NEEDS_RESET || Date.now() >= deadline) return { kind: 'no-used-entry' };
      await new Promise((r) => setTimeout(r, 1));
      collected = await this.qt.batch(this.collectCommands(layout));
    }
    return this.completion(layout, collected);
  }

  /** Reads the used index, the next used entry and the device-writable part of the chain. */
  private collectCommands(layout: ChainLayout): string[] {
    const commands = [q.readw(RING.used + 2n), q.read(RING.used + 4n + 8n * BigInt(this.usedIndex % this.queueSize), 8)];
    if (layout.writableBytes > 0) commands.push(q.read(RING.buffers + BigInt(layout.writableStart), layout.writableBytes));
    return commands;
  }

  private completion(layout: ChainLayout, answers: string[]): Completion {
    const newUsed = Number(answerValue(answers[0]!));
    const entry = answerBytes(answers[1]!, 8);
    if (newUsed !== ((this.usedIndex + 1) & 0xffff)) throw new Error(`the used index moved from ${this.usedIndex} to ${newUsed} for one chain`);
    this.usedIndex = newUsed;
    const entryView = new DataView(entry.buffer, entry.byteOffset, 8);
    const head = entryView.getUint32(0, true);
    const length = entryView.getUint32(4, true);
    if (head !== 0) throw new Error(`the used entry names descriptor ${head}, not the chain's head 0`);
    const area = layout.writableBytes > 0 ? answerBytes(answers[2]!, layout.writableBytes) : new Uint8Array(0);
    // The device-writable buffers, in order, without the alignment gaps between them.
    const written = new Uint8Array(layout.writableSizes.reduce((a, b) => a + b, 0));
    let offset = 0;
    layout.writableOffsets.forEach((at, j) => {
      const size = layout.writableSizes[j]!;
      written.set(area.subarray(at - layout.writableStart, at - layout.writableStart + size), offset);
      offset += size;
    });
    return { kind: 'used', length, written: written.slice(0, Math.min(length, written.length)) };
  }

  /** Reads (and so clears) the ISR, counting a configuration-change interrupt. */
  async pollIsr(): Promise<void> {
    this.noteIsr(Number(answerValue(await this.qt.command(q.readb(this.layout.isr)))));
  }

  private noteIsr(isr: number): void {
    if (isr & ISR_CONFIG) this.configInterrupts++;
  }

  /** The device-specific configuration (`length` bytes) read under an unchanged generation. */
  async readDeviceConfig(length: number): Promise<Uint8Array> {
    const generation = this.layout.common + BigInt(COMMON.configGeneration);
    for (let attempt = 0; attempt < 10; attempt++) {
      const [before, bytes, after] = await this.qt.batch([q.readb(generation), q.read(this.layout.device, length), q.readb(generation)]);
      if (answerValue(before!) === answerValue(after!)) return answerBytes(bytes!, length);
    }
    throw new Error('config_generation kept changing while the configuration was read');
  }

  /** Reads guest-physical memory. */
  async readMemory(addr: bigint, length: number): Promise<Uint8Array> {
    return answerBytes(await this.qt.command(q.read(addr, length)), length);
  }

  /** Writes guest-physical memory. */
  async writeMemory(addr: bigint, data: Uint8Array): Promise<void> {
    await this.qt.command(q.write(addr, data));
  }
}

/** Where a chain's buffers go in guest RAM and the bytes to put there. */
interface ChainLayout {
  readonly sizes: readonly number[];
  /** Bytes from the first buffer to the end of the last. */
  readonly total: number;
  /** The readable bytes and zeroed writable buffers, as laid out from RING.buffers. */
  readonly image: Uint8Array;
  readonly table: Uint8Array;
  readonly tableHex: string;
  readonly writableSizes: readonly number[];
  readonly writableOffsets: readonly number[];
  readonly writableStart: number;
  readonly writableBytes: number;
}

/** Lays the buffers out back to back (8-byte aligned) and builds the descriptor table. */
function chainLayout(chain: Chain): ChainLayout {
  const sizes = [...chain.readable.map((b) => b.length), ...chain.writableSizes];
  const offsets: number[] = [];
  let at = 0;
  for (const size of sizes) {
    offsets.push(at);
    at += Math.ceil(size / 8) * 8;
  }
  const total = sizes.length > 0 ? offsets[offsets.length - 1]! + sizes[sizes.length - 1]! : 0;
  const image = new Uint8Array(Math.min(total, MAX_CHAIN_BYTES + 1));
  if (total <= MAX_CHAIN_BYTES) chain.readable.forEach((b, i) => image.set(b, offsets[i]!));
  const table = new Uint8Array(16 * sizes.length);
  const view = new DataView(table.buffer);
  sizes.forEach((size, i) => {
    const last = i + 1 === sizes.length;
    view.setBigUint64(16 * i, RING.buffers + BigInt(offsets[i]!), true);
    view.setUint32(16 * i + 8, size, true);
    view.setUint16(16 * i + 12, (last ? 0 : VIRTQ_DESC_F_NEXT) | (i >= chain.readable.length ? VIRTQ_DESC_F_WRITE : 0), true);
    view.setUint16(16 * i + 14, last ? 0 : i + 1, true);
  });
  const writableOffsets = offsets.slice(chain.readable.length);
  const writableStart = writableOffsets[0] ?? total;
  return {
    sizes,
    total,
    image,
    table,
    tableHex: Buffer.from(table).toString('hex'),
    writableSizes: chain.writableSizes,
    writableOffsets,
    writableStart,
    writableBytes: total - writableStart,
  };
}

function configAddress(bdf: number, offset: number): number {
  return (0x8000_0000 | (bdf << 8) | (offset & 0xfc)) >>> 0;
}

async function configRead(qt: QtestClient, bdf: number, offset: number, width: 1 | 2 | 4): Promise<number> {
  const port = PCI_CONFIG_DATA + (offset & 3);
  const read = width === 1 ? q.inb(port) : width === 2 ? q.inw(port) : q.inl(port);
  const [, value] = await qt.batch([q.outl(PCI_CONFIG_ADDRESS, configAddress(bdf, offset)), read]);
  return Number(answerValue(value!));
}

async function configWrite(qt: QtestClient, bdf: number, offset: number, width: 2 | 4, value: number): Promise<void> {
  const port = PCI_CONFIG_DATA + (offset & 3);
  const answers = await qt.batch([q.outl(PCI_CONFIG_ADDRESS, configAddress(bdf, offset)), width === 2 ? q.outw(port, value) : q.outl(port, value >>> 0)]);
  answers.forEach((a) => checkOk('PCI config write', a));
}

/** Finds the virtio-mem function on bus 0 (devices 0–31, function 0). */
async function findFunction(qt: QtestClient): Promise<number> {
  const commands: string[] = [];
  for (let dev = 0; dev < 32; dev++) commands.push(q.outl(PCI_CONFIG_ADDRESS, configAddress(dev << 3, 0)), q.inl(PCI_CONFIG_DATA));
  const answers = await qt.batch(commands);
  for (let dev = 0; dev < 32; dev++) {
    const id = Number(answerValue(answers[2 * dev + 1]!));
    if ((id & 0xffff) === VIRTIO_PCI_VENDOR && id >>> 16 === VIRTIO_MEM_PCI_DEVICE) return dev << 3;
  }
  throw new Error('no virtio-mem PCI function (1af4:1058) on bus 0');
}

/** Sizes and assigns the BAR the virtio capabilities point at, enables it and reads the layout. */
async function mapCapabilities(qt: QtestClient, bdf: number): Promise<VirtioPciLayout> {
  const status = await configRead(qt, bdf, PCI_STATUS, 2);
  if (!(status & PCI_STATUS_CAP_LIST)) throw new Error('the virtio-mem function has no capability list');
  const caps = new Map<number, { bar: number; offset: number; multiplier: number }>();
  let pointer = (await configRead(qt, bdf, PCI_CAPABILITY_LIST, 1)) & 0xfc;
  for (let guard = 0; pointer !== 0 && guard < 48; guard++) {
    const head = await configRead(qt, bdf, pointer, 4);
    if ((head & 0xff) === PCI_CAP_ID_VENDOR) {
      const type = (head >>> 24) & 0xff;
      const bar = (await configRead(qt, bdf, pointer + 4, 4)) & 0xff;
      const offset = await configRead(qt, bdf, pointer + 8, 4);
      const multiplier = type === CAP_NOTIFY ? await configRead(qt, bdf, pointer + 16, 4) : 0;
      if (!caps.has(type)) caps.set(type, { bar, offset, multiplier });
    }
    pointer = ((head >>> 8) & 0xff) & 0xfc;
  }
  const needed = [CAP_COMMON, CAP_NOTIFY, CAP_ISR, CAP_DEVICE];
  const missing = needed.filter((t) => !caps.has(t));
  if (missing.length > 0) throw new Error(`virtio-pci capabilities missing: types ${missing.join(', ')}`);
  const bars = new Set(needed.map((t) => caps.get(t)!.bar));
  if (bars.size !== 1) throw new Error('the virtio structures span several BARs; this adapter maps one');
  const bar = [...bars][0]!;
  const barOffset = PCI_BAR0 + 4 * bar;
  const original = await configRead(qt, bdf, barOffset, 4);
  if (original & 1) throw new Error(`BAR${bar} is an I/O BAR`);
  const is64 = ((original >>> 1) & 3) === 2;
  await configWrite(qt, bdf, barOffset, 4, 0xffff_ffff);
  const sizeMask = (await configRead(qt, bdf, barOffset, 4)) & ~0xf;
  const size = (~sizeMask >>> 0) + 1;
  if (BAR_BASE % BigInt(size) !== 0n) throw new Error(`BAR${bar} of ${size} bytes cannot sit at 0x${BAR_BASE.toString(16)}`);
  await configWrite(qt, bdf, barOffset, 4, Number(BAR_BASE & 0xffff_fff0n));
  if (is64) await configWrite(qt, bdf, barOffset + 4, 4, 0);
  const command = await configRead(qt, bdf, PCI_COMMAND, 2);
  await configWrite(qt, bdf, PCI_COMMAND, 2, command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  const at = (type: number): bigint => BAR_BASE + BigInt(caps.get(type)!.offset >>> 0);
  return {
    bdf,
    common: at(CAP_COMMON),
    isr: at(CAP_ISR),
    device: at(CAP_DEVICE),
    notifyBase: at(CAP_NOTIFY),
    notifyMultiplier: caps.get(CAP_NOTIFY)!.multiplier,
  };
}
