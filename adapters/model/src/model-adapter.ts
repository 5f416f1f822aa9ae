/**
 * The `model` adapter: runs vectors against the in-process reference model. Device vectors talk
 * to a {@link VirtioMemDevice} with the chosen profile; driver vectors watch the
 * {@link ReferenceDriver} drive a device of the `spec` profile.
 *
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
  Initialisation,
  MemoryAccess,
  ResizeOutcome,
  ResponseInjection,
  SettleLimits,
} from '../../core/src/contract';
import { CAPABILITIES, UnsupportedSetupError } from '../../core/src/contract';
import {
  RESPONSE_CODE_NAMES,
  REQUEST_TYPE_NAMES,
} from '../../../spec/src/index';
import {
  DeviceParams,
  DeviceParamsError,
  DriverAction,
  DeviceProfile,
  ReferenceDriver,
  SPEC_PROFILE,
  VirtioMemDevice,
  decodeRequest,
  encodeResponse,
  initialiseDevice,
} from '../../../model/src/index';

/** Builds the device under test; the mutation test passes broken variants here. */
export type DeviceFactory = (params: DeviceParams, profile: DeviceProfile) => VirtioMemDevice;

/** Options of the model adapter. */
export interface ModelAdapterOptions {
  /** The device profile for device vectors (default `spec`). */
  readonly profile?: DeviceProfile;
  readonly deviceFactory?: DeviceFactory;
  /** Builds the driver under test for driver vectors (default: the reference driver). */
  readonly driverFactory?: () => ReferenceDriver;
  /** Name shown in reports (default `model:<profile>`). */
  readonly implementation?: string;
}

const PADDING_OFFSET = 10;

/** Creates the model adapter. */
export function createModelAdapter(options: ModelAdapterOptions = {}): Adapter {
  const profile = options.profile ?? SPEC_PROFILE;
  const factory = options.deviceFactory ?? ((params, p) => new VirtioMemDevice(params, p));
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
      return new ModelDeviceSession(build(factory, setup, profile));
    },
    async openDriver(setup, driverOptions) {
      const makeDriver = options.driverFactory ?? (() => new ReferenceDriver());
      return new ModelDriverSession(build((p, prof) => new VirtioMemDevice(p, prof), setup, SPEC_PROFILE), makeDriver, driverOptions);
    },
    async dispose() {
      /* nothing held */
    },
  };
}

function build(factory: DeviceFactory, setup: DeviceSetup, profile: DeviceProfile): VirtioMemDevice {
  try {
    return factory(
      {
        block_size: setup.block_size,
        region_size: setup.region_size,
        addr: setup.addr,
        requested_size: setup.requested_size,
        node_id: setup.node_id,
        features: setup.features,
        plugged: setup.plugged,
      },
      profile,
    );
  } catch (e) {
    if (e instanceof DeviceParamsError) throw new UnsupportedSetupError(e.message);
    throw e;
  }
}

class ModelDeviceSession implements DeviceSession {
  constructor(private readonly device: VirtioMemDevice) {}

  async initialise(accept: (offered: bigint) => bigint): Promise<Initialisation> {
    return initialiseDevice(this.device, accept);
  }

  async readConfig(): Promise<Uint8Array> {
    return this.device.readConfigBytes();
  }

  async submit(chain: Chain): Promise<Completion> {
    const result = this.device.processChain(chain);
    if (!result.used) return { kind: 'no-used-entry' };
    return { kind: 'used', length: result.used.length, written: result.used.written };
  }

  async notificationCount(): Promise<number> {
    return this.device.notificationCount;
  }

  async readStatus(): Promise<number> {
    return this.device.deviceStatus;
  }

  async resize(requestedSize: bigint): Promise<ResizeOutcome> {
    const r = this.device.setRequestedSize(requestedSize);
    return r.ok ? { kind: 'applied' } : { kind: 'refused', reason: r.reason };
  }

  async deviceReset(): Promise<void> {
    this.device.writeStatus(0);
  }

  async systemReset(): Promise<void> {
    this.device.systemReset();
  }

  async injectBusy(count: number): Promise<void> {
    this.device.injectBusy(count);
  }

  async readMemory(addr: bigint, length: number): Promise<MemoryAccess> {
    const r = this.device.readMemory(addr, length);
    return r.ok ? { ok: true, data: r.data } : { ok: false, reason: `${r.reason}: ${r.detail}` };
  }

  async writeMemory(addr: bigint, data: Uint8Array): Promise<MemoryAccess> {
    const r = this.device.writeMemory(addr, data);
    return r.ok ? { ok: true, data: new Uint8Array(0) } : { ok: false, reason: `${r.reason}: ${r.detail}` };
  }

  async suspendAndWake(): Promise<void> {
    this.device.suspend();
    this.device.wake();
  }

  async close(): Promise<void> {
    /* nothing held */
  }
}

