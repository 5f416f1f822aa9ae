/**
 * The harness of the vhost-user back-end's process tests (robustness and hostile input): the real
 * `vmemct serve-vhost-user` in a child process with its log collected, its fd count watched, and a
 * raw front-end that sends whatever bytes and fds it is given.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MessageChannel } from '../../vhost-user/src/channel';
import { connectVhostUserAdapter } from '../../vhost-user/src/vhost-user-adapter';
import { decodeResponse, encodeRequest } from '../../../model/src/codec/codec';
import { VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_RESP_ACK, VirtioMemResponseLayout } from '../../../spec/src/index';
import { VhostNative, openFdCount, vhostNative } from '../../vhost-user/src/native';
import {
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FLAG_VERSION,
  MemoryRegionLayout,
  MemoryTableHeaderLayout,
  Message,
  Request,
  U64Layout,
  decodeStruct,
  encodeStruct,
  frameMessage,
} from '../../vhost-user/src/protocol';

/** The checkout whose built CLI serves; VMEMCT_SERVER_ROOT names another (to see a test fail without a fix). */
const ROOT = process.env.VMEMCT_SERVER_ROOT ?? path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const BUILT_CLI = path.join(ROOT, 'dist', 'conformance', 'src', 'cli', 'main.js');
const LOG_PREFIX = 'serve-vhost-user: ';

const native: VhostNative = vhostNative();

/** The back-end under test: `vmemct serve-vhost-user` as a child process, its log lines collected. */
export class ServerUnderTest {
  /** stderr lines, without the `serve-vhost-user: ` prefix. */
  readonly lines: string[] = [];
  private exitInfo?: { code: number | null; signal: NodeJS.Signals | null };
  private readonly exited: Promise<void>;
  private partial = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly socketPath: string,
  ) {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      const text = this.partial + chunk;
      const parts = text.split('\n');
      this.partial = parts.pop()!;
      for (const line of parts) this.lines.push(line.startsWith(LOG_PREFIX) ? line.slice(LOG_PREFIX.length) : line);
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve();
      });
    });
  }

  /** Starts the server (with `extraArgs` after its socket) and waits for its "serving" line. */
  static async start(socketPath: string, extraArgs: readonly string[] = []): Promise<ServerUnderTest> {
    if (!fs.existsSync(BUILT_CLI))
      throw new Error(
        `the CLI is not built (${BUILT_CLI} is missing): run npm run build:native && npm run build first`,
      );
    const child = spawn(process.execPath, [CLI, 'serve-vhost-user', '--socket', socketPath, ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerUnderTest(child, socketPath);
    let stdout = '';
    child.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`the server did not start within 30 s; stdout: ${stdout}; stderr: ${server.lines.join(' | ')}`),
          ),
        30_000,
      );
      child.stdout!.on('data', (chunk: string) => {
        stdout += chunk;
        if (stdout.includes(`serving virtio-mem`) && stdout.includes(socketPath)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(`the server exited at start (code ${code}, signal ${signal}); stderr: ${server.lines.join(' | ')}`),
        );
      });
    });
    return server;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Whether the process is still running. */
  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** How the process ended, if it has. */
  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exitInfo;
  }

  /** A position in the log: lines after it are those logged from now on. */
  mark(): number {
    return this.lines.length;
  }

  /** The last lines of the log (for failure messages). */
  tail(count = 15): string {
    return this.lines.slice(-count).join('\n');
  }

  /** Waits for a log line matching `pattern` logged after `since`. */
  async waitForLine(pattern: RegExp, since: number, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(since).find((line) => pattern.test(line));
      if (found !== undefined) return found;
      if (!this.alive)
        throw new Error(
          `the server exited (${JSON.stringify(this.exitInfo)}) before logging ${pattern}; its last lines:\n${this.tail()}`,
        );
      if (Date.now() > deadline)
        throw new Error(
          `no log line matching ${pattern} within ${timeoutMs} ms; the lines since the mark:\n${this.lines.slice(since).slice(-20).join('\n')}`,
        );
      await sleep(10);
    }
  }

  /** Polls until `count` lines matching `pattern` were logged after `since` (or the time is up); returns how many were. */
  async settleLines(pattern: RegExp, since: number, count: number, timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const seen = (): number => this.lines.slice(since).filter((line) => pattern.test(line)).length;
    while (seen() < count && Date.now() < deadline) await sleep(20);
    return seen();
  }

  /** The process's open fd count. */
  fdCount(): number {
    return openFdCount(this.pid);
  }

  /** The open fds and what they are (for failure messages). */
  describeFds(): string {
    const entries: string[] = [];
    for (const fd of fs.readdirSync(`/proc/${this.pid}/fd`)) {
      try {
        entries.push(`${fd}→${fs.readlinkSync(`/proc/${this.pid}/fd/${fd}`)}`);
      } catch {
        /* closed meanwhile */
      }
    }
    return entries.sort((a, b) => parseInt(a, 10) - parseInt(b, 10)).join(' ');
  }

  /** Polls the fd count until it equals `expected` (or the time is up); returns the last count. */
  async settleFds(expected: number, timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let count = this.fdCount();
    while (count !== expected && Date.now() < deadline) {
      await sleep(20);
      count = this.fdCount();
    }
    return count;
  }

  /** SIGTERM, then waits for the exit (SIGKILL after 10 s). */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exitInfo!;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether an error is the one a send to a connection the server already closed gives. */
