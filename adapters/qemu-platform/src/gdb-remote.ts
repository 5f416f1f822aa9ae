/**
 * A client of the GDB remote serial protocol, as QEMU's gdbstub speaks it (`-gdb
 * unix:PATH,server=on,wait=off`), over a unix socket: the few packets a host needs to stop a
 * guest's vCPU at a kernel address, read and write its registers and memory, and let it run on.
 *
 * Framing: a packet is `$DATA#CS`, CS the byte sum of DATA mod 256 in two hex digits; each side
 * acknowledges a packet with `+` (or asks for it again with `-`) until both agree on
 * `QStartNoAckMode`. The byte 0x03 outside a packet interrupts a running target. QEMU pauses
 * the whole machine while a client is attached and the target is stopped, and also when a
 * client connects.
 *
 * Every operation resolves with a tagged result ({@link GdbResult}); nothing here throws for a
 * stub's answer, a timeout or a closed socket. One command is on the wire at a time.
 */
import * as net from 'node:net';
import {
  X86_64Register,
  X86_64RegisterFile,
  decodeRegisterFile,
  readLittleEndian,
  registerSpec,
  writeLittleEndian,
} from './gdb-x86-64';

/** Why an operation failed. */
export type GdbFailureKind =
  /** No socket, or the stub is not there. */
  | 'unreachable'
  /** The stub did not answer within the bound. */
  | 'timeout'
  /** The connection ended. */
  | 'closed'
  /** The stub sent something this client cannot read (a bad packet, an oversized one, an odd reply). */
  | 'protocol'
  /** The stub answered with an error (`Exx`) or an empty reply (not supported). */
  | 'refused'
  /** The call does not fit the target's state (e.g. a register write while it runs). */
  | 'misuse';

/** A failed operation and why. */
export interface GdbFailure {
  readonly kind: GdbFailureKind;
  readonly message: string;
}

/** The outcome of one operation. */
export type GdbResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly failure: GdbFailure };

/** Why the target stopped, from a stop reply (`S`, `T`, `W`, `X`). */
export type StopReply =
  | {
      readonly kind: 'stopped';
      /** The signal number (5, SIGTRAP, for a breakpoint or a step; 2 for an interrupt under QEMU). */
      readonly signal: number;
      /** The stopping thread (`thread:` of a `T` reply), as the stub spelled it. */
      readonly thread?: string;
      /** Other `name:value` pairs of a `T` reply (e.g. `swbreak`). */
      readonly details: Readonly<Record<string, string>>;
    }
  | { readonly kind: 'exited'; readonly status: number }
  | { readonly kind: 'terminated'; readonly signal: number };

/** Bounds of a connection. */
export interface GdbClientOptions {
  /** Bound on each reply (default 5 s). */
  readonly timeoutMs?: number;
  /** Largest packet accepted from the stub (default 64 KiB); a longer one ends the connection. */
  readonly maxPacketBytes?: number;
  /** Largest memory transfer per packet (default 1024 bytes; longer ones are split). */
  readonly memoryChunkBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_PACKET = 64 * 1024;
const DEFAULT_MEMORY_CHUNK = 1024;
/** How often a packet the stub NAKs (`-`) is sent again before the connection is given up. */
const MAX_RESENDS = 3;
/** Bytes of target description asked for per `qXfer` packet. */
const XFER_CHUNK = 0x800;
/** Largest target description read (a bound against a stub that never ends it). */
const MAX_TARGET_XML = 1 << 20;

/** The checksum of a packet body: its byte sum mod 256, two lower-case hex digits. */
export function packetChecksum(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum = (sum + body.charCodeAt(i)) & 0xff;
  return sum.toString(16).padStart(2, '0');
}

/** A whole packet for `body` (`$body#cs`). The body must be 7-bit text without `$`, `#` or `}`. */
export function framePacket(body: string): string {
  return `$${body}#${packetChecksum(body)}`;
}

/** Hex digits of `bytes`, two per byte, in order. */
export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** The bytes of a hex string, or undefined when it is not an even number of hex digits. */
export function hexToBytes(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Undoes the protocol's binary escape (`}` then the byte XOR 0x20), used in `qXfer` replies. */
export function unescapeBinary(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '}' && i + 1 < body.length) out += String.fromCharCode(body.charCodeAt(++i) ^ 0x20);
    else out += body[i];
  }
  return out;
}

