/**
 * The device side of a driver session: the device a driver under test talks to, held by the
 * suite. It is a {@link ModelHost} of the `spec` profile built from the vector's set-up, plus
 * what a driver vector asks of the device's surroundings: host resizes, scripted answers
 * (`inject-responses`), the garbage a vector shows the driver in the configuration padding
 * (drv.cfg.2), and the driver's view of configuration-change notifications.
 *
 * Two driver sessions use it: the model adapter's (the reference driver in-process, pumped by
 * the model's driver loop, which calls {@link DriverDevice.injected} and
 * {@link DriverDevice.configAsDriverSees} as hooks) and the exec adapter's (a driver in another
 * process, whose reads, requests and memory writes arrive as calls answered by
 * {@link DriverDevice.readConfigCall}, {@link DriverDevice.requestCall} and
 * {@link DriverDevice.writeMemoryCall}).
 */
import type {
  DeviceSetup,
  DriverEvent,
  DriverOptions,
  HandshakeResult,
  ResizeOutcome,
  ResponseInjection,
} from '../../core/src/contract';
import { UnsupportedSetupError } from '../../core/src/contract';
import {
  RESPONSE_CODE_NAMES,
  REQUEST_TYPE_NAMES,
  VirtioMemConfigLayout,
  VirtioMemResponseLayout,
  findField,
} from '../../../spec/src/index';
import { MODEL_DEVICE, ModelHost, SPEC_PROFILE, decodeRequest, encodeResponse } from '../../../model/src/index';
import type { HostResize } from '../../../model/src/index';
import { virtioHandshake } from '../../virtio/src/index';
import { modelTransport } from './model-transport';

/** Where the response's bytes after the type start (a scripted trailer goes there). */
const RESPONSE_TRAILER_OFFSET = findField(VirtioMemResponseLayout, 'padding')!.offset;
/** Where the configuration's padding starts, and how long it is (drv.cfg.2). */
const CONFIG_PADDING = findField(VirtioMemConfigLayout, 'padding')!;

/** A host resize's outcome in the contract's words. */
export function resizeOutcome(r: HostResize): ResizeOutcome {
  return r.kind === 'applied' ? { kind: 'applied' } : { kind: 'refused', reason: r.reason };
}

/** The contract's record of one request: its bytes, the answer, the configuration then and when it came. */
export function requestEvent(
  request: Uint8Array,
  response: Uint8Array | null,
  config: Uint8Array,
  atMs: number | undefined,
): DriverEvent {
  return { kind: 'request', exchange: { request, response, config, atMs } };
}

/** The device of a driver session and what the vector does around it. */
export class DriverDevice {
  private injection?: { response: ResponseInjection; left: number };
  /** The notification count the driver has been told of (a resize between settles is delivered at the next). */
  notificationsSeen: number;
  /** The features the driver wrote in its last handshake (what the device saw, whatever the driver believes). */
  private acceptedFeatures = 0n;

  /**
   * Builds the device of a driver vector: the `spec` profile from `setup`.
   * @throws UnsupportedSetupError when the set-up is one the model cannot build.
   */
  static open(setup: DeviceSetup, options: DriverOptions): DriverDevice {
    const built = ModelHost.create(setup, SPEC_PROFILE, MODEL_DEVICE);
    if (built.kind === 'refused') throw new UnsupportedSetupError(built.reason);
    return new DriverDevice(built.host, options);
  }

  constructor(
    readonly host: ModelHost,
    private readonly options: DriverOptions,
  ) {
    this.notificationsSeen = host.notificationCount;
  }

  /** Features the driver accepted in its last handshake. */
  get accepted(): bigint {
    return this.acceptedFeatures;
  }

  /** Runs the virtio handshake on the device; `accept` is the driver's choice from the offer. */
  async handshake(accept: (offered: bigint) => bigint): Promise<HandshakeResult> {
    const result = await virtioHandshake(modelTransport(this.host), accept);
    this.acceptedFeatures = result.accepted;
    return result;
  }

