/**
 * The byte stream to one harness: a child process started from an argv (no shell) whose stdin
 * and stdout carry the protocol and whose stderr is kept as a 64 KiB tail, or a connection to a
 * unix socket the harness listens on. Ending a link never leaves a process behind: the input is
 * closed, then SIGTERM, then SIGKILL; children still alive when vmemct exits are killed.
 */
import { ChildProcess, spawn } from 'node:child_process';
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

/** Children alive now; killed if vmemct exits without ending them. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function trackChild(child: ChildProcess): void {
  liveChildren.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of liveChildren) c.kill('SIGKILL');
    });
  }
}

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

function spawnLink(program: string, args: readonly string[], events: LinkEvents): HarnessLink {
  const child = spawn(program, [...args], { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
  trackChild(child);
  let stderr = '';
  let gone = false;
  let closedReported = false;
  const exited = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      gone = true;
      liveChildren.delete(child);
      if (!closedReported) {
        closedReported = true;
        events.closed(signal ? `the harness was killed by ${signal}` : `the harness exited with code ${code}`);
      }
      resolve();
    });
    child.once('error', (error) => {
      // spawn failures (ENOENT, EACCES) come here, and no 'close' may follow.
      if (child.pid === undefined) {
        gone = true;
        liveChildren.delete(child);
        if (!closedReported) {
          closedReported = true;
          events.closed(`cannot start ${program}: ${error.message}`);
        }
        resolve();
      }
    });
  });
  child.stdout.on('data', (chunk: Buffer) => events.data(chunk));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr += text;
    if (stderr.length > STDERR_TAIL_BYTES) stderr = stderr.slice(stderr.length - STDERR_TAIL_BYTES);
  });
  // A harness that exits while we write gives EPIPE; the 'close' event reports the exit.
  child.stdin.on('error', () => undefined);
  const waitGone = (ms: number): Promise<boolean> =>
    gone
      ? Promise.resolve(true)
      : Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(gone), ms).unref())]);
  return {
    pid: child.pid,
    write(text) {
      if (!gone && child.stdin.writable) child.stdin.write(text);
    },
    stderrTail: () => stderr,
    async end(graceMs) {
      if (gone) return;
      child.stdin.end();
      if (await waitGone(graceMs)) return;
      child.kill('SIGTERM');
      if (await waitGone(graceMs)) return;
      child.kill('SIGKILL');
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
