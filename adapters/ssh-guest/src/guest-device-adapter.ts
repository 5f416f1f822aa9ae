/**
 * `--adapter ssh-guest --target device`: device vectors against the virtio-mem device a VMM
 * exposes to a running Linux guest. The suite's one virtio-pci driver ({@link VirtioPciDriver})
 * runs over the in-guest agent's {@link PciFunctionBus} (the agent unbinds the guest's driver,
 * maps the BAR, lends a locked DMA window), in the device session the QEMU adapter uses too
 * ({@link VirtioDeviceSession}); host actions go through a {@link HostControl}: QMP when the suite
 * booted the guest's QEMU, argv hooks (`--host-control FILE`) for any other VMM.
 *
 * The guest has one device with one configuration: a vector needing another (block size, region,
 * address, node, features) is a {@link GuestConfigurationError} (`unsupported`, naming the
 * configuration it needs), which the guests the suite boots itself answer with another boot
 * (guest-device-groups.ts). A device whose
 * agent stopped answering is `timeout` for that vector; the next vector reconnects the agent.
 */
import { DEVICE_TYPE_FEATURES_MASK, FEATURE_MASKS, VirtioMemConfigLayout, formatHex } from '../../../spec/src/index';
import { decodeConfig } from '../../../model/src/codec/codec';
import {
  Adapter,
  AdapterError,
  AdapterInfo,
  AdapterTimeoutError,
  Capability,
  DeviceSession,
  DeviceSetup,
  UnsupportedSetupError,
} from '../../core/src/contract';
import { DeviceHandle, VirtioDeviceSession, prepareDevice } from '../../device-session/src/device-session';
import { HOST_CLOCK } from '../../device-session/src/host-clock';
import { hostCapabilities } from '../../device-session/src/host-control';
import type { HostControl } from '../../device-session/src/host-control';
import { VirtioPciDriver } from '../../virtio/src/index';
import type { PciFunctionBus, PhysicalRange } from '../../virtio/src/index';

/** The feature bits a set-up is compared on: device-specific and VERSION_1 (other transport bits are the VMM's own). */
const RELEVANT_FEATURES = DEVICE_TYPE_FEATURES_MASK | FEATURE_MASKS.VERSION_1;

/** What the session can do through the agent alone, whatever the host. */
const DEVICE_CAPABILITIES: readonly Capability[] = [
  'device-reset',
  'raw-descriptor-layout',
  'read-raw-config',
  'feature-negotiation',
  'initial-plugged',
  'memory-access',
  'config-generation',
];

/** The `vmemct guest up` option that gives a guest's device each set-up field (none: QEMU chooses it). */
const GUEST_UP_OPTION = {
  block_size: '--block-size',
  region_size: '--region-size',
  addr: undefined,
  node_id: undefined,
  features: '--unplugged-inaccessible',
} as const;

/** A set-up needing a device configuration other than the guest's (a guest booted with it could run it). */
export class GuestConfigurationError extends UnsupportedSetupError {}

/** The largest memory access one agent message carries. */
const MAX_ACCESS_BYTES = 1 << 20;

/** A bus into a guest: the agent's, which can also reach the device region and be closed. */
export interface GuestBus extends PciFunctionBus {
  /** Names the device region so reads and writes there reach it. */
  setDeviceRegion(range: PhysicalRange | undefined): Promise<void>;
  /** Ends the agent. Never throws. */
  close(): Promise<void>;
}

/** The device the guest has, as the host sees it: fixed for the guest's life. */
export interface GuestDeviceGeometry {
  readonly blockSize: bigint;
  readonly regionSize: bigint;
  readonly addr: bigint;
  readonly node: number;
  /** The features the device offers (both halves). */
  readonly offered: bigint;
}

/** How the adapter reaches the guest's device and its host. */
export interface GuestDeviceOptions {
  /** Starts the agent and returns its bus, not yet opened (again after the agent stopped answering). */
  readonly openBus: () => Promise<GuestBus>;
  readonly host: HostControl;
  /** The implementation under test, as reports name it (e.g. `QEMU 7.2.0 via guest agent`). */
  readonly implementation: string;
  /** How a vector can get a guest with another configuration, given the `vmemct guest up` option that sets it (if any). */
  readonly otherConfiguration: (guestUpOption: string | undefined) => string;
  /** Why the VMM would refuse to build the device a set-up needs (its rule, said instead of a hint to boot another guest), or undefined. */
  readonly refusal?: (setup: DeviceSetup) => string | undefined;
  /** Called once the agent reached the function, before any request: throws when the device must not be used. */
  readonly checkReached?: () => void;
  /** Called once the adapter is disposed (closes the host's links). */
  readonly onDispose?: () => Promise<void>;
}

/** The agent's fault kind when it reports one (AgentError of agent-link.ts). */
function faultKind(e: Error): string | undefined {
  const kind = (e as { kind?: unknown }).kind;
  return e.name === 'AgentError' && typeof kind === 'string' ? kind : undefined;
}

/**
 * The device's fixed configuration, from the device itself (so an external VMM needs no host
 * view): block size, region and node from the configuration, the offered features from a
 * handshake that accepts nothing (the device is reset afterwards).
 */
async function readGeometry(driver: VirtioPciDriver): Promise<GuestDeviceGeometry> {
  const config = decodeConfig(await driver.readDeviceConfig(VirtioMemConfigLayout.size));
  if (!config.ok) throw new Error(`the device's configuration does not decode: ${config.error}`);
  const init = await driver.initialise(() => 0n);
  await driver.reset();
  const c = config.value;
  return { blockSize: c.block_size, regionSize: c.region_size, addr: c.addr, node: c.node_id, offered: init.offered };
}