/** A stop reply's meaning, or undefined when `body` is not one. */
export function parseStopReply(body: string): StopReply | undefined {
  const code = body[0];
  const value = parseInt(body.slice(1, 3), 16);
  if (!/^[0-9a-fA-F]{2}/.test(body.slice(1, 3))) return undefined;
  if (code === 'S' && body.length === 3) return { kind: 'stopped', signal: value, details: {} };
  if (code === 'W') return { kind: 'exited', status: value };
  if (code === 'X') return { kind: 'terminated', signal: value };
  if (code !== 'T') return undefined;
  const details: Record<string, string> = {};
  let thread: string | undefined;
  for (const pair of body.slice(3).split(';')) {
    if (!pair) continue;
    const colon = pair.indexOf(':');
    const name = colon < 0 ? pair : pair.slice(0, colon);
    const v = colon < 0 ? '' : pair.slice(colon + 1);
    if (name === 'thread') thread = v;
    else details[name] = v;
  }
  return { kind: 'stopped', signal: value, thread, details };
}

function fail<T>(kind: GdbFailureKind, message: string): GdbResult<T> {
  return { ok: false, failure: { kind, message } };
}

function ok<T>(value: T): GdbResult<T> {
  return { ok: true, value };
}

function hex(value: bigint): string {
  return value.toString(16);
}

interface PacketWaiter {
  readonly resolve: (result: GdbResult<string>) => void;
  readonly timer: NodeJS.Timeout;
}

/** A connection to a gdbstub. */
export class GdbRemoteClient {
  private buffered = '';
  private readonly inbox: string[] = [];
  private waiter: PacketWaiter | undefined;
  private failure: GdbFailure | undefined;
  private acking = true;
  private lastSent = '';
  private resends = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private running = false;
  private readonly timeoutMs: number;
  private readonly maxPacketBytes: number;
  private readonly memoryChunkBytes: number;
  /** What the stub announced in its `qSupported` reply. */
  private features: ReadonlyMap<string, string> = new Map();

