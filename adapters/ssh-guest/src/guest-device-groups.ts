/**
 * Device vectors that need another device configuration, for guests the suite boots itself
 * (attached): a vector whose set-up the running guest's device does not have (block size, region
 * size or address, NUMA node, unplugged-inaccessible) gets a guest booted with that configuration.
 * The guest of the first configuration stays up for the vectors that fit it; one other guest at
 * a time serves the rest, so consecutive vectors sharing a configuration share its boot, and it
 * is ended when a vector needs yet another one. A configuration QEMU refuses stays `unsupported`
 * with QEMU's rule; a configuration whose guest failed to boot is an error once per vector,
 * without booting again. Every guest booted is ended on dispose (and, being attached, with this
 * process).
 */
import * as path from 'node:path';
import { FEATURE_MASKS } from '../../../spec/src/index';
import type { Adapter, AdapterInfo, DeviceSession, DeviceSetup } from '../../core/src/contract';
import { AdapterError } from '../../core/src/contract';
import { GuestConfigurationError } from './guest-device-adapter';
import { connectGuestDeviceAdapter } from './guest-device-connect';
import { GuestVm } from './guest-vm';

/** What a guest's device is booted with: the part of a device set-up fixed for the device's life. */
export interface GuestConfiguration {
  readonly blockSize: bigint;
  readonly regionSize: bigint;
  readonly addr: bigint;
  readonly node: number;
  readonly unpluggedInaccessible: boolean;
}

/**
 * The largest device region a booted guest is given. The agent maps the whole region from
 * /dev/mem when the adapter attaches, and the kernel fills in the page tables of a /dev/mem
 * mapping at once: 8 GiB attach in time in a TCG guest, 256 GiB (512 MiB of page tables, in a
 * 1 GiB guest) did not answer within the agent's 10 s bound.
 */
export const MAX_BOOTED_REGION = 8n << 30n;

/** A booted guest and the adapter over its agent. */
export interface BootedGuest {
  readonly adapter: Adapter;
  /** Ends the adapter and the guest. Never throws. */
  stop(): Promise<void>;
}

/** Boots a guest whose device has `configuration` and connects to it. */
export type GuestBooter = (configuration: GuestConfiguration) => Promise<BootedGuest>;

/** The configuration a set-up needs (no feature set asked: unplugged-inaccessible off). */
export function configurationOf(setup: DeviceSetup): GuestConfiguration {
  return {
    blockSize: setup.block_size,
    regionSize: setup.region_size,
    addr: setup.addr,
    node: setup.node_id,
    unpluggedInaccessible: ((setup.features ?? 0n) & FEATURE_MASKS.UNPLUGGED_INACCESSIBLE) !== 0n,
  };
}

/** One text per configuration (the guest cache's key). */
export function configurationKey(c: GuestConfiguration): string {
  return `block ${c.blockSize} region ${c.regionSize} at ${c.addr} node ${c.node}${c.unpluggedInaccessible ? ' unplugged-inaccessible' : ''}`;
}

/**
 * Why the VMM would refuse to build the device a set-up needs (for QEMU, its own rules, as the
 * qtest path applies them), or undefined.
 */
export type ConfigurationRefusal = (setup: DeviceSetup) => string | undefined;

/** The guest of the configuration vectors asked for last, other than the first guest's. */
interface OtherGuest {
  readonly key: string;
  readonly guest: BootedGuest;
}

/** The first guest's adapter, and guests of other configurations booted as vectors need them. */
export class GuestPerConfigurationAdapter implements Adapter {
  private other: OtherGuest | undefined;
  /** Configurations whose guest did not boot, with the reason. */
  private readonly failed = new Map<string, string>();
  /** Opens run one after the other (a vector abandoned at its timeout may still be booting). */
  private queue: Promise<unknown> = Promise.resolve();
  /** How many guests of other configurations were booted. */
  boots = 0;
  /** Set by dispose: a guest whose boot ends afterwards is ended at once. */
  private disposed = false;

  constructor(
    private readonly first: BootedGuest,
    private readonly boot: GuestBooter,
    private readonly refusal: ConfigurationRefusal,
  ) {}

