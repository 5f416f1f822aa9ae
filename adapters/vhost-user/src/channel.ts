/**
 * One vhost-user connection: frames messages over a unix stream socket with their fds.
 *
 * Reads never cross a message boundary: the header is read first, then exactly `size` payload
 * bytes, so fds sent with a message stay with it. Readiness comes from a watch on Node's loop;
 * nothing blocks. A framing error (wrong version bits, a payload above {@link MAX_PAYLOAD}) or a
 * peer that hangs up mid-message ends the channel: the stream cannot be resynchronised.
 */
import {
  FLAG_VERSION_MASK,
  FLAG_VERSION,
  HEADER_SIZE,
  HeaderLayout,
  MAX_PAYLOAD,
  Message,
  decodeStruct,
  frameMessage,
} from './protocol';
import type { VhostNative, WatchHandle } from './native';

/** Why a channel ended. */
export type ChannelEnd =
  | { readonly kind: 'closed' }
  | { readonly kind: 'hang-up' }
  | { readonly kind: 'hang-up-mid-message'; readonly detail: string }
  | { readonly kind: 'framing-error'; readonly detail: string }
  | { readonly kind: 'io-error'; readonly detail: string };

/** A wait that outlived its bound. */
export class ChannelTimeoutError extends Error {
  override readonly name = 'ChannelTimeoutError';
}

/** The channel ended while a message was awaited or sent. */
export class ChannelClosedError extends Error {
  override readonly name = 'ChannelClosedError';
}

/** Human-readable description of a channel end. */
export function describeEnd(end: ChannelEnd): string {
  switch (end.kind) {
    case 'closed':
      return 'closed';
    case 'hang-up':
      return 'the peer hung up';
    case 'hang-up-mid-message':
      return `the peer hung up mid-message (${end.detail})`;
    case 'framing-error':
      return `framing error: ${end.detail}`;
    case 'io-error':
      return `I/O error: ${end.detail}`;
  }
}

interface Waiter {
  resolve(message: Message | null): void;
  reject(error: Error): void;
  timer?: NodeJS.Timeout;
}

/** A framed, fd-carrying message stream over one socket fd (which the channel owns). */
export class MessageChannel {
  private readonly queue: Message[] = [];
  private readonly waiters: Waiter[] = [];
  private watch?: WatchHandle;
  private header?: Buffer;
  private headerHave = 0;
  private payload?: Buffer;
  private payloadHave = 0;
  private pendingFds: number[] = [];
  private ended?: ChannelEnd;
  /** Called once when the channel ends (not when it is closed by {@link close}). */
  onEnd?: (end: ChannelEnd) => void;
  /** Called whenever a message is queued (for event-driven users). */
  onMessage?: () => void;

  /**
   * @param sendTimeoutMs how long a send waits for room in a full socket buffer (default 1000);
   *   0 never waits: a peer that does not read ends the channel at once (a server's choice).
   */
  constructor(
    private readonly native: VhostNative,
    readonly fd: number,
    private readonly sendTimeoutMs?: number,
  ) {
    this.watch = native.watch(fd, () => this.pump());
  }

  /** How the channel ended, if it has. */
  get end(): ChannelEnd | undefined {
    return this.ended;
  }

  /** Sends one message (header, payload and fds in one sendmsg). */
  send(request: number, flags: number, payload?: Uint8Array, fds: readonly number[] = []): void {
    if (this.ended) throw new ChannelClosedError(`cannot send: the channel ended (${describeEnd(this.ended)})`);
    try {
      this.native.sendMessage(this.fd, frameMessage(request, flags, payload), fds, this.sendTimeoutMs);
    } catch (e) {
      this.finish({ kind: 'io-error', detail: (e as Error).message });
      throw new ChannelClosedError(`send failed: ${(e as Error).message}`);
    }
  }