  /** `host-resize`. */
  resize(requestedSize: bigint): ResizeOutcome {
    return resizeOutcome(this.host.resize(requestedSize));
  }

  /** `inject-responses`: the next requests (of the given types) get the scripted answer. */
  injectResponses(injection: ResponseInjection): void {
    this.injection = { response: injection, left: injection.count };
  }

  /** A reboot: the device goes through a system reset; the next driver starts with nothing to be told and no script. */
  reboot(): void {
    this.host.systemReset();
    this.notificationsSeen = this.host.notificationCount;
    this.injection = undefined;
  }

  /** Whether a configuration-change notification arrived that the driver was not told of; it is told now. */
  takeConfigChanged(): boolean {
    if (this.host.notificationCount === this.notificationsSeen) return false;
    this.notificationsSeen = this.host.notificationCount;
    return true;
  }

  /** The config bytes, with the padding the vector asked for (drv.cfg.2). */
  configAsDriverSees(bytes: Uint8Array): Uint8Array {
    if (this.options.configPadding)
      bytes.set(this.options.configPadding.subarray(0, CONFIG_PADDING.size), CONFIG_PADDING.offset);
    return bytes;
  }

  /** The scripted answer when an injection takes this request; undefined lets the device answer. */
  injected(request: Uint8Array): Uint8Array | null | undefined {
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

  /** A driver outside the process reads the configuration: the bytes it sees, and whether it had a notification pending. */
  readConfigCall(): { config: Uint8Array; configChanged: boolean } {
    const configChanged = this.takeConfigChanged();
    return { config: this.configAsDriverSees(this.host.readConfig()), configChanged };
  }

  /**
   * A driver outside the process placed a request: the scripted answer or the device's (null
   * when the device gave no complete response), recorded in `events` with the configuration
   * when the device took it.
   */
  requestCall(
    request: Uint8Array,
    atMs: number | undefined,
    events: DriverEvent[],
  ): { response: Uint8Array | null; configChanged: boolean } {
    const config = this.host.readConfig();
    let response = this.injected(request);
    if (response === undefined) {
      const step = this.host.device.processRequest(request);
      response = step.used && step.used.length >= VirtioMemResponseLayout.size ? step.used.written : null;
    }
    events.push(requestEvent(request, response, config, atMs));
    return { response, configChanged: this.takeConfigChanged() };
  }

  /** A driver outside the process writes guest memory (zeros when `data` is absent), recorded in `events`. */
  writeMemoryCall(
    addr: bigint,
    length: number,
    data: Uint8Array | undefined,
    events: DriverEvent[],
  ): { ok: boolean; configChanged: boolean } {
    events.push({ kind: 'memory-write', addr, length });
    const written = this.host.device.writeMemory(addr, data ? data.subarray(0, length) : { zeros: length });
    return { ok: written.ok, configChanged: this.takeConfigChanged() };
  }
}

/**
 * The part of a driver session that is the device's: reading its configuration, the features
 * offered and accepted, host resizes and scripted answers. Driver sessions extend it with how
 * their driver runs (in-process or in a harness).
 */
export abstract class DriverDeviceSession {
  constructor(protected readonly device: DriverDevice) {}

  /** The device's 56 configuration bytes now. */
  async readConfig(): Promise<Uint8Array> {
    return this.device.host.readConfig();
  }

  /** Features the driver accepted. */
  async acceptedFeatures(): Promise<bigint> {
    return this.device.accepted;
  }

  /** Features the device offered to the driver. */
  async offeredFeatures(): Promise<bigint> {
    return this.device.host.offeredFeatures;
  }

  /** `host-resize`. */
  async resize(requestedSize: bigint): Promise<ResizeOutcome> {
    return this.device.resize(requestedSize);
  }

  /** `inject-responses`. */
  async injectResponses(injection: ResponseInjection): Promise<void> {
    this.device.injectResponses(injection);
  }

  /** `host-busy`: the device's host-busy state (BUSY to PLUG, UNPLUG and UNPLUG ALL while set). */
  async hostBusy(busy: boolean): Promise<void> {
    this.device.host.setHostBusy(busy);
  }
}
