/**
 * The `ssh-guest` adapter: the Linux virtio_mem driver of a live guest under test (driver
 * vectors). The device is QEMU's virtio-mem-pci; the adapter plays the host:
 *
 * - over QMP it resizes (`qom-set … requested-size`), reads what the device holds
 *   (`query-memory-devices`) and resets the machine (`system_reset`) — {@link GuestLink};
 * - from QEMU's `virtio_mem_*` trace events it sees every request the driver sent, and the
 *   answer, as the device saw them — {@link GuestObserver};
 * - over QMP it also makes the device busy (`host-busy`: an outgoing migration held active);
 * - over SSH it loads and unloads the driver (a fresh probe per vector) —
 *   {@link GuestDriverControl} — and reads the 56 configuration bytes as the guest sees them
 *   (the PCI_CFG window) and the guest's own view (MemTotal).
 *
 * This file checks a vector's set-up against the guest's device and prepares the device for it.
 */
import { DEVICE_TYPE_FEATURES_MASK, FEATURE_MASKS, formatHex } from '../../../spec/src/index';
import {
  Adapter,
  AdapterInfo,
  BlockRange,
  Capability,
  DeviceSession,
  DeviceSetup,
  DriverOptions,
  DriverSession,
  NamedDeviceSetup,
  UnsupportedSetupError,
} from '../../core/src/contract';
import { ConnectedGuest, SshGuestOptions, connectGuest } from './guest-connect';
import { gdbPlugRedirection } from './gdb-plug-redirect';
import { GuestDriverControl } from './guest-driver-control';
import { planDriverGuest } from './guest-driver-setups';
import { featureSetRefusal } from './guest-qemu-choice';
import { GuestInjectionHost, hookShell } from './guest-injection-session';
import { UnpluggedWriteWatch, openMemoryFile } from './guest-memory-file';
import { GroupParts, openGuestDeviceGroup } from './guest-multi-device';
import { GuestObserver } from './guest-observer';
import { scatterRefusal } from './scattered-plug';
import { GuestParts, SshGuestDriverSession } from './ssh-guest-session';

export { SshGuestSetupError } from './guest-connect';
export type { SshGuestOptions } from './guest-connect';

/** The feature bits a vector's set-up is compared on: device-specific (0-23) and VERSION_1; other transport bits (RING_RESET, …) are QEMU's own. */
const RELEVANT_FEATURES = DEVICE_TYPE_FEATURES_MASK | FEATURE_MASKS.VERSION_1;
const CAPABILITIES: readonly Capability[] = [
  'host-resize',
  'observe-driver',
  'system-reset',
  'initial-plugged',
  // ACPI S3 in the guest, woken over QMP (guest-suspend.ts).
  'suspend',
];

/** What a guest with two or more virtio-mem devices adds: multi-device vectors and the memory per node. */
const MULTI_DEVICE_CAPABILITIES: readonly Capability[] = ['multi-device', 'node-memory'];
const ONE_DEVICE_ONLY =
  'the guest has one virtio-mem device; boot one with several, each on its NUMA node (`vmemct guest up --extra-device 1`)';

/**
 * Why `host-busy` (QEMU's own BUSY, an outgoing migration held active: guest-host-busy.ts) is
 * offered only on an icount guest: Linux notices the release only when its retry timer fires.
 */
const HOST_BUSY_NEEDS_ICOUNT =
  'after a busy host releases the device, Linux retries only when its back-off timer fires (50 s, doubling to 300 s); boot the guest with `vmemct guest up --icount` and pass --icount';

/** What a guest offers the driver target beyond the basic capabilities. */
export interface GuestDriverFacilities {
  /** QEMU has a gdbstub (`--gdb`): scripted answers (`inject-responses`). */
  readonly gdbstub: boolean;
  /** The guest runs with icount (`--icount`): a busy host (`host-busy`). */
  readonly icount: boolean;
  /** The device region is a file shared with the host (`guest up --shared-memory`): `memory-access`. */
  readonly memoryAccess: boolean;
  /** The guest has two or more virtio-mem devices (`guest up --extra-device`): multi-device vectors. */
  readonly multiDevice?: boolean;
}

/** What the adapter is for a guest running Linux `kernelRelease` with `facilities`. */
export function sshGuestDriverInfo(kernelRelease: string, facilities: GuestDriverFacilities): AdapterInfo {
  return {
    name: 'ssh-guest',
    implementation: `Linux ${kernelRelease}`,
    targets: ['driver'],
    // Scripted answers go through QEMU's gdbstub; the driver's writes are seen in the region's
    // backing file when QEMU shares it with the host.
    capabilities: [
      ...CAPABILITIES,
      ...(facilities.gdbstub ? (['inject-responses'] as const) : []),
      ...(facilities.icount ? (['host-busy'] as const) : []),
      ...(facilities.memoryAccess ? (['memory-access'] as const) : []),
      ...(facilities.multiDevice ? MULTI_DEVICE_CAPABILITIES : []),
    ],
    missingCapabilities: {
      ...(facilities.icount ? {} : { 'host-busy': HOST_BUSY_NEEDS_ICOUNT }),
      ...(facilities.multiDevice ? {} : { 'multi-device': ONE_DEVICE_ONLY, 'node-memory': ONE_DEVICE_ONLY }),
    },
    timeoutMultiplier: 12,
  };
}

