/**
 * The PCI virtio driver the QEMU adapter plays, over qtest: finds the virtio-mem function on
 * bus 0, assigns its memory BAR (no firmware ran), finds the virtio-pci structures with the shared
 * capability walk, and runs the shared handshake and split-queue driver (adapters/virtio) with
 * qtest as their transport and memory port.
 *
 * With TCG, QEMU processes the queue synchronously inside the notify write, so a whole request
 * (buffers, descriptors, avail entry, kick, used index, used entry, response) is one qtest batch.
 * The used index is still polled with a bound when it has not moved yet.
 */
import {
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_CONFIG_SPACE_BYTES,
  PCI_VENDOR_ID,
  DEVICE_TYPE_FEATURES_MASK,
  FEATURE_MASKS,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_GUEST_REQUEST_QUEUE,
  VIRTIO_MEM_PCI_DEVICE_ID,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_ISR_CONFIG,
  VIRTIO_PCI_VENDOR_ID,
  VirtioPciCommonCfgField,
  VirtioPciCommonCfgLayout,
} from '../../../spec/src/index';
import type { Chain, Completion, HandshakeResult } from '../../core/src/contract';
import { sleep } from '../../core/src/sleep';
import {
  ConfigSnapshotReader,
  GuestMemoryAccess,
  GuestMemoryPort,
  SplitQueueDriver,
  VirtioPciCapability,
  VirtioTransport,
  findVirtioPciLayout,
  readConsistentConfig,
  virtioHandshake,
} from '../../virtio/src/index';
import { QtestClient, answerBytes, answerValue, checkOk, qtestCommand as q } from './qtest';

/** x86 PCI configuration mechanism #1: address port and data port. */
const PCI_CONFIG_ADDRESS = 0xcf8;
const PCI_CONFIG_DATA = 0xcfc;

/** Where the adapter keeps its ring and buffers in guest RAM (the VM has 512 MiB of low RAM). */
const RING = {
  desc: 0x0100_0000n,
  avail: 0x0101_0000n,
  used: 0x0102_0000n,
  buffers: 0x0110_0000n,
} as const;

/** Largest total size of a submitted chain's buffers (laid out 8-byte aligned). */
const QEMU_BUFFER_AREA_BYTES = 1 << 20;

/** How often the configuration is read again when `config_generation` changed while it was read. */
const CONFIG_READ_ATTEMPTS = 10;

/** Where the BAR holding the virtio structures is placed: inside the q35 32-bit PCI hole. */
const BAR_BASE = 0xc000_0000n;

/** Transport features the adapter's queue handling implements; others are never accepted. */
const DRIVER_TRANSPORT_FEATURES = FEATURE_MASKS.VERSION_1;

/** Where the function's virtio structures are in guest-physical memory once its BAR is assigned. */
export interface VirtioPciAddresses {
  readonly bdf: number;
  readonly common: bigint;
  readonly isr: bigint;
  readonly device: bigint;
  readonly notifyBase: bigint;
  readonly notifyMultiplier: number;
}

/** The adapter's driver for one virtio-mem PCI function. */
export class VirtioPciDriver {
  /** Queue 0, once set up (none before the first handshake, after a reset or a refused FEATURES_OK). */
  private queue: SplitQueueDriver | undefined;
  private notifyAddress = 0n;
  /** Configuration-change interrupts seen in the ISR since the session began. */
  configInterrupts = 0;

  private constructor(
    private readonly qt: QtestClient,
    readonly addresses: VirtioPciAddresses,
  ) {}

  /** Enumerates bus 0, assigns the BAR and reads the capabilities (again after a system reset). */
  static async probe(qt: QtestClient): Promise<VirtioPciDriver> {
    const bdf = await findFunction(qt);
    const addresses = await mapCapabilities(qt, bdf);
    return new VirtioPciDriver(qt, addresses);
  }

