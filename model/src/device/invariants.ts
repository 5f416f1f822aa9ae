/**
 * Invariants of the device configuration and of each transition, as pure functions over
 * snapshots, so the runner can apply them to the model and to real devices alike.
 */
import { VIRTIO_MEM_F_PERSISTENT_SUSPEND, featureMask, formatHex, isPowerOfTwo } from '../../../spec/src/index';
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
  | 'blocks-unchanged-by-device-reset'
  | 'contents-unchanged-by-device-reset'
  | 'blocks-unchanged-by-persistent-suspend'
  | 'plugged-contents-unchanged'
  | 'persistent-suspend-offered';

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
  /** Opaque digest of the memory contents, when known: equal digests mean equal contents. */
  readonly contentDigest?: string;
}

/**
 * The kind of step between two snapshots. `suspend` compares the states before and after the
 * platform entered suspend-to-RAM, `wake` the state when it suspended with the state after it
 * woke up.
 */
export type TransitionKind =
  'request' | 'unplug-all' | 'host-resize' | 'device-reset' | 'system-reset' | 'read' | 'suspend' | 'wake';

/** Facts about a transition that the snapshots do not carry. */
export interface TransitionContext {
  /**
   * For `suspend` and `wake`: whether VIRTIO_MEM_F_PERSISTENT_SUSPEND was negotiated when the
   * platform suspended. Without it the spec leaves the wake-up open, so a wake is then judged
   * like a system reset.
   */
  readonly persistentSuspend?: boolean;
  /**
   * Whether a driver had the device running (DRIVER_OK) when the change happened (default true).
   * A configuration-change notification goes to a driver; while none has activated the device
   * there is nobody to notify, and the driver reads the new values when it initialises, so a
   * change then owes no notification (dev.cfg.9 is judged only while a driver is active).
   */
  readonly driverActive?: boolean;
}

/** Checks the static rules of §5.15.4.2 on one configuration. */
export function checkConfigInvariants(snapshot: DeviceSnapshot): InvariantViolation[] {
  const c = snapshot.config;
  const out: InvariantViolation[] = [];
  if (!isPowerOfTwo(c.block_size)) {
    out.push({
      invariant: 'block-size-power-of-two',
      requirements: ['dev.cfg.5'],
      severity: 'must',
      detail: `block_size ${formatHex(c.block_size)} is not a power of two`,
    });
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
        detail: `${unaligned.map((n) => `${n} ${formatHex(c[n])}`).join(', ')} not a multiple of block_size ${formatHex(c.block_size)}`,
      });
    }
  }
  if (c.usable_region_size < c.requested_size) {
    out.push({
      invariant: 'usable-covers-requested',
      requirements: ['dev.cfg.4'],
      severity: 'must',
      detail: `usable_region_size ${formatHex(c.usable_region_size)} < requested_size ${formatHex(c.requested_size)}`,
    });
  }
  if (c.usable_region_size > c.region_size) {
    // §5.15.4: usable_region_size "can grow up to region_size" (descriptive text).
    out.push({
      invariant: 'usable-within-region',
      requirements: [],
      severity: 'must',
      detail: `usable_region_size ${formatHex(c.usable_region_size)} > region_size ${formatHex(c.region_size)}`,
    });
  }
  if (snapshot.pluggedBlocks !== undefined && c.plugged_size !== BigInt(snapshot.pluggedBlocks) * c.block_size) {
    out.push({
      invariant: 'plugged-size-matches-blocks',
      requirements: ['dev.cfg.3'],
      severity: 'must',
      detail: `plugged_size ${formatHex(c.plugged_size)} but ${snapshot.pluggedBlocks} blocks × ${formatHex(c.block_size)} are plugged`,
    });
  }
  if (
    snapshot.pluggedEnd !== undefined &&
    c.block_size > 0n &&
    BigInt(snapshot.pluggedEnd) * c.block_size > c.usable_region_size
  ) {
    // §5.15: every block of the unusable region is unplugged (descriptive text).
    out.push({
      invariant: 'plugged-within-usable',
      requirements: [],
      severity: 'must',
      detail: `block ${snapshot.pluggedEnd - 1} is plugged beyond usable_region_size ${formatHex(c.usable_region_size)}`,
    });
  }
  return out;
}

/**
 * Checks the rules that relate two snapshots across one step.
 * @param notified whether a configuration-change notification was seen during the step.
 * @param context facts the snapshots do not carry (see {@link TransitionContext}).
 */
