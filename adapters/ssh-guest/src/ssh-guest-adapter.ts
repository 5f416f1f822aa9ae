/**
 * The `ssh-guest` adapter: the Linux virtio_mem driver of a live guest under test (driver
 * vectors). The device is QEMU's virtio-mem-pci; the adapter plays the host:
 *
 * - over QMP it resizes (`qom-set … requested-size`), reads what the device holds
 *   (`query-memory-devices`) and resets the machine (`system_reset`) — {@link GuestLink};
 * - from QEMU's `virtio_mem_*` trace events it sees every request the driver sent, and the
 *   answer, as the device saw them — {@link GuestObserver};
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
  Capability,
  DeviceSession,
  DeviceSetup,
  DriverOptions,
  DriverSession,
  NamedDeviceSetup,
  UnsupportedSetupError,
} from '../../core/src/contract';
import { ConnectedGuest, SshGuestOptions, connectGuest } from './guest-connect';
import { GuestDriverControl } from './guest-driver-control';
import { GuestInjectionHost, hookShell } from './guest-injection-session';
import { GroupParts, openGuestDeviceGroup } from './guest-multi-device';
import { GuestObserver } from './guest-observer';
import { GuestParts, SshGuestDriverSession } from './ssh-guest-session';

export { SshGuestSetupError } from './guest-connect';
export type { SshGuestOptions } from './guest-connect';

/** The feature bits a vector's set-up is compared on: device-specific (0-23) and VERSION_1; other transport bits (RING_RESET, …) are QEMU's own. */
const RELEVANT_FEATURES = DEVICE_TYPE_FEATURES_MASK | FEATURE_MASKS.VERSION_1;
const CAPABILITIES: readonly Capability[] = ['host-resize', 'observe-driver', 'system-reset', 'initial-plugged'];
/** What a guest with two or more virtio-mem devices adds: multi-device vectors and the memory per node. */
const MULTI_DEVICE_CAPABILITIES: readonly Capability[] = ['multi-device', 'node-memory'];
const ONE_DEVICE_ONLY =
  'the guest has one virtio-mem device; boot one with several, each on its NUMA node (`vmemct guest up --extra-device 1`)';

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
    this.info = {
      name: 'ssh-guest',
      implementation: `Linux ${guest.kernelRelease}`,
      targets: ['driver'],
      // Scripted answers go through QEMU's gdbstub: offered when the guest's QEMU has one.
      capabilities: [
        ...CAPABILITIES,
        ...(options.gdbSocket ? (['inject-responses'] as const) : []),
        ...(multiDevice ? MULTI_DEVICE_CAPABILITIES : []),
      ],
      timeoutMultiplier: 12,
      ...(multiDevice
        ? {}
        : { missingCapabilities: { 'multi-device': ONE_DEVICE_ONLY, 'node-memory': ONE_DEVICE_ONLY } }),
    };
    const { link, geometry } = guest;
    const timing = { quietMs: options.quietMs ?? 800, stallMs: options.stallMs ?? 8000 };
    const observer = new GuestObserver(link, guest.window, guest.trace, geometry, timing);
    const drainTimeoutMs = options.drainTimeoutMs ?? 60_000;
    this.groupParts = multiDevice
      ? { link, trace: guest.trace, pciDevices: guest.pciDevices, timing, drainTimeoutMs }
      : undefined;
    const control = new GuestDriverControl(link, observer, geometry, drainTimeoutMs);
    const injection = options.gdbSocket ? new GuestInjectionHost(options.gdbSocket) : undefined;
    this.parts = { link, control, observer, offered: guest.offered, injection };
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
    this.sessionOpen = true;
    try {
      // The driver the connection loaded shows where the hook lies before any vector loads it.
      if (this.parts.injection && !this.parts.injection.learnt) await this.parts.injection.resolve(hookShell(link));
      await control.drain();
      const prefix = setup.plugged[0]?.count ?? 0;
      if (prefix > 0) await control.plugPrefix(prefix);
      // With scripted answers the driver loads asking for nothing; the session gives it the size (see the session).
      const hold = this.parts.injection !== undefined && prefix === 0 && setup.requested_size > 0n;
      await link.setRequestedSize(hold ? 0n : setup.requested_size);
      observer.skipTrace();
      return new SshGuestDriverSession(
        this.parts,
        epoch,
        () => {
          this.sessionOpen = false;
        },
        hold ? setup.requested_size : undefined,
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

  /** Refuses a set-up the guest's device does not have or the driver cannot reproduce ({@link UnsupportedSetupError}). */
  private checkSetup(setup: DeviceSetup, options: DriverOptions): void {
    const d = this.guest.geometry;
    const offered = this.guest.offered;
    const show = (v: bigint | number): string => (typeof v === 'bigint' ? formatHex(v) : `${v}`);
    const mismatch = (
      what: string,
      guest: bigint | number,
      wanted: bigint | number,
      option: string,
    ): UnsupportedSetupError =>
      new UnsupportedSetupError(
        `the guest's device has ${what} ${show(guest)}; this vector needs ${show(wanted)} (boot a guest with ${option})`,
      );
    if (options.configPadding)
      throw new UnsupportedSetupError('QEMU does not let the host set the config padding bytes');
    if (setup.block_size !== d.blockSize)
      throw mismatch('block_size', d.blockSize, setup.block_size, '`vmemct guest up --block-size …`');
    if (setup.region_size !== d.maxSize)
      throw mismatch('region_size', d.maxSize, setup.region_size, '`vmemct guest up --region-size …`');
    if (setup.addr !== d.memaddr) throw mismatch('addr', d.memaddr, setup.addr, 'its device memory at that address');
    if (setup.node_id !== d.node) throw mismatch('node_id', d.node, setup.node_id, 'the device on that NUMA node');
    if (setup.features !== undefined && (setup.features & RELEVANT_FEATURES) !== (offered & RELEVANT_FEATURES)) {
      throw new UnsupportedSetupError(
        `the guest's device offers features ${formatHex(offered & RELEVANT_FEATURES)}; this vector needs exactly ${formatHex(setup.features & RELEVANT_FEATURES)}`,
      );
    }
    if (setup.requested_size > d.maxSize || setup.requested_size % d.blockSize !== 0n) {
      throw new UnsupportedSetupError(
        `QEMU refuses requested_size ${formatHex(setup.requested_size)} (not a multiple of block_size inside the region)`,
      );
    }
    if (setup.plugged.length > 1 || (setup.plugged.length === 1 && setup.plugged[0]!.first !== 0)) {
      throw new UnsupportedSetupError(
        'blocks plugged at start can only be the first N blocks (the Linux driver plugs from the start of the region)',
      );
    }
  }

  async dispose(): Promise<void> {
    this.guest.link.dispose();
  }
}