  private common(field: VirtioPciCommonCfgField): bigint {
    return this.addresses.common + BigInt(VirtioPciCommonCfgLayout.fields[field].offset);
  }

  /** The status register. */
  async readStatus(): Promise<number> {
    return Number(answerValue(await this.qt.command(q.readb(this.common('device_status')))));
  }

  /** Writes the status register (0 resets the device) and returns what it reads back. */
  async writeStatus(status: number): Promise<number> {
    const addr = this.common('device_status');
    const [w, r] = await this.qt.batch([q.writeb(addr, status), q.readb(addr)]);
    checkOk('writeb status', w!);
    return Number(answerValue(r!));
  }

  /** Device reset: status 0, then waits (bounded) for it to read back 0. */
  async reset(): Promise<void> {
    let status = await this.writeStatus(0);
    for (let i = 0; status !== 0 && i < 100; i++) {
      await sleep(1);
      status = await this.readStatus();
    }
    if (status !== 0) throw new Error(`device status reads ${status} after a reset`);
    // The device forgot the queue: until the next handshake sets it up again there is no ring
    // (and the old one in guest RAM must never be read as an answer).
    this.queue = undefined;
  }

  /**
   * The handshake: reset, ACKNOWLEDGE, DRIVER, features (`accept` of those offered, limited to
   * what this driver implements), FEATURES_OK, queue 0, DRIVER_OK.
   */
  initialise(accept: (offered: bigint) => bigint): Promise<HandshakeResult> {
    return virtioHandshake(
      this.transport(),
      (offered) => accept(offered) & offered & (DEVICE_TYPE_FEATURES_MASK | DRIVER_TRANSPORT_FEATURES),
    );
  }

  /** The common configuration as the handshake's transport. */
  private transport(): VirtioTransport {
    return {
      reset: () => this.reset(),
      readStatus: () => this.readStatus(),
      writeStatus: async (status) => void (await this.writeStatus(status)),
      readDeviceFeatures: async () => {
        const f = await this.qt.batch([
          q.writel(this.common('device_feature_select'), 0),
          q.readl(this.common('device_feature')),
          q.writel(this.common('device_feature_select'), 1),
          q.readl(this.common('device_feature')),
        ]);
        return answerValue(f[1]!) | (answerValue(f[3]!) << 32n);
      },
      writeDriverFeatures: async (features) => {
        const answers = await this.qt.batch([
          q.writel(this.common('driver_feature_select'), 0),
          q.writel(this.common('driver_feature'), features & 0xffff_ffffn),
          q.writel(this.common('driver_feature_select'), 1),
          q.writel(this.common('driver_feature'), (features >> 32n) & 0xffff_ffffn),
        ]);
        answers.forEach((a) => checkOk('driver features', a));
      },
      setUpQueues: () => this.setUpQueue(),
    };
  }

  private async setUpQueue(): Promise<void> {
    const index = VIRTIO_MEM_GUEST_REQUEST_QUEUE.index;
    const [, size, , notifyOff] = await this.qt.batch([
      q.writew(this.common('queue_select'), index),
      q.readw(this.common('queue_size')),
      q.writew(this.common('queue_msix_vector'), VIRTIO_MSI_NO_VECTOR),
      q.readw(this.common('queue_notify_off')),
    ]);
    const queueSize = Number(answerValue(size!));
    if (queueSize === 0) throw new Error('queue 0 is not available (queue_size reads 0)');
    this.notifyAddress = this.addresses.notifyBase + answerValue(notifyOff!) * BigInt(this.addresses.notifyMultiplier);
    const queue = new SplitQueueDriver({
      port: this.memoryPort(),
      queueIndex: index,
      size: queueSize,
      rings: { desc: RING.desc, avail: RING.avail, used: RING.used },
      buffers: RING.buffers,
      bufferBytes: QEMU_BUFFER_AREA_BYTES,
    });
    await queue.clear();
    const answers = await this.qt.batch([
      q.writeq(this.common('queue_desc'), RING.desc),
      q.writeq(this.common('queue_driver'), RING.avail),
      q.writeq(this.common('queue_device'), RING.used),
      q.writew(this.common('queue_enable'), 1),
    ]);
    answers.forEach((a) => checkOk('queue set-up', a));
    this.queue = queue;
  }