  get info(): AdapterInfo {
    return this.first.adapter.info;
  }

  openDevice(setup: DeviceSetup): Promise<DeviceSession> {
    const opened = this.queue.then(() => this.open(setup));
    this.queue = opened.catch(() => undefined);
    return opened;
  }

  private async open(setup: DeviceSetup): Promise<DeviceSession> {
    if (this.disposed) throw new AdapterError('the guests were ended');
    try {
      return await this.first.adapter.openDevice(setup);
    } catch (e) {
      if (!(e instanceof GuestConfigurationError)) throw e;
    }
    const refusal = this.refusal(setup);
    if (refusal !== undefined) throw new GuestConfigurationError(refusal);
    if (setup.region_size > MAX_BOOTED_REGION)
      throw new GuestConfigurationError(
        `a region of ${setup.region_size} bytes is above the ${MAX_BOOTED_REGION} the agent maps from /dev/mem in time (the kernel builds the whole mapping's page tables at once); run it with --adapter qemu`,
      );
    const configuration = configurationOf(setup);
    const key = configurationKey(configuration);
    const failure = this.failed.get(key);
    if (failure !== undefined) throw new AdapterError(`the guest with ${key} did not boot: ${failure}`);
    if (this.other?.key !== key) {
      const previous = this.other;
      this.other = undefined;
      await previous?.guest.stop();
      try {
        this.boots++;
        const guest = await this.boot(configuration);
        if (this.disposed) {
          await guest.stop();
          throw new Error('the adapter was disposed during the boot');
        }
        this.other = { key, guest };
      } catch (e) {
        this.failed.set(key, (e as Error).message);
        throw new AdapterError(`booting a guest with ${key} failed: ${(e as Error).message}`);
      }
    }
    return this.other.guest.adapter.openDevice(setup);
  }

  /** Ends every guest now (a boot under way ends its guest when it completes). */
  async dispose(): Promise<void> {
    this.disposed = true;
    const other = this.other;
    this.other = undefined;
    await other?.guest.stop();
    await this.first.stop();
  }
}

/** Where {@link bootGuestDevice} finds the built guest and keeps each guest's files. */
export interface GuestBootPlace {
  /** The folder `vmemct guest build` wrote. */
  readonly dir: string;
  /** A folder per guest goes under it (`<runDir>/<name>`). */
  readonly runDir: string;
  /** QEMU binary (default: `$VMEMCT_QEMU` or qemu-system-x86_64). */
  readonly qemu?: string;
  readonly log?: (line: string) => void;
}

/** Boots an attached guest (requested size 0) with `configuration` (undefined: `guest up`'s defaults) and connects the device adapter. */
export async function bootGuestDevice(
  place: GuestBootPlace,
  name: string,
  configuration: GuestConfiguration | undefined,
): Promise<BootedGuest> {
  const vm = await GuestVm.boot(
    {
      dir: place.dir,
      runDir: path.join(place.runDir, name),
      detached: false,
      qemu: place.qemu,
      requestedSize: 0n,
      ...(configuration && {
        blockSize: configuration.blockSize,
        regionSize: configuration.regionSize,
        addr: configuration.addr,
        node: configuration.node,
        unpluggedInaccessible: configuration.unpluggedInaccessible,
      }),
    },
    place.log,
  );
  try {
    const adapter = await connectGuestDeviceAdapter({ ssh: vm.ssh, qmp: vm.state.qmpSocket });
    return {
      adapter,
      stop: async () => {
        await adapter.dispose();
        await vm.stop();
      },
    };
  } catch (e) {
    await vm.stop();
    throw e;
  }
}

/**
 * Boots a guest with `guest up`'s device and serves vectors needing another configuration from
 * guests booted with it ({@link GuestPerConfigurationAdapter}).
 */
export async function bootGroupedGuestDevice(
  place: GuestBootPlace,
  refusal: ConfigurationRefusal,
): Promise<GuestPerConfigurationAdapter> {
  const first = await bootGuestDevice(place, 'first', undefined);
  return new GuestPerConfigurationAdapter(first, (c) => bootGuestDevice(place, 'other', c), refusal);
}
