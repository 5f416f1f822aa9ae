/**
 * One conversation with a harness over a {@link HarnessLink}: JSON Lines framing with the 1 MiB
 * line limit, the hello, and strict lock-step commands (one command, then its reply; while a
 * command that allows calls is pending, the harness's calls are answered by a handler). Every
 * line both ways can be logged (`--harness-log`).
 *
 * Anything off-protocol (malformed JSON, a non-object, an oversized line, a wrong id, a wrong
 * field, a call not allowed now, output when nothing is pending, an exit while a command is
 * pending) breaks the channel: the pending command fails with an {@link AdapterError} carrying
 * the reason and the harness's stderr tail, the harness is ended, and the adapter starts a fresh
 * one for the next vector. No reply within the timeout fails with {@link AdapterTimeoutError}.
 */
import * as fs from 'node:fs';
import { AdapterError, AdapterTimeoutError, UnsupportedSetupError } from '../../core/src/contract';
import {
  HARNESS_COMMANDS,
  HARNESS_LINE_LIMIT,
  decodeCall,
  decodeHello,
  decodeReply,
  encodeAnswer,
  encodeCommand,
  parseHarnessLine,
} from '../../../spec/src/index';
import type {
  HarnessAnswer,
  HarnessCall,
  HarnessCommand,
  HarnessHello,
  HarnessOp,
  HarnessParams,
  HarnessReplyFields,
} from '../../../spec/src/index';
import { openLink } from './harness-link';
import type { HarnessLink, HarnessTransport } from './harness-link';

/** The longest delay a Node.js timer keeps (a longer one fires at once). */
const LONGEST_TIMER_MS = 2_147_483_647;

/** Decodes a line's bytes; a byte sequence that is not UTF-8 is refused, not replaced. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Answers the harness's calls while a command is pending. */
export type CallHandler = (call: HarnessCall) => HarnessAnswer;

/** Appends every line both ways to a file as JSON Lines, with a time stamp and the direction. */
export class HarnessLog {
  private fd: number | undefined;
  constructor(file: string) {
    this.fd = fs.openSync(file, 'a');
  }
  /** Records one line (`to-harness`, `from-harness`) or a note about the harness (`event`); nothing once closed. */
  record(direction: 'to-harness' | 'from-harness' | 'event', line: string): void {
    if (this.fd === undefined) return;
    fs.writeSync(this.fd, `${JSON.stringify({ time: new Date().toISOString(), direction, line })}\n`);
  }
  /** Closes the file. */
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Options of a channel. */
export interface ChannelOptions {
  /** How long the harness may take for one message (the hello, a reply, the next call), in ms. */
  readonly timeoutMs: number;
  /** How long the harness may take to exit once its input is closed, then once it got SIGTERM, in ms. */
  readonly graceMs: number;
  readonly log?: HarnessLog;
}

interface Pending {
  readonly id: number;
  readonly op: HarnessOp;
  readonly timeoutMs: number;
  readonly onCall?: CallHandler;
  readonly resolve: (message: Record<string, unknown>) => void;
  readonly reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
}

/** A conversation with one harness process or connection. */
export class HarnessChannel {
  private readonly link: HarnessLink;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private nextId = 1;
  private pending?: Pending;
  private helloWaiter?: Pending;
  private hello?: HarnessHello;
  private ended?: Promise<void>;
  /** Why the channel is unusable (violation, timeout, exit); undefined while it is healthy. */
  broken?: string;
  /**
   * A violation no vector has been told of yet: one while no command was pending (a reply after
   * the last one, output before the first command), or one in a session's close.
   */
  untold?: AdapterError;

  /** The per-message timeout, in ms. */
  private timeoutMs: number;

  private constructor(
    transport: HarnessTransport,
    private readonly options: ChannelOptions,
  ) {
    this.timeoutMs = options.timeoutMs;
    options.log?.record('event', `start ${transport.kind === 'command' ? transport.program : transport.path}`);
    this.link = openLink(transport, {
      data: (chunk) => this.onData(chunk),
      closed: (why) => this.onClosed(why),
    });
  }

  /**
   * Starts (or connects to) a harness and reads its hello.
   * @throws AdapterError when it cannot start, says something else first, or sends a bad hello;
   *   AdapterTimeoutError when no hello comes within the timeout. The harness is ended then.
   */
  static async open(
    transport: HarnessTransport,
    options: ChannelOptions,
  ): Promise<{ channel: HarnessChannel; hello: HarnessHello }> {
    const channel = new HarnessChannel(transport, options);
    try {
      await new Promise<Record<string, unknown>>((resolve, reject) => {
        channel.helloWaiter = { id: 0, op: 'shutdown', timeoutMs: options.timeoutMs, resolve, reject };
        channel.arm(channel.helloWaiter);
      });
    } catch (error) {
      await channel.end();
      throw error;
    }
    return { channel, hello: channel.hello! };
  }

