/**
 * Invariants of the device configuration and of each transition, as pure functions over
 * snapshots, so the runner can apply them to the model and to real devices alike.
 */
import { isPowerOfTwo } from '../../../spec/src/index';
import type { VirtioMemConfig } from '../codec/codec';

/** Names of the checks, stable for reports. */
export type InvariantName =
  | 'block-size-power-of-two'
  | 'fields-aligned'
  | 'usable-covers-requested'
  | 'usable-within-region'
  | 'plugged-within-usable'
  | 'plugged-size-matches-blocks'
  | 'fixed-fields-unchanged'
  | 'usable-shrinks-only-on-unplug-all-or-system-reset'
  | 'notify-on-usable-or-requested-change'
  | 'no-notify-for-plugged-size'
  | 'blocks-unchanged-by-device-reset';

/** A broken invariant: which, the requirements behind it, and what was seen. */
export interface InvariantViolation {
  readonly invariant: InvariantName;
  /** Requirement IDs the invariant derives from (empty when it rests on descriptive text only). */
  readonly requirements: readonly string[];
  /** 'must' for MUST/MUST NOT statements, 'should' for SHOULD/SHOULD NOT ones. */
  readonly severity: 'must' | 'should';
  readonly detail: string;
}

/** What the model (or an observer of a real device) knows at one point in time. */
export interface DeviceSnapshot {
  readonly config: VirtioMemConfig;
  /** Number of plugged blocks, when known (the model knows; a real device may not tell). */
  readonly pluggedBlocks?: number;
  /** Highest plugged block index + 1, when known. */
  readonly pluggedEnd?: number;
  /** Opaque digest of the block states, when known: equal digests mean equal bitmaps. */
  readonly blocksDigest?: string;
}

/** The kind of step between two snapshots. */
export type TransitionKind = 'request' | 'unplug-all' | 'host-resize' | 'device-reset' | 'system-reset' | 'read';

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Checks the static rules of §5.15.4.2 on one configuration. */
export function checkConfigInvariants(snapshot: DeviceSnapshot): InvariantViolation[] {
  const c = snapshot.config;
  const out: InvariantViolation[] = [];
  if (!isPowerOfTwo(c.block_size)) {
    out.push({ invariant: 'block-size-power-of-two', requirements: ['dev.cfg.5'], severity: 'must', detail: `block_size ${hex(c.block_size)} is not a power of two` });
  }
  if (c.block_size > 0n) {
    const unaligned = (['addr', 'region_size', 'usable_region_size', 'plugged_size', 'requested_size'] as const).filter(
      (name) => c[name] % c.block_size !== 0n,
    );
    if (unaligned.length > 0) {
      out.push({
        invariant: 'fields-aligned',
        requirements: ['dev.cfg.6'],
        severity: 'must',
        detail: `${unaligned.map((n) => `${n} ${hex(c[n])}`).join(', ')} not a multiple of block_size ${hex(c.block_size)}`,
      });
    }
  }
  if (c.usable_region_size < c.requested_size) {
    out.push({ invariant: 'usable-covers-requested', requirements: ['dev.cfg.4'], severity: 'must', detail: `usable_region_size ${hex(c.usable_region_size)} < requested_size ${hex(c.requested_size)}` });
  }
  if (c.usable_region_size > c.region_size) {
    // §5.15.4: usable_region_size "can grow up to region_size" (descriptive text).
    out.push({ invariant: 'usable-within-region', requirements: [], severity: 'must', detail: `usable_region_size ${hex(c.usable_region_size)} > region_size ${hex(c.region_size)}` });
  }
  if (snapshot.pluggedBlocks !== undefined && c.plugged_size !== BigInt(snapshot.pluggedBlocks) * c.block_size) {
    out.push({
      invariant: 'plugged-size-matches-blocks',
      requirements: ['dev.cfg.3'],
      severity: 'must',
      detail: `plugged_size ${hex(c.plugged_size)} but ${snapshot.pluggedBlocks} blocks × ${hex(c.block_size)} are plugged`,
    });
  }
  if (snapshot.pluggedEnd !== undefined && c.block_size > 0n && BigInt(snapshot.pluggedEnd) * c.block_size > c.usable_region_size) {
    // §5.15: every block of the unusable region is unplugged (descriptive text).
    out.push({ invariant: 'plugged-within-usable', requirements: [], severity: 'must', detail: `block ${snapshot.pluggedEnd - 1} is plugged beyond usable_region_size ${hex(c.usable_region_size)}` });
  }
  return out;
}

/**
 * Checks the rules that relate two snapshots across one step.
 * @param notified whether a configuration-change notification was seen during the step.
 */
export function checkTransition(before: DeviceSnapshot, after: DeviceSnapshot, kind: TransitionKind, notified: boolean): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  const a = before.config;
  const b = after.config;
  if (kind !== 'system-reset') {
    const changed = (['block_size', 'node_id', 'addr', 'region_size'] as const).filter((n) => a[n] !== b[n]);
    if (changed.length > 0) {
      out.push({ invariant: 'fixed-fields-unchanged', requirements: ['dev.cfg.2'], severity: 'must', detail: `${changed.join(', ')} changed outside a system reset` });
    }
    if (b.usable_region_size < a.usable_region_size && kind !== 'unplug-all') {
      out.push({
        invariant: 'usable-shrinks-only-on-unplug-all-or-system-reset',
        requirements: ['dev.cfg.8'],
        severity: 'must',
        detail: `usable_region_size shrank from ${hex(a.usable_region_size)} to ${hex(b.usable_region_size)} during ${kind}`,
      });
    }
    const resized = a.usable_region_size !== b.usable_region_size || a.requested_size !== b.requested_size;
    if (resized && kind !== 'unplug-all' && !notified) {
      out.push({
        invariant: 'notify-on-usable-or-requested-change',
        requirements: ['dev.cfg.9'],
        severity: 'must',
        detail: 'usable_region_size or requested_size changed without a configuration-change notification',
      });
    }
    if (!resized && notified && a.plugged_size !== b.plugged_size && kind === 'request') {
      out.push({ invariant: 'no-notify-for-plugged-size', requirements: ['dev.cfg.10'], severity: 'should', detail: 'a notification was sent although only plugged_size changed' });
    }
  }
  if (kind === 'device-reset' && before.blocksDigest !== undefined && after.blocksDigest !== undefined && before.blocksDigest !== after.blocksDigest) {
    out.push({ invariant: 'blocks-unchanged-by-device-reset', requirements: ['dev.init.2'], severity: 'must', detail: 'block states changed across a device reset' });
  }
  if (kind === 'device-reset' && a.plugged_size !== b.plugged_size) {
    out.push({ invariant: 'blocks-unchanged-by-device-reset', requirements: ['dev.init.2'], severity: 'must', detail: `plugged_size changed from ${hex(a.plugged_size)} to ${hex(b.plugged_size)} across a device reset` });
  }
  return out;
}
