/**
 * The one virtio-pci driver for virtio-mem, over a {@link PciFunctionBus}: it finds the function,
 * reads its configuration space, finds the virtio-pci structures with the shared capability walk,
 * and runs the shared handshake and split-queue driver with the bus as their transport and memory
 * port. The same driver runs over qtest (the QEMU adapter) and over an agent inside a guest.
 *
 * Its ring and buffers sit inside the bus's {@link PciFunctionBus.dmaWindow}. With QEMU's TCG the
 * device processes the queue synchronously inside the notify write, so a whole request (buffers,
 * descriptors, avail entry, kick, used index, used entry, response) is one exchange; the used
 * index is still polled with a bound when it has not moved yet. Waiting is the caller's: the
 * driver gets a {@link DriverClock} (the virtio layer has no clock of its own).
 */
import {
  DEVICE_TYPE_FEATURES_MASK,
  FEATURE_MASKS,
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_CONFIG_SPACE_BYTES,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_GUEST_REQUEST_QUEUE,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_ISR_CONFIG,
  VirtioPciCommonCfgField,
  VirtioPciCommonCfgLayout,
} from '../../../spec/src/index';
import type { HandshakeResult } from '../../../spec/src/index';
import { readConsistentConfig } from './config-generation';
import type { ConfigSnapshotReader } from './config-generation';
import { SplitQueueDriver } from './driver-queue';
import type { ChainBuffers, SubmitResult } from './driver-queue';
import type { GuestMemoryAccess, GuestMemoryPort } from './guest-memory';
import { virtioHandshake } from './handshake';
import type { VirtioTransport } from './handshake';
import { findVirtioPciLayout } from './pci-capabilities';
import type { VirtioPciCapability } from './pci-capabilities';
import type { PciAccessWidth, PciBusAnswer, PciBusOperation, PciFunctionBus } from './pci-bus';

/** Where the ring and buffers sit, as offsets into the bus's DMA window (the window is at least 2 MiB). */
const RING_OFFSETS = {
  desc: 0x0_0000n,
  avail: 0x1_0000n,
  used: 0x2_0000n,
  buffers: 0x10_0000n,
} as const;

/** Largest total size of a submitted chain's buffers (laid out 8-byte aligned). */
const BUFFER_AREA_BYTES = 1 << 20;

/** How often the configuration is read again when `config_generation` changed while it was read. */
const CONFIG_READ_ATTEMPTS = 10;

/** How often the status is read again after a reset before the driver gives up. */
const RESET_POLLS = 100;

/** Transport features the driver's queue handling implements; others are never accepted. */
const DRIVER_TRANSPORT_FEATURES = FEATURE_MASKS.VERSION_1;

/** The time a driver waits by: the caller's clock (the virtio layer has none). */
export interface DriverClock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Resolves after about `ms` milliseconds. */
  pause(ms: number): Promise<void>;
}

/** Where the function's virtio structures are in guest-physical memory once its BAR is assigned. */
export interface VirtioPciAddresses {
  readonly bdf: number;
  readonly common: bigint;
  readonly isr: bigint;
  readonly device: bigint;
  readonly notifyBase: bigint;
  readonly notifyMultiplier: number;
}

/** The answer's value (a read), or a thrown error naming the operation when the bus answered otherwise. */
function valueOf(answer: PciBusAnswer | undefined, what: string): bigint {
  if (answer?.kind !== 'value') throw new Error(`the bus answered ${answer?.kind ?? 'nothing'} to ${what}`);
  return answer.value;
}

function bytesOf(answer: PciBusAnswer | undefined, length: number, what: string): Uint8Array {
  if (answer?.kind !== 'bytes' || answer.bytes.length !== length)
    throw new Error(`the bus answered ${answer?.kind ?? 'nothing'} to ${what} (${length} bytes)`);
  return answer.bytes;
}

const read = (addr: bigint, width: PciAccessWidth): PciBusOperation => ({ kind: 'read', addr, width });
const write = (addr: bigint, width: PciAccessWidth, value: bigint | number): PciBusOperation => ({
  kind: 'write',
  addr,
  width,
  value: BigInt(value),
});