  /** Guest RAM over qtest: each exchange is one batch; the notification writes the queue index to its notify address. */
  private memoryPort(): GuestMemoryPort {
    return {
      exchange: async (accesses) => {
        const answers = await this.qt.batch(accesses.map((a) => this.qtestCommand(a)));
        const reads: Uint8Array[] = [];
        accesses.forEach((a, i) => {
          if (a.kind === 'read') reads.push(answerBytes(answers[i]!, a.length));
          else checkOk(a.kind, answers[i]!);
        });
        return reads;
      },
    };
  }

  private qtestCommand(a: GuestMemoryAccess): string {
    switch (a.kind) {
      case 'write':
        return q.write(a.addr, a.bytes);
      case 'zero':
        return q.memset(a.addr, a.length, 0);
      case 'read':
        return q.read(a.addr, a.length);
      case 'notify':
        return q.writew(this.notifyAddress, a.queue);
    }
  }

  /**
   * Places a chain on queue 0, kicks, and collects the used entry: one qtest batch, then a
   * bounded poll of the used index if the device has not answered yet.
   */
  async submit(chain: Chain, pollBudgetMs = 50): Promise<Completion> {
    // No queue (no handshake since the last reset, or FEATURES_OK refused): a device without a
    // queue answers nothing, and kicking it would make QEMU walk a ring that is not there.
    if (!this.queue) return { kind: 'no-used-entry' };
    const deadline = Date.now() + pollBudgetMs;
    const result = await this.queue.submit(chain, async () => {
      // No answer yet. A device that flagged itself broken will not answer: no need to wait out the bound.
      if ((await this.readStatus()) & VIRTIO_CONFIG_S_NEEDS_RESET || Date.now() >= deadline) return false;
      await sleep(1);
      return true;
    });
    if (result.kind === 'unfit' || result.kind === 'bad-used-entry') throw new Error(result.problem);
    return result;
  }

  /** Reads (and so clears) the ISR, counting a configuration-change interrupt. */
  async pollIsr(): Promise<void> {
    const isr = Number(answerValue(await this.qt.command(q.readb(this.addresses.isr))));
    if (isr & VIRTIO_PCI_ISR_CONFIG) this.configInterrupts++;
  }

  /** The device-specific configuration (`length` bytes) read under an unchanged generation. */
  async readDeviceConfig(length: number): Promise<Uint8Array> {
    const generation = this.common('config_generation');
    const reader: ConfigSnapshotReader = {
      readSnapshot: async () => {
        // One batch: generation, configuration, generation.
        const [before, bytes, after] = await this.qt.batch([
          q.readb(generation),
          q.read(this.addresses.device, length),
          q.readb(generation),
        ]);
        return {
          generationBefore: Number(answerValue(before!)),
          bytes: answerBytes(bytes!, length),
          generationAfter: Number(answerValue(after!)),
        };
      },
    };
    const read = await readConsistentConfig(reader, CONFIG_READ_ATTEMPTS);
    if (read.kind === 'kept-changing')
      throw new Error('config_generation kept changing while the configuration was read');
    return read.bytes;
  }

