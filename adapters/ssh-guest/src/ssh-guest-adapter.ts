/**
 * The `ssh-guest` adapter: the Linux virtio_mem driver of a live guest under test (driver
 * vectors). The device is QEMU's virtio-mem-pci; the adapter plays the host:
 *
 * - over QMP it resizes (`qom-set … requested-size`), reads what the device holds
 *   (`query-memory-devices`) and resets the machine (`system_reset`);
 * - from QEMU's `virtio_mem_*` trace events it sees every request the driver sent, and the
 *   answer, as the device saw them;
 * - over SSH it loads and unloads the driver (a fresh probe per vector), reads the 56
 *   configuration bytes as the guest sees them (the PCI_CFG window) and the guest's own view
 *   (MemTotal).
 *
 * Between vectors the driver is unloaded with nothing plugged: the host asks for 0, the driver
 * unplugs, `rmmod`. Memory plugged at start (`initial-plugged`) is made by letting the driver
 * plug the first blocks, then offlining them and unloading the driver, which leaves them
 * plugged in the device; the trace shows exactly which blocks were plugged, so a setup the
 * driver cannot reproduce is `unsupported`, never approximated.
 */
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  VirtioMemConfigLayout,
} from '../../../spec/src/index';
import { BlockBitmap } from '../../../model/src/blocks/bitmap';
import { encodeConfig } from '../../../model/src/codec/codec';
import {
  Adapter,
  AdapterError,
  AdapterInfo,
  AdapterTimeoutError,
  Capability,
  DeviceSession,
  DeviceSetup,
  DriverActivity,
  DriverEvent,
  DriverOptions,
  DriverSession,
  ResizeOutcome,
  SettleLimits,
  UnsupportedSetupError,
} from '../../core/src/contract';
import { QmpClient, QmpError, QmpTcpAddress } from '../../qemu-platform/src/index';
import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs';
import { findTool } from './guest-build';
import { VirtioPciLayout, checkedSysfsDevice, configSnapshotReads, leValue, offeredFeaturesScript, parseHexDump, parseVirtioCaps, parseWindowOutput, windowReadScript } from './pci-config';
import { TraceFollower, exchangeOf } from './qemu-trace';
import { GuestShell, SshError, SshTarget, waitForSsh } from './ssh-shell';

/** How to reach the guest and its hypervisor. */
export interface SshGuestOptions {
  readonly ssh: SshTarget;
  /** QMP of the QEMU running the guest: a unix socket path or a TCP address. */
  readonly qmp: string | QmpTcpAddress;
  /** The file QEMU writes its trace events to (`-D FILE -trace enable=virtio_mem_*`). */
  readonly traceLog: string;
  /** QOM id of the virtio-mem device (default: the first one QMP lists). */
  readonly deviceId?: string;
  /** Bound on each SSH command and QMP command (default 30 s). */
  readonly commandTimeoutMs?: number;
  /** How long the driver must be quiet, once converged, to count as settled (default 800 ms). */
  readonly quietMs?: number;
  /** How long without any progress before a driver that has not converged counts as stalled (default 8 s). */
  readonly stallMs?: number;
  /** Bound on draining the device (shrink to 0) between vectors (default 60 s). */
  readonly drainTimeoutMs?: number;
}

/** The guest or hypervisor cannot be used; the message says which and how to fix it (exit 2). */
export class SshGuestSetupError extends Error {
  override readonly name = 'SshGuestSetupError';
}

/** What QMP reports for a virtio-mem device. */
interface MemoryDeviceInfo {
  readonly id: string;
  readonly memaddr: bigint;
  readonly size: bigint;
  readonly maxSize: bigint;
  readonly blockSize: bigint;
  readonly requestedSize: bigint;
  readonly node: number;
}

const CONFIG_SIZE = VirtioMemConfigLayout.size;
const RELEVANT_FEATURES = ((1n << 24n) - 1n) | (1n << 32n);
const CAPABILITIES: readonly Capability[] = ['host-resize', 'observe-driver', 'system-reset', 'initial-plugged'];