/** The scalar reads that cover `length` bytes of device configuration: dwords, then a word and a byte for the rest. */
function configPieces(length: number): { readonly offset: number; readonly width: 1 | 2 | 4 }[] {
  const pieces: { offset: number; width: 1 | 2 | 4 }[] = [];
  let offset = 0;
  for (const width of [4, 2, 1] as const)
    for (; length - offset >= width; offset += width) pieces.push({ offset, width });
  return pieces;
}

/** The driver for one virtio-mem PCI function. */
export class VirtioPciDriver {
  /** Queue 0, once set up (none before the first handshake, after a reset or a refused FEATURES_OK). */
  private queue: SplitQueueDriver | undefined;
  private notifyAddress = 0n;
  /** Configuration-change interrupts seen in the ISR since the count was last cleared. */
  configInterrupts = 0;

  private constructor(
    private readonly bus: PciFunctionBus,
    private readonly clock: DriverClock,
    readonly addresses: VirtioPciAddresses,
  ) {}

  /**
   * Opens the function on the bus, reads its configuration space and finds its virtio structures
   * (again after a platform reset, which clears the BARs).
   * @throws when the bus fails or the function is not a usable virtio-pci function.
   */
  static async probe(bus: PciFunctionBus, clock: DriverClock): Promise<VirtioPciDriver> {
    const site = await bus.open();
    const operations: PciBusOperation[] = [];
    for (let at = 0; at < PCI_CONFIG_SPACE_BYTES; at += 4)
      operations.push({ kind: 'config-read', offset: at, width: 4 });
    const answers = await bus.exchange(operations);
    const space = new Uint8Array(PCI_CONFIG_SPACE_BYTES);
    const view = new DataView(space.buffer);
    answers.forEach((a, i) => view.setUint32(i * 4, Number(valueOf(a, 'a configuration read')), true));
    const found = findVirtioPciLayout(space);
    if (!found.ok)
      throw new Error(
        found.reason === 'no-capability-list' ? 'the virtio-mem function has no capability list' : found.detail,
      );
    const { commonCfg, notifyCfg, isrCfg, deviceCfg } = found.layout;
    const bars = new Set([commonCfg, notifyCfg, isrCfg, deviceCfg].map((c) => c.bar));
    if (bars.size !== 1) throw new Error('the virtio structures span several BARs; this driver maps one');
    const base = await site.barBase(commonCfg.bar);
    const at = (cap: VirtioPciCapability): bigint => base + BigInt(cap.offset >>> 0);
    return new VirtioPciDriver(bus, clock, {
      bdf: site.bdf,
      common: at(commonCfg),
      isr: at(isrCfg),
      device: at(deviceCfg),
      notifyBase: at(notifyCfg),
      notifyMultiplier: notifyCfg.notifyOffMultiplier,
    });
  }

  private common(field: VirtioPciCommonCfgField): bigint {
    return this.addresses.common + BigInt(VirtioPciCommonCfgLayout.fields[field].offset);
  }

  private async readOne(addr: bigint, width: PciAccessWidth, what: string): Promise<bigint> {
    return valueOf((await this.bus.exchange([read(addr, width)]))[0], what);
  }

  /** The status register. */
  async readStatus(): Promise<number> {
    return Number(await this.readOne(this.common('device_status'), 1, 'a status read'));
  }

  /** Writes the status register (0 resets the device) and returns what it reads back. */
  async writeStatus(status: number): Promise<number> {
    const addr = this.common('device_status');
    const [, back] = await this.bus.exchange([write(addr, 1, status), read(addr, 1)]);
    return Number(valueOf(back, 'a status read'));
  }

