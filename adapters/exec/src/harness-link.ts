/**
 * The byte stream to one harness: a child process started from an argv (no shell) whose stdin
 * and stdout carry the protocol and whose stderr is kept as a 64 KiB tail, or a connection to a
 * unix socket the harness listens on. Ending a link never leaves a process behind: the input is
 * closed, then SIGTERM, then SIGKILL, each to the harness's whole process group; groups still
 * alive when vmemct exits are killed.
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';

/** How to reach a harness. */
export type HarnessTransport =
  | { readonly kind: 'command'; readonly program: string; readonly args: readonly string[] }
  | { readonly kind: 'socket'; readonly path: string };

/** How much of the harness's stderr is kept. */
export const STDERR_TAIL_BYTES = 64 * 1024;

/** What a link reports to its reader. */
export interface LinkEvents {
  /** Bytes from the harness's protocol stream. */
  data(chunk: Buffer): void;
  /** The stream ended (process exited, socket closed, or could not start); `why` says how. */
  closed(why: string): void;
}

/** One open byte stream to a harness. */
export interface HarnessLink {
  /** The child's process id (undefined for a socket). */
  readonly pid?: number;
  /** Writes bytes to the harness (ignored once the link is closed). */
  write(text: string): void;
  /** The last {@link STDERR_TAIL_BYTES} of the harness's stderr ('' for a socket). */
  stderrTail(): string;
  /**
   * Ends the link: closes the harness's input, waits `graceMs` for it to exit, then SIGTERM, then
   * SIGKILL after `graceMs` more (a socket is simply destroyed). Resolves once the process is gone.
   */
  end(graceMs: number): Promise<void>;
}

/** Process groups of harnesses alive now; killed if vmemct exits without ending them. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

/**
 * Sends `signal` to a harness's whole process group (the harness runs as its group's leader,
 * so what it started goes too); false when the group is gone.
 */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const group of liveGroups) signalGroup(group, 'SIGKILL');
    });
  }
}

/**
 * The last `limit` bytes of a stream, kept as the chunks that hold them (no copy per chunk, so a
 * flood passes through without piling up garbage).
 */
class ByteTail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  constructor(private readonly limit: number) {}
  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.length >= this.limit)
      this.bytes -= this.chunks.shift()!.length;
  }
  /** The tail as text (a character cut at the start is replaced). */
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/** How long the output may stay open after the harness exited (a process it started may hold it), in ms. */
const OUTPUT_AFTER_EXIT_MS = 500;
/** How long an exit may follow the end of the output before the end is reported on its own, in ms. */
const EXIT_AFTER_OUTPUT_MS = 200;

/** Names a transport for messages and reports: the command line, or the socket's path. */
export function describeTransport(transport: HarnessTransport): string {
  return transport.kind === 'command'
    ? [transport.program, ...transport.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')
    : `unix:${transport.path}`;
}

/** Opens a link: starts the program or connects to the socket. Problems arrive as `closed`. */
export function openLink(transport: HarnessTransport, events: LinkEvents): HarnessLink {
  return transport.kind === 'command'
    ? spawnLink(transport.program, transport.args, events)
    : socketLink(transport.path, events);
}

/**
 * Starts the harness as the leader of a new process group, so that ending it also ends what it
 * started (a grandchild that keeps the output open or lingers after the harness exits). The link
 * closes when the harness exits (its group is killed then), or when it closes its output while
 * still running.
 */
function spawnLink(program: string, args: readonly string[], events: LinkEvents): HarnessLink {
  const child = spawn(program, [...args], { stdio: ['pipe', 'pipe', 'pipe'], shell: false, detached: true });
  const pid = child.pid;
  if (pid !== undefined) trackGroup(pid);
  const stderr = new ByteTail(STDERR_TAIL_BYTES);
  let exitedAt: string | undefined;
  let closedReported = false;
  const report = (why: string): void => {
    if (closedReported) return;
    closedReported = true;
    events.closed(why);
  };
  let markGone: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => (markGone = resolve));
  let gone = false;
  const finish = (): void => {
    if (gone) return;
    gone = true;
    if (pid !== undefined) liveGroups.delete(pid);
    // Whatever the harness left in its group goes with it, and no longer holds the output open.
    if (pid !== undefined) signalGroup(pid, 'SIGKILL');
    child.stdout.destroy();
    child.stderr.destroy();
    child.stdin.destroy();
    report(exitedAt ?? 'the harness is gone');
    markGone();
  };
  child.once('exit', (code, signal) => {
    exitedAt = signal ? `the harness was killed by ${signal}` : `the harness exited with code ${code}`;
    // Lines already written are read first: the output ends soon after the exit, unless a
    // process the harness started holds it (then it is cut after a short while).
    if (child.stdout.readableEnded) finish();
    else {
      child.stdout.once('end', finish);
      setTimeout(finish, OUTPUT_AFTER_EXIT_MS).unref();
    }
  });
  child.once('error', (error) => {
    // spawn failures (ENOENT, EACCES) come here, and no 'exit' follows.
    if (pid === undefined) {
      exitedAt = `cannot start ${program}: ${error.message}`;
      finish();
    }
  });
  child.stdout.on('data', (chunk: Buffer) => events.data(chunk));
  child.stdout.once('end', () => {
    // An exit usually follows at once; a harness still running without its output is reported.
    setTimeout(() => {
      if (exitedAt === undefined) report('the harness closed its output but is still running');
    }, EXIT_AFTER_OUTPUT_MS).unref();
  });
  child.stdout.on('error', () => undefined);
  child.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));
  child.stderr.on('error', () => undefined);
  // A harness that exits while we write gives EPIPE; the 'exit' event reports the exit.
  child.stdin.on('error', () => undefined);
  const waitGone = (ms: number): Promise<boolean> =>
    gone
      ? Promise.resolve(true)
      : Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(gone), ms).unref())]);
  const kill = (signal: NodeJS.Signals): void => {
    if (pid === undefined || !signalGroup(pid, signal)) child.kill(signal);
  };
  return {
    pid,
    write(text) {
      if (!gone && child.stdin.writable) child.stdin.write(text);
    },
    stderrTail: () => stderr.text(),
    async end(graceMs) {
      if (gone) return;
      child.stdin.end();
      if (await waitGone(graceMs)) return;
      kill('SIGTERM');
      if (await waitGone(graceMs)) return;
      kill('SIGKILL');
      await exited;
    },
  };
}

function socketLink(path: string, events: LinkEvents): HarnessLink {
  const socket = net.createConnection({ path });
  let closed = false;
  socket.on('data', (chunk: Buffer) => events.data(chunk));
  socket.on('error', (error) => {
    if (!closed) {
      closed = true;
      events.closed(`cannot talk to the harness at ${path}: ${error.message}`);
    }
  });
  socket.on('close', () => {
    if (!closed) {
      closed = true;
      events.closed(`the harness at ${path} closed the connection`);
    }
  });
  return {
    write(text) {
      if (!closed) socket.write(text);
    },
    stderrTail: () => '',
    async end() {
      closed = true;
      socket.destroy();
    },
  };
}
