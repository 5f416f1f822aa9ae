/**
 * The parameters, results and errors of {@link VirtioMemDevice}'s operations (exported from
 * `model/` through `device.ts`).
 */
import type { VirtioMemResponse } from '../codec/codec';
import type { DeviceSetup } from '../../../spec/src/index';
import type { InvariantViolation } from './invariants';
import type { RequestEvaluation } from './chain';
import type { VirtioMemDevice } from './device';

/**
 * Initial parameters of a device: the set-up record ({@link DeviceSetup}), where a model test may
 * leave out `requested_size` (0), `node_id` (0) and `plugged` (none). A `usable_region_size`
 * overrides the profile's initial choice; the device takes it as given (the oracle rebuilds devices
 * from what real ones show), so the set-up paths validate it first (`usableRegionSizeProblem`).
 * Sizes are bytes.
 */
export interface DeviceParams
  extends
    Pick<DeviceSetup, 'block_size' | 'region_size' | 'addr' | 'features' | 'usable_region_size'>,
    Partial<Pick<DeviceSetup, 'requested_size' | 'node_id' | 'plugged'>> {}

/** Thrown when the device is driven out of order (e.g. a wake-up without a suspend). */
export class DeviceUsageError extends Error {
  override readonly name = 'DeviceUsageError';
}

/** Thrown when device parameters cannot be modelled at all. */
export class DeviceParamsError extends Error {
  override readonly name = 'DeviceParamsError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the driver sees after the device handled one chain. */
export interface UsedElement {
  /** Bytes the device reports as written. */
  readonly length: number;
  /** The bytes written into the writable buffers. */
  readonly written: Uint8Array;
}

/** Result of processing one chain. */
export interface ProcessResult extends RequestEvaluation {
  /** The used element, or null when the device returned none. */
  readonly used: UsedElement | null;
  /** The decoded response, when one was written. */
  readonly response?: VirtioMemResponse;
  /** Whether a configuration-change notification was raised. */
  readonly notified: boolean;
  /** Invariants broken after the step (empty for a conforming device). */
  readonly violations: readonly InvariantViolation[];
}

/** Result of a host-side change of requested_size. */
export type HostResizeResult =
  | { readonly ok: false; readonly reason: string }
  | {
      readonly ok: true;
      readonly notified: boolean;
      readonly usableBefore: bigint;
      readonly usableAfter: bigint;
      readonly violations: readonly InvariantViolation[];
    };

/** Result of {@link VirtioMemDevice.suspend}. */
export interface SuspendResult {
  /** Whether VIRTIO_MEM_F_PERSISTENT_SUSPEND was negotiated: block states must survive the wake-up (dev.op.8). */
  readonly persistent: boolean;
  /** Invariants broken at the time of the suspend. */
  readonly violations: readonly InvariantViolation[];
}

/** Result of writing the device status register. */
export interface StatusWriteResult {
  /** The status as read back afterwards. */
  readonly status: number;
  /** Why the device refused FEATURES_OK or failed at DRIVER_OK, if it did. */
  readonly refusal?: string;
  readonly requirements: readonly string[];
}
