/**
 * Differential checking: the same operations on two devices (a real one and a model profile
 * that claims to reproduce it), compared byte for byte after every operation: the used length
 * and response bytes, the 56 configuration bytes, the status register and whether a
 * configuration-change notification arrived.
 *
 * Two sources of operations: a seeded random sequence ({@link generateOperations}: all request
 * types, valid and invalid, host resizes, device resets), and the device corpus itself, recorded
 * through {@link RecordingAdapter} (transcript.ts) while the runner executes it.
 */
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VirtioMemResponseLayout,
} from '../../../spec/src/index';
import { encodeRequest } from '../../../model/src/codec/codec';
import type { Chain, DeviceSession, DeviceSetup, HandshakeResult } from '../../../adapters/core/src/contract';
import { acceptDeviceFeatures, describeCompletion, describeInitialisation } from './transcript';

export {
  acceptDeviceFeatures,
  compareTranscripts,
  describeCompletion,
  describeDriverEvent,
  describeInitialisation,
  RecordingAdapter,
} from './transcript';
export type { Recorded, RecordedMethod, RecordingOptions } from './transcript';

/** One operation of a differential sequence. */
export type Operation =
  | { readonly kind: 'request'; readonly bytes: Uint8Array; readonly label: string }
  | { readonly kind: 'resize'; readonly size: bigint }
  /** Device reset followed by the handshake. */
  | { readonly kind: 'reset' };

/** What one side showed after one operation, as comparable text. */
export interface Observation {
  readonly outcome: string;
  readonly config: string;
  readonly status: number;
  readonly notified: boolean;
}

/** The first operation after which the two sides differ. */
export interface Mismatch {
  /** Index of the operation (so operations 0..index are the shortest failing prefix). */
  readonly index: number;
  readonly operation: string;
  readonly left: Observation;
  readonly right: Observation;
}

/** A small, fast, seedable generator (mulberry32); the same seed gives the same sequence everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seeded sequence of `count` operations on a device built from `setup`: PLUG, UNPLUG, STATE
 * and UNPLUG ALL with valid and invalid ranges (unaligned, empty, outside the region, beyond the
 * usable region, overflowing), garbage in the padding, unknown request types (each followed by a
 * device reset, since a device may mark itself broken), host resizes (valid and refused values)
 * and device resets.
 */
export function generateOperations(seed: number, count: number, setup: DeviceSetup): Operation[] {
  const random = seededRandom(seed);
  const pick = (n: number): number => Math.floor(random() * n);
  const blocks = Number(setup.region_size / setup.block_size);
  const ops: Operation[] = [];
  const blockAddr = (block: number): bigint => setup.addr + BigInt(block) * setup.block_size;
  const address = (): bigint => {
    const r = random();
    if (r < 0.8) return blockAddr(pick(blocks));
    if (r < 0.86) return blockAddr(pick(blocks)) + BigInt(1 + pick(Number(setup.block_size) - 1));
    if (r < 0.92) return blockAddr(blocks + pick(4));
    if (r < 0.96) return setup.addr - setup.block_size * BigInt(1 + pick(4));
    return 0xffff_ffff_ffff_f000n - BigInt(pick(4)) * setup.block_size;
  };
  const count16 = (): number => {
    const r = random();
    if (r < 0.7) return 1 + pick(8);
    if (r < 0.8) return 0;
    if (r < 0.9) return 1 + pick(blocks);
    return 0xffff - pick(3);
  };
  const garbage = (n: number): Uint8Array =>
    random() < 0.1 ? Uint8Array.from({ length: n }, () => pick(256)) : new Uint8Array(n);
  while (ops.length < count) {
    const r = random();
    if (r < 0.82) {
      const type = [
        VIRTIO_MEM_REQ_PLUG,
        VIRTIO_MEM_REQ_PLUG,
        VIRTIO_MEM_REQ_UNPLUG,
        VIRTIO_MEM_REQ_STATE,
        VIRTIO_MEM_REQ_STATE,
      ][pick(5)]!;
      const addr = address();
      const nb = count16();
      ops.push({
        kind: 'request',
        label: `${TYPE_LABELS[type]} 0x${addr.toString(16)} ${nb}`,
        bytes: encodeRequest({ type, addr, nb_blocks: nb, padding: garbage(6), payload_padding: garbage(6) }),
      });
    } else if (r < 0.86) {
      ops.push({
        kind: 'request',
        label: 'UNPLUG_ALL',
        bytes: encodeRequest({
          type: VIRTIO_MEM_REQ_UNPLUG_ALL,
          addr: random() < 0.5 ? 0n : address(),
          nb_blocks: random() < 0.5 ? 0 : count16(),
        }),
      });
    } else if (r < 0.95) {
      const s = random();
      const size =
        s < 0.85
          ? BigInt(pick(blocks + 1)) * setup.block_size
          : s < 0.93
            ? BigInt(pick(blocks)) * setup.block_size + 4096n
            : setup.region_size + setup.block_size * BigInt(1 + pick(4));
      ops.push({ kind: 'resize', size });
    } else if (r < 0.985) {
      ops.push({ kind: 'reset' });
    } else {
      const type = 4 + pick(0xfffb);
      ops.push({
        kind: 'request',
        label: `type ${type}`,
        bytes: encodeRequest({ type, addr: address(), nb_blocks: count16() }),
      });
      ops.push({ kind: 'reset' });
    }
  }
  return ops.slice(0, count);
}