function toBigInt(v: unknown): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'bigint') return v;
  throw new Error(`QMP returned a non-integer: ${String(v)}`);
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Connects to the guest and its QEMU and checks everything the adapter needs; throws {@link SshGuestSetupError}. */
export async function connectSshGuestAdapter(options: SshGuestOptions): Promise<Adapter> {
  const adapter = new SshGuestAdapter(options);
  try {
    await adapter.connect();
  } catch (e) {
    await adapter.dispose();
    throw e;
  }
  return adapter;
}

/**
 * Which vector's work an async chain belongs to. When the runner gives up on a vector (its
 * timeout), that vector's work may still be running; once the next vector has taken the guest,
 * the old chain's next command fails instead of interleaving with the new one.
 */
const epochOfWork = new AsyncLocalStorage<number>();

class SshGuestAdapter implements Adapter {
  private epoch = 0;
  private qmp: QmpClient | undefined;
  private shell: GuestShell | undefined;
  private layout: VirtioPciLayout | undefined;
  private pciDevice = '';
  private kernelRelease = '';
  private offered = 0n;
  private device!: MemoryDeviceInfo;
  private readonly trace: TraceFollower;
  private readonly timeoutMs: number;
  private readonly setpriv = findTool('setpriv');
  private info_: AdapterInfo = { name: 'ssh-guest', implementation: 'Linux', targets: ['driver'], capabilities: CAPABILITIES, timeoutMultiplier: 12 };
  private sessionOpen = false;

  constructor(readonly options: SshGuestOptions) {
    this.trace = new TraceFollower(options.traceLog);
    this.timeoutMs = options.commandTimeoutMs ?? 30_000;
  }

  get info(): AdapterInfo {
    return this.info_;
  }

  async connect(): Promise<void> {
    const qmpWhere = typeof this.options.qmp === 'string' ? this.options.qmp : `${this.options.qmp.host}:${this.options.qmp.port}`;
    try {
      this.qmp = await QmpClient.connect(this.options.qmp, Date.now() + 3000, this.timeoutMs);
    } catch (e) {
      throw new SshGuestSetupError(`QMP unreachable at ${qmpWhere} (${(e as Error).message}); start QEMU with -qmp unix:PATH,server=on,wait=off (or tcp:HOST:PORT) and pass it with --qmp`);
    }
    this.device = await this.memoryDevice();
    if (!fs.existsSync(this.options.traceLog)) {
      throw new SshGuestSetupError(`no QEMU trace log at ${this.options.traceLog}; start QEMU with -D ${this.options.traceLog} -trace enable=virtio_mem_* and pass the file with --qemu-trace`);
    }
    try {
      await this.qmp.execute('trace-event-set-state', { name: 'virtio_mem_*', enable: true });
    } catch (e) {
      throw new SshGuestSetupError(`QEMU cannot trace virtio_mem events (${(e as Error).message}); a QEMU built with the log trace back-end is needed`);
    }
    this.shell = await this.openShell();
    this.kernelRelease = (await this.sh('uname -r', 'uname')).trim();
    this.info_ = { ...this.info_, implementation: `Linux ${this.kernelRelease}` };
    // The virtio-mem PCI function (vendor 0x1af4, device 0x1040 + 24).
    const found = await this.sh("for d in /sys/bus/pci/devices/*; do if [ \"$(cat $d/vendor)\" = 0x1af4 ] && [ \"$(cat $d/device)\" = 0x1058 ]; then echo $d; fi; done", 'PCI scan');
    const devices = found.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
    if (devices.length === 0) throw new SshGuestSetupError(`the guest (${this.kernelRelease}) sees no virtio-mem PCI device (1af4:1058); add one with -device virtio-mem-pci`);
    if (devices.length > 1) throw new SshGuestSetupError(`the guest sees ${devices.length} virtio-mem devices; the adapter drives exactly one`);
    this.pciDevice = checkedSysfsDevice(devices[0]!);
    const module = await this.shell.run('[ -d /sys/module/virtio_mem ] || modprobe virtio_mem; if [ -e /sys/module/virtio_mem/initstate ]; then echo module; elif [ -d /sys/module/virtio_mem ]; then echo builtin; else echo missing; fi', this.timeoutMs);
    const kind = module.output.trim().split('\n').pop();
    if (kind === 'missing') throw new SshGuestSetupError(`the guest (${this.kernelRelease}) has no virtio_mem driver: \`modprobe virtio_mem\` failed (${module.output.trim().split('\n')[0] ?? ''}); use a kernel with CONFIG_VIRTIO_MEM=m`);
    if (kind === 'builtin') throw new SshGuestSetupError(`virtio_mem is built into the guest's kernel (${this.kernelRelease}); the adapter reloads the driver for every vector, so it must be a module (CONFIG_VIRTIO_MEM=m)`);
    const configHex = await this.sh(`od -An -tx1 -v ${this.pciDevice}/config`, 'reading PCI config space');
    try {
      this.layout = parseVirtioCaps(parseHexDump(configHex));
    } catch (e) {
      throw new SshGuestSetupError(`${this.pciDevice}: ${(e as Error).message}`);
    }
    const features = parseWindowOutput(await this.sh(offeredFeaturesScript(this.pciDevice, this.layout), 'reading device features'), [
      { bar: 0, offset: 0, length: 4 },
      { bar: 0, offset: 0, length: 4 },
    ]);
    this.offered = leValue(features[0]!) | (leValue(features[1]!) << 32n);
  }

