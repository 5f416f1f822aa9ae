/**
 * The `model` adapter: runs vectors against the in-process reference model. Device vectors talk
 * to a {@link ModelHost} (the model device with the chosen profile); driver vectors watch the
 * {@link ReferenceDriver} drive a host of the `spec` profile through the model's driver pump
 * ({@link runDriverLoop}).
 *
 * It is a codec over the host: the contract's calls and results map one to one onto the host's;
 * the handshake is the virtio layer's ({@link virtioHandshake}) over the host's registers.
 * It has every capability, so it is the yardstick for the corpus: every vector must pass here.
 */
import type {
  Adapter,
  AdapterInfo,
  Chain,
  Completion,
  DeviceSession,
  DeviceSetup,
  DriverActivity,
  DriverEvent,
  DriverSession,
  HandshakeResult,
  MemoryAccess,
  ResizeOutcome,
  SettleLimits,
} from '../../core/src/contract';
import { AdapterError, CAPABILITIES, UnsupportedSetupError } from '../../core/src/contract';
import { writablePoison } from '../../../spec/src/index';
import {
  DeviceFactory,
  DeviceProfile,
  DeviceSteering,
  DriverSessionCore,
  MODEL_DEVICE,
  ModelHost,
  ReferenceDriver,
  SPEC_PROFILE,
  runDriverLoop,
} from '../../../model/src/index';
import { virtioHandshake } from '../../virtio/src/index';
import { DriverDevice, DriverDeviceSession, requestEvent, resizeOutcome } from './driver-device';
import { modelTransport } from './model-transport';
import { addNodeMemory, openDriverGroup } from './model-driver-group';

export type { DeviceFactory } from '../../../model/src/index';

/** Options of the model adapter. */
export interface ModelAdapterOptions {
  /** The device profile for device vectors (default `spec`). */
  readonly profile?: DeviceProfile;
  /** Builds the device under test for device vectors; the mutation test passes broken variants here. */
  readonly deviceFactory?: DeviceFactory;
  /** Builds the driver under test for driver vectors (default: the reference driver). */
  readonly driverFactory?: () => ReferenceDriver;
  /** Name shown in reports (default `model:<profile>`). */
  readonly implementation?: string;
  /** Conforming choices made for device vectors' devices instead of the profile's (lint replays a vector as it states it). */
  readonly steering?: DeviceSteering;
}

/** Creates the model adapter. */
export function createModelAdapter(options: ModelAdapterOptions = {}): Adapter {
  const profile = options.profile ?? SPEC_PROFILE;
  const factory = options.deviceFactory ?? MODEL_DEVICE;
  const info: AdapterInfo = {
    name: 'model',
    implementation: options.implementation ?? `model:${profile.name}`,
    targets: ['device', 'driver'],
    capabilities: CAPABILITIES,
    timeoutMultiplier: 1,
  };
  return {
    info,
    async openDevice(setup) {
      return new ModelDeviceSession(openHost(setup, profile, factory, options.steering));
    },
    async openDriver(setup, driverOptions) {
      const makeDriver = options.driverFactory ?? (() => new ReferenceDriver());
      return new ModelDriverSession(DriverDevice.open(setup, driverOptions), makeDriver);
    },
    async openDrivers(devices) {
      const makeDriver = options.driverFactory ?? (() => new ReferenceDriver());
      return openDriverGroup(
        devices.map((d) => new ModelDriverSession(DriverDevice.open(d.setup, d.options), makeDriver)),
      );
    },
    async dispose() {
      /* nothing held */
    },
  };
}

function openHost(
  setup: DeviceSetup,
  profile: DeviceProfile,
  factory: DeviceFactory,
  steering?: DeviceSteering,
): ModelHost {
  const built = ModelHost.create(setup, profile, factory, steering);
  if (built.kind === 'refused') throw new UnsupportedSetupError(built.reason);
  return built.host;
}

class ModelDeviceSession implements DeviceSession {
  constructor(private readonly host: ModelHost) {}

  async initialise(accept: (offered: bigint) => bigint): Promise<HandshakeResult> {
    return virtioHandshake(modelTransport(this.host), accept);
  }

  async readConfig(): Promise<Uint8Array> {
    return this.host.readConfig();
  }

  async readConfigGeneration(): Promise<number> {
    return this.host.readConfigGeneration();
  }

