/**
 * A client for QEMU's qtest text protocol: one command per line, one `OK …` / `FAIL …` /
 * `ERR …` line back per command, in order; `IRQ raise|lower N` lines arrive unasked.
 *
 * Commands are pipelined: a batch of lines goes out in one write and its answers are collected
 * in order, so a whole request (ring writes, kick, used-ring read) costs one round trip.
 *
 * qtest aborts QEMU on a malformed argument (a number it cannot parse, a zero length), so every
 * command is built here from numbers we format ourselves; nothing textual from a vector reaches it.
 */
import type { Readable, Writable } from 'node:stream';
import { formatHex } from '../../../spec/src/index';

/** Why a qtest batch did not complete. */
export class QtestError extends Error {
  override readonly name = 'QtestError';
}

interface Pending {
  readonly answers: string[];
  readonly expected: number;
  readonly resolve: (answers: string[]) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Formats an address or value the way qtest parses it (hexadecimal). */
export function hex(value: bigint | number): string {
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new RangeError(`qtest value out of range: ${v}`);
  return formatHex(v);
}

/** One qtest command, built from checked numbers only. */
export const qtestCommand = {
  readb: (addr: bigint) => `readb ${hex(addr)}`,
  readw: (addr: bigint) => `readw ${hex(addr)}`,
  readl: (addr: bigint) => `readl ${hex(addr)}`,
  readq: (addr: bigint) => `readq ${hex(addr)}`,
  writeb: (addr: bigint, v: number | bigint) => `writeb ${hex(addr)} ${hex(v)}`,
  writew: (addr: bigint, v: number | bigint) => `writew ${hex(addr)} ${hex(v)}`,
  writel: (addr: bigint, v: number | bigint) => `writel ${hex(addr)} ${hex(v)}`,
  writeq: (addr: bigint, v: number | bigint) => `writeq ${hex(addr)} ${hex(v)}`,
  outb: (port: number, v: number) => `outb ${hex(port)} ${hex(v)}`,
  outl: (port: number, v: number) => `outl ${hex(port)} ${hex(v)}`,
  inb: (port: number) => `inb ${hex(port)}`,
  inw: (port: number) => `inw ${hex(port)}`,
  inl: (port: number) => `inl ${hex(port)}`,
  outw: (port: number, v: number) => `outw ${hex(port)} ${hex(v)}`,
  /** Reads `length` (> 0) bytes of guest-physical memory. */
  read: (addr: bigint, length: number) => {
    if (!Number.isInteger(length) || length <= 0) throw new RangeError(`qtest read length must be positive: ${length}`);
    return `read ${hex(addr)} ${hex(length)}`;
  },
  /** Writes bytes (at least one) to guest-physical memory. */
  write: (addr: bigint, data: Uint8Array) => {
    if (data.length === 0) throw new RangeError('qtest write of no bytes');
    return `write ${hex(addr)} ${hex(data.length)} 0x${Buffer.from(data.buffer, data.byteOffset, data.length).toString('hex')}`;
  },
  /** Fills `length` (> 0) bytes with `byte`. */
  memset: (addr: bigint, length: number, byte: number) => {
    if (!Number.isInteger(length) || length <= 0)
      throw new RangeError(`qtest memset length must be positive: ${length}`);
    return `memset ${hex(addr)} ${hex(length)} ${hex(byte & 0xff)}`;
  },
} as const;

/** Reads the numeric value of an `OK 0x…` answer. */
export function answerValue(answer: string): bigint {
  const m = /^OK (0x[0-9a-fA-F]+)$/.exec(answer);
  if (!m) throw new QtestError(`unexpected qtest answer '${answer}'`);
  return BigInt(m[1]!);
}

/** Reads the bytes of an `OK 0x…` answer to `read`. */
export function answerBytes(answer: string, length: number): Uint8Array {
  const m = /^OK 0x([0-9a-fA-F]*)$/.exec(answer);
  if (!m || m[1]!.length !== length * 2)
    throw new QtestError(`unexpected qtest answer to a ${length}-byte read: '${answer.slice(0, 80)}'`);
  return new Uint8Array(Buffer.from(m[1]!, 'hex'));
}

/** A qtest connection over a pair of streams (QEMU's stdin and stdout with `-qtest stdio`). */
export class QtestClient {
  private readonly queue: Pending[] = [];
  private buffered = '';
  private failure: Error | undefined;
  /** Interrupt lines seen (`IRQ raise N`), for diagnostics. */
  irqLines = 0;

  constructor(
    private readonly input: Writable,
    output: Readable,
    /** Bound on one batch, in milliseconds. */
    private readonly batchTimeoutMs: number,
  ) {
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => this.onData(chunk));
    output.on('end', () => this.fail(new QtestError('qtest channel closed')));
    output.on('error', (e: Error) => this.fail(new QtestError(`qtest channel: ${e.message}`)));
    input.on('error', (e: Error) => this.fail(new QtestError(`qtest channel: ${e.message}`)));
  }

  /** Sends a batch of commands in one write; resolves with one answer per command. */
  batch(commands: readonly string[]): Promise<string[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (commands.length === 0) return Promise.resolve([]);
    return new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.fail(
            new QtestError(
              `qtest did not answer within ${this.batchTimeoutMs} ms (${commands[0]}${commands.length > 1 ? ` and ${commands.length - 1} more` : ''})`,
            ),
          ),
        this.batchTimeoutMs,
      );
      this.queue.push({ answers: [], expected: commands.length, resolve, reject, timer });
      this.input.write(`${commands.join('\n')}\n`);
    });
  }

  /** Sends one command and checks that it answered `OK`; returns the answer. */
  async command(command: string): Promise<string> {
    const [answer] = await this.batch([command]);
    return checkOk(command, answer!);
  }

  /** Rejects everything pending and refuses further commands. */
  fail(error: Error): void {
    if (!this.failure) this.failure = error;
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
  }

  /** The error that ended this client, if any. */
  get failed(): Error | undefined {
    return this.failure;
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (line.startsWith('IRQ ')) {
      this.irqLines++;
      return;
    }
    const head = this.queue[0];
    if (!head) return;
    head.answers.push(line);
    if (head.answers.length === head.expected) {
      this.queue.shift();
      clearTimeout(head.timer);
      head.resolve(head.answers);
    }
  }
}

/** Throws unless a qtest answer is `OK`. */
export function checkOk(command: string, answer: string): string {
  if (!answer.startsWith('OK')) throw new QtestError(`qtest '${command.slice(0, 60)}' answered '${answer}'`);
  return answer;
}
