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
import { GuestSlot } from './guest-slot';
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

/** The first guest's adapter, and guests of other configurations booted as vectors need them. */
export class GuestPerConfigurationAdapter implements Adapter {
  /** The guest of the configuration vectors asked for last, other than the first guest's. */
  private readonly other = new GuestSlot<BootedGuest>();

  constructor(
    private readonly first: BootedGuest,
    private readonly boot: GuestBooter,
    private readonly refusal: ConfigurationRefusal,
  ) {}

  /** How many guests of other configurations were booted. */
  get boots(): number {
    return this.other.boots;
  }

  get info(): AdapterInfo {
    return this.first.adapter.info;
  }

  openDevice(setup: DeviceSetup): Promise<DeviceSession> {
    return this.other.serial(() => this.open(setup));
  }

  private async open(setup: DeviceSetup): Promise<DeviceSession> {
    if (this.other.disposed) throw new AdapterError('the guests were ended');
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
    const guest = await this.other.take(configurationKey(configuration), () => this.boot(configuration));
    return guest.adapter.openDevice(setup);
  }

  /** Ends every guest now (a boot under way ends its guest when it completes). */
  async dispose(): Promise<void> {
    await this.other.dispose();
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