  private async openShell(): Promise<GuestShell> {
    try {
      return await GuestShell.connect(this.options.ssh, Math.min(this.timeoutMs, 15_000), { setpriv: this.setpriv });
    } catch (e) {
      if (e instanceof SshError) throw new SshGuestSetupError(e.message);
      throw e;
    }
  }

  /** Fails when the calling chain belongs to a vector the runner has given up on. */
  private checkEpoch(): void {
    const mine = epochOfWork.getStore();
    if (mine !== undefined && mine !== this.epoch) throw new AdapterError('abandoned: a later vector has taken over the guest');
  }

  /** Runs `work` as part of vector `epoch`. */
  inEpoch<T>(epoch: number, work: () => Promise<T>): Promise<T> {
    return epochOfWork.run(epoch, work);
  }

  /** The current vector's epoch. */
  get currentEpoch(): number {
    return this.epoch;
  }

  /** Runs a guest command that must succeed. */
  private async sh(command: string, what: string, timeoutMs = this.timeoutMs): Promise<string> {
    this.checkEpoch();
    if (!this.shell || this.shell.closed) {
      try {
        this.shell = await GuestShell.connect(this.options.ssh, Math.min(timeoutMs, 15_000), { setpriv: this.setpriv });
      } catch (e) {
        throw this.asAdapterError(e, what);
      }
    }
    try {
      return await this.shell.check(command, timeoutMs, what);
    } catch (e) {
      throw this.asAdapterError(e, what);
    }
  }

  private asAdapterError(e: unknown, what: string): Error {
    if (e instanceof SshError && (e.kind === 'timeout' || e.kind === 'unreachable')) return new AdapterTimeoutError(`${what}: ${e.message}`);
    if (e instanceof SshError) return new AdapterError(`${what}: ${e.message}`);
    return e as Error;
  }

  private async qmpRun(command: string, args?: Record<string, unknown>): Promise<unknown> {
    this.checkEpoch();
    if (!this.qmp) throw new AdapterError('QMP is not connected');
    try {
      return await this.qmp.execute(command, args);
    } catch (e) {
      if (e instanceof QmpError && /did not answer/.test(e.message)) throw new AdapterTimeoutError(e.message);
      throw e;
    }
  }