  /** The harness's process id (undefined over a socket). */
  get pid(): number | undefined {
    return this.link.pid;
  }

  /** Sets the per-message timeout for the commands sent from now on (once the hello's timeout_multiplier is known). */
  useTimeout(ms: number): void {
    this.timeoutMs = ms;
  }

  /** Whether a command is awaiting its reply. */
  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** The last 64 KiB of the harness's stderr. */
  stderrTail(): string {
    return this.link.stderrTail();
  }

  /**
   * Sends a command and waits for its success reply (answering calls with `onCall` meanwhile).
   * `extraMs` lengthens the timeout (a settle's own time limit).
   * @throws AdapterError for a harness `ok:false` reply (the channel stays usable) or a violation
   *   (the channel breaks); UnsupportedSetupError for `unsupported`; AdapterTimeoutError.
   */
  async command<O extends HarnessOp>(
    op: O,
    params: HarnessParams<O>,
    onCall?: CallHandler,
    extraMs = 0,
  ): Promise<HarnessReplyFields<O>> {
    if (this.broken !== undefined) {
      this.untold = undefined;
      throw new AdapterError(`the harness is unusable: ${this.broken}`, this.diagnostics());
    }
    if (this.pending) throw new AdapterError(`${op} sent while ${this.pending.op} is still pending`);
    const id = this.nextId++;
    const message = await new Promise<Record<string, unknown>>((resolve, reject) => {
      this.pending = { id, op, timeoutMs: this.timeoutMs + extraMs, onCall, resolve, reject };
      this.arm(this.pending);
      this.send(encodeCommand({ id, op, params } as HarnessCommand));
    });
    const reply = decodeReply(op, message);
    if (!reply.ok) {
      const error = this.violation(reply.reason);
      // The caller is told: the violation is not left for the next vector.
      this.untold = undefined;
      throw error;
    }
    if (reply.value.kind === 'error')
      throw new AdapterError(`the harness failed ${op}: ${reply.value.error}`, this.diagnostics());
    if (reply.value.kind === 'unsupported') throw new UnsupportedSetupError(reply.value.reason);
    return reply.value.fields as HarnessReplyFields<O>;
  }

  /**
   * Ends the conversation: a healthy, idle harness is sent `shutdown` first; then its input is
   * closed and it is given `graceMs`, then SIGTERM, then SIGKILL. Idempotent; never throws.
   */
  end(): Promise<void> {
    if (this.ended) return this.ended;
    this.ended = (async () => {
      if (this.broken === undefined && !this.pending && this.hello) {
        const grace = new Promise<void>((resolve) => setTimeout(resolve, this.options.graceMs).unref());
        await Promise.race([this.command('shutdown', {}).catch(() => undefined), grace]);
      }
      this.broken ??= 'ended';
      const waiter = this.pending;
      this.pending = undefined;
      if (waiter) {
        clearTimeout(waiter.timer);
        waiter.reject(new AdapterError('the harness was ended'));
      }
      await this.link.end(this.options.graceMs);
      this.options.log?.record('event', 'ended');
    })();
    return this.ended;
  }

  private diagnostics(): string | undefined {
    const tail = this.link.stderrTail();
    return tail.length > 0 ? tail : undefined;
  }

  private send(message: Record<string, unknown>): void {
    const line = JSON.stringify(message);
    this.options.log?.record('to-harness', line);
    this.link.write(`${line}\n`);
  }

  /** (Re)starts the timer of what is awaited. */
  private arm(waiter: Pending): void {
    if (waiter.timer) clearTimeout(waiter.timer);
    waiter.timer = setTimeout(
      () => {
        const what = waiter === this.helloWaiter ? 'its hello' : `the reply to ${waiter.op} (id ${waiter.id})`;
        const unfinished =
          this.bufferedBytes > 0 ? ` (it wrote ${this.bufferedBytes} bytes of a line and no newline)` : '';
        this.breakWith(
          new AdapterTimeoutError(
            `the harness sent nothing for ${waiter.timeoutMs} ms while vmemct awaited ${what}${unfinished}`,
            this.diagnostics(),
          ),
        );
      },
      Math.min(waiter.timeoutMs, LONGEST_TIMER_MS),
    );
  }

