/**
 * The `qemu` adapter: runs device vectors against QEMU's real `virtio-mem-pci` device. The
 * adapter is the device's PCI virtio driver over qtest ({@link VirtioPciDriver}) and the host
 * over QMP (`qom-set requested-size`, `system_reset`); suspend-to-RAM goes through q35's ICH9
 * power-management registers and QMP `system_wakeup` (s3-suspend.ts).
 *
 * One QEMU is reused across vectors with the same device parameters: between vectors it is
 * reset, given the next `requested_size` while no driver is active (so no notification), and
 * emptied with UNPLUG ALL. A vector with other parameters, or a device left broken
 * (NEEDS_RESET, a crash, a hang), gets a fresh QEMU.
 */
import {
  FEATURE_BITS,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_ACPI_PXM,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  featureMask,
} from '../../../spec/src/index';
import {
  Adapter,
  AdapterError,
  AdapterInfo,
  Capability,
  DeviceSetup,
  UnsupportedSetupError,
} from '../../core/src/contract';
import { DeviceHandle, VirtioDeviceSession, prepareDevice } from '../../device-session/src/device-session';
import { HostView, MigrationBusy, QemuBinary, QemuMemoryDevice, locateQemu } from '../../qemu-platform/src/index';
import { QemuBinaryOptions, QemuProcess, QemuStartError, removeStaleTempDirs } from './qemu-process';
import type { VirtioPciDriver } from '../../virtio/src/index';
import { probeOverQtest } from './qtest-bus';
import { QmpHostControl } from './qmp-host-control';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
/** RAM of the VM (it runs no guest code); rings and buffers live in it. */
const GUEST_RAM = 512n * MiB;
/** On q35 with 512 MiB of RAM the device-memory area starts at 4 GiB. */
const DEVICE_MEMORY_BASE = 4n * GiB;
/**
 * Where the device region must end. TCG in QEMU 7.2 emulates 40 physical address bits (1 TiB);
 * q35 puts its 32 GiB 64-bit PCI hole after device memory, and with TCG's AMD-flavoured CPU
 * anything reaching past 1012 GiB is moved above the 1 TiB HyperTransport hole, where it no
 * longer fits: so the region ends at 980 GiB at most.
 */
const HIGHEST_REGION_END = 980n * GiB;
/** QEMU's smallest virtio-mem block size. */
const MIN_BLOCK_SIZE = 1n * MiB;
/** Highest NUMA node a vector may place the device on (nodes 0..N are created for it). */
const MAX_NODE_ID = 15;
/** Device-specific features QEMU 7.2 offers on x86-64: ACPI_PXM always, UNPLUGGED_INACCESSIBLE when configured. */
const ALWAYS_OFFERED = featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_ACPI_PXM);
const UNPLUGGED_INACCESSIBLE = featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
const PERSISTENT_SUSPEND = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);
const DEVICE_ID = 'vm0';

/** What the QEMU device can do for the runner. */
export const QEMU_CAPABILITIES: readonly Capability[] = [
  'host-resize',
  'device-reset',
  'system-reset',
  'raw-descriptor-layout',
  'read-raw-config',
  'feature-negotiation',
  'initial-plugged',
  'memory-access',
  'config-generation',
  'host-busy',
  'suspend',
];

/** Options of the QEMU adapter. */
export interface QemuAdapterOptions extends QemuBinaryOptions {
  /** Already located binary (skips the lookup). */
  readonly located?: QemuBinary;
  /** Reuse one QEMU across vectors with equal device parameters (default true). */
  readonly reuse?: boolean;
  /** Called with each QEMU started (tests use it to watch processes). */
  readonly onStart?: (pid: number | undefined) => void;
}

/**
 * The QEMU command line (without the qtest/QMP options) for a device set-up, or
 * {@link UnsupportedSetupError} when QEMU 7.2 cannot build that device.
 */