  private async memoryDevice(): Promise<MemoryDeviceInfo> {
    const list = (await this.qmpRun('query-memory-devices')) as { type: string; data: Record<string, unknown> }[];
    const mems = list.filter((d) => d.type === 'virtio-mem');
    const chosen = this.options.deviceId ? mems.find((d) => d.data.id === this.options.deviceId) : mems[0];
    if (!chosen) {
      throw new SshGuestSetupError(this.options.deviceId ? `QEMU has no virtio-mem device with id '${this.options.deviceId}' (has: ${mems.map((m) => String(m.data.id)).join(', ') || 'none'})` : 'the VM has no virtio-mem device (query-memory-devices lists none); add -device virtio-mem-pci,id=vm0,memdev=…');
    }
    const d = chosen.data;
    if (typeof d.id !== 'string') throw new SshGuestSetupError("the virtio-mem device has no id; give it one (-device virtio-mem-pci,id=vm0,…) so it can be resized by QMP");
    return { id: d.id, memaddr: toBigInt(d.memaddr), size: toBigInt(d.size), maxSize: toBigInt(d['max-size']), blockSize: toBigInt(d['block-size']), requestedSize: toBigInt(d['requested-size']), node: Number(d.node ?? 0) };
  }

  private async setRequested(size: bigint): Promise<void> {
    await this.qmpRun('qom-set', { path: this.device.id, property: 'requested-size', value: size });
  }

  private async driverLoaded(): Promise<boolean> {
    return (await this.sh('if [ -d /sys/module/virtio_mem ]; then echo yes; else echo no; fi', 'checking the driver')).trim() === 'yes';
  }

  /** Waits until the device holds `size` bytes plugged, re-sending the target now and then (it wakes a driver in its retry backoff). */
  private async waitPlugged(size: bigint, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastKick = Date.now();
    for (;;) {
      const d = await this.memoryDevice();
      if (d.size === size) return;
      if (Date.now() > deadline) throw new AdapterError(`the driver did not bring plugged_size to ${hex(size)} within ${timeoutMs} ms (it holds ${hex(d.size)})`);
      if (Date.now() - lastKick > 5000) {
        lastKick = Date.now();
        await this.setRequested(d.requestedSize);
      }
      await sleep(100);
    }
  }

  private async load(): Promise<void> {
    await this.sh('modprobe virtio_mem', 'loading virtio_mem');
  }

  /** The guest's /proc/iomem entries (start, end, name), indented ones included. */
  private async iomem(): Promise<{ start: bigint; end: bigint; name: string }[]> {
    const text = await this.sh('cat /proc/iomem', 'reading /proc/iomem');
    return parseIomem(text);
  }

  /** Whether Linux still has memory of the device region added (the driver's resource is there). */
  private async regionClaimed(): Promise<boolean> {
    return (await this.iomem()).some((e) => e.start === this.device.memaddr && /^virtio[0-9]+$/.test(e.name));
  }

  /**
   * Unloads the driver. Linux refuses to load virtio_mem again while memory of an earlier
   * instance is still added ("reloading the driver is not supported"), so the driver is unloaded
   * only once no memory of the region is added, and the unload is checked.
   */
  private async unload(recoverIfStuck = true): Promise<void> {
    const why = 'the device region stayed claimed after rmmod';
    const deadline = Date.now() + (this.options.drainTimeoutMs ?? 60_000);
    while ((await this.iomem()).some((e) => e.name === 'System RAM (virtio_mem)')) {
      if (Date.now() > deadline) throw new AdapterError('the guest still has virtio_mem memory added after the device emptied; the driver cannot be unloaded cleanly');
      await sleep(100);
    }
    await this.sh('rmmod virtio_mem', 'unloading virtio_mem');
    if (!(await this.regionClaimed())) return;
    if (!recoverIfStuck) throw new AdapterError(`${why}, and again after a reboot`);
    await this.recover(why);
  }

  /** Brings a guest whose driver cannot be reloaded back by rebooting it (the device unplugs everything on a system reset). */
  private async recover(why: string): Promise<void> {
    await this.resetMachine(false);
    const deadline = Date.now() + 60_000;
    while (!(await this.driverLoaded())) {
      if (Date.now() > deadline) throw new AdapterError(`${why}; after a reboot virtio_mem was not loaded again`);
      await sleep(250);
    }
    await this.setRequested(0n);
    await this.waitPlugged(0n, this.options.drainTimeoutMs ?? 60_000);
    await this.unload(false);
  }