/** The guest's device with the driver attached through the agent. */
interface GuestHandle extends DeviceHandle {
  readonly bus: GuestBus;
}

/**
 * Opens the agent's bus and probes the function once, so that a device the agent cannot reach is
 * found before any vector runs.
 * @throws the agent's error (its message gives the reason and the fix).
 */
export async function openGuestDeviceAdapter(options: GuestDeviceOptions): Promise<Adapter> {
  const adapter = new GuestDeviceAdapter(options);
  await adapter.attach();
  return adapter;
}

class GuestDeviceAdapter implements Adapter {
  readonly info: AdapterInfo;
  private handle: GuestHandle | undefined;
  /** The device's configuration, read once when the agent first reached it. */
  private geometry: GuestDeviceGeometry | undefined;

  constructor(private readonly options: GuestDeviceOptions) {
    const host = hostCapabilities(options.host);
    this.info = {
      name: 'ssh-guest',
      implementation: options.implementation,
      targets: ['device'],
      capabilities: [...DEVICE_CAPABILITIES, ...host.offered],
      missingCapabilities: host.missing,
      timeoutMultiplier: 12,
    };
  }

  /** Starts the agent, opens the function and finds its virtio structures. */
  async attach(): Promise<GuestHandle> {
    const bus = await this.options.openBus();
    try {
      const driver = await VirtioPciDriver.probe(bus, HOST_CLOCK);
      this.options.checkReached?.();
      this.geometry ??= await readGeometry(driver);
      const { addr, regionSize } = this.geometry;
      await bus.setDeviceRegion({ base: addr, length: regionSize });
      this.handle = {
        bus,
        driver,
        host: this.options.host,
        spoiled: false,
        probe: () => VirtioPciDriver.probe(bus, HOST_CLOCK),
      };
      return this.handle;
    } catch (e) {
      await bus.close();
      throw e;
    }
  }

  async openDevice(setup: DeviceSetup): Promise<DeviceSession> {
    this.checkSetup(setup);
    let handle = this.handle;
    if (!handle || handle.spoiled) {
      // The agent stopped answering, or the device broke: start over with a fresh agent.
      this.handle = undefined;
      await handle?.bus.close();
      try {
        handle = await this.attach();
      } catch (e) {
        throw new AdapterError(`reconnecting the guest agent failed: ${(e as Error).message}`);
      }
    }
    const current = handle;
    try {
      await prepareDevice(current, setup, true);
    } catch (e) {
      if (e instanceof UnsupportedSetupError) throw e;
      current.spoiled = true;
      throw this.failure('preparing the device', e as Error);
    }
    return new VirtioDeviceSession(current, setup, {
      adapterName: 'ssh-guest',
      maxAccessBytes: MAX_ACCESS_BYTES,
      failure: async (what, e) => this.failure(what, e),
      release: async () => undefined,
    });
  }

  /** An agent that stopped answering is a timeout; anything else an error. */
  private failure(what: string, e: Error): AdapterError {
    if (e instanceof AdapterError) return e;
    const kind = faultKind(e);
    const message = `${what}: ${e.message}`;
    return kind === 'timeout' || kind === 'guest-gone' ? new AdapterTimeoutError(message) : new AdapterError(message);
  }

  /** The device's own configuration with nothing requested and nothing plugged. */
  private emptySetup(g: GuestDeviceGeometry): DeviceSetup {
    return {
      block_size: g.blockSize,
      region_size: g.regionSize,
      addr: g.addr,
      node_id: g.node,
      requested_size: 0n,
      plugged: [],
    };
  }

  /** Refuses a set-up the guest's device does not have ({@link UnsupportedSetupError}, naming what is needed). */
  private checkSetup(setup: DeviceSetup): void {
    const g = this.geometry!;
    const show = (v: bigint | number): string => (typeof v === 'bigint' ? formatHex(v) : `${v}`);
    const needs = (what: keyof typeof GUEST_UP_OPTION, has: bigint | number, wanted: bigint | number) =>
      new GuestConfigurationError(
        this.options.refusal?.(setup) ??
          `the guest's device has ${what} ${show(has)}; this vector needs ${show(wanted)} (${this.options.otherConfiguration(GUEST_UP_OPTION[what])})`,
      );
    if (setup.block_size !== g.blockSize) throw needs('block_size', g.blockSize, setup.block_size);
    if (setup.region_size !== g.regionSize) throw needs('region_size', g.regionSize, setup.region_size);
    if (setup.addr !== g.addr) throw needs('addr', g.addr, setup.addr);
    if (setup.node_id !== g.node) throw needs('node_id', g.node, setup.node_id);
    if (setup.features !== undefined && (setup.features & RELEVANT_FEATURES) !== (g.offered & RELEVANT_FEATURES))
      throw needs('features', g.offered & RELEVANT_FEATURES, setup.features & RELEVANT_FEATURES);
  }

  async dispose(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    // Leave the device empty and asking for nothing, as a guest booted with requested size 0 has it.
    if (handle && !handle.spoiled && this.geometry)
      await prepareDevice(handle, this.emptySetup(this.geometry), true).catch(() => undefined);
    await handle?.bus.close();
    await this.options.onDispose?.();
  }
}
