/**
 * Transport checks: the vhost-user protocol itself, against any back-end (placeholder: filled in below).
 */
import type { VhostNative } from './native';

/** Verdict of one transport check. */
export type CheckVerdict = 'pass' | 'fail' | 'unsupported' | 'error';

/** Result of one transport check. */
export interface CheckResult {
  readonly id: string;
  readonly title: string;
  readonly verdict: CheckVerdict;
  readonly detail: string;
  readonly durationMs: number;
}

/** Options of {@link runTransportChecks}. */
export interface TransportCheckOptions {
  readonly socketPath: string;
  /** The back-end's PID, for the fd-leak check (it reads /proc/PID/fd). */
  readonly backendPid?: number;
  readonly native: VhostNative;
  readonly replyTimeoutMs?: number;
}

/** The back-end cannot be reached at all. */
export class TransportCheckError extends Error {
  override readonly name = 'TransportCheckError';
}

/** Runs every transport check. */
export async function runTransportChecks(options: TransportCheckOptions): Promise<CheckResult[]> {
  void options;
  return [];
}

/** Human-readable results. */
export function formatCheckResults(results: readonly CheckResult[]): string {
  return results.map((r) => `${r.verdict.padEnd(12)} ${r.id} — ${r.detail}\n`).join('');
}