  /** Leaves the driver unloaded and the device with nothing plugged. */
  private async drain(): Promise<void> {
    const timeout = this.options.drainTimeoutMs ?? 60_000;
    const bound = (await this.sh('ls /sys/bus/virtio/drivers/virtio_mem 2>/dev/null | grep -c ^virtio || true', 'checking the driver')).trim() !== '0';
    if (!bound && (await this.regionClaimed())) {
      // An earlier driver instance left memory added; Linux cannot load the driver again until a reboot.
      await this.recover('memory of an earlier driver instance is still added');
      return;
    }
    const loaded = await this.driverLoaded();
    const d = await this.memoryDevice();
    if (!loaded && d.size === 0n) return;
    await this.setRequested(0n);
    if (!loaded) await this.load();
    await this.waitPlugged(0n, timeout);
    await this.unload();
  }

  /** Memory-block numbers (guest sysfs) that cover the device region. */
  private async memoryBlocksOfRegion(): Promise<number[]> {
    const text = (await this.sh('cat /sys/devices/system/memory/block_size_bytes', 'reading the memory block size')).trim();
    const blockBytes = BigInt(`0x${text}`);
    if (blockBytes <= 0n) throw new AdapterError(`odd memory block size '${text}'`);
    const first = this.device.memaddr / blockBytes;
    const last = (this.device.memaddr + this.device.maxSize - 1n) / blockBytes;
    const ids: number[] = [];
    for (let i = first; i <= last; i++) ids.push(Number(i));
    return ids;
  }

  /** `initial-plugged`: the driver plugs the first `count` blocks, then is unloaded leaving them plugged. */
  private async plugPrefix(count: number): Promise<void> {
    const size = BigInt(count) * this.device.blockSize;
    this.trace.skipToEnd();
    await this.setRequested(size);
    await this.load();
    await this.waitPlugged(size, this.options.drainTimeoutMs ?? 60_000);
    this.trace.poll();
    const blocks = new BlockBitmap(Number(this.device.maxSize / this.device.blockSize));
    for (const t of this.trace.parser.take()) {
      if (t.responseType !== VIRTIO_MEM_RESP_ACK) continue;
      const first = Number((t.addr - this.device.memaddr) / this.device.blockSize);
      if (t.type === VIRTIO_MEM_REQ_PLUG) blocks.setRange(first, t.nbBlocks);
      else if (t.type === VIRTIO_MEM_REQ_UNPLUG) blocks.clearRange(first, t.nbBlocks);
      else if (t.type === VIRTIO_MEM_REQ_UNPLUG_ALL) blocks.clearAll();
    }
    if (blocks.count !== count || blocks.countRange(0, count) !== count) {
      await this.drain();
      throw new UnsupportedSetupError(`the guest's driver plugged other blocks than the first ${count}; this setup cannot be reproduced`);
    }
    const ids = await this.memoryBlocksOfRegion();
    // Offline the device's memory blocks so that unloading the driver removes them from Linux
    // while the device keeps them plugged.
    await this.sh(`for n in ${ids.join(' ')}; do f=/sys/devices/system/memory/memory$n/state; if [ -e $f ] && [ "$(cat $f)" != offline ]; then echo offline > $f || exit 1; fi; done`, 'offlining the plugged memory');
    // Unloading removes the offline memory from Linux; the device keeps the blocks plugged.
    await this.sh('rmmod virtio_mem', 'unloading virtio_mem');
    if (await this.regionClaimed()) await this.recover('the device region stayed claimed after offlining and rmmod');
    const after = await this.memoryDevice();
    if (after.size !== size) throw new AdapterError(`after unloading the driver the device holds ${hex(after.size)} plugged, not ${hex(size)}`);
  }

  async openDevice(): Promise<DeviceSession> {
    throw new UnsupportedSetupError('the ssh-guest adapter tests drivers; device vectors need --adapter qemu or model');
  }