export function qemuArguments(setup: DeviceSetup, version = '7.2.0'): string[] {
  const { block_size: blockSize, region_size: regionSize, addr, requested_size: requested, node_id: node } = setup;
  const refuse = (why: string): never => {
    throw new UnsupportedSetupError(`QEMU cannot build this device: ${why}`);
  };
  if (blockSize < MIN_BLOCK_SIZE || (blockSize & (blockSize - 1n)) !== 0n)
    refuse(`block_size must be a power of two of at least 1 MiB (got ${blockSize})`);
  if (regionSize <= 0n || regionSize % blockSize !== 0n)
    refuse(`region_size must be a positive multiple of block_size (got ${regionSize})`);
  if (requested < 0n || requested > regionSize || requested % blockSize !== 0n)
    refuse(`requested_size must be a multiple of block_size within the region (got ${requested})`);
  if (addr % blockSize !== 0n) refuse('addr must be aligned to block_size');
  if (addr < DEVICE_MEMORY_BASE)
    refuse(`addr must be at or above 4 GiB, where q35's device memory begins (got 0x${addr.toString(16)})`);
  if (addr + regionSize > HIGHEST_REGION_END)
    refuse(
      `the region must end by 980 GiB, below TCG's 40-bit physical address space and the PCI hole after it (ends at 0x${(addr + regionSize).toString(16)})`,
    );
  if (node > MAX_NODE_ID) refuse(`node_id above ${MAX_NODE_ID}`);
  // Initial blocks are plugged through the queue, and QEMU plugs only up to requested_size.
  const initial = setup.plugged.reduce((n, r) => n + BigInt(r.count), 0n) * blockSize;
  if (initial > requested)
    refuse(
      'more initial plugged blocks than requested_size (they are plugged through the queue, which stops at requested_size)',
    );
  let unpluggedInaccessible: 'on' | 'off' = 'off';
  if (setup.features !== undefined) {
    // 9.2 and later offer PERSISTENT_SUSPEND on x86 whenever S3 is enabled (q35 enables it), so
    // a set-up with it can be built; one without it still gets it offered (there is no switch).
    const optional = UNPLUGGED_INACCESSIBLE | (offersPersistentSuspend(version) ? PERSISTENT_SUSPEND : 0n);
    const extra = setup.features & ~(ALWAYS_OFFERED | optional);
    if (extra !== 0n) refuse(`QEMU ${version} never offers ${featureNames(extra)}`);
    const missing = ALWAYS_OFFERED & ~setup.features;
    if (missing !== 0n) refuse(`on x86-64 it always offers ${featureNames(missing)}`);
    unpluggedInaccessible = setup.features & UNPLUGGED_INACCESSIBLE ? 'on' : 'off';
  }
  // Device memory must hold [addr, addr + region_size); maxmem sizes it (1 GiB granularity).
  const deviceMemory = roundUp(addr + regionSize - DEVICE_MEMORY_BASE, GiB);
  const args = [
    '-machine',
    'q35',
    '-accel',
    'tcg',
    '-S',
    '-nodefaults',
    '-display',
    'none',
    '-no-user-config',
    '-m',
    `${GUEST_RAM / MiB}M,maxmem=${(GUEST_RAM + deviceMemory) / MiB}M`,
  ];
  if (node > 0) {
    args.push('-object', `memory-backend-ram,id=ram0,size=${GUEST_RAM / MiB}M`, '-numa', 'node,nodeid=0,memdev=ram0');
    for (let n = 1; n <= node; n++) args.push('-numa', `node,nodeid=${n}`);
  }
  args.push(
    '-object',
    `memory-backend-ram,id=mem0,size=${regionSize},reserve=off`,
    '-device',
    [
      `virtio-mem-pci,id=${DEVICE_ID},memdev=mem0`,
      `block-size=${blockSize}`,
      `requested-size=${requested}`,
      `memaddr=${addr}`,
      `node=${node}`,
      `unplugged-inaccessible=${unpluggedInaccessible}`,
    ].join(','),
  );
  return args;
}

/**
 * Why QEMU would refuse to build the device a set-up needs, or undefined: only the device's
 * configuration is judged (nothing requested or plugged). A guest booted for a configuration
 * (`--boot-guest`) keeps these refusals.
 */
export function qemuConfigurationRefusal(setup: DeviceSetup, version = '7.2.0'): string | undefined {
  try {
    qemuArguments({ ...setup, requested_size: 0n, plugged: [] }, version);
    return undefined;
  } catch (e) {
    if (e instanceof UnsupportedSetupError) return e.message;
    throw e;
  }
}

/** Whether a QEMU version offers VIRTIO_MEM_F_PERSISTENT_SUSPEND on x86 (9.2 and later). */
export function offersPersistentSuspend(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 9 || (major === 9 && minor >= 2);
}

