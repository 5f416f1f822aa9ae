/**
 * Suspend to RAM in the live guest (`suspend` steps, drv.op.11): the guest is asked for ACPI S3
 * (`echo mem > /sys/power/state` over SSH, with `deep` chosen in `/sys/power/mem_sleep`), and
 * the host watches QEMU's run state. Two ends:
 *
 * - the driver refuses the freeze: the write fails at once and the guest's kernel log, from a
 *   mark written just before, holds the virtio_mem driver's own message (Linux 6.1 refuses every
 *   freeze; Linux ≥ 6.10 refuses S3 while memory is plugged unless PERSISTENT_SUSPEND was
 *   negotiated) — `refused`;
 * - the guest suspends: QMP `query-status` says `suspended`, the host wakes it with
 *   `system_wakeup`, and the write returns 0 once the guest has resumed (the driver has reset
 *   the device and read its configuration again) — `allowed`.
 *
 * A write that fails without a word from virtio_mem (another device refused) is `failed`, not a
 * refusal: the vector cannot be judged on it. Every wait is bounded.
 */
import { formatSize } from '../../../spec/src/index';
import type { ShellResult } from './ssh-shell';

/** What a suspend attempt needs from the guest and its QEMU. */
export interface SuspendPorts {
  /** Runs a guest command and returns its status and output. */
  run(command: string, what: string, timeoutMs: number): Promise<ShellResult>;
  /** QEMU's run state (`query-status`). */
  runState(): Promise<string>;
  /** QMP `system_wakeup`. */
  wakeUp(): Promise<void>;
  /** The bytes the device holds plugged now (QMP). */
  plugged(): Promise<bigint>;
  /** Waits `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
}

/** How a suspend attempt ended. */
export type SuspendAttempt =
  /** `asleepMs`: from QEMU reporting the machine suspended to `system_wakeup` (absent when the guest woke before it was seen). */
  | { readonly kind: 'allowed'; readonly detail: string; readonly asleepMs?: number }
  | { readonly kind: 'refused'; readonly detail: string }
  /** The guest cannot suspend to RAM at all (no S3). */
  | { readonly kind: 'unsupported'; readonly reason: string }
  /** The attempt failed for a reason other than the driver's answer. */
  | { readonly kind: 'failed'; readonly message: string };

/** Bounds of one attempt. */
export interface SuspendBounds {
  /** From the write to the guest suspended or the write failed. */
  readonly enterMs: number;
  /** From `system_wakeup` to the write returning. */
  readonly resumeMs: number;
  /** Between two `query-status` polls. */
  readonly pollMs: number;
}

/** Default bounds (TCG on a loaded machine: a freeze of every device can take seconds). */
export const SUSPEND_BOUNDS: SuspendBounds = { enterMs: 30_000, resumeMs: 60_000, pollMs: 50 };

/** The kernel log mark each attempt writes first; its lines after it are this attempt's. */
export function suspendMark(sequence: number): string {
  return `vmemct-suspend-${sequence}`;
}

/** The virtio_mem driver's lines in a kernel log (`virtio_mem virtioN: …`), message only. */
export function virtioMemMessages(kernelLog: string): string[] {
  const out: string[] = [];
  for (const line of kernelLog.split('\n')) {
    const m = /virtio_mem virtio[0-9]+: (.*)$/.exec(line);
    if (m) out.push(m[1]!.trim());
  }
  return out;
}

/** Kernel log stamps `[  27.813978]` in ms, of the first line matching `pattern`. */
function stampOf(kernelLog: string, pattern: RegExp): number | undefined {
  for (const line of kernelLog.split('\n')) {
    const m = /^\[\s*([0-9]+)\.([0-9]{6})\]/.exec(line);
    if (m && pattern.test(line)) return Number(m[1]) * 1000 + Math.floor(Number(m[2]) / 1000);
  }
  return undefined;
}

/**
 * How long the guest slept, by its kernel log from an attempt's mark, when the log shows it
 * entered ACPI S3 and woke from it (Linux: "ACPI: PM: Preparing to enter system sleep state S3",
 * then "Waking up from system sleep state S3"); undefined when it shows no such sleep.
 */
export function sleptInS3(kernelLog: string): number | undefined {
  const entered = stampOf(kernelLog, /Preparing to enter system sleep state S3/);
  const woke = stampOf(kernelLog, /Waking up from system sleep state S3/);
  if (entered === undefined || woke === undefined || woke < entered) return undefined;
  return woke - entered;
}

let sequence = 0;

/** Asks the guest to suspend to RAM and wakes it if it did; see the file comment. */
export async function attemptSuspend(
  ports: SuspendPorts,
  bounds: SuspendBounds = SUSPEND_BOUNDS,
): Promise<SuspendAttempt> {
  const mark = suspendMark(++sequence);
  const prepared = await ports.run(
    `grep -qw deep /sys/power/mem_sleep || { cat /sys/power/mem_sleep; exit 1; }; echo deep > /sys/power/mem_sleep && echo ${mark} > /dev/kmsg`,
    'preparing the suspend',
    bounds.enterMs,
  );
  if (prepared.status !== 0) {
    return {
      kind: 'unsupported',
      reason: `the guest cannot suspend to RAM (no 'deep' in /sys/power/mem_sleep: '${prepared.output.trim()}'); boot it with ACPI S3 (q35: ICH9-LPC.disable_s3=0)`,
    };
  }
  const pluggedBefore = await ports.plugged();
  let written: ShellResult | undefined;
  let writeError: unknown;
  const write = ports.run('echo mem > /sys/power/state', 'suspending the guest', bounds.enterMs + bounds.resumeMs).then(
    (r) => (written = r),
    (e: unknown) => (writeError = e ?? new Error('the write failed')),
  );
  const started = Date.now();
  let suspendedAt: number | undefined;
  while (written === undefined && writeError === undefined) {
    if ((await ports.runState()) === 'suspended') {
      suspendedAt = Date.now();
      break;
    }
    if (Date.now() - started > bounds.enterMs) {
      return {
        kind: 'failed',
        message: `the guest neither suspended nor failed the suspend within ${bounds.enterMs} ms`,
      };
    }
    await ports.sleep(bounds.pollMs);
  }
  if (suspendedAt !== undefined) {
    await ports.wakeUp();
    const woke = Date.now();
    await write;
    if (writeError !== undefined) return { kind: 'failed', message: `after system_wakeup: ${String(writeError)}` };
    if (written!.status !== 0)
      return { kind: 'failed', message: `the guest suspended, yet the write said: ${written!.output.trim()}` };
    const pluggedAfter = await ports.plugged();
    const asleepMs = woke - suspendedAt;
    return {
      kind: 'allowed',
      asleepMs,
      detail: `the guest suspended to RAM (ACPI S3) and resumed after system_wakeup; the device held ${formatSize(pluggedBefore)} plugged before, ${formatSize(pluggedAfter)} after`,
    };
  }
  if (writeError !== undefined) return { kind: 'failed', message: String(writeError) };
  const log = await ports.run(`dmesg | sed -n '/${mark}/,$p'`, 'reading the kernel log', bounds.enterMs);
  if (written!.status === 0) {
    // A suspend that something else ended within a poll of QEMU's state: the guest's own log tells.
    const slept = sleptInS3(log.output);
    if (slept === undefined)
      return { kind: 'failed', message: 'the suspend returned without QEMU ever reporting the machine suspended' };
    const pluggedAfter = await ports.plugged();
    return {
      kind: 'allowed',
      detail: `the guest suspended to RAM (ACPI S3) and woke ${slept} ms later, before QEMU was seen suspended (its kernel log shows S3 entered and left); the device held ${formatSize(pluggedBefore)} plugged before, ${formatSize(pluggedAfter)} after`,
    };
  }
  const said = virtioMemMessages(log.output);
  const answer = written!.output.trim();
  if (said.length === 0) {
    const pm = log.output
      .split('\n')
      .filter((l) => /PM: .*(fail|returns)/.test(l))
      .slice(-2)
      .map((l) => l.replace(/^\[[ 0-9.]+\] /, ''));
    return {
      kind: 'failed',
      message: `the suspend failed (${answer || `status ${written!.status}`}) without a word from virtio_mem${pm.length ? `: ${pm.join(' / ')}` : ''}`,
    };
  }
  return { kind: 'refused', detail: `virtio_mem refused the freeze: "${said.join('; ')}" (${answer})` };
}