  async openDriver(setup: DeviceSetup, options: DriverOptions): Promise<DriverSession> {
    const epoch = ++this.epoch;
    if (this.sessionOpen) {
      // The previous vector was abandoned (timeout) with work in flight: cut its connection.
      this.shell?.close();
      this.shell = undefined;
      this.sessionOpen = false;
    }
    return this.inEpoch(epoch, () => this.openDriverNow(setup, options, epoch));
  }

  private async openDriverNow(setup: DeviceSetup, options: DriverOptions, epoch: number): Promise<DriverSession> {
    const d = this.device;
    const mismatch = (what: string, guest: bigint | number, wanted: bigint | number, option: string): UnsupportedSetupError =>
      new UnsupportedSetupError(`the guest's device has ${what} ${typeof guest === 'bigint' ? hex(guest) : guest}; this vector needs ${typeof wanted === 'bigint' ? hex(wanted) : wanted} (boot a guest with ${option})`);
    if (options.configPadding) throw new UnsupportedSetupError('QEMU does not let the host set the config padding bytes');
    if (setup.block_size !== d.blockSize) throw mismatch('block_size', d.blockSize, setup.block_size, '`vmemct guest up --block-size …`');
    if (setup.region_size !== d.maxSize) throw mismatch('region_size', d.maxSize, setup.region_size, '`vmemct guest up --region-size …`');
    if (setup.addr !== d.memaddr) throw mismatch('addr', d.memaddr, setup.addr, 'its device memory at that address');
    if (setup.node_id !== d.node) throw mismatch('node_id', d.node, setup.node_id, 'the device on that NUMA node');
    // Device-specific bits (0-23) and VERSION_1 decide; other transport bits (RING_RESET, …) are QEMU's own.
    if (setup.features !== undefined && (setup.features & RELEVANT_FEATURES) !== (this.offered & RELEVANT_FEATURES)) {
      throw new UnsupportedSetupError(`the guest's device offers features ${hex(this.offered & RELEVANT_FEATURES)}; this vector needs exactly ${hex(setup.features & RELEVANT_FEATURES)}`);
    }
    if (setup.requested_size > d.maxSize || setup.requested_size % d.blockSize !== 0n) {
      throw new UnsupportedSetupError(`QEMU refuses requested_size ${hex(setup.requested_size)} (not a multiple of block_size inside the region)`);
    }
    if (setup.plugged.length > 1 || (setup.plugged.length === 1 && setup.plugged[0]!.first !== 0)) {
      throw new UnsupportedSetupError('blocks plugged at start can only be the first N blocks (the Linux driver plugs from the start of the region)');
    }
    this.sessionOpen = true;
    try {
      await this.drain();
      const prefix = setup.plugged[0]?.count ?? 0;
      if (prefix > 0) await this.plugPrefix(prefix);
      await this.setRequested(setup.requested_size);
      this.trace.skipToEnd();
      return new SshGuestDriverSession(this, epoch);
    } catch (e) {
      this.sessionOpen = false;
      throw e;
    }
  }