  /** Device reset: status 0, then waits (bounded) for it to read back 0. */
  async reset(): Promise<void> {
    let status = await this.writeStatus(0);
    for (let i = 0; status !== 0 && i < RESET_POLLS; i++) {
      await this.clock.pause(1);
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
        const f = await this.bus.exchange([
          write(this.common('device_feature_select'), 4, 0),
          read(this.common('device_feature'), 4),
          write(this.common('device_feature_select'), 4, 1),
          read(this.common('device_feature'), 4),
        ]);
        return valueOf(f[1], 'device_feature') | (valueOf(f[3], 'device_feature') << 32n);
      },
      writeDriverFeatures: async (features) => {
        await this.bus.exchange([
          write(this.common('driver_feature_select'), 4, 0),
          write(this.common('driver_feature'), 4, features & 0xffff_ffffn),
          write(this.common('driver_feature_select'), 4, 1),
          write(this.common('driver_feature'), 4, (features >> 32n) & 0xffff_ffffn),
        ]);
      },
      setUpQueues: () => this.setUpQueue(),
    };
  }

  private async setUpQueue(): Promise<void> {
    const index = VIRTIO_MEM_GUEST_REQUEST_QUEUE.index;
    const [, size, , notifyOff] = await this.bus.exchange([
      write(this.common('queue_select'), 2, index),
      read(this.common('queue_size'), 2),
      write(this.common('queue_msix_vector'), 2, VIRTIO_MSI_NO_VECTOR),
      read(this.common('queue_notify_off'), 2),
    ]);
    const queueSize = Number(valueOf(size, 'queue_size'));
    if (queueSize === 0) throw new Error('queue 0 is not available (queue_size reads 0)');
    this.notifyAddress =
      this.addresses.notifyBase + valueOf(notifyOff, 'queue_notify_off') * BigInt(this.addresses.notifyMultiplier);
    const window = this.bus.dmaWindow();
    const rings = {
      desc: window.base + RING_OFFSETS.desc,
      avail: window.base + RING_OFFSETS.avail,
      used: window.base + RING_OFFSETS.used,
    };
    const queue = new SplitQueueDriver({
      port: this.memoryPort(),
      queueIndex: index,
      size: queueSize,
      rings,
      buffers: window.base + RING_OFFSETS.buffers,
      bufferBytes: BUFFER_AREA_BYTES,
    });
    await queue.clear();
    await this.bus.exchange([
      write(this.common('queue_desc'), 8, rings.desc),
      write(this.common('queue_driver'), 8, rings.avail),
      write(this.common('queue_device'), 8, rings.used),
      write(this.common('queue_enable'), 2, 1),
    ]);
    this.queue = queue;
  }

  /** Guest RAM over the bus: each exchange is one bus exchange; the notification writes the queue index to its notify address. */
  private memoryPort(): GuestMemoryPort {
    return {
      exchange: async (accesses) => {
        const answers = await this.bus.exchange(accesses.map((a) => this.operation(a)));
        const reads: Uint8Array[] = [];
        accesses.forEach((a, i) => {
          if (a.kind === 'read') reads.push(bytesOf(answers[i], a.length, 'a ring read'));
        });
        return reads;
      },
    };
  }

  private operation(a: GuestMemoryAccess): PciBusOperation {
    switch (a.kind) {
      case 'write':
        return { kind: 'write-bytes', addr: a.addr, bytes: a.bytes };
      case 'zero':
        return { kind: 'zero-bytes', addr: a.addr, length: a.length };
      case 'read':
        return { kind: 'read-bytes', addr: a.addr, length: a.length };
      case 'notify':
        return write(this.notifyAddress, 2, a.queue);
    }
  }

  /**
   * Places a chain on queue 0, kicks, and collects the used entry: one exchange, then a bounded
   * poll of the used index (`pollBudgetMs`) if the device has not answered yet.
   * @throws when the chain does not fit or the device broke the ring protocol.
   */
  async submit(
    chain: ChainBuffers,
    pollBudgetMs = 50,
  ): Promise<Exclude<SubmitResult, { kind: 'unfit' | 'bad-used-entry' }>> {
    // No queue (no handshake since the last reset, or FEATURES_OK refused): a device without a
    // queue answers nothing, and kicking it would make the device walk a ring that is not there.
    if (!this.queue) return { kind: 'no-used-entry' };
    const deadline = this.clock.now() + pollBudgetMs;
    const result = await this.queue.submit(chain, async () => {
      // No answer yet. A device that flagged itself broken will not answer: no need to wait out the bound.
      if ((await this.readStatus()) & VIRTIO_CONFIG_S_NEEDS_RESET || this.clock.now() >= deadline) return false;
      await this.clock.pause(1);
      return true;
    });
    if (result.kind === 'unfit' || result.kind === 'bad-used-entry') throw new Error(result.problem);
    return result;
  }

  /** Reads (and so clears) the ISR, counting a configuration-change interrupt. */
  async pollIsr(): Promise<void> {
    const isr = Number(await this.readOne(this.addresses.isr, 1, 'an ISR read'));
    if (isr & VIRTIO_PCI_ISR_CONFIG) this.configInterrupts++;
  }

  /** The device-specific configuration (`length` bytes) read under an unchanged generation. */
  async readDeviceConfig(length: number): Promise<Uint8Array> {
    const generation = this.common('config_generation');
    const reader: ConfigSnapshotReader = {
      readSnapshot: async () => {
        // One exchange: generation, the configuration in scalar reads (registers take accesses
        // of at most 4 bytes, as every virtio-pci transport accepts them), generation.
        const pieces = configPieces(length);
        const answers = await this.bus.exchange([
          read(generation, 1),
          ...pieces.map((p) => read(this.addresses.device + BigInt(p.offset), p.width)),
          read(generation, 1),
        ]);
        const bytes = new Uint8Array(length);
        const view = new DataView(bytes.buffer);
        pieces.forEach((p, i) => {
          const value = Number(valueOf(answers[i + 1], 'the device configuration'));
          if (p.width === 4) view.setUint32(p.offset, value, true);
          else if (p.width === 2) view.setUint16(p.offset, value, true);
          else view.setUint8(p.offset, value);
        });
        return {
          generationBefore: Number(valueOf(answers[0], 'config_generation')),
          bytes,
          generationAfter: Number(valueOf(answers[answers.length - 1], 'config_generation')),
        };
      },
    };
    const result = await readConsistentConfig(reader, CONFIG_READ_ATTEMPTS);
    if (result.kind === 'kept-changing')
      throw new Error('config_generation kept changing while the configuration was read');
    return result.bytes;
  }

  /** The `config_generation` register of the common configuration, now. */
  async readConfigGeneration(): Promise<number> {
    return Number(await this.readOne(this.common('config_generation'), 1, 'config_generation'));
  }

  /** Reads guest-physical memory (`length` > 0). */
  async readMemory(addr: bigint, length: number): Promise<Uint8Array> {
    return bytesOf((await this.bus.exchange([{ kind: 'read-bytes', addr, length }]))[0], length, 'a memory read');
  }

  /** Writes guest-physical memory. */
  async writeMemory(addr: bigint, bytes: Uint8Array): Promise<void> {
    await this.bus.exchange([{ kind: 'write-bytes', addr, bytes }]);
  }
}