/** Names of the feature bits in `mask` (numbers for bits without a name). */
function featureNames(mask: bigint): string {
  const names: string[] = [];
  for (let bit = 0n; mask >> bit !== 0n; bit++) {
    if (((mask >> bit) & 1n) === 0n) continue;
    names.push(FEATURE_BITS.find((f) => BigInt(f.value) === bit)?.name ?? `feature bit ${bit}`);
  }
  return names.join(', ');
}

function roundUp(value: bigint, to: bigint): bigint {
  return ((value + to - 1n) / to) * to;
}

/** The parameters that need a new QEMU when they change (requested_size does not). */
function instanceKey(setup: DeviceSetup): string {
  return JSON.stringify(
    [setup.block_size, setup.region_size, setup.addr, setup.node_id, setup.features ?? null],
    (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
  );
}

/** A QEMU with the driver attached to its virtio-mem function. */
interface Instance extends DeviceHandle {
  readonly key: string;
  readonly qemu: QemuProcess;
  /** The host side over QMP (requested size, system reset, migration for BUSY, suspend). */
  readonly host: QmpHostControl;
}

/** Creates the QEMU adapter; throws `QemuMissingError` when QEMU is not installed. */
export function createQemuAdapter(options: QemuAdapterOptions = {}): Adapter {
  const binary = options.located ?? locateQemu(options.binary);
  removeStaleTempDirs();
  const pool = new QemuInstancePool(binary, options);
  const info: AdapterInfo = {
    name: 'qemu',
    implementation: `QEMU ${binary.version}`,
    location: binary.path,
    targets: ['device'],
    capabilities: QEMU_CAPABILITIES,
    timeoutMultiplier: 2,
  };
  return { info, openDevice: (setup) => pool.open(setup), dispose: () => pool.dispose() };
}

/**
 * The QEMUs of one adapter: at most one idle instance kept for the next vector with the same
 * device parameters, the instances in use by open sessions, and the opens still under way.
 */
class QemuInstancePool {
  private readonly commandTimeoutMs: number;
  private readonly reuse: boolean;
  private idle: Instance | undefined;
  private readonly active = new Set<Instance>();
  /** Opens still running (the runner may give up on one and dispose meanwhile). */
  private readonly opening = new Set<Promise<unknown>>();
  private disposed = false;

  constructor(
    private readonly binary: QemuBinary,
    private readonly options: QemuAdapterOptions,
  ) {
    this.commandTimeoutMs = options.commandTimeoutMs ?? 5000;
    this.reuse = options.reuse ?? true;
  }

  private async launch(setup: DeviceSetup, key: string): Promise<Instance> {
    const args = qemuArguments(setup, this.binary.version);
    let qemu: QemuProcess;
    try {
      // Start-up gets at least 10 s (a loaded machine); every later command gets commandTimeoutMs.
      qemu = await QemuProcess.start(this.binary, args, Math.max(this.commandTimeoutMs, 10_000), this.commandTimeoutMs);
    } catch (e) {
      if (e instanceof QemuStartError) throw new AdapterError(e.message, e.stderr);
      throw e;
    }
    try {
      this.options.onStart?.(qemu.pid);
      const memory = new QemuMemoryDevice(qemu.qmp, DEVICE_ID);
      const migration = new MigrationBusy(qemu.qmp, qemu.tempDir, this.commandTimeoutMs);
      return {
        key,
        qemu,
        host: new QmpHostControl(qemu.qmp, qemu.qtest, memory, migration, this.commandTimeoutMs),
        driver: await probeOverQtest(qemu.qtest),
        probe: () => probeOverQtest(qemu.qtest),
        spoiled: false,
      };
    } catch (e) {
      await qemu.kill();
      throw new AdapterError(`probing the virtio-mem function failed: ${(e as Error).message}`, qemu.stderr);
    }
  }

  /** Brings an instance to the vector's starting state (device-session.ts). */
  private prepare(instance: Instance, setup: DeviceSetup, reused: boolean): Promise<void> {
    return prepareDevice(instance, setup, reused);
  }

  /** Opens a session on an instance in the vector's starting state. */
  async open(setup: DeviceSetup): Promise<QemuDeviceSession> {
    if (this.disposed) throw new AdapterError('the QEMU adapter was disposed');
    const open = this.openInstance(setup);
    this.opening.add(open);
    try {
      const instance = await open;
      if (this.disposed) {
        await instance.qemu.kill();
        throw new AdapterError('the QEMU adapter was disposed while the device was being opened');
      }
      this.active.add(instance);
      return new QemuDeviceSession(instance, setup, () => this.release(instance));
    } finally {
      this.opening.delete(open);
    }
  }

  /** Takes back an instance whose session closed: kept idle when it can serve the next vector, else ended. */
  private async release(done: Instance): Promise<void> {
    this.active.delete(done);
    done.host.migration.closeSink();
    if (this.reuse && !this.disposed && !done.spoiled && done.qemu.running && !this.idle) this.idle = done;
    else await done.qemu.kill();
  }

  /** Ends every QEMU, once the opens under way have finished. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.allSettled([...this.opening]);
    const all = [...this.active, ...(this.idle ? [this.idle] : [])];
    this.idle = undefined;
    this.active.clear();
    for (const i of all) i.host.migration.closeSink();
    await Promise.all(all.map((i) => i.qemu.stop()));
  }

  /** An instance in the vector's starting state: the idle one when its parameters match, else a new QEMU. */
  private async openInstance(setup: DeviceSetup): Promise<Instance> {
    const key = instanceKey(setup);
    qemuArguments(setup, this.binary.version);
    let instance: Instance | undefined;
    if (this.idle && this.reuse && this.idle.key === key && !this.idle.spoiled && this.idle.qemu.running) {
      instance = this.idle;
      this.idle = undefined;
      try {
        await this.prepare(instance, setup, true);
      } catch (e) {
        if (e instanceof UnsupportedSetupError) {
          this.idle = instance;
          throw e;
        }
        await instance.qemu.kill();
        instance = undefined;
      }
    }
    if (!instance) {
      if (this.idle) {
        const old = this.idle;
        this.idle = undefined;
        await old.qemu.stop();
      }
      instance = await this.launch(setup, key);
      try {
        await this.prepare(instance, setup, false);
      } catch (e) {
        await instance.qemu.kill();
        if (e instanceof UnsupportedSetupError) throw e;
        throw new AdapterError(`preparing the device failed: ${(e as Error).message}`, instance.qemu.stderr);
      }
    }
    return instance;
  }
}

/** Diagnostics for a failing vector: QEMU's state, command line and the end of its stderr. */
function describeInstance(qemu: QemuProcess): string {
  const lines = [
    `QEMU pid ${qemu.pid ?? '?'}: ${qemu.running ? 'running' : qemu.exitDescription}`,
    `command: ${qemu.argv.join(' ')}`,
  ];
  const stderr = qemu.stderr.trim();
  lines.push(stderr ? `stderr:\n${stderr}` : 'stderr: (empty)');
  return lines.join('\n');
}

/** One vector's session on a QEMU instance: the shared device session, plus the host's view over QMP. */
export class QemuDeviceSession extends VirtioDeviceSession {
  constructor(
    private readonly instance: Instance,
    setup: DeviceSetup,
    release: () => Promise<void>,
  ) {
    super(instance, setup, {
      adapterName: 'QEMU',
      // qtest's practical line length.
      maxAccessBytes: 1 << 20,
      failure: async (what, e) => {
        const qemu = instance.qemu;
        // A closed channel usually means QEMU died: give its exit a moment to be reported.
        await qemu.waitForExit(200);
        const state = qemu.running ? '' : ` (QEMU ${qemu.exitDescription})`;
        return new AdapterError(`${what}: ${e.message}${state}`, describeInstance(qemu));
      },
      release,
    });
  }

  /** The host's view of the device (QMP), beyond the contract: for cross-checks against the config space. */
  hostView(): Promise<HostView> {
    return this.guarded('query-memory-devices', () => this.instance.host.memory.hostView());
  }

  /** Waits for QEMU's next MEMORY_DEVICE_SIZE_CHANGE event (QEMU throttles them to one per second). */
  nextSizeChange(timeoutMs: number): Promise<bigint> {
    return this.guarded('MEMORY_DEVICE_SIZE_CHANGE', async () =>
      BigInt((await this.instance.qemu.qmp.nextEvent('MEMORY_DEVICE_SIZE_CHANGE', timeoutMs)).data.size as number),
    );
  }
}