  /** Hooks for the session (same module). */
  readonly session = {
    start: async (): Promise<string> => {
      await this.resume();
      await this.load();
      return this.boundDevice();
    },
    acceptedFeatures: async (virtioName: string): Promise<bigint> => {
      const bits = (await this.sh(`cat /sys/bus/virtio/devices/${virtioName}/features`, 'reading the accepted features')).trim();
      if (!/^[01]+$/.test(bits)) throw new AdapterError(`odd features string '${bits}'`);
      let v = 0n;
      for (let i = 0; i < bits.length && i < 64; i++) if (bits[i] === '1') v |= 1n << BigInt(i);
      return v;
    },
    offeredFeatures: (): bigint => this.offered,
    readConfig: async (): Promise<Uint8Array> => {
      const reads = configSnapshotReads(this.layout!, CONFIG_SIZE);
      const script = windowReadScript(this.pciDevice, this.layout!.pciCfg, reads);
      for (let attempt = 0; attempt < 5; attempt++) {
        const values = parseWindowOutput(await this.sh(script, 'reading the device configuration'), reads);
        if (values[0]![0] !== values[values.length - 1]![0]) continue;
        const bytes = new Uint8Array(CONFIG_SIZE);
        values.slice(1, -1).forEach((v, i) => bytes.set(v.subarray(0, Math.min(4, CONFIG_SIZE - i * 4)), i * 4));
        return bytes;
      }
      throw new AdapterError('the configuration kept changing while it was read (config_generation differed five times)');
    },
    resize: async (size: bigint): Promise<ResizeOutcome> => {
      try {
        await this.setRequested(size);
        return { kind: 'applied' };
      } catch (e) {
        if (e instanceof QmpError && !/did not answer|connection/.test(e.message)) return { kind: 'refused', reason: e.message };
        throw e;
      }
    },
    settle: (limits: SettleLimits): Promise<DriverActivity> => this.settle(limits),
    systemReset: (): Promise<void> => this.resetMachine(true),
    resume: (): Promise<void> => this.resume(),
    held: (): boolean => this.held,
    hostConfig: (): Promise<Uint8Array> => this.hostConfig(),
    boundDevice: (): Promise<string> => this.boundDevice(),
    close: (): void => {
      this.sessionOpen = false;
      if (this.held) void this.resume().catch(() => undefined);
    },
  };

  /** Whether the machine was reset and is held before it boots again (see {@link resetMachine}). */
  private held = false;

  /**
   * `system_reset`. With `hold`, the vCPUs are stopped first and stay stopped: the device has
   * been reset (QEMU unplugs everything) and the guest has not booted yet, so the runner can look
   * at the device before the driver probes again; the next driver-facing step resumes the guest.
   */
  private async resetMachine(hold: boolean): Promise<void> {
    this.qmp?.clearEvents();
    if (hold) await this.qmpRun('stop');
    await this.qmpRun('system_reset');
    await this.qmp!.nextEvent('RESET', this.timeoutMs).catch(() => undefined);
    this.shell?.close();
    this.shell = undefined;
    if (hold) this.held = true;
    else await this.waitForGuest();
  }

  private async resume(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await this.qmpRun('cont');
    await this.waitForGuest();
  }

  private async waitForGuest(): Promise<void> {
    try {
      this.shell = await waitForSsh(this.options.ssh, 120_000, { setpriv: this.setpriv });
    } catch (e) {
      throw new AdapterTimeoutError(`after system_reset: ${(e as Error).message}`);
    }
  }

  /**
   * The configuration as the host holds it (QMP sizes, the usable region from the trace): used
   * while the guest is held after a reset and cannot read it itself.
   */
  private async hostConfig(): Promise<Uint8Array> {
    const d = await this.memoryDevice();
    this.trace.poll();
    const usable = this.trace.parser.usableRegionSize ?? d.maxSize;
    return encodeConfig({ block_size: d.blockSize, node_id: d.node, addr: d.memaddr, region_size: d.maxSize, usable_region_size: usable, plugged_size: d.size, requested_size: d.requestedSize });
  }

  /** The virtio device virtio_mem is bound to, waiting up to 5 s for the probe. */
  private async boundDevice(): Promise<string> {
    const bound = await this.sh(`for i in $(seq 1 100); do for v in /sys/bus/virtio/drivers/virtio_mem/virtio*; do [ -e "$v" ] && { basename $v; exit 0; }; done; sleep 0.05; done; exit 1`, 'waiting for virtio_mem to bind');
    const name = bound.trim();
    if (!/^virtio[0-9]+$/.test(name)) throw new AdapterError(`odd virtio device name '${name}'`);
    return name;
  }