  async submit(chain: Chain): Promise<Completion> {
    const c = this.host.submit(chain);
    if (c.kind !== 'used') return { kind: 'no-used-entry' };
    // As a driver sees the writable buffers: pre-filled with poison, overwritten where the device wrote.
    const writable = chain.writableSizes.reduce((n, s) => n + s, 0);
    const seen = writablePoison(writable);
    seen.set(c.written.subarray(0, writable));
    return { kind: 'used', length: c.length, written: seen.slice(0, Math.min(c.length, writable)) };
  }

  async notificationCount(): Promise<number> {
    return this.host.notificationCount;
  }

  async readStatus(): Promise<number> {
    return this.host.readStatus();
  }

  async resize(requestedSize: bigint): Promise<ResizeOutcome> {
    return resizeOutcome(this.host.resize(requestedSize));
  }

  async deviceReset(): Promise<void> {
    this.host.deviceReset();
  }

  async systemReset(): Promise<void> {
    this.host.systemReset();
  }

  async injectBusy(count: number): Promise<void> {
    this.host.injectBusy(count);
  }

  async hostBusy(busy: boolean): Promise<void> {
    this.host.setHostBusy(busy);
  }

  async readMemory(addr: bigint, length: number): Promise<MemoryAccess> {
    const r = this.host.readMemory(addr, length);
    return r.ok ? { ok: true, data: r.data } : { ok: false, reason: `${r.reason}: ${r.detail}` };
  }

  async writeMemory(addr: bigint, data: Uint8Array): Promise<MemoryAccess> {
    const r = this.host.writeMemory(addr, data);
    return r.ok ? { ok: true, data: new Uint8Array(0) } : { ok: false, reason: `${r.reason}: ${r.detail}` };
  }

  async suspendAndWake(): Promise<void> {
    const r = this.host.suspendAndWake();
    if (r.kind === 'refused') throw new AdapterError(`suspend: ${r.reason}`);
  }

  async close(): Promise<void> {
    /* nothing held */
  }
}

/** The model's driver session: the reference driver (or a variant) pumped against one device of the `spec` profile. */
export class ModelDriverSession extends DriverDeviceSession implements DriverSession {
  /** The driver, a request left pending at a settle's limit, the virtual clock. */
  private readonly session: DriverSessionCore;

  constructor(device: DriverDevice, makeDriver: () => ReferenceDriver) {
    super(device);
    this.session = new DriverSessionCore(makeDriver);
  }

  async start(): Promise<void> {
    await this.device.handshake((offered) => this.session.driver.negotiate(offered));
  }

  async settle(limits: SettleLimits): Promise<DriverActivity> {
    const events: DriverEvent[] = [];
    const startMs = this.session.clockMs;
    const run = runDriverLoop(this.session.driver, this.device.host.device, {
      ...this.session.pumpLimits(limits),
      notificationsSeen: this.device.notificationsSeen,
      answer: (request) => this.device.injected(request),
      configView: (bytes) => this.device.configAsDriverSees(bytes),
      onRequest: (request, response, config, atMs) =>
        events.push(requestEvent(request, response, config, startMs + atMs)),
      onMemoryWrite: (addr, length) => events.push({ kind: 'memory-write', addr, length }),
    });
    this.device.notificationsSeen = run.notificationsSeen;
    return { events, ...this.session.finishSettle(run, limits) };
  }

  /** A reboot: the device goes through a system reset and a fresh driver probes it. */
  async systemReset(): Promise<void> {
    this.device.reboot();
    this.session.reboot();
    await this.start();
  }

  async requestSuspend(): Promise<{ allowed: boolean; detail: string }> {
    return this.session.maySuspend();
  }

  /**
   * `node-memory`: the memory the driver believes plugged, on the node it adds it to (the
   * device's `node_id` with ACPI_PXM negotiated; node 0, the platform's default, without).
   */
  async nodeMemory(): Promise<ReadonlyMap<number, bigint>> {
    return addNodeMemory(new Map(), this.memoryShare());
  }

  /** This device's part of the system's node memory: the node the driver adds its memory to, and how much. */
  memoryShare(): { readonly node: number; readonly bytes: bigint } {
    const driver = this.session.driver;
    return { node: driver.memoryNode ?? 0, bytes: driver.pluggedBytes };
  }

  async close(): Promise<void> {
    /* nothing held */
  }
}