  /** Sends raw bytes, framed or not (for robustness tests). */
  sendRaw(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.ended) throw new ChannelClosedError('cannot send: the channel ended');
    this.native.sendMessage(this.fd, bytes, fds);
  }

  /** A message that is already queued, without waiting. */
  poll(): Message | undefined {
    return this.queue.shift();
  }

  /**
   * The next message; null once the channel has ended and nothing is queued.
   * @throws ChannelTimeoutError after `timeoutMs` (when given) without a message.
   */
  next(timeoutMs?: number): Promise<Message | null> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new ChannelTimeoutError(`no message within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  /** Closes the socket and every fd the channel still holds. Idempotent. */
  close(): void {
    if (this.ended) {
      for (const m of this.queue.splice(0)) for (const fd of m.fds) this.closeQuietly(fd);
      return;
    }
    this.finish({ kind: 'closed' });
  }

  private closeQuietly(fd: number): void {
    try {
      this.native.close(fd);
    } catch {
      /* already closed */
    }
  }

  private pump(): void {
    if (this.ended) return;
    for (;;) {
      const need =
        this.header === undefined || this.headerHave < HEADER_SIZE
          ? HEADER_SIZE - this.headerHave
          : this.payload!.length - this.payloadHave;
      if (need === 0) {
        this.complete();
        continue;
      }
      let got;
      try {
        got = this.native.receiveMessage(this.fd, need);
      } catch (e) {
        this.finish({ kind: 'io-error', detail: (e as Error).message });
        return;
      }
      if (got === null) return;
      this.pendingFds.push(...got.fds);
      if (got.data.length === 0) {
        const partial = this.headerHave > 0;
        this.finish(partial ? { kind: 'hang-up-mid-message', detail: this.describePartial() } : { kind: 'hang-up' });
        return;
      }
      if (got.truncatedFds) {
        this.finish({ kind: 'framing-error', detail: `more than the ${16} fds one message may carry` });
        return;
      }
      if (this.headerHave < HEADER_SIZE) {
        this.header ??= Buffer.alloc(HEADER_SIZE);
        got.data.copy(this.header, this.headerHave);
        this.headerHave += got.data.length;
        if (this.headerHave === HEADER_SIZE) {
          const h = decodeStruct(HeaderLayout, this.header);
          if ((h.flags & FLAG_VERSION_MASK) !== FLAG_VERSION) {
            this.finish({
              kind: 'framing-error',
              detail: `header flags 0x${h.flags.toString(16)}: version bits must be 0x1 (request ${h.request})`,
            });
            return;
          }
          if (h.size > MAX_PAYLOAD) {
            this.finish({
              kind: 'framing-error',
              detail: `payload size ${h.size} exceeds ${MAX_PAYLOAD} bytes (request ${h.request})`,
            });
            return;
          }
          this.payload = Buffer.alloc(h.size);
          this.payloadHave = 0;
        }
      } else {
        got.data.copy(this.payload!, this.payloadHave);
        this.payloadHave += got.data.length;
      }
    }
  }

  private describePartial(): string {
    if (this.headerHave < HEADER_SIZE) return `${this.headerHave} of ${HEADER_SIZE} header bytes`;
    return `${this.payloadHave} of ${this.payload!.length} payload bytes`;
  }

  private complete(): void {
    const h = decodeStruct(HeaderLayout, this.header!);
    const message: Message = { request: h.request, flags: h.flags, payload: this.payload!, fds: this.pendingFds };
    this.header = undefined;
    this.headerHave = 0;
    this.payload = undefined;
    this.payloadHave = 0;
    this.pendingFds = [];
    const waiter = this.waiters.shift();
    if (waiter) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve(message);
    } else {
      this.queue.push(message);
      this.onMessage?.();
    }
  }

  private finish(end: ChannelEnd): void {
    if (this.ended) return;
    this.ended = end;
    if (this.watch) this.native.unwatch(this.watch);
    this.watch = undefined;
    const closing = [this.fd, ...this.pendingFds];
    if (end.kind === 'closed') for (const m of this.queue.splice(0)) closing.push(...m.fds);
    this.pendingFds = [];
    for (const fd of closing) this.closeQuietly(fd);
    for (const w of this.waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(null);
    }
    if (end.kind !== 'closed') this.onEnd?.(end);
  }
}