/** Connects to the guest and its QEMU and checks everything the adapter needs; throws {@link SshGuestSetupError}. */
export async function connectSshGuestAdapter(options: SshGuestOptions): Promise<Adapter> {
  return new SshGuestAdapter(options, await connectGuest(options));
}

class SshGuestAdapter implements Adapter {
  readonly info: AdapterInfo;
  private readonly parts: GuestParts;
  /** The parts a multi-device session uses; undefined when the guest has one virtio-mem device. */
  private readonly groupParts: GroupParts | undefined;
  private sessionOpen = false;

  constructor(
    options: SshGuestOptions,
    private readonly guest: ConnectedGuest,
  ) {
    const multiDevice = guest.pciDevices.length > 1;
    this.info = sshGuestDriverInfo(guest.kernelRelease, {
      gdbstub: options.gdbSocket !== undefined,
      icount: options.icount === true,
      memoryAccess: 'path' in guest.memoryFile,
      multiDevice,
    });
    const { link, geometry } = guest;
    const timing = {
      quietMs: options.quietMs ?? 800,
      stallMs: options.stallMs ?? 8000,
      ...(options.settleBoundMs !== undefined ? { settleBoundMs: options.settleBoundMs } : {}),
    };
    const observer = new GuestObserver(link, guest.window, guest.trace, geometry, timing);
    const drainTimeoutMs = options.drainTimeoutMs ?? 60_000;
    this.groupParts = multiDevice
      ? { link, trace: guest.trace, pciDevices: guest.pciDevices, timing, drainTimeoutMs }
      : undefined;
    const control = new GuestDriverControl(link, observer, geometry, drainTimeoutMs, options.drainByReset ?? false);
    const injection = options.gdbSocket ? new GuestInjectionHost(options.gdbSocket) : undefined;
    const memory = 'path' in guest.memoryFile ? openMemoryFile(guest.memoryFile.path) : undefined;
    this.parts = { link, control, observer, offered: guest.offered, injection, memory };
  }

  async openDevice(): Promise<DeviceSession> {
    throw new UnsupportedSetupError('the ssh-guest adapter tests drivers; device vectors need --adapter qemu or model');
  }

  async openDriver(setup: DeviceSetup, options: DriverOptions): Promise<DriverSession> {
    const { link } = this.guest;
    const epoch = link.epochs.next();
    if (this.sessionOpen) {
      // The previous vector was abandoned (timeout) with work in flight: cut its connection.
      link.closeShell();
      this.sessionOpen = false;
    }
    return link.epochs.run(epoch, () => this.openDriverNow(setup, options, epoch));
  }

  private async openDriverNow(setup: DeviceSetup, options: DriverOptions, epoch: number): Promise<DriverSession> {
    this.checkSetup(setup, options);
    const { link, control, observer } = this.parts;
    const beyondRegion = setup.requested_size > this.guest.geometry.maxSize;
    if (beyondRegion) await this.checkBootRequestedSize(setup);
    this.sessionOpen = true;
    try {
      // The driver the connection loaded shows where the hook lies before any vector loads it.
      if (this.parts.injection && !this.parts.injection.learnt) await this.parts.injection.learn(hookShell(link));
      // A vector abandoned while the host held the device busy left the migration running.
      if (link.hostBusy) await link.setHostBusy(false);
      if (beyondRegion) {
        // The size QEMU took at boot cannot be set again (qom-set refuses it), so the device is
        // not drained: a system reset unplugs everything and keeps requested_size, and the guest
        // stays stopped until the vector's start lets the driver probe as it boots.
        observer.skipTrace();
        await link.resetMachine(true);
        return new SshGuestDriverSession(this.parts, epoch, () => {
          this.sessionOpen = false;
        });
      }
      await control.drain();
      const plugged = setup.plugged.filter((r) => r.count > 0);
      if (isPrefix(plugged)) await control.plugPrefix(plugged[0]!.count);
      else if (plugged.length > 0)
        await control.plugScattered(plugged, gdbPlugRedirection(this.parts.injection!.gdbSocket, link));
      // With scripted answers the driver loads asking for nothing; the session gives it the size (see the session).
      const hold = this.parts.injection !== undefined && plugged.length === 0 && setup.requested_size > 0n;
      await link.setRequestedSize(hold ? 0n : setup.requested_size);
      observer.skipTrace();
      return new SshGuestDriverSession(
        this.parts,
        epoch,
        () => {
          this.sessionOpen = false;
        },
        hold ? setup.requested_size : undefined,
        options.scriptAtProbe,
        this.parts.memory && new UnpluggedWriteWatch(this.parts.memory, this.guest.geometry, plugged),
      );
    } catch (e) {
      this.sessionOpen = false;
      throw e;
    }
  }

