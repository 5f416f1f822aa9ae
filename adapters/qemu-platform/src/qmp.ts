/**
 * A minimal QMP client: JSON objects, one per line, over a unix socket. Commands carry an `id`
 * so answers are matched to them; events are kept so callers can wait for one (e.g. `RESET`).
 */
import * as net from 'node:net';
import { sleep } from '../../core/src/sleep';

/** A QMP command that failed or could not be sent. */
export class QmpError extends Error {
  override readonly name = 'QmpError';
  constructor(
    message: string,
    readonly qmpClass?: string,
  ) {
    super(message);
  }
}

/** A QMP server listening on TCP (`-qmp tcp:HOST:PORT,server=on,wait=off`). */
export interface QmpTcpAddress {
  readonly host: string;
  readonly port: number;
}

/** An event QEMU sent. */
export interface QmpEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

interface Waiter {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** A connected QMP session (after `qmp_capabilities`). */
export class QmpClient {
  private buffered = '';
  private nextId = 1;
  private readonly waiting = new Map<string, Waiter>();
  private readonly events: QmpEvent[] = [];
  private readonly eventWaiters: { name: string; resolve: (e: QmpEvent) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;
  private greeted: (() => void) | undefined;
  private greetingFailed: ((e: Error) => void) | undefined;
  private greetingTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.fail(new QmpError('QMP connection closed')));
    socket.on('error', (e) => this.fail(new QmpError(`QMP connection: ${e.message}`)));
  }

  /**
   * Connects to `socketPath` (a unix socket, or a TCP address), retrying until `deadline` (epoch ms) while QEMU creates it; gives
   * up at once when `gone()` says QEMU has ended.
   */
  static async connect(
    socketPath: string | QmpTcpAddress,
    deadline: number,
    timeoutMs: number,
    gone: () => boolean = () => false,
  ): Promise<QmpClient> {
    const where = typeof socketPath === 'string' ? socketPath : `${socketPath.host}:${socketPath.port}`;
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s =
            typeof socketPath === 'string'
              ? net.createConnection(socketPath)
              : net.createConnection(socketPath.port, socketPath.host);
          s.once('connect', () => {
            s.removeAllListeners('error');
            resolve(s);
          });
          s.once('error', reject);
        });
        const client = new QmpClient(socket, timeoutMs);
        try {
          await client.handshake();
        } catch (e) {
          client.close();
          throw e;
        }
        return client;
      } catch (e) {
        if (Date.now() > deadline || gone())
          throw new QmpError(`cannot connect to QMP at ${where}: ${(e as Error).message}`);
        await sleep(5);
      }
    }
  }

  private async handshake(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.greetingTimer = setTimeout(() => reject(new QmpError('no QMP greeting')), this.timeoutMs);
      this.greeted = () => {
        clearTimeout(this.greetingTimer);
        resolve();
      };
      this.greetingFailed = reject;
    });
    await this.execute('qmp_capabilities');
  }

  /** Runs a command; resolves with its `return` value or rejects with QEMU's error description. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = `vmemct-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new QmpError(`QMP '${command}' did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      this.socket.write(
        `${encodeMessage(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`,
      );
    });
  }

  /** Resolves with the next `name` event (or one already received and not yet taken). */
  nextEvent(name: string, timeoutMs = this.timeoutMs): Promise<QmpEvent> {
    const index = this.events.findIndex((e) => e.event === name);
    if (index >= 0) return Promise.resolve(this.events.splice(index, 1)[0]!);
    return new Promise((resolve, reject) => {
      const entry = {
        name,
        resolve: (e: QmpEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.eventWaiters.splice(this.eventWaiters.indexOf(entry), 1);
        reject(new QmpError(`no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.eventWaiters.push(entry);
    });
  }

  /** Drops the events received so far. */
  clearEvents(): void {
    this.events.length = 0;
  }

  /** Closes the connection. */
  close(): void {
    this.fail(new QmpError('QMP connection closed'));
    this.socket.destroy();
  }

  private fail(error: Error): void {
    if (!this.failure) this.failure = error;
    clearTimeout(this.greetingTimer);
    this.greetingFailed?.(this.failure);
    for (const w of this.eventWaiters.splice(0)) w.reject(this.failure);
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(this.failure);
      this.waiting.delete(id);
    }
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline).trim();
      this.buffered = this.buffered.slice(newline + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in message) {
      this.greeted?.();
      return;
    }
    if (typeof message.event === 'string') {
      const event: QmpEvent = { event: message.event, data: (message.data as Record<string, unknown>) ?? {} };
      const w = this.eventWaiters.findIndex((x) => x.name === event.event);
      if (w >= 0) this.eventWaiters.splice(w, 1)[0]!.resolve(event);
      else if (this.events.length < 1000) this.events.push(event);
      return;
    }
    const id = typeof message.id === 'string' ? message.id : undefined;
    const waiter = id ? this.waiting.get(id) : undefined;
    if (!waiter || !id) return;
    this.waiting.delete(id);
    clearTimeout(waiter.timer);
    if ('error' in message) {
      const err = message.error as { class?: string; desc?: string };
      waiter.reject(new QmpError(err.desc ?? 'QMP error', err.class));
    } else {
      waiter.resolve(message.return);
    }
  }
}

const BIGINT_MARK = '\u0000bigint:';

/** JSON text of a QMP message; bigints become plain JSON integers (QMP's uint64 needs all 64 bits). */
export function encodeMessage(message: Record<string, unknown>): string {
  const text = JSON.stringify(message, (_key, value: unknown) =>
    typeof value === 'bigint' ? `${BIGINT_MARK}${value.toString()}` : value,
  );
  return text.replace(/"\\u0000bigint:(-?[0-9]+)"/g, '$1');
}
