/**
 * The kit the teeth test's mutants are built from: small helpers over the model's public surface
 * and the `Mutant` record (a named model-adapter configuration that must be caught).
 */
import { ModelAdapterOptions } from '../../../adapters/model/src/model-adapter';
import {
  DescriptorChain,
  DeviceParams,
  DeviceProfile,
  ProcessResult,
  ReferenceDriver,
  RequestEvaluation,
  SPEC_PROFILE,
  VirtioMemConfig,
  VirtioMemDevice,
  VirtioMemRequest,
  decodeRequest,
  encodeConfig,
  encodeRequest,
  encodeResponse,
  readResponseType,
} from '../../../model/src/index';
import { VIRTIO_MEM_RESP_ACK, VirtioMemResponseLayout } from '../../../spec/src/index';

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The request a chain carries, when it has 24 readable bytes. */
export function requestOf(chain: DescriptorChain): VirtioMemRequest | undefined {
  const decoded = decodeRequest(concat(chain.readable));
  return decoded.ok ? decoded.value : undefined;
}

/** A processed chain answered with `type` (and `state`), without touching the device. */
export function answered(evaluation: RequestEvaluation, type: number, state = 0): ProcessResult {
  return {
    ...evaluation,
    used: { length: VirtioMemResponseLayout.size, written: encodeResponse({ type, state }) },
    response: { type, padding: new Uint8Array(6), state },
    notified: false,
    violations: [],
  };
}

export function wasAcked(result: ProcessResult): boolean {
  return (
    result.used !== null &&
    readResponseType(result.used.written.subarray(0, result.used.length)) === VIRTIO_MEM_RESP_ACK
  );
}

export function roundUp(value: bigint, unit: bigint): bigint {
  return ((value + unit - 1n) / unit) * unit;
}

export function chainOf(request: Partial<VirtioMemRequest>): DescriptorChain {
  return { readable: [encodeRequest(request)], writableSizes: [VirtioMemResponseLayout.size] };
}

/** A device whose configuration, as the driver reads it, is passed through `view`. */
export abstract class ConfigViewDevice extends VirtioMemDevice {
  protected abstract view(config: VirtioMemConfig): VirtioMemConfig;
  override readConfigBytes(): Uint8Array {
    return encodeConfig(this.view(this.readConfig()));
  }
}

export type DeviceClass = new (params: DeviceParams, profile: DeviceProfile) => VirtioMemDevice;

export interface Mutant {
  readonly name: string;
  readonly target: 'device' | 'driver';
  /** SHOULD-level breakage: only strict mode makes it unexpected. */
  readonly strict: boolean;
  readonly adapter: ModelAdapterOptions;
}

export function deviceMutant(name: string, cls: DeviceClass, strict = false): Mutant {
  return {
    name,
    target: 'device',
    strict,
    adapter: { deviceFactory: (params, profile) => new cls(params, profile), implementation: `mutant:${name}` },
  };
}

export function profileMutant(name: string, tweak: Partial<DeviceProfile>, strict = false): Mutant {
  return {
    name,
    target: 'device',
    strict,
    adapter: { profile: { ...SPEC_PROFILE, ...tweak, name: `spec-mutant-${name}` }, implementation: `mutant:${name}` },
  };
}

export function driverMutant(name: string, cls: new () => ReferenceDriver, strict = false): Mutant {
  return {
    name,
    target: 'driver',
    strict,
    adapter: { driverFactory: () => new cls(), implementation: `mutant:${name}` },
  };
}
