/**
 * What a device session needs of the host its device runs in, beyond the device's own registers:
 * the host-side actions of device vectors. Each is optional: an action the host cannot take makes
 * the vectors needing its capability `unsupported`, with the reason the host control gives.
 *
 * Implementations: QMP for a QEMU the suite started (adapters/qemu), and argv templates for any
 * other VMM (`--host-control FILE`, argv-host-control.ts).
 */
import type { Capability, ResizeOutcome } from '../../core/src/contract';

/** The host-side actions, each with the capability it gives vectors. */
export const HOST_ACTIONS = {
  /** Sets the device's `requested_size` (host-resize; also a reused device's starting size). */
  resize: 'host-resize',
  /** Resets the whole platform; the driver enumerates the function again afterwards. */
  systemReset: 'system-reset',
  /** Makes the device busy from the host side (`true`) and releases it (`false`). */
  hostBusy: 'host-busy',
  /** Suspends the platform to RAM and wakes it up; the driver enumerates the function again afterwards. */
  suspendAndWake: 'suspend',
} as const satisfies Readonly<Record<string, Capability>>;

/** The name of one host-side action. */
export type HostAction = keyof typeof HOST_ACTIONS;

/** Every host action, in a stable order. */
export const HOST_ACTION_NAMES = Object.keys(HOST_ACTIONS) as readonly HostAction[];

/** The host-side actions a device session can take; an absent one is not available. */
export interface HostControl {
  /** Names the way the host is reached, for messages ("QMP", "host-control file hooks.yaml"). */
  readonly name: string;
  /** Why each absent action is absent (reported with the `unsupported` verdict). */
  readonly missing?: Readonly<Partial<Record<HostAction, string>>>;
  /** Sets `requested_size`; `refused` when the host management layer refused the value. */
  resize?(requestedSize: bigint): Promise<ResizeOutcome>;
  /** Resets the platform and resolves once the reset is done. */
  systemReset?(): Promise<void>;
  /** Makes the device busy (`true`) or releases it (`false`), resolving once it is so. */
  hostBusy?(busy: boolean): Promise<void>;
  /** Suspends the platform to RAM and wakes it up, resolving once it is awake. */
  suspendAndWake?(): Promise<void>;
}

/** The capabilities a host control gives, with a reason for each it does not. */
export interface HostCapabilities {
  readonly offered: readonly Capability[];
  readonly missing: Readonly<Partial<Record<Capability, string>>>;
}

/** What `host` can do, as capabilities (and why it cannot do the rest). */
export function hostCapabilities(host: HostControl): HostCapabilities {
  const offered: Capability[] = [];
  const missing: Partial<Record<Capability, string>> = {};
  for (const action of HOST_ACTION_NAMES) {
    const capability = HOST_ACTIONS[action];
    if (host[action]) offered.push(capability);
    else missing[capability] = host.missing?.[action] ?? `${host.name} has no ${action} action`;
  }
  return { offered, missing };
}