/**
 * Sizes memory BAR `bar` of a function no firmware has set up, places it at `base`, and enables
 * memory decoding and bus mastering: what firmware does, for buses that reach a bare machine
 * (qtest). Returns `base`.
 * @throws for an I/O BAR or a base the BAR's size does not divide.
 */
export async function assignMemoryBar(bus: PciFunctionBus, bar: number, base: bigint): Promise<bigint> {
  const offset = PCI_BASE_ADDRESS_0 + 4 * bar;
  const cfgRead = async (at: number, width: 2 | 4): Promise<number> =>
    Number(valueOf((await bus.exchange([{ kind: 'config-read', offset: at, width }]))[0], `config offset ${at}`));
  const cfgWrite = (at: number, width: 2 | 4, value: number): Promise<PciBusAnswer[]> =>
    bus.exchange([{ kind: 'config-write', offset: at, width, value }]);
  const original = await cfgRead(offset, 4);
  if (original & 1) throw new Error(`BAR${bar} is an I/O BAR`);
  const is64 = ((original >>> 1) & 3) === 2;
  await cfgWrite(offset, 4, 0xffff_ffff);
  const sizeMask = (await cfgRead(offset, 4)) & ~0xf;
  const size = (~sizeMask >>> 0) + 1;
  if (base % BigInt(size) !== 0n) throw new Error(`BAR${bar} of ${size} bytes cannot sit at 0x${base.toString(16)}`);
  await cfgWrite(offset, 4, Number(base & 0xffff_fff0n));
  if (is64) await cfgWrite(offset + 4, 4, Number((base >> 32n) & 0xffff_ffffn));
  const command = await cfgRead(PCI_COMMAND, 2);
  await cfgWrite(PCI_COMMAND, 2, command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  return base;
}