export function isPeerGone(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EPIPE' || code === 'ECONNRESET' || (e as Error).name === 'ChannelClosedError';
}

/** A front-end that sends whatever bytes and fds it is given (no protocol logic). */
export class RawPeer {
  readonly channel: MessageChannel;

  constructor(socketPath: string) {
    this.channel = new MessageChannel(native, native.connect(socketPath));
  }

  /** Sends raw bytes with fds; false when the server has closed the connection already. */
  sendBytes(bytes: Uint8Array, fds: readonly number[] = []): boolean {
    try {
      this.channel.sendRaw(bytes, fds);
      return true;
    } catch (e) {
      if (isPeerGone(e)) return false;
      throw e;
    }
  }

  /** Sends one well-framed message. */
  send(request: number, flags: number, payload?: Uint8Array, fds: readonly number[] = []): boolean {
    return this.sendBytes(frameMessage(request, flags, payload), fds);
  }

  /** The next reply, which must be for `request`. */
  async reply(request: number, timeoutMs = 10_000): Promise<Message> {
    const m = await this.channel.next(timeoutMs);
    if (!m) throw new Error(`the connection ended before the reply to request ${request}`);
    for (const fd of m.fds) native.close(fd);
    expect(m.request).toBe(request);
    expect(m.flags & FLAG_REPLY).toBe(FLAG_REPLY);
    return m;
  }

  /** Sends `request` with NEED_REPLY and returns the ack's value (0 = success). */
  async ack(request: number, payload?: Uint8Array, fds: readonly number[] = []): Promise<bigint> {
    expect(this.send(request, FLAG_VERSION | FLAG_NEED_REPLY, payload, fds)).toBe(true);
    const m = await this.reply(request);
    expect(m.payload.length).toBe(8);
    return decodeStruct(U64Layout, m.payload).value;
  }

  /** GET_FEATURES answers with 8 bytes: the connection still works. */
  async stillWorks(): Promise<void> {
    expect(this.send(Request.GET_FEATURES, FLAG_VERSION)).toBe(true);
    expect((await this.reply(Request.GET_FEATURES)).payload.length).toBe(8);
  }

  /**
   * Reads replies until none came for `quietMs`; true when the connection is still open then,
   * false when the server ended it.
   */
  async quiet(quietMs: number): Promise<boolean> {
    for (;;) {
      let m: Message | null;
      try {
        m = await this.channel.next(quietMs);
      } catch {
        return true;
      }
      if (m === null) return false;
      for (const fd of m.fds) native.close(fd);
    }
  }

  /** Waits for the server to end the connection; true when it did within the time. */
  async endedByServer(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.channel.next(Math.max(1, deadline - Date.now())).catch(() => undefined);
      if (m === null) return true;
      if (m === undefined) return false;
      for (const fd of m.fds) native.close(fd);
    }
  }

  close(): void {
    this.channel.close();
  }
}

/** A SET_MEM_TABLE payload for these regions. */
export function memTablePayload(
  count: number,
  regions: readonly { guestAddress: bigint; size: bigint; userAddress: bigint; mmapOffset: bigint }[],
): Buffer {
  const payload = Buffer.alloc(MemoryTableHeaderLayout.size + regions.length * MemoryRegionLayout.size);
  encodeStruct(MemoryTableHeaderLayout, { regions: count }, payload);
  regions.forEach((r, i) =>
    encodeStruct(MemoryRegionLayout, r, payload, MemoryTableHeaderLayout.size + i * MemoryRegionLayout.size),
  );
  return payload;
}

/** A normal client (the vhost-user adapter): a device set up and initialised, and a STATE request answered with ACK. */
export async function normalClientServed(socketPath: string): Promise<void> {
  const MiB = 1n << 20n;
  const adapter = await connectVhostUserAdapter({ socketPath });
  try {
    const setup = {
      block_size: 2n * MiB,
      region_size: 128n * MiB,
      addr: 1n << 32n,
      requested_size: 16n * MiB,
      node_id: 0,
      plugged: [],
    };
    const session = await adapter.openDevice(setup);
    const init = await session.initialise((offered) => offered);
    expect(init.featuresOk).toBe(true);
    const completion = await session.submit({
      readable: [encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: setup.addr, nb_blocks: 1 })],
      writableSizes: [VirtioMemResponseLayout.size],
    });
    expect(completion.kind).toBe('used');
    if (completion.kind === 'used') {
      const response = decodeResponse(completion.written);
      expect(response.ok && response.value.type).toBe(VIRTIO_MEM_RESP_ACK);
    }
    await session.close();
  } finally {
    await adapter.dispose();
  }
}