  private async settle(limits: SettleLimits): Promise<DriverActivity> {
    await this.resume();
    const quietMs = this.options.quietMs ?? 800;
    const stallMs = this.options.stallMs ?? 8000;
    const bound = Math.min(limits.timeoutMs, 90_000);
    const started = Date.now();
    let lastActivity = started;
    let lastSize = -1n;
    const events: DriverEvent[] = [];
    let requests = 0;
    // The configuration the driver works against in this settle: requested_size and the usable
    // region change only on a host resize, which happens between settles.
    const config = await this.session.readConfig();
    for (;;) {
      if (this.trace.poll() > 0) lastActivity = Date.now();
      for (const t of this.trace.parser.take()) {
        events.push({ kind: 'request', exchange: { ...exchangeOf(t), config } });
        requests++;
      }
      const d = await this.memoryDevice();
      if (d.size !== lastSize) {
        lastSize = d.size;
        lastActivity = Date.now();
      }
      const now = Date.now();
      const waitedMs = now - started;
      const converged = d.size === d.requestedSize;
      if (requests >= limits.maxRequests) return { events, settled: false, stop: `request limit (${limits.maxRequests}) reached`, waitedMs };
      if (converged && !this.trace.parser.awaitingResponse && now - lastActivity >= quietMs) return { events, settled: true, stop: `converged; ${await this.guestView()}`, waitedMs };
      if (!converged && now - lastActivity >= stallMs) {
        return { events, settled: true, stop: `quiet for ${stallMs} ms without converging (plugged ${hex(d.size)}, requested ${hex(d.requestedSize)}; Linux retries a failed request after 50 s); ${await this.guestView()}`, waitedMs };
      }
      if (waitedMs >= bound) return { events, settled: false, stop: `still busy after ${bound} ms`, waitedMs };
      await sleep(100);
    }
  }

  /** The guest's own view of its memory, for the record. */
  private async guestView(): Promise<string> {
    const text = await this.sh("grep MemTotal /proc/meminfo; grep -c 'System RAM (virtio_mem)' /proc/iomem || true", 'reading the guest memory view');
    const memTotal = /MemTotal:\s+([0-9]+) kB/.exec(text)?.[1];
    const ranges = text.trim().split('\n').pop();
    return `guest MemTotal ${memTotal ?? '?'} kB, ${ranges ?? '?'} virtio_mem RAM range(s) in /proc/iomem`;
  }

  async dispose(): Promise<void> {
    this.shell?.close();
    this.shell = undefined;
    this.qmp?.close();
    this.qmp = undefined;
  }
}

/** Entries of /proc/iomem (as root, so with real addresses). */
export function parseIomem(text: string): { start: bigint; end: bigint; name: string }[] {
  const entries: { start: bigint; end: bigint; name: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([0-9a-f]+)-([0-9a-f]+) : (.*)$/.exec(line);
    if (m) entries.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), name: m[3]!.trim() });
  }
  return entries;
}

class SshGuestDriverSession implements DriverSession {
  private virtioName: string | undefined;
  private closed = false;

  constructor(private readonly adapter: SshGuestAdapter, private readonly epoch: number) {}

  private run<T>(work: () => Promise<T>): Promise<T> {
    return this.adapter.inEpoch(this.epoch, work);
  }

  start(): Promise<void> {
    return this.run(async () => {
      this.virtioName = await this.adapter.session.start();
    });
  }

  settle(limits: SettleLimits): Promise<DriverActivity> {
    return this.run(() => this.adapter.session.settle(limits));
  }

  readConfig(): Promise<Uint8Array> {
    return this.run(() => (this.adapter.session.held() ? this.adapter.session.hostConfig() : this.adapter.session.readConfig()));
  }

  acceptedFeatures(): Promise<bigint> {
    return this.run(async () => {
      await this.adapter.session.resume();
      this.virtioName ??= await this.adapter.session.boundDevice();
      return this.adapter.session.acceptedFeatures(this.virtioName);
    });
  }

  async offeredFeatures(): Promise<bigint> {
    return this.adapter.session.offeredFeatures();
  }

  resize(size: bigint): Promise<ResizeOutcome> {
    return this.run(() => this.adapter.session.resize(size));
  }

  systemReset(): Promise<void> {
    return this.run(async () => {
      await this.adapter.session.systemReset();
      this.virtioName = undefined;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.epoch === this.adapter.currentEpoch) await this.run(async () => this.adapter.session.close());
  }
}