  /** `multi-device`: one session per device of the vector, the guest's driver managing them all. */
  async openDrivers(devices: readonly NamedDeviceSetup[]): Promise<readonly DriverSession[]> {
    if (!this.groupParts) throw new UnsupportedSetupError(ONE_DEVICE_ONLY);
    if (this.sessionOpen) this.guest.link.closeShell();
    this.sessionOpen = true;
    try {
      return await openGuestDeviceGroup(this.groupParts, devices, () => {
        this.sessionOpen = false;
      });
    } catch (e) {
      this.sessionOpen = false;
      throw e;
    }
  }

  /**
   * A requested_size above the region: QEMU accepts it only on its command line, so the guest's
   * device must have been booted asking for it ({@link UnsupportedSetupError} otherwise), and the
   * vector must start from an empty device.
   */
  private async checkBootRequestedSize(setup: DeviceSetup): Promise<void> {
    if (setup.plugged.length > 0)
      throw new UnsupportedSetupError(
        'blocks plugged at start need the adapter to set requested_size, which QEMU refuses above the region',
      );
    const view = await this.guest.link.hostView();
    if (view.requestedSize !== setup.requested_size)
      throw new UnsupportedSetupError(
        `QEMU accepts a requested_size above the region (${formatHex(setup.requested_size)}) only on its command line, not by qom-set: the guest must be booted asking for it (\`vmemct run --boot-guest\` does)`,
      );
  }

  /** Refuses a set-up the guest's device does not have or the driver cannot reproduce ({@link UnsupportedSetupError}). */
  private checkSetup(setup: DeviceSetup, options: DriverOptions): void {
    const d = this.guest.geometry;
    const offered = this.guest.offered;
    const show = (v: bigint | number): string => (typeof v === 'bigint' ? formatHex(v) : `${v}`);
    // A set-up QEMU cannot build is refused with QEMU's rule, not with a hint to boot another guest.
    const plan = planDriverGuest(setup, options, { qemu: '', version: this.guest.qemuVersion }, false);
    if (plan.kind === 'refused') throw new UnsupportedSetupError(plan.reason);
    const mismatch = (what: string, guest: bigint | number, wanted: bigint | number): UnsupportedSetupError =>
      new UnsupportedSetupError(
        `the guest's device has ${what} ${show(guest)}; this vector needs ${show(wanted)} (\`vmemct run --boot-guest\` boots a guest per device set-up)`,
      );
    if (setup.block_size !== d.blockSize) throw mismatch('block_size', d.blockSize, setup.block_size);
    if (setup.region_size !== d.maxSize) throw mismatch('region_size', d.maxSize, setup.region_size);
    if (setup.addr !== d.memaddr) throw mismatch('addr', d.memaddr, setup.addr);
    if (setup.node_id !== d.node) throw mismatch('node_id', d.node, setup.node_id);
    const refusal =
      setup.features === undefined
        ? undefined
        : featureSetRefusal(offered & RELEVANT_FEATURES, setup.features & RELEVANT_FEATURES);
    if (refusal !== undefined) throw new UnsupportedSetupError(refusal);
    if (setup.requested_size % d.blockSize !== 0n) {
      throw new UnsupportedSetupError(
        `QEMU requires requested-size to be a multiple of the block size (got ${formatHex(setup.requested_size)})`,
      );
    }
    const plugged = setup.plugged.filter((r) => r.count > 0);
    if (plugged.length > 0 && !isPrefix(plugged)) {
      // Scattered runs are plugged by rewriting the set-up driver's PLUGs through the gdbstub hook.
      if (!this.parts.injection)
        throw new UnsupportedSetupError(
          "blocks plugged at start other than the first N need the guest's gdbstub (--gdb): the Linux driver plugs from the start of the region, so its PLUGs are redirected to the vector's blocks",
        );
      const refusal = scatterRefusal(plugged, Number((setup.requested_size + d.blockSize - 1n) / d.blockSize));
      if (refusal) throw new UnsupportedSetupError(refusal);
    }
  }

  async dispose(): Promise<void> {
    this.parts.memory?.close();
    await this.guest.link.dispose();
  }
}

/** Whether `plugged` (empty runs dropped) is one run from block 0, which the driver plugs itself. */
function isPrefix(plugged: readonly BlockRange[]): boolean {
  return plugged.length === 1 && plugged[0]!.first === 0;
}