class ModelDriverSession implements DriverSession {
  private injection?: { response: ResponseInjection; left: number };
  private seenNotifications: number;
  private driver: ReferenceDriver;
  /** A request the driver produced when a settle hit its limit; the next settle sends it first. */
  private pending?: DriverAction;

  constructor(
    private readonly device: VirtioMemDevice,
    private readonly makeDriver: () => ReferenceDriver,
    private readonly options: DriverOptions,
  ) {
    this.seenNotifications = device.notificationCount;
    this.driver = makeDriver();
  }

  async start(): Promise<void> {
    initialiseDevice(this.device, (offered) => this.driver.negotiate(offered));
  }

  async settle(limits: SettleLimits): Promise<DriverActivity> {
    const events: DriverEvent[] = [];
    let requests = 0;
    let waitedMs = 0;
    for (;;) {
      if (this.device.notificationCount !== this.seenNotifications) {
        this.seenNotifications = this.device.notificationCount;
        this.driver.onConfigChange();
      }
      // A request the driver already made is still delivered, so the limit never strands one.
      if (requests >= limits.maxRequests && !this.pending) return { events, settled: false, stop: `request limit (${limits.maxRequests}) reached`, waitedMs };
      const action = this.pending ?? this.driver.next();
      this.pending = undefined;
      switch (action.kind) {
        case 'read-config':
          this.driver.onConfig(this.configAsDriverSees());
          break;
        case 'request': {
          if (requests >= limits.maxRequests) {
            this.pending = action;
            return { events, settled: false, stop: `request limit (${limits.maxRequests}) reached`, waitedMs };
          }
          requests++;
          const config = this.device.readConfigBytes();
          const response = this.answer(action.bytes);
          events.push({ kind: 'request', exchange: { request: action.bytes, response, config } });
          this.driver.onResponse(response);
          break;
        }
        case 'write-memory': {
          events.push({ kind: 'memory-write', addr: action.addr, length: action.length });
          const r = this.device.writeMemory(action.addr, new Uint8Array(action.length));
          this.driver.onMemoryWritten(r.ok);
          break;
        }
        case 'wait':
          waitedMs += action.delayMs;
          if (waitedMs > limits.timeoutMs) return { events, settled: false, stop: `still backing off after ${waitedMs} ms (limit ${limits.timeoutMs} ms)`, waitedMs };
          this.driver.onTimer();
          break;
        case 'awaiting-response':
          throw new Error('the reference driver lost track of its outstanding request');
        case 'idle':
          return { events, settled: true, stop: `idle: ${action.reason}`, waitedMs };
        case 'broken':
          return { events, settled: true, stop: `broken: ${action.reason}`, waitedMs };
      }
    }
  }

  async readConfig(): Promise<Uint8Array> {
    return this.device.readConfigBytes();
  }

  async acceptedFeatures(): Promise<bigint> {
    return this.driver.acceptedFeatures;
  }

  async offeredFeatures(): Promise<bigint> {
    return this.device.offeredFeatures;
  }

  async resize(requestedSize: bigint): Promise<ResizeOutcome> {
    const r = this.device.setRequestedSize(requestedSize);
    return r.ok ? { kind: 'applied' } : { kind: 'refused', reason: r.reason };
  }

  async injectResponses(injection: ResponseInjection): Promise<void> {
    this.injection = { response: injection, left: injection.count };
  }

  /** A reboot: the device goes through a system reset and a fresh driver probes it. */
  async systemReset(): Promise<void> {
    this.device.systemReset();
    this.seenNotifications = this.device.notificationCount;
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
  private configAsDriverSees(): Uint8Array {
    const bytes = this.device.readConfigBytes();
    if (this.options.configPadding) bytes.set(this.options.configPadding.subarray(0, 6), PADDING_OFFSET);
    return bytes;
  }

  /** The device's answer, unless an injection takes this request. */
  private answer(request: Uint8Array): Uint8Array | null {
    const inj = this.injection;
    const decoded = decodeRequest(request);
    const typeName = decoded.ok ? REQUEST_TYPE_NAMES[decoded.value.type] : undefined;
    if (inj && inj.left > 0 && (!inj.response.types || (typeName !== undefined && inj.response.types.includes(typeName)))) {
      inj.left--;
      const code = RESPONSE_CODE_NAMES.indexOf(inj.response.response);
      if (inj.response.response === 'ACK') {
        // An ACK with a garbage trailer: the device really processes the request, then the bytes after the type are overwritten.
        const real = this.device.processRequest(request);
        if (!real.used || real.used.length < 10) return null;
        const out = real.used.written.slice(0, 10);
        if (inj.response.trailer) out.set(inj.response.trailer.subarray(0, 8), 2);
        return out;
      }
      const out = encodeResponse({ type: code });
      if (inj.response.trailer) out.set(inj.response.trailer.subarray(0, 8), 2);
      return out;
    }
    const result = this.device.processRequest(request);
    return result.used && result.used.length >= 10 ? result.used.written : null;
  }
}
