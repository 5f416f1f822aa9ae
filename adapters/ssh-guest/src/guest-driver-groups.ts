/**
 * Driver vectors in guests the suite boots itself (`run --adapter ssh-guest --target driver
 * --boot-guest`): each vector's device set-up picks a guest configuration (guest-driver-setups.ts);
 * one guest at a time serves a configuration ({@link GuestSlot}), so consecutive vectors sharing
 * it share a boot, and the runner is asked to run vectors grouped by it ({@link
 * GuestPerDriverSetupAdapter.scheduleKey}). A set-up QEMU refuses is `unsupported` with QEMU's
 * rule and boots nothing. Every guest is booted with its gdbstub, so scripted answers work in each.
 * A multi-device vector gets a guest with all its devices, each on its NUMA node, planned from
 * {@link DriverOptions.devices}.
 */
import * as path from 'node:path';
import type {
  Adapter,
  AdapterInfo,
  DeviceSession,
  DeviceSetup,
  DriverOptions,
  DriverSession,
  NamedDeviceSetup,
  Target,
} from '../../core/src/contract';
import { UnsupportedSetupError } from '../../core/src/contract';
import { defaultQemuCacheDir, locateQemu, readFetchedQemu } from '../../qemu-platform/src/index';
import { guestQemuFor } from './guest-qemu-choice';
import {
  DriverGuestConfiguration,
  DriverGuestPlan,
  driverConfigurationKey,
  driverGuestDeviceOptions,
  driverGuestTiming,
  drainsByReset,
  planDriverGuest,
  planDriverGuestGroup,
} from './guest-driver-setups';
import { needsGuestTimersFast } from './driver-timing';
import { GuestSlot } from './guest-slot';
import { GuestVm } from './guest-vm';
import { readManifest } from './guest-build';
import { connectSshGuestAdapter, sshGuestDriverInfo } from './ssh-guest-adapter';

/** A booted guest and the driver adapter over it. */
export interface BootedDriverGuest {
  readonly adapter: Adapter;
  /** Ends the adapter and the guest. Never throws. */
  stop(): Promise<void>;
}

/** Boots a guest of `configuration` and connects the driver adapter to it. */
export type DriverGuestBooter = (configuration: DriverGuestConfiguration) => Promise<BootedDriverGuest>;

/** The version of a QEMU binary ('' for the default one), e.g. `7.2.0`. */
export type QemuVersionOf = (qemu: string) => string;

/**
 * Whether a vector needs the guest's timers to run fast (icount, one vCPU), read from its steps
 * ({@link DriverOptions.stepActions}; none given: no). A vector with a busy host always does.
 */
export function vectorNeedsFastTimers(options: DriverOptions): boolean {
  const actions = options.stepActions ?? [];
  // The adapter offers host-busy only on an icount guest (Linux sees the release on its timer).
  if (actions.some((action) => action.kind === 'host-busy')) return true;
  return needsGuestTimersFast({ target: 'driver', steps: actions.map((action) => ({ action })) });
}

/** The binary of a fetched QEMU series (`vmemct qemu fetch --version SERIES`), or undefined when not fetched. */
export type FetchedQemuOf = (series: string) => string | undefined;

/** QEMU's version of a series fetched into the default cache, if it is there. */
export function defaultFetchedQemu(series: string): string | undefined {
  return readFetchedQemu(defaultQemuCacheDir(series), series)?.binary;
}

/** The ssh-guest driver adapter of the guest of each set-up, booted as vectors need them. */
export class GuestPerDriverSetupAdapter implements Adapter {
  private readonly slot = new GuestSlot<BootedDriverGuest>();

  constructor(
    /** What every guest's adapter is (each boots the same kernel, with its gdbstub). */
    readonly info: AdapterInfo,
    private readonly boot: DriverGuestBooter,
    private readonly versionOf: QemuVersionOf,
    private readonly fetchedQemu: FetchedQemuOf = defaultFetchedQemu,
  ) {}

  /** How many guests were booted. */
  get boots(): number {
    return this.slot.boots;
  }

  async openDevice(): Promise<DeviceSession> {
    throw new UnsupportedSetupError(
      'the ssh-guest adapter tests drivers here; device vectors need --target device (or --adapter qemu or model)',
    );
  }

  /**
   * The guest plan of a vector: QEMU's refusal, or the configuration its guest is booted with.
   * A multi-device vector ({@link DriverOptions.devices}) is planned by its devices.
   */
  plan(setup: DeviceSetup, options: DriverOptions): DriverGuestPlan {
    const devices = options.devices;
    // The feature set decides the QEMU: 10.0 (fetched) to offer PERSISTENT_SUSPEND, else the default.
    const need = guestQemuFor({ setup: devices?.[0]?.setup ?? setup });
    let qemu = '';
    if (need.kind === 'version' && need.version !== '7.2') {
      const fetched = this.fetchedQemu(need.version);
      if (fetched === undefined)
        return {
          kind: 'refused',
          reason: `${need.reason}; QEMU ${need.version} has not been fetched (\`vmemct qemu fetch --version ${need.version}\`)`,
        };
      qemu = fetched;
    }
    const vmm = { qemu, version: this.versionOf(qemu) };
    const icount = vectorNeedsFastTimers(options);
    return devices ? planDriverGuestGroup(devices, vmm, icount) : planDriverGuest(setup, options, vmm, icount);
  }

