/**
 * The {@link PciFunctionBus} over QEMU's qtest protocol: the adapter plays firmware and guest at
 * once. Configuration space goes through x86 configuration mechanism #1 (ports 0xcf8/0xcfc) on
 * bus 0; the memory BAR is sized and assigned here (no firmware ran) inside q35's 32-bit PCI
 * hole; every exchange is one qtest batch. The driver's rings and buffers live in the VM's low
 * RAM, which no guest code uses.
 */
import { PCI_VENDOR_ID, VIRTIO_MEM_PCI_DEVICE_ID, VIRTIO_PCI_VENDOR_ID } from '../../../spec/src/index';
import { HOST_CLOCK } from '../../device-session/src/host-clock';
import { VirtioPciDriver, assignMemoryBar } from '../../virtio/src/index';
import type {
  PciBusAnswer,
  PciBusOperation,
  PciFunctionBus,
  PciFunctionSite,
  PhysicalRange,
} from '../../virtio/src/index';
import { QtestClient, answerBytes, answerValue, checkOk, qtestCommand as q } from './qtest';

/** x86 PCI configuration mechanism #1: address port and data port. */
const PCI_CONFIG_ADDRESS = 0xcf8;
const PCI_CONFIG_DATA = 0xcfc;

/** Where the driver keeps its ring and buffers in guest RAM (the VM has 512 MiB of low RAM). */
const DMA_WINDOW: PhysicalRange = { base: 0x0100_0000n, length: 0x20_0000n };

/** Where the BAR holding the virtio structures is placed: inside the q35 32-bit PCI hole. */
const BAR_BASE = 0xc000_0000n;

function configAddress(bdf: number, offset: number): number {
  return (0x8000_0000 | (bdf << 8) | (offset & 0xfc)) >>> 0;
}

/** The qtest lines of one operation on function `bdf` (how many answers each line gives is one per line). */
function commandsOf(bdf: number, op: PciBusOperation): string[] {
  switch (op.kind) {
    case 'config-read': {
      const port = PCI_CONFIG_DATA + (op.offset & 3);
      const inCommand = op.width === 1 ? q.inb(port) : op.width === 2 ? q.inw(port) : q.inl(port);
      return [q.outl(PCI_CONFIG_ADDRESS, configAddress(bdf, op.offset)), inCommand];
    }
    case 'config-write': {
      const port = PCI_CONFIG_DATA + (op.offset & 3);
      const value = op.value >>> 0;
      const outCommand =
        op.width === 1 ? q.outb(port, value) : op.width === 2 ? q.outw(port, value) : q.outl(port, value);
      return [q.outl(PCI_CONFIG_ADDRESS, configAddress(bdf, op.offset)), outCommand];
    }
    case 'read':
      return [[q.readb, q.readw, q.readl, q.readq][Math.log2(op.width)]!(op.addr)];
    case 'write':
      return [[q.writeb, q.writew, q.writel, q.writeq][Math.log2(op.width)]!(op.addr, op.value)];
    case 'read-bytes':
      return op.length === 0 ? [] : [q.read(op.addr, op.length)];
    case 'write-bytes':
      return op.bytes.length === 0 ? [] : [q.write(op.addr, op.bytes)];
    case 'zero-bytes':
      return op.length === 0 ? [] : [q.memset(op.addr, op.length, 0)];
  }
}

/** The answer to one operation from its qtest answers (the last line of its commands carries it). */
function answerOf(op: PciBusOperation, lines: readonly string[]): PciBusAnswer {
  switch (op.kind) {
    case 'config-read':
    case 'read':
      return { kind: 'value', value: answerValue(lines[lines.length - 1]!) };
    case 'read-bytes':
      return { kind: 'bytes', bytes: op.length === 0 ? new Uint8Array(0) : answerBytes(lines[0]!, op.length) };
    default:
      lines.forEach((line) => checkOk(op.kind, line));
      return { kind: 'done' };
  }
}

/** Bus 0 of a q35 machine over qtest. */
export class QtestPciBus implements PciFunctionBus {
  readonly name = 'qtest';
  private bdf: number | undefined;

  constructor(private readonly qt: QtestClient) {}

  /** Finds the virtio-mem function among devices 0–31 of bus 0 (function 0); its BAR is assigned on demand. */
  async open(): Promise<PciFunctionSite> {
    this.bdf = undefined;
    const commands: string[] = [];
    for (let dev = 0; dev < 32; dev++)
      commands.push(q.outl(PCI_CONFIG_ADDRESS, configAddress(dev << 3, PCI_VENDOR_ID)), q.inl(PCI_CONFIG_DATA));
    const answers = await this.qt.batch(commands);
    for (let dev = 0; dev < 32; dev++) {
      const id = Number(answerValue(answers[2 * dev + 1]!));
      if ((id & 0xffff) === VIRTIO_PCI_VENDOR_ID && id >>> 16 === VIRTIO_MEM_PCI_DEVICE_ID) {
        const bdf = dev << 3;
        this.bdf = bdf;
        return { bdf, barBase: (bar) => assignMemoryBar(this, bar, BAR_BASE) };
      }
    }
    throw new Error(
      `no virtio-mem PCI function (${VIRTIO_PCI_VENDOR_ID.toString(16)}:${VIRTIO_MEM_PCI_DEVICE_ID.toString(16)}) on bus 0`,
    );
  }

  /** One qtest batch for all the operations. */
  async exchange(operations: readonly PciBusOperation[]): Promise<PciBusAnswer[]> {
    const bdf = this.bdf;
    if (bdf === undefined && operations.some((op) => op.kind === 'config-read' || op.kind === 'config-write'))
      throw new Error('configuration access before the function was found');
    const perOperation = operations.map((op) => commandsOf(bdf ?? 0, op));
    const lines = await this.qt.batch(perOperation.flat());
    let at = 0;
    return operations.map((op, i) => {
      const count = perOperation[i]!.length;
      const mine = lines.slice(at, at + count);
      at += count;
      return answerOf(op, mine);
    });
  }

  dmaWindow(): PhysicalRange {
    return DMA_WINDOW;
  }
}

/** Probes the virtio-mem function of a QEMU over qtest: the driver the QEMU adapter plays. */
export function probeOverQtest(qt: QtestClient): Promise<VirtioPciDriver> {
  return VirtioPciDriver.probe(new QtestPciBus(qt), HOST_CLOCK);
}
