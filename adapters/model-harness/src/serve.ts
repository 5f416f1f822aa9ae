/**
 * The served model's transports: a session on a pair of streams (stdio: the suite starts the
 * harness and talks over its stdin and stdout) and a unix-socket server (one session per
 * connection). Framing: JSON Lines, one message a line.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { LineChannel, ServedModelOptions, serveHarnessSession } from './harness-session';

/** Lines read from `input` and written to `output`. The input's end (or an error on either) ends the reading. */
export function streamLineChannel(input: Readable, output: Writable): LineChannel {
  const lines: string[] = [];
  const waiting: ((line: string | undefined) => void)[] = [];
  let partial = '';
  let ended = false;
  const deliver = (): void => {
    while (waiting.length && (lines.length || ended)) waiting.shift()!(lines.shift());
  };
  input.setEncoding('utf8');
  input.on('data', (chunk: string) => {
    let from = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', from)) {
      lines.push(partial + chunk.slice(from, nl));
      partial = '';
      from = nl + 1;
    }
    partial += chunk.slice(from);
    deliver();
  });
  const end = (): void => {
    if (ended) return;
    if (partial !== '') lines.push(partial);
    partial = '';
    ended = true;
    deliver();
  };
  input.on('end', end);
  input.on('close', end);
  input.on('error', end);
  output.on('error', end);
  return {
    read: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        deliver();
      }),
    write: (line) => {
      if (!output.destroyed && output.writable) output.write(`${line}\n`);
    },
  };
}

/** Serves one session over `input`/`output` (stdio by default) until the input ends. */
export async function serveHarnessStreams(
  options: ServedModelOptions,
  input: Readable = process.stdin,
  output: Writable = process.stdout,
): Promise<void> {
  await serveHarnessSession(streamLineChannel(input, output), options);
  input.pause();
}

/** A unix-socket server of the served model. */
export interface HarnessSocketServer {
  /** The socket path it listens on. */
  readonly socketPath: string;
  /** Stops listening, ends every open connection and removes the socket file. */
  close(): Promise<void>;
}

/** Why the socket server could not start. */
export class HarnessSocketError extends Error {
  override readonly name = 'HarnessSocketError';
}

/** Whether something accepts connections on `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Listens on `socketPath`, one session per connection. A stale socket file (nobody accepting)
 * is replaced; a live one, or a file that is not a socket, is left alone and refused.
 * @throws HarnessSocketError when the path is taken or cannot be bound.
 */
export async function serveHarnessSocket(
  socketPath: string,
  options: ServedModelOptions,
): Promise<HarnessSocketServer> {
  const stat = fs.lstatSync(socketPath, { throwIfNoEntry: false });
  if (stat && !stat.isSocket()) throw new HarnessSocketError(`${socketPath} exists and is not a socket`);
  if (stat) {
    if (await answers(socketPath)) throw new HarnessSocketError(`another server answers on ${socketPath}`);
    fs.rmSync(socketPath, { force: true });
  }
  const connections = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    void serveHarnessSession(streamLineChannel(socket, socket), options).then(() => socket.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new HarnessSocketError(`cannot listen on ${socketPath}: ${e.message}`)));
    server.listen(socketPath, () => resolve());
  });
  // Once listening, a failing accept must not bring the server down (each session handles its own socket's errors).
  server.on('error', () => undefined);
  return {
    socketPath,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of connections) socket.destroy();
      await closed;
      fs.rmSync(socketPath, { force: true });
    },
  };
}