  /** The runner runs driver vectors with equal keys together: one boot per configuration. */
  scheduleKey(target: Target, setup: DeviceSetup, options: DriverOptions): string | undefined {
    if (target !== 'driver') return undefined;
    const plan = this.plan(setup, options);
    return plan.kind === 'guest' ? driverConfigurationKey(plan.configuration) : undefined;
  }

  /** Boots the guest a vector needs before the runner starts its timeout (a boot under TCG on a loaded machine can take a minute). */
  async prepare(target: Target, setup: DeviceSetup, options: DriverOptions): Promise<void> {
    if (target !== 'driver') return;
    await this.slot
      .serial(async () => {
        const plan = this.plan(setup, options);
        if (plan.kind === 'guest') await this.guestFor(plan.configuration);
      })
      .catch(() => undefined);
  }

  openDriver(setup: DeviceSetup, options: DriverOptions): Promise<DriverSession> {
    return this.slot.serial(async () => {
      const plan = this.plan(setup, options);
      if (plan.kind === 'refused') throw new UnsupportedSetupError(plan.reason);
      const guest = await this.guestFor(plan.configuration);
      return guest.adapter.openDriver!(setup, options);
    });
  }

  /** `multi-device`: the devices' guest (one virtio-mem device per set-up, each on its node), booted unless it is up. */
  openDrivers(devices: readonly NamedDeviceSetup[]): Promise<readonly DriverSession[]> {
    return this.slot.serial(async () => {
      const first = devices[0];
      if (first === undefined) throw new UnsupportedSetupError('a multi-device vector with no devices');
      const plan = this.plan(first.setup, { ...first.options, devices });
      if (plan.kind === 'refused') throw new UnsupportedSetupError(plan.reason);
      const guest = await this.guestFor(plan.configuration);
      return guest.adapter.openDrivers!(devices);
    });
  }

  /** The guest of `configuration`, booted now unless it is the one up. */
  private guestFor(configuration: DriverGuestConfiguration): Promise<BootedDriverGuest> {
    return this.slot.take(driverConfigurationKey(configuration), () => this.boot(configuration));
  }

  /** Ends the guest held (a boot under way ends its guest when it completes). */
  async dispose(): Promise<void> {
    await this.slot.dispose();
  }
}

/** Where {@link bootDriverGuest} finds the built guest and keeps each guest's files. */
export interface DriverGuestPlace {
  /** The folder `vmemct guest build` wrote. */
  readonly dir: string;
  /** Each guest's files go under `<runDir>/guest`. */
  readonly runDir: string;
  /** The default QEMU binary (default: `$VMEMCT_QEMU` or qemu-system-x86_64). */
  readonly qemu?: string;
  readonly log?: (line: string) => void;
}

/** Bound on a guest's boot to SSH. */
const BOOT_TIMEOUT_MS = 240_000;

/** Boots an attached guest of `configuration`, with its gdbstub, and connects the driver adapter. */
export async function bootDriverGuest(
  place: DriverGuestPlace,
  configuration: DriverGuestConfiguration,
): Promise<BootedDriverGuest> {
  const key = driverConfigurationKey(configuration);
  const started = Date.now();
  const vm = await GuestVm.boot(
    {
      dir: place.dir,
      runDir: path.join(place.runDir, 'guest'),
      detached: false,
      qemu: configuration.qemu || place.qemu,
      gdbstub: true,
      sharedMemory: true,
      // `suspend` steps: ACPI S3 (QEMU ≥ 9.2 then offers PERSISTENT_SUSPEND).
      suspendToRam: true,
      // Booted before a vector's timeout starts, on machines that may be loaded: TCG boots took up to 90 s there.
      bootTimeoutMs: BOOT_TIMEOUT_MS,
      ...driverGuestDeviceOptions(configuration),
    },
    place.log,
  );
  try {
    const adapter = await connectSshGuestAdapter({
      ssh: vm.ssh,
      qmp: vm.state.qmpSocket,
      traceLog: vm.state.traceLog,
      gdbSocket: vm.state.gdbSocket,
      drainByReset: drainsByReset(configuration),
      icount: configuration.icount,
      ...driverGuestTiming(configuration),
    });
    place.log?.(`guest for ${key}: ready ${((Date.now() - started) / 1000).toFixed(1)} s after its boot began`);
    return {
      adapter,
      stop: async () => {
        await adapter.dispose();
        await vm.stop();
        place.log?.(`guest for ${key}: ended ${((Date.now() - started) / 1000).toFixed(1)} s after its boot began`);
      },
    };
  } catch (e) {
    await vm.stop();
    throw e;
  }
}

/**
 * The adapter that boots a guest per device set-up driver vectors need, the first when the first
 * vector opens (the runner runs vectors grouped by set-up, so no guest is booted for nothing).
 * The built guest is checked now: a guest not built is a {@link GuestBuildError} at once.
 */
export function bootGroupedGuestDriver(place: DriverGuestPlace): GuestPerDriverSetupAdapter {
  const manifest = readManifest(place.dir);
  const versions = new Map<string, string>();
  const versionOf = (qemu: string): string => {
    let version = versions.get(qemu);
    if (version === undefined) {
      version = locateQemu(qemu || place.qemu).version;
      versions.set(qemu, version);
    }
    return version;
  };
  versionOf('');
  return new GuestPerDriverSetupAdapter(
    // Every guest has its gdbstub and its region in a shared file; a vector with a busy host
    // gets an icount guest (host-busy), a multi-device vector a guest with all its devices.
    sshGuestDriverInfo(manifest.kernelRelease, { gdbstub: true, icount: true, memoryAccess: true, multiDevice: true }),
    (c) => bootDriverGuest(place, c),
    versionOf,
  );
}