export function checkTransition(
  before: DeviceSnapshot,
  after: DeviceSnapshot,
  kind: TransitionKind,
  notified: boolean,
  context: TransitionContext = {},
): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  const a = before.config;
  const b = after.config;
  const suspendStep = kind === 'suspend' || kind === 'wake';
  const persistent = suspendStep && context.persistentSuspend === true;
  // A wake-up without PERSISTENT_SUSPEND is not addressed by the spec; implementations treat it
  // as a system reset (QEMU before the WAKEUP reset type unplugged everything), so it is judged as one.
  const resetLike = kind === 'system-reset' || (suspendStep && !persistent);
  if (!resetLike) {
    const changed = (['block_size', 'node_id', 'addr', 'region_size'] as const).filter((n) => a[n] !== b[n]);
    if (changed.length > 0) {
      out.push({
        invariant: 'fixed-fields-unchanged',
        requirements: ['dev.cfg.2'],
        severity: 'must',
        detail: `${changed.join(', ')} changed outside a system reset`,
      });
    }
    if (b.usable_region_size < a.usable_region_size && kind !== 'unplug-all') {
      out.push({
        invariant: 'usable-shrinks-only-on-unplug-all-or-system-reset',
        requirements: ['dev.cfg.8'],
        severity: 'must',
        detail: `usable_region_size shrank from ${formatHex(a.usable_region_size)} to ${formatHex(b.usable_region_size)} during ${kind}`,
      });
    }
    const resized = a.usable_region_size !== b.usable_region_size || a.requested_size !== b.requested_size;
    if (resized && kind !== 'unplug-all' && !notified && context.driverActive !== false) {
      out.push({
        invariant: 'notify-on-usable-or-requested-change',
        requirements: ['dev.cfg.9'],
        severity: 'must',
        detail: 'usable_region_size or requested_size changed without a configuration-change notification',
      });
    }
    if (!resized && notified && a.plugged_size !== b.plugged_size && kind === 'request') {
      out.push({
        invariant: 'no-notify-for-plugged-size',
        requirements: ['dev.cfg.10'],
        severity: 'should',
        detail: 'a notification was sent although only plugged_size changed',
      });
    }
  }
  if (
    kind === 'device-reset' &&
    before.blocksDigest !== undefined &&
    after.blocksDigest !== undefined &&
    before.blocksDigest !== after.blocksDigest
  ) {
    out.push({
      invariant: 'blocks-unchanged-by-device-reset',
      requirements: ['dev.init.2'],
      severity: 'must',
      detail: 'block states changed across a device reset',
    });
  }
  if (kind === 'device-reset' && a.plugged_size !== b.plugged_size) {
    out.push({
      invariant: 'blocks-unchanged-by-device-reset',
      requirements: ['dev.init.2'],
      severity: 'must',
      detail: `plugged_size changed from ${formatHex(a.plugged_size)} to ${formatHex(b.plugged_size)} across a device reset`,
    });
  }
  const blocksSame = before.blocksDigest !== undefined && before.blocksDigest === after.blocksDigest;
  const contentsChanged =
    before.contentDigest !== undefined &&
    after.contentDigest !== undefined &&
    before.contentDigest !== after.contentDigest;
  if (kind === 'device-reset' && blocksSame && contentsChanged) {
    out.push({
      invariant: 'contents-unchanged-by-device-reset',
      requirements: ['dev.init.3'],
      severity: 'must',
      detail: 'the contents of plugged blocks changed across a device reset',
    });
  }
  if (persistent) {
    const blocksChanged =
      before.blocksDigest !== undefined &&
      after.blocksDigest !== undefined &&
      before.blocksDigest !== after.blocksDigest;
    if (blocksChanged) {
      out.push({
        invariant: 'blocks-unchanged-by-persistent-suspend',
        requirements: ['dev.op.8'],
        severity: 'must',
        detail: `block states changed across suspend and wake-up although PERSISTENT_SUSPEND was negotiated`,
      });
    } else if (a.plugged_size !== b.plugged_size) {
      out.push({
        invariant: 'blocks-unchanged-by-persistent-suspend',
        requirements: ['dev.op.8'],
        severity: 'must',
        detail: `plugged_size changed from ${formatHex(a.plugged_size)} to ${formatHex(b.plugged_size)} across suspend and wake-up although PERSISTENT_SUSPEND was negotiated`,
      });
    }
  }
  if (suspendStep && blocksSame && contentsChanged) {
    // Blocks that stayed plugged keep their contents whatever was negotiated (dev.op.3).
    out.push({
      invariant: 'plugged-contents-unchanged',
      requirements: ['dev.op.3'],
      severity: 'must',
      detail: `the contents of plugged blocks changed across ${kind === 'wake' ? 'suspend and wake-up' : 'suspend'}`,
    });
  }
  return out;
}

/**
 * dev.init.4: a device SHOULD offer VIRTIO_MEM_F_PERSISTENT_SUSPEND when the platform can
 * suspend with plugged blocks (keeping them). Returns the violation, or null when the offer is fine.
 * @param offered the features the device offers.
 * @param platformCanSuspend whether the platform supports suspend-to-RAM with plugged memory.
 */
export function checkPersistentSuspendOffer(offered: bigint, platformCanSuspend: boolean): InvariantViolation | null {
  if (!platformCanSuspend || (offered & featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND)) !== 0n) return null;
  return {
    invariant: 'persistent-suspend-offered',
    requirements: ['dev.init.4'],
    severity: 'should',
    detail: `the platform can suspend with plugged blocks but VIRTIO_MEM_F_PERSISTENT_SUSPEND is not offered (features 0x${offered.toString(16)})`,
  };
}