const TYPE_LABELS: Record<number, string> = {
  [VIRTIO_MEM_REQ_PLUG]: 'PLUG',
  [VIRTIO_MEM_REQ_UNPLUG]: 'UNPLUG',
  [VIRTIO_MEM_REQ_UNPLUG_ALL]: 'UNPLUG_ALL',
  [VIRTIO_MEM_REQ_STATE]: 'STATE',
};

/** Describes an operation for a report. */
export function describeOperation(op: Operation): string {
  if (op.kind === 'request') return `request ${op.label} [${Buffer.from(op.bytes).toString('hex')}]`;
  if (op.kind === 'resize') return `resize to 0x${op.size.toString(16)}`;
  return 'device reset + handshake';
}

/** Applies one operation to a session and observes the result. */
export async function applyOperation(
  session: DeviceSession,
  op: Operation,
  notificationsBefore: number,
): Promise<{ observation: Observation; notifications: number }> {
  let outcome: string;
  if (op.kind === 'request') {
    const chain: Chain = { readable: [op.bytes], writableSizes: [VirtioMemResponseLayout.size] };
    outcome = describeCompletion(await session.submit(chain));
  } else if (op.kind === 'resize') {
    outcome = `resize ${(await session.resize!(op.size)).kind}`;
  } else {
    await session.deviceReset!();
    outcome = describeInitialisation(await session.initialise(acceptDeviceFeatures));
  }
  const notifications = await session.notificationCount();
  const config = Buffer.from(await session.readConfig()).toString('hex');
  const status = await session.readStatus();
  return { observation: { outcome, config, status, notified: notifications > notificationsBefore }, notifications };
}

function sameObservation(a: Observation, b: Observation): boolean {
  return a.outcome === b.outcome && a.config === b.config && a.status === b.status && a.notified === b.notified;
}

/**
 * Runs `ops` on two freshly opened sessions (each initialised first) and returns the first
 * mismatch, or undefined when every observation matched.
 */
export async function compareSessions(
  left: DeviceSession,
  right: DeviceSession,
  ops: readonly Operation[],
): Promise<Mismatch | undefined> {
  const [li, ri] = [await left.initialise(acceptDeviceFeatures), await right.initialise(acceptDeviceFeatures)];
  if (describeInitialisation(li) !== describeInitialisation(ri)) {
    const obs = (i: HandshakeResult): Observation => ({
      outcome: describeInitialisation(i),
      config: '',
      status: i.status,
      notified: false,
    });
    return { index: -1, operation: 'initial handshake', left: obs(li), right: obs(ri) };
  }
  let ln = await left.notificationCount();
  let rn = await right.notificationCount();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const l = await applyOperation(left, op, ln);
    const r = await applyOperation(right, op, rn);
    ln = l.notifications;
    rn = r.notifications;
    if (!sameObservation(l.observation, r.observation))
      return { index: i, operation: describeOperation(op), left: l.observation, right: r.observation };
  }
  return undefined;
}

/** Formats a mismatch with what is needed to reproduce it. */
export function formatMismatch(m: Mismatch, leftName: string, rightName: string, seed?: number): string {
  const lines = [
    `${leftName} and ${rightName} differ after operation ${m.index} (${m.operation})${seed === undefined ? '' : `; seed ${seed}, shortest failing prefix: the first ${m.index + 1} operations`}`,
  ];
  for (const key of ['outcome', 'config', 'status', 'notified'] as const) {
    if (m.left[key] !== m.right[key])
      lines.push(`  ${key}: ${leftName} ${String(m.left[key])} / ${rightName} ${String(m.right[key])}`);
  }
  return lines.join('\n');
}