  /** The `config_generation` register of the common configuration, now. */
  async readConfigGeneration(): Promise<number> {
    return Number(answerValue(await this.qt.command(q.readb(this.common('config_generation')))));
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
  const answers = await qt.batch([
    q.outl(PCI_CONFIG_ADDRESS, configAddress(bdf, offset)),
    width === 2 ? q.outw(port, value) : q.outl(port, value >>> 0),
  ]);
  answers.forEach((a) => checkOk('PCI config write', a));
}

/** The function's whole configuration space, read a dword at a time in one batch. */
async function readConfigSpace(qt: QtestClient, bdf: number): Promise<Uint8Array> {
  const commands: string[] = [];
  for (let at = 0; at < PCI_CONFIG_SPACE_BYTES; at += 4)
    commands.push(q.outl(PCI_CONFIG_ADDRESS, configAddress(bdf, at)), q.inl(PCI_CONFIG_DATA));
  const answers = await qt.batch(commands);
  const space = new Uint8Array(PCI_CONFIG_SPACE_BYTES);
  const view = new DataView(space.buffer);
  for (let at = 0; at < PCI_CONFIG_SPACE_BYTES; at += 4)
    view.setUint32(at, Number(answerValue(answers[at / 2 + 1]!)), true);
  return space;
}

/** Finds the virtio-mem function on bus 0 (devices 0–31, function 0). */
async function findFunction(qt: QtestClient): Promise<number> {
  const commands: string[] = [];
  for (let dev = 0; dev < 32; dev++)
    commands.push(q.outl(PCI_CONFIG_ADDRESS, configAddress(dev << 3, PCI_VENDOR_ID)), q.inl(PCI_CONFIG_DATA));
  const answers = await qt.batch(commands);
  for (let dev = 0; dev < 32; dev++) {
    const id = Number(answerValue(answers[2 * dev + 1]!));
    if ((id & 0xffff) === VIRTIO_PCI_VENDOR_ID && id >>> 16 === VIRTIO_MEM_PCI_DEVICE_ID) return dev << 3;
  }
  throw new Error(
    `no virtio-mem PCI function (${VIRTIO_PCI_VENDOR_ID.toString(16)}:${VIRTIO_MEM_PCI_DEVICE_ID.toString(16)}) on bus 0`,
  );
}

/** Sizes and assigns the BAR the virtio capabilities point at, enables it and returns where the structures are. */
async function mapCapabilities(qt: QtestClient, bdf: number): Promise<VirtioPciAddresses> {
  const found = findVirtioPciLayout(await readConfigSpace(qt, bdf));
  if (!found.ok)
    throw new Error(
      found.reason === 'no-capability-list' ? 'the virtio-mem function has no capability list' : found.detail,
    );
  const { commonCfg, notifyCfg, isrCfg, deviceCfg } = found.layout;
  const bars = new Set([commonCfg, notifyCfg, isrCfg, deviceCfg].map((c) => c.bar));
  if (bars.size !== 1) throw new Error('the virtio structures span several BARs; this adapter maps one');
  const bar = commonCfg.bar;
  const barOffset = PCI_BASE_ADDRESS_0 + 4 * bar;
  const original = await configRead(qt, bdf, barOffset, 4);
  if (original & 1) throw new Error(`BAR${bar} is an I/O BAR`);
  const is64 = ((original >>> 1) & 3) === 2;
  await configWrite(qt, bdf, barOffset, 4, 0xffff_ffff);
  const sizeMask = (await configRead(qt, bdf, barOffset, 4)) & ~0xf;
  const size = (~sizeMask >>> 0) + 1;
  if (BAR_BASE % BigInt(size) !== 0n)
    throw new Error(`BAR${bar} of ${size} bytes cannot sit at 0x${BAR_BASE.toString(16)}`);
  await configWrite(qt, bdf, barOffset, 4, Number(BAR_BASE & 0xffff_fff0n));
  if (is64) await configWrite(qt, bdf, barOffset + 4, 4, 0);
  const command = await configRead(qt, bdf, PCI_COMMAND, 2);
  await configWrite(qt, bdf, PCI_COMMAND, 2, command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  const at = (cap: VirtioPciCapability): bigint => BAR_BASE + BigInt(cap.offset >>> 0);
  return {
    bdf,
    common: at(commonCfg),
    isr: at(isrCfg),
    device: at(deviceCfg),
    notifyBase: at(notifyCfg),
    notifyMultiplier: notifyCfg.notifyOffMultiplier,
  };
}