  private constructor(
    private readonly socket: net.Socket,
    options: GdbClientOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET;
    this.memoryChunkBytes = options.memoryChunkBytes ?? DEFAULT_MEMORY_CHUNK;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.end({ kind: 'closed', message: 'the gdbstub connection closed' }));
    socket.on('error', (e) => this.end({ kind: 'closed', message: `the gdbstub connection failed: ${e.message}` }));
  }

  /**
   * Connects to the stub at `socketPath` and agrees on the session: `qSupported`, no-ack mode
   * when offered, the target description read whole (QEMU answers `P` only after that) and
   * `?`. Resolves with the client and why the target is stopped (QEMU stops it on connect).
   */
  static async connect(
    socketPath: string,
    options: GdbClientOptions = {},
  ): Promise<GdbResult<{ readonly client: GdbRemoteClient; readonly stop: StopReply }>> {
    const opened = await new Promise<{ socket: net.Socket } | { error: string }>((resolve) => {
      const s = net.createConnection(socketPath);
      const timer = setTimeout(() => {
        s.destroy();
        resolve({ error: 'no answer' });
      }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve({ socket: s });
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        resolve({ error: e.message });
      });
    });
    if ('error' in opened)
      return fail('unreachable', `cannot connect to the gdbstub at ${socketPath}: ${opened.error}`);
    const socket = opened.socket;
    const client = new GdbRemoteClient(socket, options);
    const stop = await client.handshake();
    if (!stop.ok) {
      client.close();
      return stop;
    }
    return ok({ client, stop: stop.value });
  }

  /** Whether the target was resumed and has not been seen to stop since. */
  get targetRunning(): boolean {
    return this.running;
  }

  /** The stub's `qSupported` features (`name` → `+`, `-` or a value such as `PacketSize`). */
  get stubFeatures(): ReadonlyMap<string, string> {
    return this.features;
  }

  private async handshake(): Promise<GdbResult<StopReply>> {
    const supported = await this.command('qSupported:swbreak+;hwbreak+;xmlRegisters=i386');
    if (!supported.ok) return supported;
    const features = new Map<string, string>();
    for (const item of supported.value.split(';')) {
      const eq = item.indexOf('=');
      if (eq >= 0) features.set(item.slice(0, eq), item.slice(eq + 1));
      else if (item.endsWith('+') || item.endsWith('-')) features.set(item.slice(0, -1), item.slice(-1));
    }
    this.features = features;
    if (features.get('QStartNoAckMode') === '+') {
      const noAck = await this.command('QStartNoAckMode');
      if (!noAck.ok) return noAck;
      if (noAck.value !== 'OK') return fail('protocol', `QStartNoAckMode answered '${noAck.value}'`);
      this.acking = false;
    }
    if (features.get('qXfer:features:read') === '+') {
      const xml = await this.targetDescription();
      if (!xml.ok) return xml;
    }
    return this.haltReason();
  }

  /** Reads `target.xml` whole (QEMU's gdbstub answers `P` only once the client has read it). */
  async targetDescription(): Promise<GdbResult<string>> {
    let text = '';
    for (;;) {
      const r = await this.command(
        `qXfer:features:read:target.xml:${hex(BigInt(text.length))},${hex(BigInt(XFER_CHUNK))}`,
      );
      if (!r.ok) return r;
      const mark = r.value[0];
      if (mark !== 'm' && mark !== 'l')
        return fail('refused', `reading target.xml: the stub answered '${r.value.slice(0, 40)}'`);
      text += unescapeBinary(r.value.slice(1));
      if (mark === 'l') return ok(text);
      if (text.length > MAX_TARGET_XML) return fail('protocol', `target.xml is longer than ${MAX_TARGET_XML} bytes`);
    }
  }

  /** `?`: why the target is stopped. */
  async haltReason(): Promise<GdbResult<StopReply>> {
    const r = await this.command('?');
    if (!r.ok) return r;
    const stop = parseStopReply(r.value);
    return stop ? ok(stop) : fail('protocol', `'?' answered '${r.value.slice(0, 40)}', not a stop reply`);
  }

  /** `g`: the declared x86-64 registers of the stopped vCPU. */
  async readRegisters(): Promise<GdbResult<X86_64RegisterFile>> {
    const stopped = this.requireStopped('read registers');
    if (!stopped.ok) return stopped;
    const r = await this.command('g');
    if (!r.ok) return r;
    const bytes = this.expectHex(r.value, "'g'");
    if (!bytes.ok) return bytes;
    const file = decodeRegisterFile(bytes.value);
    return file.kind === 'ok' ? ok(file.registers) : fail('protocol', file.message);
  }

  /** `p`: one register of the stopped vCPU. */
  async readRegister(name: X86_64Register): Promise<GdbResult<bigint>> {
    const stopped = this.requireStopped(`read ${name}`);
    if (!stopped.ok) return stopped;
    const spec = registerSpec(name);
    const r = await this.command(`p${hex(BigInt(spec.number))}`);
    if (!r.ok) return r;
    const bytes = this.expectHex(r.value, `'p' of ${name}`);
    if (!bytes.ok) return bytes;
    if (bytes.value.length !== spec.size)
      return fail('protocol', `'p' of ${name} gave ${bytes.value.length} bytes, not ${spec.size}`);
    return ok(readLittleEndian(bytes.value));
  }

  /** `P`: sets one register of the stopped vCPU. */
  async writeRegister(name: X86_64Register, value: bigint): Promise<GdbResult<void>> {
    const stopped = this.requireStopped(`write ${name}`);
    if (!stopped.ok) return stopped;
    const spec = registerSpec(name);
    if (value < 0n || value >= 1n << BigInt(8 * spec.size))
      return fail('misuse', `${hex(value)} does not fit ${name} (${spec.size} bytes)`);
    const body = `P${hex(BigInt(spec.number))}=${bytesToHex(writeLittleEndian(value, spec.size))}`;
    return this.expectOk(await this.command(body), `writing ${name}`);
  }

  /** `m`: `length` bytes of guest-virtual memory at `address`, as the stopped vCPU sees it. */
  async readMemory(address: bigint, length: number): Promise<GdbResult<Uint8Array>> {
    const stopped = this.requireStopped('read memory');
    if (!stopped.ok) return stopped;
    const out = new Uint8Array(length);
    for (let at = 0; at < length; at += this.memoryChunkBytes) {
      const n = Math.min(this.memoryChunkBytes, length - at);
      const where = address + BigInt(at);
      const r = await this.command(`m${hex(where)},${hex(BigInt(n))}`);
      if (!r.ok) return r;
      if (/^E[0-9a-fA-F]{2}$/.test(r.value))
        return fail('refused', `reading ${n} bytes at 0x${hex(where)}: ${r.value}`);
      const bytes = this.expectHex(r.value, `'m' at 0x${hex(where)}`);
      if (!bytes.ok) return bytes;
      if (bytes.value.length !== n)
        return fail('refused', `reading ${n} bytes at 0x${hex(where)}: the stub gave ${bytes.value.length}`);
      out.set(bytes.value, at);
    }
    return ok(out);
  }

  /** `M`: writes `bytes` to guest-virtual memory at `address`. */
  async writeMemory(address: bigint, bytes: Uint8Array): Promise<GdbResult<void>> {
    const stopped = this.requireStopped('write memory');
    if (!stopped.ok) return stopped;
    for (let at = 0; at < bytes.length; at += this.memoryChunkBytes) {
      const part = bytes.subarray(at, at + this.memoryChunkBytes);
      const where = address + BigInt(at);
      const r = await this.command(`M${hex(where)},${hex(BigInt(part.length))}:${bytesToHex(part)}`);
      const done = this.expectOk(r, `writing ${part.length} bytes at 0x${hex(where)}`);
      if (!done.ok) return done;
    }
    return ok(undefined);
  }

  /** `Z0`: a software breakpoint at `address`. */
  async insertBreakpoint(address: bigint): Promise<GdbResult<void>> {
    return this.expectOk(await this.command(`Z0,${hex(address)},1`), `setting a breakpoint at 0x${hex(address)}`);
  }

  /** `z0`: removes the software breakpoint at `address`. */
  async removeBreakpoint(address: bigint): Promise<GdbResult<void>> {
    return this.expectOk(await this.command(`z0,${hex(address)},1`), `removing the breakpoint at 0x${hex(address)}`);
  }

  /** `c`: lets the target run; {@link waitForStop} then waits for it to stop. */
  async resume(): Promise<GdbResult<void>> {
    const stopped = this.requireStopped('continue');
    if (!stopped.ok) return stopped;
    const sent = await this.send('c');
    if (sent.ok) this.running = true;
    return sent;
  }

  /** `s`: runs one instruction on the stopped vCPU and waits for the stop. */
  async step(timeoutMs = this.timeoutMs): Promise<GdbResult<StopReply>> {
    const stopped = this.requireStopped('step');
    if (!stopped.ok) return stopped;
    const sent = await this.send('s');
    if (!sent.ok) return sent;
    this.running = true;
    return this.waitForStop(timeoutMs);
  }

  /** Waits for the running target's next stop reply (a breakpoint, a step, an interrupt). */
  async waitForStop(timeoutMs = this.timeoutMs): Promise<GdbResult<StopReply>> {
    if (!this.running) return fail('misuse', 'the target is not running, so no stop is coming');
    return this.serialised(async () => {
      for (;;) {
        const r = await this.nextPacket(timeoutMs);
        if (!r.ok)
          return r.failure.kind === 'timeout'
            ? fail<StopReply>('timeout', `the target did not stop within ${timeoutMs} ms`)
            : r;
        const stop = parseStopReply(r.value);
        if (!stop) continue;
        this.running = false;
        return ok(stop);
      }
    });
  }

  /** Stops a running target (the byte 0x03) and waits for its stop reply. */
  async interrupt(timeoutMs = this.timeoutMs): Promise<GdbResult<StopReply>> {
    if (!this.running) return fail('misuse', 'the target is not running');
    if (this.failure) return { ok: false, failure: this.failure };
    this.socket.write('\x03', 'latin1');
    return this.waitForStop(timeoutMs);
  }

  /** `D`: stops a running target first, then detaches (QEMU lets the machine run on). */
  async detach(): Promise<GdbResult<void>> {
    if (this.running) {
      const stopped = await this.interrupt();
      if (!stopped.ok) return stopped;
    }
    return this.expectOk(await this.command('D'), 'detaching');
  }

  /** Ends the connection. Never throws. */
  close(): void {
    this.end({ kind: 'closed', message: 'the gdbstub connection was closed by this client' });
    this.socket.destroy();
  }

  /** Sends `body` and returns the stub's reply (one command at a time). */
  command(body: string): Promise<GdbResult<string>> {
    if (this.running) return Promise.resolve(fail('misuse', `'${body.slice(0, 20)}' while the target runs`));
    return this.serialised(async () => {
      const sent = this.transmit(body);
      if (!sent.ok) return sent;
      for (;;) {
        const r = await this.nextPacket(this.timeoutMs);
        if (!r.ok) return r;
        // A stop reply for an earlier resume, or QEMU's report of the pause on connect, is not this reply.
        if (body !== '?' && parseStopReply(r.value)?.kind === 'stopped') continue;
        return r;
      }
    });
  }

  private serialised<T>(work: () => Promise<GdbResult<T>>): Promise<GdbResult<T>> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async send(body: string): Promise<GdbResult<void>> {
    return this.serialised(async () => this.transmit(body));
  }

  private transmit(body: string): GdbResult<void> {
    if (this.failure) return { ok: false, failure: this.failure };
    if (/[$#}]/.test(body) || body.length > this.maxPacketBytes)
      return fail('misuse', `cannot frame '${body.slice(0, 20)}' (reserved characters or too long)`);
    this.lastSent = framePacket(body);
    this.resends = 0;
    this.socket.write(this.lastSent, 'latin1');
    return ok(undefined);
  }

  private requireStopped(what: string): GdbResult<void> {
    if (this.failure) return { ok: false, failure: this.failure };
    return this.running ? fail('misuse', `cannot ${what} while the target runs`) : ok(undefined);
  }

  private expectOk(r: GdbResult<string>, what: string): GdbResult<void> {
    if (!r.ok) return r;
    if (r.value === 'OK') return ok(undefined);
    if (r.value === '') return fail('refused', `${what}: the stub does not support it (empty reply)`);
    return fail('refused', `${what}: the stub answered '${r.value.slice(0, 40)}'`);
  }

  private expectHex(value: string, what: string): GdbResult<Uint8Array> {
    if (value === '') return fail('refused', `${what}: the stub does not support it (empty reply)`);
    if (/^E[0-9a-fA-F]{2}$/.test(value)) return fail('refused', `${what}: the stub answered ${value}`);
    const bytes = hexToBytes(value);
    return bytes ? ok(bytes) : fail('protocol', `${what}: '${value.slice(0, 40)}' is not hex`);
  }

  private nextPacket(timeoutMs: number): Promise<GdbResult<string>> {
    if (this.inbox.length > 0) return Promise.resolve(ok(this.inbox.shift()!));
    if (this.failure) return Promise.resolve({ ok: false, failure: this.failure });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(fail('timeout', `the gdbstub did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { resolve, timer };
    });
  }

  private deliver(body: string): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.resolve(ok(body));
    } else if (this.inbox.length < 64) {
      this.inbox.push(body);
    }
  }

  private end(failure: GdbFailure): void {
    if (!this.failure) this.failure = failure;
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.resolve({ ok: false, failure: this.failure });
    }
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    for (;;) {
      const start = this.buffered.search(/[$%+-]/);
      if (start < 0) {
        this.buffered = '';
        return;
      }
      const mark = this.buffered[start];
      if (mark === '+') {
        this.buffered = this.buffered.slice(start + 1);
        continue;
      }
      if (mark === '-') {
        this.buffered = this.buffered.slice(start + 1);
        if (this.acking && this.lastSent) {
          if (++this.resends > MAX_RESENDS) {
            this.end({
              kind: 'protocol',
              message: `the gdbstub refused a packet ${MAX_RESENDS} times (bad checksum?)`,
            });
            this.socket.destroy();
            return;
          }
          this.socket.write(this.lastSent, 'latin1');
        }
        continue;
      }
      const hash = this.buffered.indexOf('#', start);
      if (hash < 0 || hash + 3 > this.buffered.length) {
        if (this.buffered.length - start > this.maxPacketBytes + 4) {
          this.end({ kind: 'protocol', message: `the gdbstub sent a packet longer than ${this.maxPacketBytes} bytes` });
          this.socket.destroy();
        }
        this.buffered = this.buffered.slice(start);
        return;
      }
      const body = this.buffered.slice(start + 1, hash);
      const sum = this.buffered.slice(hash + 1, hash + 3);
      this.buffered = this.buffered.slice(hash + 3);
      if (body.length > this.maxPacketBytes) {
        this.end({ kind: 'protocol', message: `the gdbstub sent a packet longer than ${this.maxPacketBytes} bytes` });
        this.socket.destroy();
        return;
      }
      const good = sum.toLowerCase() === packetChecksum(body);
      // `%` starts a notification: acknowledged by nobody, and not a reply.
      if (mark === '%') continue;
      if (this.acking) this.socket.write(good ? '+' : '-', 'latin1');
      if (good) this.deliver(body);
    }
  }
}
