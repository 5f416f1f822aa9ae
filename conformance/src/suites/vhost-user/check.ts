/**
 * The frame every `vu.*` check shares: its context, the opening a connection runs, how a check is
 * declared, and the set-up steps several checks repeat (a vring in a region).
 */
import {
  FEATURE_MASKS,
  VirtqAvailHeaderLayout,
  VirtqUsedHeaderLayout,
  formatHex,
  virtqAvailBytes,
  virtqDescTableBytes,
  virtqUsedBytes,
} from '../../../../spec/src/index';
import {
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  Request,
  VringAddressLayout,
  VringStateLayout,
  encodeStruct,
  protocolFeatureNames,
  protocolMask,
  u64Payload,
} from '../../../../adapters/vhost-user/src/protocol';
import type { CheckOutcome, SuiteCheck } from '../suite';
import { CheckRegion, VhostUserConnection, isBackendFault } from './connection';

/** A protocol feature, by its name in the protocol (`REPLY_ACK`, `CONFIGURE_MEM_SLOTS`, …). */
export type ProtocolFeatureName = Exclude<keyof typeof ProtocolFeature, 'VMEMCT_CONTROL'>;

/** The opening a connection runs before the check proper. */
export interface OpeningOptions {
  /** Protocol features to negotiate when offered (default MQ and REPLY_ACK); the check's `needs` are always added. */
  readonly protocol?: readonly number[];
  /** Send SET_OWNER and SET_FEATURES (bit 30 and VERSION_1 when offered) after the protocol features (default true). */
  readonly own?: boolean;
}

/** A connection after its opening, with what the back-end offered. */
export interface OpenedConnection {
  readonly c: VhostUserConnection;
  /** GET_FEATURES. */
  readonly offeredFeatures: bigint;
  /** GET_PROTOCOL_FEATURES (0 without bit 30). */
  readonly offeredProtocolFeatures: bigint;
}

/** What a check gets to work with; every connection it makes is closed after it. */
export interface VhostUserCheckContext {
  readonly socketPath: string;
  /** The back-end's PID, for the fd check (it reads /proc/PID/fd). */
  readonly backendPid?: number;
  /** Connects without sending anything. @throws BackendGone when nothing accepts the connection. */
  connect(): VhostUserConnection;
  /**
   * Connects and runs the opening: GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES
   * (sent without NEED_REPLY, as QEMU does), then (unless `own: false`) SET_OWNER and SET_FEATURES.
   */
  open(options?: OpeningOptions): Promise<OpenedConnection>;
}

/** What a check's body settles; the check's id is added as the finding's `check`. */
export interface Judgement {
  readonly verdict: 'pass' | 'fail' | 'unsupported';
  readonly message: string;
}

/** The back-end behaved as the protocol requires; `message` says what was seen. */
export function pass(message: string): Judgement {
  return { verdict: 'pass', message };
}

/** The back-end broke the protocol, did not answer in time or stopped serving. */
export function fail(message: string): Judgement {
  return { verdict: 'fail', message };
}

/** Something the check needs is not there (a protocol feature, the back-end's PID). */
export function unsupported(message: string): Judgement {
  return { verdict: 'unsupported', message };
}

/** One `vu.*` check as its module declares it. */
export interface VhostUserCheckSpec {
  /** Stable identifier, `vu.…`. */
  readonly id: string;
  readonly title: string;
  /** Protocol features the check needs; without them it is `unsupported` and does not run. */
  readonly needs?: readonly ProtocolFeatureName[];
  run(ctx: VhostUserCheckContext): Promise<Judgement>;
}

/** A `vu.*` check as the runner runs it. */
export type VhostUserCheck = SuiteCheck<VhostUserCheckContext>;

/**
 * Declares a check. Its body returns a {@link Judgement}; when a connection throws because the
 * back-end broke the protocol, timed out or went away, the check fails with that message, and
 * anything else thrown is an `error` (our side failed). The one place faults become verdicts.
 */
export function defineCheck(spec: VhostUserCheckSpec): VhostUserCheck {
  return {
    id: spec.id,
    title: spec.title,
    needs: spec.needs ?? [],
    async run(ctx): Promise<CheckOutcome> {
      let judgement: Judgement;
      try {
        judgement = await spec.run(ctx);
      } catch (e) {
        if (!isBackendFault(e)) throw e;
        judgement = fail(e.message);
      }
      const { verdict, message } = judgement;
      return { verdict, findings: [{ verdict, step: 0, check: spec.id, message }] };
    },
  };
}