  /** Marks the channel broken with a violation, fails what is awaited and ends the harness. */
  private violation(reason: string): AdapterError {
    const error = new AdapterError(`harness protocol violation: ${reason}`, this.diagnostics());
    this.breakWith(error);
    return error;
  }

  private breakWith(error: AdapterError): void {
    if (this.broken === undefined) this.broken = error.message;
    this.options.log?.record('event', error.message);
    const waiter = this.pending ?? this.helloWaiter;
    this.pending = undefined;
    this.helloWaiter = undefined;
    if (waiter) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.reject(error);
    } else this.untold ??= error;
    this.buffered = [];
    this.bufferedBytes = 0;
    void this.link.end(this.options.graceMs);
  }

  private onClosed(why: string): void {
    this.options.log?.record('event', why);
    if (this.broken !== undefined) return;
    const waiter = this.pending ?? this.helloWaiter;
    if (waiter && waiter === this.helloWaiter)
      this.breakWith(new AdapterError(`${why} before its hello`, this.diagnostics()));
    else if (waiter) this.violation(`${why} while ${waiter.op} (id ${waiter.id}) was pending`);
    else this.broken = why;
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      if (this.broken !== undefined) return;
      const newline = chunk.indexOf(0x0a, start);
      if (newline < 0) {
        this.buffered.push(chunk.subarray(start));
        this.bufferedBytes += chunk.length - start;
        if (this.bufferedBytes >= HARNESS_LINE_LIMIT)
          this.violation(`a line longer than the limit of ${HARNESS_LINE_LIMIT} bytes`);
        return;
      }
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      if (this.bufferedBytes + piece.length + 1 > HARNESS_LINE_LIMIT) {
        this.violation(
          `a line of ${this.bufferedBytes + piece.length + 1} bytes exceeds the limit of ${HARNESS_LINE_LIMIT}`,
        );
        return;
      }
      const bytes = this.buffered.length > 0 ? Buffer.concat([...this.buffered, piece]) : piece;
      this.buffered = [];
      this.bufferedBytes = 0;
      let line: string;
      try {
        line = strictUtf8.decode(bytes);
      } catch {
        return void this.violation(`a line that is not UTF-8: ${printable(bytes)}`);
      }
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    this.options.log?.record('from-harness', line);
    const parsed = parseHarnessLine(line);
    if (!parsed.ok) return void this.violation(parsed.reason);
    const { shape, message } = parsed.value;
    if (this.helloWaiter) {
      if (shape !== 'hello') return void this.violation(`the harness wrote a ${shape} before its hello`);
      const hello = decodeHello(message);
      if (!hello.ok) return void this.violation(hello.reason);
      this.hello = hello.value;
      const waiter = this.helloWaiter;
      this.helloWaiter = undefined;
      clearTimeout(waiter.timer);
      return waiter.resolve(message);
    }
    const pending = this.pending;
    if (!pending) return void this.violation(`the harness wrote a ${shape} while no command was pending`);
    if (shape === 'reply') {
      if (message.id !== pending.id)
        return void this.violation(
          `a reply with id ${JSON.stringify(message.id)} while awaiting id ${pending.id} (${pending.op})`,
        );
      this.pending = undefined;
      clearTimeout(pending.timer);
      return pending.resolve(message);
    }
    if (shape !== 'call')
      return void this.violation(`the harness wrote a ${shape} while awaiting the reply to ${pending.op}`);
    const call = decodeCall(message);
    if (!call.ok) return void this.violation(call.reason);
    const allowed: readonly string[] = HARNESS_COMMANDS[pending.op].calls;
    if (!allowed.includes(call.value.call) || !pending.onCall)
      return void this.violation(
        `call ${call.value.call} while ${pending.op} is pending (allowed: ${allowed.length > 0 ? allowed.join(', ') : 'none'})`,
      );
    this.arm(pending);
    let answer: HarnessAnswer;
    try {
      answer = pending.onCall(call.value);
    } catch (error) {
      return void this.violation(`call ${call.value.call} during ${pending.op}: ${(error as Error).message}`);
    }
    this.send(encodeAnswer(answer));
  }
}

/** How many bytes of a refused line a message shows. */
const SHOWN_BYTES = 60;

/** The start of a line for a message: printable ASCII kept, other bytes as `\xNN`. */
function printable(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < Math.min(bytes.length, SHOWN_BYTES); i++) {
    const byte = bytes[i]!;
    text += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return bytes.length > SHOWN_BYTES ? `${text}…` : text;
}
