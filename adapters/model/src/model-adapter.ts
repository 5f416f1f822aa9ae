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
  DriverOptions,
  DriverSession,
  HandshakeResult,
  MemoryAccess,
  ResizeOutcome,
  ResponseInjection,
  SettleLimits,
} from '../../core/src/contract';
import { AdapterError, CAPABILITIES, UnsupportedSetupError } from '../../core/src/contract';
import {
  RESPONSE_CODE_NAMES,
  REQUEST_TYPE_NAMES,
  VirtioMemConfigLayout,
  VirtioMemResponseLayout,
  findField,
  writablePoison,
} from '../../../spec/src/index';
import {
  DeviceFactory,
  DeviceProfile,
  DeviceSteering,
  DriverLoopStop,
  DriverRequest,
  HostResize,
  MODEL_DEVICE,
  ModelHost,
  ReferenceDriver,
  SPEC_PROFILE,
  decodeRequest,
  encodeResponse,
  runDriverLoop,
} from '../../../model/src/index';
import { virtioHandshake } from '../../virtio/src/index';
import { modelTransport } from './model-transport';

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

/** Where the response's bytes after the type start (a scripted trailer goes there). */
const RESPONSE_TRAILER_OFFSET = findField(VirtioMemResponseLayout, 'padding')!.offset;
/** Where the configuration's padding starts, and how long it is (drv.cfg.2). */
const CONFIG_PADDING = findField(VirtioMemConfigLayout, 'padding')!;

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
      return new ModelDriverSession(openHost(setup, SPEC_PROFILE, MODEL_DEVICE), makeDriver, driverOptions);
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

function resizeOutcome(r: HostResize): ResizeOutcome {
  return r.kind === 'applied' ? { kind: 'applied' } : { kind: 'refused', reason: r.reason };
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

/** Words for why a settle stopped, as reports show them. */
function describeStop(
  stop: DriverLoopStop,
  limits: SettleLimits,
  waitedMs: number,
): { settled: boolean; stop: string } {
  switch (stop.kind) {
    case 'idle':
      return { settled: true, stop: `idle: ${stop.reason}` };
    case 'broken':
      return { settled: true, stop: `broken: ${stop.reason}` };
    case 'request-limit':
      return { settled: false, stop: `request limit (${limits.maxRequests}) reached` };
    case 'wait-limit':
      return { settled: false, stop: `still backing off after ${waitedMs} ms (limit ${limits.timeoutMs} ms)` };
  }
}

class ModelDriverSession implements DriverSession {
  private injection?: { response: ResponseInjection; left: number };
  private driver: ReferenceDriver;
  /** The notification count the driver has been told of (a resize between settles is delivered at the next). */
  private notificationsSeen: number;
  /** A request the driver produced when a settle hit its limit; the next settle sends it first. */
  private pending?: DriverRequest;
  /**
   * The session's virtual clock in milliseconds: it advances only while the driver backs off
   * (requests take no time), so request time stamps show exactly the delays the driver chose.
   */
  private clockMs = 0;
  /** The features the driver wrote in its last handshake (what the device saw, whatever the driver believes). */
  private accepted = 0n;

  constructor(
    private readonly host: ModelHost,
    private readonly makeDriver: () => ReferenceDriver,
    private readonly options: DriverOptions,
  ) {
    this.driver = makeDriver();
    this.notificationsSeen = host.notificationCount;
  }

  async start(): Promise<void> {
    const handshake = await virtioHandshake(modelTransport(this.host), (offered) => this.driver.negotiate(offered));
    this.accepted = handshake.accepted;
  }

  async settle(limits: SettleLimits): Promise<DriverActivity> {
    const events: DriverEvent[] = [];
    const startMs = this.clockMs;
    const run = runDriverLoop(this.driver, this.host.device, {
      maxRequests: limits.maxRequests,
      maxWaitMs: limits.timeoutMs,
      pending: this.pending,
      notificationsSeen: this.notificationsSeen,
      answer: (request) => this.injected(request),
      configView: (bytes) => this.configAsDriverSees(bytes),
      onRequest: (request, response, config, atMs) =>
        events.push({ kind: 'request', exchange: { request, response, config, atMs: startMs + atMs } }),
      onMemoryWrite: (addr, length) => events.push({ kind: 'memory-write', addr, length }),
    });
    this.pending = run.stop.kind === 'request-limit' ? run.stop.pending : undefined;
    this.notificationsSeen = run.notificationsSeen;
    // A backoff cut short by the settle's time limit counts up to the limit only.
    this.clockMs += Math.min(run.waitedMs, limits.timeoutMs);
    return { events, waitedMs: run.waitedMs, ...describeStop(run.stop, limits, run.waitedMs) };
  }

  async readConfig(): Promise<Uint8Array> {
    return this.host.readConfig();
  }

  async acceptedFeatures(): Promise<bigint> {
    return this.accepted;
  }

  async offeredFeatures(): Promise<bigint> {
    return this.host.offeredFeatures;
  }

  async resize(requestedSize: bigint): Promise<ResizeOutcome> {
    return resizeOutcome(this.host.resize(requestedSize));
  }

  async injectResponses(injection: ResponseInjection): Promise<void> {
    this.injection = { response: injection, left: injection.count };
  }

  /** A reboot: the device goes through a system reset and a fresh driver probes it. */
  async systemReset(): Promise<void> {
    this.host.systemReset();
    this.notificationsSeen = this.host.notificationCount;
    this.injection = undefined;
    this.driver = this.makeDriver();
    this.pending = undefined;
    await this.start();
  }

  async requestSuspend(): Promise<{ allowed: boolean; detail: string }> {
    const verdict = this.driver.maySuspend();
    return { allowed: verdict.allowed, detail: verdict.reason };
  }

  async close(): Promise<void> {
    /* nothing held */
  }

  /** The config bytes, with the padding the vector asked for (drv.cfg.2). */
  private configAsDriverSees(bytes: Uint8Array): Uint8Array {
    if (this.options.configPadding)
      bytes.set(this.options.configPadding.subarray(0, CONFIG_PADDING.size), CONFIG_PADDING.offset);
    return bytes;
  }

  /** The scripted answer when an injection takes this request; undefined lets the device answer. */
  private injected(request: Uint8Array): Uint8Array | null | undefined {
    const inj = this.injection;
    if (!inj || inj.left <= 0) return undefined;
    const decoded = decodeRequest(request);
    const typeName = decoded.ok ? REQUEST_TYPE_NAMES[decoded.value.type] : undefined;
    if (inj.response.types && (typeName === undefined || !inj.response.types.includes(typeName))) return undefined;
    inj.left--;
    const trailer = inj.response.trailer?.subarray(0, VirtioMemResponseLayout.size - RESPONSE_TRAILER_OFFSET);
    if (inj.response.response === 'ACK') {
      // An ACK with a garbage trailer: the device really processes the request, then the bytes after the type are overwritten.
      const real = this.host.submit({ readable: [request], writableSizes: [VirtioMemResponseLayout.size] });
      if (real.kind !== 'used' || real.length < VirtioMemResponseLayout.size) return null;
      const out = real.written.slice(0, VirtioMemResponseLayout.size);
      if (trailer) out.set(trailer, RESPONSE_TRAILER_OFFSET);
      return out;
    }
    const out = encodeResponse({ type: RESPONSE_CODE_NAMES.indexOf(inj.response.response) });
    if (trailer) out.set(trailer, RESPONSE_TRAILER_OFFSET);
    return out;
  }
}