/** Runs the opening on a fresh connection (see {@link VhostUserCheckContext.open}). */
export async function runOpening(
  c: VhostUserConnection,
  needs: readonly number[],
  options: OpeningOptions = {},
): Promise<OpenedConnection> {
  const offeredFeatures = await c.queryU64(Request.GET_FEATURES);
  let offeredProtocolFeatures = 0n;
  if (offeredFeatures & PROTOCOL_FEATURES_BIT) {
    offeredProtocolFeatures = await c.queryU64(Request.GET_PROTOCOL_FEATURES);
    const wanted = protocolMask(...(options.protocol ?? [ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK]), ...needs);
    // Sent without NEED_REPLY, as QEMU does: whether REPLY_ACK already applies to the message
    // that negotiates it is not settled by the spec. The SET_OWNER ack below proves it was taken.
    await c.setProtocolFeatures(offeredProtocolFeatures & wanted, false);
  }
  if (options.own ?? true) {
    await c.command(Request.SET_OWNER);
    await c.command(Request.SET_FEATURES, u64Payload(ownFeatures(offeredFeatures)));
  }
  return { c, offeredFeatures, offeredProtocolFeatures };
}

/** The features the checks acknowledge: bit 30 and VIRTIO_F_VERSION_1, when offered. */
export function ownFeatures(offered: bigint): bigint {
  return offered & (PROTOCOL_FEATURES_BIT | FEATURE_MASKS.VERSION_1);
}

/** Size of the small memfd regions the memory checks share. */
export const SMALL_REGION_SIZE = 64n * 1024n;
/** Where the memory checks place their regions: 1 MiB apart, so none overlaps another. */
export const REGION_STRIDE = 1n << 20n;
/** Queue size of the rings the checks set up (a power of two, at most VIRTQ_MAX_SIZE). */
export const RING_SIZE = 256;
/** The ring parts start on 4 KiB boundaries inside the ring region. */
const RING_PART_ALIGN = 0x1000n;
const alignUp = (offset: bigint): bigint => (offset + RING_PART_ALIGN - 1n) & ~(RING_PART_ALIGN - 1n);
/**
 * Offsets of the ring parts inside the ring region: the descriptor table, then the driver area,
 * then the device area, each after the one before it (desc 0, avail 0x1000, used 0x2000), and
 * where the device area ends.
 */
export const RING_LAYOUT = (() => {
  const desc = 0n;
  const avail = alignUp(desc + BigInt(virtqDescTableBytes(RING_SIZE)));
  const used = alignUp(avail + BigInt(virtqAvailBytes(RING_SIZE)));
  return { desc, avail, used, end: used + BigInt(virtqUsedBytes(RING_SIZE)) } as const;
})();

/** A protocol feature mask with the names of its bits. */
export function describeBits(mask: bigint): string {
  const names = protocolFeatureNames(mask);
  return names.length ? `${formatHex(mask)} (${names.join(', ')})` : formatHex(mask);
}

/** A vring state payload (SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE, GET_VRING_BASE). */
export function vringState(index: number, num: number): Buffer {
  return encodeStruct(VringStateLayout, { index, num });
}

/** A small memfd region at `guestAddress`. */
export function smallRegion(c: VhostUserConnection, guestAddress: bigint): CheckRegion {
  return c.createRegion(guestAddress, SMALL_REGION_SIZE, 'vmemct-check');
}

/**
 * Sets up vring 0 in `ring` (a region already in the memory table): size, base, addresses, kick
 * and call eventfds, and (with protocol features) enable. The ring's avail and used indices are
 * written as `base` first, so the ring is consistent and holds no work.
 */
export async function setUpVring(
  opened: OpenedConnection,
  ring: CheckRegion,
  base: number,
): Promise<{ kick: number; call: number }> {
  const { c } = opened;
  const idx = Buffer.alloc(2);
  idx.writeUInt16LE(base);
  c.writeRegion(ring, RING_LAYOUT.avail + BigInt(VirtqAvailHeaderLayout.fields.idx.offset), idx);
  c.writeRegion(ring, RING_LAYOUT.used + BigInt(VirtqUsedHeaderLayout.fields.idx.offset), idx);
  await c.command(Request.SET_VRING_NUM, vringState(0, RING_SIZE));
  await c.command(Request.SET_VRING_BASE, vringState(0, base));
  const at = (offset: bigint): bigint => ring.userAddress + offset;
  await c.command(
    Request.SET_VRING_ADDR,
    encodeStruct(VringAddressLayout, {
      index: 0,
      flags: 0,
      desc: at(RING_LAYOUT.desc),
      used: at(RING_LAYOUT.used),
      avail: at(RING_LAYOUT.avail),
      log: 0n,
    }),
  );
  const kick = c.createEventfd();
  const call = c.createEventfd();
  await c.command(Request.SET_VRING_KICK, u64Payload(0n), [kick]);
  await c.command(Request.SET_VRING_CALL, u64Payload(0n), [call]);
  if (opened.offeredFeatures & PROTOCOL_FEATURES_BIT) await c.command(Request.SET_VRING_ENABLE, vringState(0, 1));
  return { kick, call };
}
