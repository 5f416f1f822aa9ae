/**
 * Progress of a long command on stderr. On a terminal one line is rewritten in place; elsewhere (a
 * CI log, a pipe) a whole line is printed every few seconds, so a log shows the run is alive and how
 * far it got without a line per vector.
 */
import { UsageError } from './usage-error';

/** How a command shows progress: rewriting one terminal line, whole lines every few seconds, or not at all. */
export type ProgressMode = 'terminal' | 'lines' | 'none';

/** The environment variable that sets the interval of progress lines, in seconds. */
export const PROGRESS_INTERVAL_VARIABLE = 'VMEMCT_PROGRESS_INTERVAL';

/** Seconds between progress lines when {@link PROGRESS_INTERVAL_VARIABLE} is not set. */
export const DEFAULT_PROGRESS_INTERVAL_S = 5;

/** The interval of progress lines in milliseconds, from the environment (a bad value is a usage error). */
export function progressIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[PROGRESS_INTERVAL_VARIABLE];
  if (text === undefined || text === '') return DEFAULT_PROGRESS_INTERVAL_S * 1000;
  const seconds = /^[0-9]+(\.[0-9]+)?$/.test(text.trim()) ? Number(text) : NaN;
  if (!(seconds >= 0.01 && seconds <= 86_400))
    throw new UsageError(
      `${PROGRESS_INTERVAL_VARIABLE} must be a number of seconds from 0.01 to 86400 (got '${text}')`,
    );
  return Math.round(seconds * 1000);
}

/** What a progress report counts so far. */
export interface ProgressCounts {
  readonly done: number;
  readonly total: number;
  /** Unexpected results so far (commands that judge); left out of the line when undefined. */
  readonly unexpected?: number;
  /** The case that finished last (shown on a terminal). */
  readonly last?: string;
}

/** A running progress display. */
export interface Progress {
  /** Records how far the command got (called after each case). */
  update(counts: ProgressCounts): void;
  /** Stops the display (clears the terminal line); no line is printed after it. */
  stop(): void;
}

/** Where progress goes and how time is read; injectable for tests. */
export interface ProgressOptions {
  readonly mode: ProgressMode;
  /** The command's name, leading each line (`run`). */
  readonly label: string;
  /** The unit counted (`vectors`, `checks`). */
  readonly noun: string;
  readonly total: number;
  readonly write: (text: string) => void;
  readonly intervalMs: number;
  readonly now?: () => number;
}

/** Elapsed time as `42s` or `3m05s`. */
export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** The text of one progress line (without the newline). */
export function progressLine(label: string, noun: string, counts: ProgressCounts, elapsedMs: number): string {
  const unexpected = counts.unexpected === undefined ? '' : `, ${counts.unexpected} unexpected`;
  return `vmemct: ${label}: ${counts.done}/${counts.total} ${noun}, ${formatElapsed(elapsedMs)} elapsed${unexpected}`;
}

/**
 * The progress mode of a command writing to `io`: none with `--quiet` or for an io that does not
 * say whether its stderr is a terminal (a test's, a program's); otherwise by the terminal.
 */
export function progressMode(io: { readonly stderrIsTerminal?: boolean }, quiet: boolean): ProgressMode {
  if (quiet || io.stderrIsTerminal === undefined) return 'none';
  return io.stderrIsTerminal ? 'terminal' : 'lines';
}

/** Starts a progress display of `options.mode`. */
export function startProgress(options: ProgressOptions): Progress {
  const now = options.now ?? Date.now;
  const started = now();
  let counts: ProgressCounts = { done: 0, total: options.total };
  if (options.mode === 'none') return { update: () => undefined, stop: () => undefined };
  if (options.mode === 'terminal') {
    // A terminal keeps today's display: one line rewritten at most twice a second, cleared at the end.
    let shown = started;
    return {
      update: (next) => {
        counts = next;
        if (now() - shown > 500) {
          shown = now();
          options.write(`\r[${counts.done}/${counts.total}] ${counts.last ?? ''}`.padEnd(80).slice(0, 100));
        }
      },
      stop: () => options.write(`\r${' '.repeat(100)}\r`),
    };
  }
  // Lines: one every interval while the command runs. The timer prints while one long case runs;
  // the check on each update prints when cases finish without yielding to timers (an in-process model).
  let printed = started;
  const print = (): void => {
    printed = now();
    options.write(`${progressLine(options.label, options.noun, counts, printed - started)}\n`);
  };
  const timer = setInterval(print, options.intervalMs);
  timer.unref();
  return {
    update: (next) => {
      counts = next;
      if (now() - printed >= options.intervalMs) print();
    },
    stop: () => clearInterval(timer),
  };
}
