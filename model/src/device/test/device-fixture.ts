/**
 * Shared set-up for the device tests: a 1 GiB region of 2 MiB blocks at 4 GiB, and helpers that
 * send one request and describe what the device answered.
 */
import { virtioHandshakeSync } from '../../../../adapters/virtio/src/index';
import {
  DeviceParams,
  DeviceProfile,
  ProcessResult,
  RequestEvaluation,
  SPEC_PROFILE,
  VirtioMemDevice,
  describeOutcome,
  encodeRequest,
  deviceRegisters,
  sameObservable,
} from '../../index';

export const MiB = 1n << 20n;
export const GiB = 1n << 30n;
export const BS = 2n * MiB;
export const BASE = 4n * GiB;

/** A 1 GiB region of 2 MiB blocks at 4 GiB, 256 MiB requested. */
export function makeDevice(
  overrides: Partial<DeviceParams> = {},
  profile: DeviceProfile = SPEC_PROFILE,
): VirtioMemDevice {
  return new VirtioMemDevice(
    { block_size: BS, addr: BASE, region_size: 1n * GiB, requested_size: 256n * MiB, ...overrides },
    profile,
  );
}

/** The device after a driver's handshake (DRIVER_OK), accepting every offered feature. */
export function activated(device: VirtioMemDevice): VirtioMemDevice {
  virtioHandshakeSync(deviceRegisters(device), (offered) => offered);
  return device;
}

export const PLUG = 0;
export const UNPLUG = 1;
export const UNPLUG_ALL = 2;
export const STATE = 3;

/** Sends one request in the usual chain; `block` is a block index from BASE, or an address. */
export function send(
  device: VirtioMemDevice,
  type: number,
  block: number | bigint,
  nb_blocks: number,
  extra: Record<string, unknown> = {},
): ProcessResult {
  const addr = typeof block === 'bigint' ? block : BASE + BigInt(block) * BS;
  return device.processRequest(encodeRequest({ type, addr, nb_blocks, ...extra }));
}

/** The label of what the device chose, e.g. `ACK(PLUGGED)`. */
export function answer(result: ProcessResult): string {
  return describeOutcome(result.chosen);
}

/** True when the profile's choice is one of the conforming outcomes. */
export function choiceConforms(evaluation: RequestEvaluation): boolean {
  return evaluation.outcomes.some((o) => sameObservable(o, evaluation.chosen));
}

/** The conforming set as `label:class` strings, in order. */
export function allowed(result: ProcessResult): string[] {
  return result.outcomes.map((o) => `${describeOutcome(o)}:${o.class}`);
}
