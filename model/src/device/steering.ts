/**
 * Steering: choices made for a device from outside its profile. The profile picks one outcome of
 * every conforming set (`choice.ts`); a steered device takes another conforming one instead when
 * asked. Lint uses it to replay a vector on the reference device as the vector states it (a
 * recording of QEMU answers as QEMU did, where that is conforming), the way the runner's oracle
 * follows the device under test.
 *
 * A steering choice is honoured only when it is conforming: an outcome must be a member of the
 * evaluated set, a usable_region_size must satisfy the rules of §5.15.4.2 for the change at hand.
 * Anything else falls back to the profile's own choice.
 */
import type { VirtioMemConfig } from '../codec/codec';
import type { RequestEvaluation } from './chain';
import type { DeviceOutcome } from './outcomes';

/** A change that may unplug every block: a system reset, or a wake-up from suspend without PERSISTENT_SUSPEND. */
export type ResetChange = 'system-reset' | 'wake';

/** A change after which the device picks usable_region_size itself. */
export type UsableChange = 'host-resize' | 'unplug-all' | ResetChange;

/** Choices a steered device asks for before it falls back to its profile's own. */
export interface DeviceSteering {
  /** The outcome of an evaluated chain: a member of `evaluation.outcomes`, or undefined for the profile's choice. */
  chooseOutcome?(evaluation: RequestEvaluation): DeviceOutcome | undefined;
  /**
   * usable_region_size after `change`: `proposed` is the configuration the profile would leave
   * (with its own usable_region_size), `before` the one before the change; undefined keeps the
   * profile's value.
   */
  chooseUsable?(change: UsableChange, proposed: VirtioMemConfig, before: VirtioMemConfig): bigint | undefined;
  /**
   * Whether `change` unplugs every block (`profileUnplugs`: what the profile does); undefined keeps
   * the profile's way. Both are conforming: a system reset may keep blocks (dev.op.7 is a SHOULD),
   * and the spec leaves a wake-up without PERSISTENT_SUSPEND open.
   */
  chooseResetUnplug?(change: ResetChange, profileUnplugs: boolean, before: VirtioMemConfig): boolean | undefined;
}

/** The outcome a steered device produces: the steering's choice when it is in the conforming set, else the profile's. */
export function steeredOutcome(evaluation: RequestEvaluation, steering: DeviceSteering | undefined): DeviceOutcome {
  const wanted = steering?.chooseOutcome?.(evaluation);
  return wanted !== undefined && evaluation.outcomes.includes(wanted) ? wanted : evaluation.chosen;
}

/**
 * The usable_region_size a steered device leaves after `change`: the steering's value when it is
 * a multiple of block_size, covers requested_size (dev.cfg.4), lies within the region and, for a
 * resize, does not shrink (dev.cfg.8) — within `[min, max]` when the change bounds it (UNPLUG
 * ALL) — else the profile's `proposed` value.
 */
export function steeredUsable(
  change: UsableChange,
  proposed: VirtioMemConfig,
  before: VirtioMemConfig,
  steering: DeviceSteering | undefined,
  bounds: { readonly min: bigint; readonly max: bigint } = { min: 0n, max: proposed.region_size },
): bigint {
  const wanted = steering?.chooseUsable?.(change, proposed, before);
  if (wanted === undefined || wanted === proposed.usable_region_size) return proposed.usable_region_size;
  const bs = proposed.block_size;
  const conforming =
    bs > 0n &&
    wanted % bs === 0n &&
    wanted >= proposed.requested_size &&
    wanted <= proposed.region_size &&
    wanted >= bounds.min &&
    wanted <= bounds.max &&
    (change !== 'host-resize' || wanted >= before.usable_region_size);
  return conforming ? wanted : proposed.usable_region_size;
}

/**
 * What a reset-like change does to a steered device: whether every block is unplugged (the
 * steering's choice, else the profile's) and, if so, the usable_region_size it leaves (the
 * steering's conforming value, else `recomputed`, the profile's policy for an empty region).
 */
export function steeredReset(
  change: ResetChange,
  profileUnplugs: boolean,
  before: VirtioMemConfig,
  recomputed: bigint,
  steering: DeviceSteering | undefined,
): { readonly unplug: boolean; readonly usable: bigint } {
  const unplug = steering?.chooseResetUnplug?.(change, profileUnplugs, before) ?? profileUnplugs;
  const proposed = { ...before, usable_region_size: recomputed, plugged_size: 0n };
  return { unplug, usable: unplug ? steeredUsable(change, proposed, before, steering) : before.usable_region_size };
}
