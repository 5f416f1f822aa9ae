/**
 * Shrinking a differential mismatch to something a person can replay: first the shortest prefix
 * of the sequence that still differs (confirmed on fresh devices), then, within a budget of
 * replays, the operations of that prefix that can be left out while the two sides still differ
 * (delta debugging by chunks, halving the chunk size down to single operations).
 */
import type { DeviceSession } from '../../../adapters/core/src/contract';
import { Mismatch, Operation, compareSessions, describeOperation, formatMismatch } from './differential';

/** Opens a fresh pair of sessions (the real device and the model) for one replay. */
export type OpenPair = () => Promise<{ readonly left: DeviceSession; readonly right: DeviceSession }>;

/** A mismatch shrunk as far as the replay budget allowed. */
export interface ShrunkMismatch {
  /** Length of the shortest failing prefix of the original sequence (0 for a handshake mismatch). */
  readonly prefixLength: number;
  /** Whether replaying that prefix on fresh devices differed again (false: the mismatch did not reproduce). */
  readonly reproduced: boolean;
  /** Operations (a subsequence of the prefix) that still differ when replayed on fresh devices. */
  readonly operations: readonly Operation[];
  /** The mismatch the last successful replay of {@link operations} showed (the original when none did). */
  readonly mismatch: Mismatch;
  /** Replays spent. */
  readonly replays: number;
}

/** Runs `ops` on a fresh pair and closes it; the first mismatch, or undefined. */
async function replay(open: OpenPair, ops: readonly Operation[]): Promise<Mismatch | undefined> {
  const { left, right } = await open();
  try {
    return await compareSessions(left, right, ops);
  } finally {
    await left.close();
    await right.close();
  }
}

/**
 * Shrinks `found`, the first mismatch of `ops`: confirms the shortest failing prefix
 * (operations 0..found.index) on fresh devices, then drops chunks of operations while the
 * replay still differs, spending at most `budget` replays in all.
 */
export async function shrinkMismatch(
  open: OpenPair,
  ops: readonly Operation[],
  found: Mismatch,
  budget = 60,
): Promise<ShrunkMismatch> {
  if (found.index < 0) return { prefixLength: 0, reproduced: true, operations: [], mismatch: found, replays: 0 };
  const prefix = ops.slice(0, found.index + 1);
  let replays = 1;
  const again = await replay(open, prefix);
  if (!again) return { prefixLength: prefix.length, reproduced: false, operations: prefix, mismatch: found, replays };
  let current = prefix.slice(0, again.index + 1);
  let mismatch = again;
  for (
    let chunk = Math.floor(current.length / 2);
    chunk >= 1 && replays < budget;
    chunk = Math.min(Math.floor(chunk / 2), Math.floor(current.length / 2))
  ) {
    for (let start = 0; start < current.length && replays < budget;) {
      const candidate = [...current.slice(0, start), ...current.slice(start + chunk)];
      if (candidate.length === 0) break;
      replays++;
      const m = await replay(open, candidate);
      if (m) {
        current = candidate.slice(0, m.index + 1);
        mismatch = m;
      } else {
        start += chunk;
      }
    }
  }
  return { prefixLength: prefix.length, reproduced: true, operations: current, mismatch, replays };
}

/** Formats a shrunk mismatch: the seed, the shortest failing prefix, and the shrunk operations to replay. */
export function formatShrunkMismatch(
  found: Mismatch,
  shrunk: ShrunkMismatch,
  leftName: string,
  rightName: string,
  seed: number,
): string {
  const lines = [formatMismatch(found, leftName, rightName, seed)];
  if (!shrunk.reproduced) {
    lines.push(`replaying the first ${shrunk.prefixLength} operations on fresh devices did not differ again`);
    return lines.join('\n');
  }
  lines.push(
    `shrunk (${shrunk.replays} replays): these ${shrunk.operations.length} of the first ${shrunk.prefixLength} operations still differ, at the last one:`,
  );
  const shown = shrunk.operations.slice(0, 50);
  shown.forEach((op, i) => lines.push(`  ${i}: ${describeOperation(op)}`));
  if (shrunk.operations.length > shown.length) lines.push(`  … ${shrunk.operations.length - shown.length} more`);
  lines.push(formatMismatch(shrunk.mismatch, leftName, rightName));
  return lines.join('\n');
}
