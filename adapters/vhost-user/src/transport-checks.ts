/**
 * Transport checks: the vhost-user protocol itself, against any back-end (not only virtio-mem).
 *
 * The checks are declared once, as data, in {@link TRANSPORT_CHECKS}. Each opens its own
 * connection(s) to the back-end's socket and closes them before the next check starts, so the
 * checks also work against back-ends that serve one client at a time (libvhost-user's
 * qemu-storage-daemon). Every reply is held to the letter of the protocol: the same request code,
 * header flags exactly 0x5 (version 1 and REPLY), acks of 8 bytes.
 *
 * Verdicts:
 * - `pass`: the back-end behaved as the protocol requires;
 * - `fail`: the back-end broke the protocol, did not answer in time, or stopped serving (the
 *   detail says which message and how);
 * - `unsupported`: a protocol feature the check needs is not offered (the detail names it), or
 *   an input the check needs was not given (the back-end's PID for the fd check);
 * - `error`: our side failed (a memfd, an eventfd, /proc could not be used).
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ChannelClosedError, ChannelTimeoutError, MessageChannel, describeEnd } from './channel';
import type { MappingHandle, VhostNative } from './native';
import {
  ConfigHeaderLayout,
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FLAG_VERSION,
  HEADER_SIZE,
  Message,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  Request,
  U64Layout,
  VRING_NOFD,
  VringAddressLayout,
  VringStateLayout,
  decodeStruct,
  encodeStruct,
  frameMessage,
  protocolFeatureName,
  protocolFeatureNames,
  protocolMask,
  requestName,
  u64Payload,
  memoryTablePayload,
  singleRegionPayload,
} from './protocol';

/** Verdict of one transport check. */
export type CheckVerdict = 'pass' | 'fail' | 'unsupported' | 'error';

/** Result of one transport check. */
export interface CheckResult {
  readonly id: string;
  readonly title: string;
  readonly verdict: CheckVerdict;
  readonly detail: string;
  readonly durationMs: number;
}

/** Options of {@link runTransportChecks}. */
export interface TransportCheckOptions {
  readonly socketPath: string;
  /** The back-end's PID, for the fd-leak check (it reads /proc/PID/fd). */
  readonly backendPid?: number;
  readonly native: VhostNative;
  readonly replyTimeoutMs?: number;
}

/** The back-end cannot be reached at all. */
export class TransportCheckError extends Error {
  override readonly name = 'TransportCheckError';
}

/** The back-end broke the protocol, did not answer in time or stopped serving: the check fails with this message. */
export class BackendFault extends Error {
  override readonly name = 'BackendFault';
}

/** Something the check needs is not available: the check is `unsupported` with this message. */
export class CheckNotApplicable extends Error {
  override readonly name = 'CheckNotApplicable';
}

/** What a check's `run` settles (a thrown {@link BackendFault} is a `fail`, any other error an `error`). */
export interface CheckOutcome {
  readonly verdict: CheckVerdict;
  readonly detail: string;
}

/** The opening a connection runs before the check proper. */
export interface OpeningOptions {
  /**
   * Protocol features to negotiate when offered (default MQ and REPLY_ACK). The check's own
   * `needs` are always added.
   */
  readonly protocol?: readonly number[];
  /** Send SET_OWNER and SET_FEATURES (bit 30 and VERSION_1 when offered) after the protocol features (default true). */
  readonly own?: boolean;
}

/** What a check gets to work with. */
export interface TransportCheckContext {
  readonly native: VhostNative;
  readonly socketPath: string;
  readonly backendPid?: number;
  readonly replyTimeoutMs: number;
  /**
   * Connects and runs the opening: GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES,
   * then (unless `own: false`) SET_OWNER and SET_FEATURES.
   * @throws CheckNotApplicable when a protocol feature in the check's `needs` is not offered.
   */
  open(options?: OpeningOptions): Promise<CheckConnection>;
  /** Connects without sending anything. */
  connect(): CheckConnection;
}

/** One transport check, declared as data. */
export interface TransportCheck {
  /** Stable identifier, `vu.…`. */
  readonly id: string;
  readonly title: string;
  /** Protocol feature bits the check needs; without them it is `unsupported`. */
  readonly needs?: readonly number[];
  run(ctx: TransportCheckContext): Promise<CheckOutcome>;
}

/** Header flags every reply must carry: version 1 and REPLY. */
const REPLY_FLAGS = FLAG_VERSION | FLAG_REPLY;
/** VIRTIO_F_VERSION_1: the one transport feature the checks acknowledge besides bit 30. */
const VIRTIO_F_VERSION_1 = 1n << 32n;
/** Size of the small memfd regions the memory checks share. */
const SMALL_REGION_SIZE = 64n * 1024n;
/** Where the memory checks place their regions: 1 MiB apart, so none overlaps another. */
const REGION_STRIDE = 1n << 20n;
/** Queue size of the rings the checks set up. */
const RING_SIZE = 256;
/** Offsets of the ring parts inside the ring region (each part fits before the next). */
const RING_LAYOUT = { desc: 0n, avail: 0x1000n, used: 0x2000n } as const;
/** GET_CONFIG reads this many bytes at offset 0 (every device with a config space has that many). */
const CONFIG_PROBE_SIZE = 4;
/** ADD_MEM_REG regions at once in vu.mem-slots, at most. */
const MEM_SLOTS_CAP = 256;
/** Add/remove operations of the churn in vu.mem-slots. */
const MEM_SLOT_CHURN_OPS = 500;
/** Replacements of each fd kind in vu.fd-hygiene while connected. */
const FD_REPLACEMENTS = 10;
/** Extra connections in vu.fd-hygiene. */
const FD_CHURN_CONNECTIONS = 5;
/** How far the fd count may rise while 10 replacements of each kind are made (lazily created fds). */
const FD_GROWTH_ALLOWED = 2;
/** How long the fd count may take to settle after the connections close. */
const FD_SETTLE_MS = 3000;
/** A check that takes longer than this fails. */
const CHECK_DEADLINE_MS = 60_000;
const DEFAULT_REPLY_TIMEOUT_MS = 2000;

function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

function describeBits(mask: bigint): string {
  const names = protocolFeatureNames(mask);
  return names.length ? `${hex(mask)} (${names.join(', ')})` : hex(mask);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** errno codes of a connect that mean the back-end is not (or no longer) serving. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EAGAIN', 'ETIMEDOUT', 'ENOTSOCK']);

/** A memfd region shared with the back-end. */
export interface CheckRegion {
  /** -1 once closed on our side (the mapping keeps the memory alive). */
  fd: number;
  readonly mapping: MappingHandle;
  readonly guestAddress: bigint;
  readonly size: bigint;
  readonly userAddress: bigint;
}

/**
 * One connection to the back-end with strict reply checking. Every message it sends is counted;
 * everything it creates (regions, eventfds, back-end channels) is released by {@link close}.
 */
export class CheckConnection {
  /** GET_FEATURES, once the opening ran. */
  offeredFeatures = 0n;
  /** GET_PROTOCOL_FEATURES, once the opening ran (0 without bit 30). */
  offeredProtocolFeatures = 0n;
  /** The protocol features sent in SET_PROTOCOL_FEATURES. */
  protocolFeatures = 0n;
  /** Messages sent so far. */
  sent = 0;
  private readonly channel: MessageChannel;
  private readonly regions = new Set<CheckRegion>();
  private readonly eventfds = new Set<number>();
  private readonly sideChannels = new Set<MessageChannel>();
  private closed = false;

  constructor(
    readonly native: VhostNative,
    fd: number,
    readonly replyTimeoutMs: number,
  ) {
    this.channel = new MessageChannel(native, fd);
  }

  /** Whether REPLY_ACK is negotiated (so {@link command} asks for and checks an ack). */
  get acks(): boolean {
    return this.has(ProtocolFeature.REPLY_ACK);
  }

  /** Whether a protocol feature is negotiated. */
  has(bit: number): boolean {
    return (this.protocolFeatures & protocolMask(bit)) !== 0n;
  }

  /** Whether the back-end ended the connection (or the channel failed). */
  get ended(): boolean {
    return this.channel.end !== undefined && this.channel.end.kind !== 'closed';
  }

  private endText(): string {
    const end = this.channel.end;
    return end ? describeEnd(end) : 'the connection is open';
  }

  /** Sends one message. @throws BackendFault when the connection has ended. */
  send(request: number, flags: number, payload?: Uint8Array, fds: readonly number[] = []): void {
    try {
      this.channel.send(request, flags, payload, fds);
      this.sent++;
    } catch (e) {
      if (e instanceof ChannelClosedError) throw new BackendFault(`${requestName(request)}: cannot send, the connection ended (${this.endText()})`);
      throw e;
    }
  }

  /** Sends bytes as they are (for partial messages). */
  sendRaw(bytes: Uint8Array): void {
    this.channel.sendRaw(bytes);
  }

  /**
   * The next message, whatever it is; its fds are closed.
   * @throws BackendFault on a timeout or when the connection ends first.
   */
  async receive(label: string): Promise<Message> {
    let message: Message | null;
    try {
      message = await this.channel.next(this.replyTimeoutMs);
    } catch (e) {
      if (e instanceof ChannelTimeoutError) throw new BackendFault(`${label}: no reply within ${this.replyTimeoutMs} ms`);
      throw e;
    }
    if (!message) throw new BackendFault(`${label}: ${this.endText()} before replying`);
    for (const fd of message.fds) this.closeQuietly(fd);
    return message;
  }

  /**
   * The reply to `request`: the same request code, flags exactly 0x5, no fds.
   * @throws BackendFault otherwise.
   */
  async reply(request: number, label = requestName(request)): Promise<Message> {
    const m = await this.receive(label);
    if (m.request !== request) throw new BackendFault(`${label}: the next message is ${requestName(m.request)} (code ${m.request}), not the reply to ${requestName(request)} (code ${request})`);
    if (m.flags !== REPLY_FLAGS) throw new BackendFault(`${label}: reply flags ${hex(m.flags)}, expected 0x5 (version 1 + REPLY)`);
    if (m.fds.length) throw new BackendFault(`${label}: the reply carries ${m.fds.length} fd(s)`);
    return m;
  }

  /** Checks an ack: the reply to `request` with an 8-byte payload of 0. */
  async ack(request: number, label = requestName(request)): Promise<void> {
    const m = await this.reply(request, `${label} ack`);
    if (m.payload.length !== 8) throw new BackendFault(`${label}: the ack has ${m.payload.length} bytes, expected 8`);
    const value = decodeStruct(U64Layout, m.payload).value;
    if (value !== 0n) throw new BackendFault(`${label}: the back-end reported failure (ack ${value})`);
  }

  /** Sends a GET_* and returns its u64 answer. */
  async queryU64(request: number, label = requestName(request)): Promise<bigint> {
    this.send(request, FLAG_VERSION);
    const m = await this.reply(request, label);
    if (m.payload.length !== 8) throw new BackendFault(`${label}: reply of ${m.payload.length} bytes, expected 8`);
    return decodeStruct(U64Layout, m.payload).value;
  }

  /** Sends a request that has no reply of its own; with REPLY_ACK it sets NEED_REPLY and checks the ack. */
  async command(request: number, payload?: Uint8Array, fds: readonly number[] = [], label = requestName(request)): Promise<void> {
    this.send(request, FLAG_VERSION | (this.acks ? FLAG_NEED_REPLY : 0), payload, fds);
    if (this.acks) await this.ack(request, label);
  }

  /**
   * A GET_FEATURES round trip: every earlier message was handled, nothing stray came before its
   * reply and the connection is alive.
   */
  async sync(label = 'GET_FEATURES (sync)'): Promise<void> {
    await this.queryU64(Request.GET_FEATURES, label);
  }

  /** The opening (see {@link TransportCheckContext.open}); `needs` must be offered. */
  async opening(needs: readonly number[], options: OpeningOptions = {}): Promise<string[]> {
    const transcript: string[] = [];
    this.offeredFeatures = await this.queryU64(Request.GET_FEATURES);
    transcript.push(`GET_FEATURES ${hex(this.offeredFeatures)}`);
    const speaksProtocol = (this.offeredFeatures & PROTOCOL_FEATURES_BIT) !== 0n;
    if (speaksProtocol) {
      this.offeredProtocolFeatures = await this.queryU64(Request.GET_PROTOCOL_FEATURES);
      transcript.push(`GET_PROTOCOL_FEATURES ${describeBits(this.offeredProtocolFeatures)}`);
    }
    const missing = needs.filter((bit) => !(this.offeredProtocolFeatures & protocolMask(bit)));
    if (missing.length) {
      const names = missing.map((bit) => `${protocolFeatureName(bit)} (protocol feature ${bit})`).join(', ');
      throw new CheckNotApplicable(
        speaksProtocol
          ? `the back-end does not offer ${names}; it offers protocol features ${describeBits(this.offeredProtocolFeatures)}`
          : `the back-end does not offer protocol features at all (virtio feature bit 30 clear), so not ${names}`,
      );
    }
    if (speaksProtocol) {
      const wanted = protocolMask(...(options.protocol ?? [ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK]), ...needs);
      this.protocolFeatures = this.offeredProtocolFeatures & wanted;
      // Sent without NEED_REPLY, as QEMU does: whether REPLY_ACK already applies to the message
      // that negotiates it is not settled by the spec. The SET_OWNER ack below proves it was taken.
      this.send(Request.SET_PROTOCOL_FEATURES, FLAG_VERSION, u64Payload(this.protocolFeatures));
      transcript.push(`SET_PROTOCOL_FEATURES ${describeBits(this.protocolFeatures)}`);
    }
    if (options.own ?? true) {
      await this.command(Request.SET_OWNER);
      const features = this.offeredFeatures & (PROTOCOL_FEATURES_BIT | VIRTIO_F_VERSION_1);
      await this.command(Request.SET_FEATURES, u64Payload(features));
      transcript.push(`SET_OWNER${this.acks ? ' acked' : ''}`, `SET_FEATURES ${hex(features)}${this.acks ? ' acked' : ''}`);
    }
    return transcript;
  }

  /** A new memfd region of `size` bytes at `guestAddress`, mapped here; not yet shared. */
  createRegion(guestAddress: bigint, size: bigint = SMALL_REGION_SIZE): CheckRegion {
    const fd = this.native.memfd('vmemct-check', size);
    try {
      const mapping = this.native.map(fd, size, 0);
      const region: CheckRegion = { fd, mapping, guestAddress, size, userAddress: this.native.address(mapping) };
      this.regions.add(region);
      return region;
    } catch (e) {
      this.native.close(fd);
      throw e;
    }
  }

  /** Closes our fd of a region (the mapping stays). */
  closeRegionFd(region: CheckRegion): void {
    if (region.fd >= 0) this.closeQuietly(region.fd);
    region.fd = -1;
  }

  /** Unmaps a region and closes its fd. */
  releaseRegion(region: CheckRegion): void {
    if (!this.regions.delete(region)) return;
    this.closeRegionFd(region);
    try {
      this.native.unmap(region.mapping);
    } catch {
      /* already unmapped */
    }
  }

  /** SET_MEM_TABLE with these regions (at most 8), each with its fd. */
  async setMemTable(regions: readonly CheckRegion[], label = 'SET_MEM_TABLE'): Promise<void> {
    await this.command(Request.SET_MEM_TABLE, memoryTablePayload(regions), regions.map((r) => r.fd), label);
  }

  /** ADD_MEM_REG of one region (its fd goes along). */
  async addRegion(region: CheckRegion, label = 'ADD_MEM_REG'): Promise<void> {
    await this.command(Request.ADD_MEM_REG, singleRegionPayload(region), [region.fd], label);
  }

  /** REM_MEM_REG of one region. */
  async removeRegion(region: CheckRegion, label = 'REM_MEM_REG'): Promise<void> {
    await this.command(Request.REM_MEM_REG, singleRegionPayload(region), [], label);
  }

  /** A new eventfd, closed with the connection. */
  eventfd(): number {
    const fd = this.native.eventfd();
    this.eventfds.add(fd);
    return fd;
  }

  /** Closes an eventfd made by {@link eventfd}. */
  closeEventfd(fd: number): void {
    if (this.eventfds.delete(fd)) this.closeQuietly(fd);
  }

  /**
   * A socket pair for SET_BACKEND_REQ_FD: `theirs` goes to the back-end (close it after sending),
   * `ours` is served here, answering NEED_REPLY requests with failure (the checks implement none).
   */
  backendChannelPair(): { ours: MessageChannel; theirs: number; received: number[] } {
    const [ours, theirs] = this.native.socketPair();
    const channel = new MessageChannel(this.native, ours);
    const received: number[] = [];
    channel.onMessage = () => {
      for (let m = channel.poll(); m; m = channel.poll()) {
        for (const fd of m.fds) this.closeQuietly(fd);
        received.push(m.request);
        if (m.flags & FLAG_NEED_REPLY) {
          try {
            channel.send(m.request, REPLY_FLAGS, u64Payload(1n));
          } catch {
            /* the back-end went away */
          }
        }
      }
    };
    this.sideChannels.add(channel);
    return { ours: channel, theirs, received };
  }

  /** Closes a back-end channel made by {@link backendChannelPair}. */
  closeSideChannel(channel: MessageChannel): void {
    this.sideChannels.delete(channel);
    channel.close();
  }

  /** Closes the connection and everything made through it. Never throws; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
    for (const c of this.sideChannels) c.close();
    this.sideChannels.clear();
    for (const fd of this.eventfds) this.closeQuietly(fd);
    this.eventfds.clear();
    for (const r of [...this.regions]) this.releaseRegion(r);
  }

  /** Closes an fd, ignoring an fd that is closed already. */
  closeQuietly(fd: number): void {
    try {
      this.native.close(fd);
    } catch {
      /* already closed */
    }
  }
}

function vringState(index: number, num: number): Buffer {
  return encodeStruct(VringStateLayout, { index, num });
}

/** Ring parts' user addresses inside a ring region. */
function ringAddresses(region: CheckRegion): { desc: bigint; avail: bigint; used: bigint } {
  return { desc: region.userAddress + RING_LAYOUT.desc, avail: region.userAddress + RING_LAYOUT.avail, used: region.userAddress + RING_LAYOUT.used };
}

/**
 * Sets up vring 0 in `ring` (a region already in the memory table): size, base, addresses, kick
 * and call eventfds, and (with protocol features) enable. The ring's avail and used indices are
 * written as `base` first, so the ring is consistent and holds no work.
 */
async function setUpVring(c: CheckConnection, ring: CheckRegion, base: number): Promise<{ kick: number; call: number }> {
  const idx = Buffer.alloc(2);
  idx.writeUInt16LE(base);
  c.native.write(ring.mapping, RING_LAYOUT.avail + 2n, idx);
  c.native.write(ring.mapping, RING_LAYOUT.used + 2n, idx);
  await c.command(Request.SET_VRING_NUM, vringState(0, RING_SIZE));
  await c.command(Request.SET_VRING_BASE, vringState(0, base));
  const a = ringAddresses(ring);
  await c.command(Request.SET_VRING_ADDR, encodeStruct(VringAddressLayout, { index: 0, flags: 0, desc: a.desc, used: a.used, avail: a.avail, log: 0n }));
  const kick = c.eventfd();
  const call = c.eventfd();
  await c.command(Request.SET_VRING_KICK, u64Payload(0n), [kick]);
  await c.command(Request.SET_VRING_CALL, u64Payload(0n), [call]);
  if (c.offeredFeatures & PROTOCOL_FEATURES_BIT) await c.command(Request.SET_VRING_ENABLE, vringState(0, 1));
  return { kick, call };
}

function pass(detail: string): CheckOutcome {
  return { verdict: 'pass', detail };
}

/** A deterministic pseudo-random sequence (the churn must be the same on every run). */
function sequence(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
}

/** The fds a process has open, by target (`socket:[…]`, `/memfd:vmemct-check (deleted)`, …). */
function openFdTargets(pid: number): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(`/proc/${pid}/fd`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BackendFault(`the back-end process ${pid} is gone`);
    throw new Error(`cannot read /proc/${pid}/fd: ${(e as Error).message}`);
  }
  const targets: string[] = [];
  for (const name of names) {
    try {
      targets.push(fs.readlinkSync(`/proc/${pid}/fd/${name}`).replace(/\[\d+\]$/, '[…]'));
    } catch {
      /* closed meanwhile */
    }
  }
  return targets;
}

/** What `after` has beyond `before`, counted by target. */
function fdDifference(before: readonly string[], after: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const t of after) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const t of before) counts.set(t, (counts.get(t) ?? 0) - 1);
  const extra = [...counts].filter(([, n]) => n > 0).map(([t, n]) => `${t} ×${n}`);
  return extra.length ? extra.join(', ') : 'no new targets (others were replaced)';
}

/** Waits until the count is at most `limit` (or `ms` pass); the last snapshot. */
async function fdCountWithin(pid: number, limit: number, ms: number): Promise<string[]> {
  const deadline = performance.now() + ms;
  for (;;) {
    const now = openFdTargets(pid);
    if (now.length <= limit || performance.now() >= deadline) return now;
    await sleep(25);
  }
}

/** A count that stays the same over a few readings (earlier connections may still be closing). */
async function settledFdTargets(pid: number): Promise<string[]> {
  const deadline = performance.now() + FD_SETTLE_MS;
  let last = openFdTargets(pid);
  let steady = 0;
  while (steady < 3 && performance.now() < deadline) {
    await sleep(50);
    const now = openFdTargets(pid);
    steady = now.length === last.length ? steady + 1 : 0;
    last = now;
  }
  return last;
}

/**
 * The checks, in the order they run.
 *
 * vu.rem-unknown-region, what passes: a REM_MEM_REG of a region that was never added is the
 * front-end's error (the spec identifies the region by the one added), so the back-end may refuse
 * it either way the protocol offers, with a nonzero ack or by ending the session (libvhost-user's
 * `vu_panic`, which acks 0 first and then drops the connection; the detail says so), or ignore it
 * and ack 0. It fails when the back-end removes a region it should have kept, gives a malformed
 * reply, neither answers nor hangs up, or stops serving new connections.
 */
export const TRANSPORT_CHECKS: readonly TransportCheck[] = [
  {
    id: 'vu.handshake',
    title: 'GET_FEATURES (bit 30), GET/SET_PROTOCOL_FEATURES, SET_OWNER, GET_QUEUE_NUM, SET_FEATURES',
    async run(ctx) {
      const c = await ctx.open({ protocol: [ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK] });
      if (!(c.offeredFeatures & PROTOCOL_FEATURES_BIT)) {
        return { verdict: 'unsupported', detail: `GET_FEATURES ${hex(c.offeredFeatures)} lacks VHOST_USER_F_PROTOCOL_FEATURES (virtio feature bit 30): the back-end does not speak protocol features` };
      }
      const parts = [`features ${hex(c.offeredFeatures)}`, `protocol features ${describeBits(c.offeredProtocolFeatures)}`];
      if (c.has(ProtocolFeature.MQ)) {
        const queues = await c.queryU64(Request.GET_QUEUE_NUM);
        if (queues < 1n) throw new BackendFault(`GET_QUEUE_NUM: ${queues} queues (a device has at least one)`);
        parts.push(`GET_QUEUE_NUM ${queues}`);
      } else {
        parts.push('MQ not offered: GET_QUEUE_NUM skipped');
      }
      await c.sync();
      parts.push(c.acks ? 'SET_OWNER and SET_FEATURES (bit 30) acked' : 'REPLY_ACK not offered: SET_OWNER and SET_FEATURES (bit 30) taken without acks');
      return pass(parts.join('; '));
    },
  },
  {
    id: 'vu.reply-ack',
    title: 'with REPLY_ACK every NEED_REPLY message gets exactly one ack (flags 0x5, same code, 8 bytes, 0)',
    needs: [ProtocolFeature.REPLY_ACK],
    async run(ctx) {
      const c = await ctx.open({ own: false });
      let acked = 0;
      const commands: [number, Buffer?, number[]?][] = [
        [Request.SET_OWNER],
        [Request.SET_FEATURES, u64Payload(c.offeredFeatures & (PROTOCOL_FEATURES_BIT | VIRTIO_F_VERSION_1))],
        [Request.SET_VRING_NUM, vringState(0, RING_SIZE)],
        [Request.SET_VRING_BASE, vringState(0, 0)],
        [Request.SET_VRING_CALL, u64Payload(0n), [c.eventfd()]],
        [Request.SET_VRING_ERR, u64Payload(VRING_NOFD)],
      ];
      for (const [request, payload, fds] of commands) {
        await c.command(request, payload, fds ?? []);
        acked++;
      }
      // Three at once: the acks come back one each, in order.
      const pipelined = [Request.SET_VRING_NUM, Request.SET_VRING_BASE, Request.SET_VRING_NUM];
      for (const request of pipelined) c.send(request, FLAG_VERSION | FLAG_NEED_REPLY, vringState(0, request === Request.SET_VRING_BASE ? 0 : RING_SIZE));
      for (const request of pipelined) {
        await c.ack(request, `pipelined ${requestName(request)}`);
        acked++;
      }
      // A GET_* without NEED_REPLY: flags 0x5.
      await c.queryU64(Request.GET_PROTOCOL_FEATURES);
      // A GET_* with NEED_REPLY: "no behavioural change", i.e. one reply, its usual body.
      c.send(Request.GET_FEATURES, FLAG_VERSION | FLAG_NEED_REPLY);
      const answer = await c.receive('GET_FEATURES with NEED_REPLY');
      if (answer.request !== Request.GET_FEATURES || !(answer.flags & FLAG_REPLY) || (answer.flags & ~(REPLY_FLAGS | FLAG_NEED_REPLY)) !== 0 || answer.payload.length !== 8) {
        throw new BackendFault(`GET_FEATURES with NEED_REPLY: answered with ${requestName(answer.request)}, flags ${hex(answer.flags)}, ${answer.payload.length} bytes`);
      }
      const features = decodeStruct(U64Layout, answer.payload).value;
      if (features !== c.offeredFeatures) throw new BackendFault(`GET_FEATURES with NEED_REPLY: answered ${hex(features)}, not the features (${hex(c.offeredFeatures)}); an ack instead of the reply?`);
      // Anything extra (a second ack, an ack after the GET reply) would arrive before this reply.
      await c.sync('GET_FEATURES after the acks (a stray extra reply would come first)');
      const echoed = answer.flags & FLAG_NEED_REPLY ? `; note: the reply to a GET_* sent with NEED_REPLY echoes the flag (flags ${hex(answer.flags)}); QEMU never sends that combination, so it is tolerated` : '';
      return pass(`${acked} NEED_REPLY messages each acked once (flags 0x5, same code, 8 bytes, 0), 3 of them pipelined; GET_* replies carry flags 0x5; a GET_* with NEED_REPLY is answered once${echoed}`);
    },
  },
  {
    id: 'vu.config',
    title: `GET_CONFIG of ${CONFIG_PROBE_SIZE} bytes at offset 0 returns ${CONFIG_PROBE_SIZE} bytes`,
    needs: [ProtocolFeature.CONFIG],
    async run(ctx) {
      const c = await ctx.open();
      const payload = Buffer.alloc(ConfigHeaderLayout.size + CONFIG_PROBE_SIZE);
      encodeStruct(ConfigHeaderLayout, { offset: 0, size: CONFIG_PROBE_SIZE, flags: 0 }, payload);
      c.send(Request.GET_CONFIG, FLAG_VERSION, payload);
      const m = await c.reply(Request.GET_CONFIG);
      if (m.payload.length < ConfigHeaderLayout.size) throw new BackendFault(`GET_CONFIG: reply of ${m.payload.length} bytes, shorter than the 12-byte config header (the back-end refused the read)`);
      const h = decodeStruct(ConfigHeaderLayout, m.payload);
      if (h.size === 0) throw new BackendFault(`GET_CONFIG: the back-end refused ${CONFIG_PROBE_SIZE} bytes at offset 0 (size 0 in the reply)`);
      if (h.offset !== 0 || h.size !== CONFIG_PROBE_SIZE || m.payload.length !== ConfigHeaderLayout.size + CONFIG_PROBE_SIZE) {
        throw new BackendFault(`GET_CONFIG: asked ${CONFIG_PROBE_SIZE} bytes at offset 0, the reply says ${h.size} bytes at offset ${h.offset} in a ${m.payload.length}-byte payload`);
      }
      await c.sync();
      return pass(`GET_CONFIG returned ${CONFIG_PROBE_SIZE} bytes at offset 0: ${m.payload.subarray(ConfigHeaderLayout.size).toString('hex')}`);
    },
  },
  {
    id: 'vu.vring-setup',
    title: 'SET_MEM_TABLE, SET_VRING_NUM/BASE/ADDR/KICK/CALL/ENABLE, then GET_VRING_BASE returns the base set',
    async run(ctx) {
      const c = await ctx.open();
      const ring = c.createRegion(0n);
      await c.setMemTable([ring]);
      const base = 42;
      await setUpVring(c, ring, base);
      c.send(Request.GET_VRING_BASE, FLAG_VERSION, vringState(0, 0));
      const m = await c.reply(Request.GET_VRING_BASE);
      if (m.payload.length !== VringStateLayout.size) throw new BackendFault(`GET_VRING_BASE: reply of ${m.payload.length} bytes, expected ${VringStateLayout.size}`);
      const state = decodeStruct(VringStateLayout, m.payload);
      if (state.index !== 0 || state.num !== base) throw new BackendFault(`GET_VRING_BASE: vring ${state.index} base ${state.num}, expected vring 0 base ${base} (set by SET_VRING_BASE, no work in between)`);
      await c.sync();
      const how = c.acks ? 'each acked' : 'no REPLY_ACK, so not acked';
      return pass(`1 memfd region, vring 0 of ${RING_SIZE} set up (${how}); GET_VRING_BASE returned base ${base}`);
    },
  },
  {
    id: 'vu.mem-table-replace',
    title: 'SET_MEM_TABLE with 8 regions, replaced by 8 other regions, then by 1',
    async run(ctx) {
      const c = await ctx.open();
      const first = Array.from({ length: 8 }, (_, i) => c.createRegion(BigInt(i) * REGION_STRIDE));
      await c.setMemTable(first, 'SET_MEM_TABLE (8 regions)');
      const second = Array.from({ length: 8 }, (_, i) => c.createRegion(0x1000_0000n + BigInt(i) * REGION_STRIDE));
      await c.setMemTable(second, 'SET_MEM_TABLE (8 other regions)');
      for (const r of first) c.releaseRegion(r);
      const third = [c.createRegion(0x2000_0000n)];
      await c.setMemTable(third, 'SET_MEM_TABLE (1 region)');
      for (const r of second) c.releaseRegion(r);
      await c.sync();
      return pass(`tables of 8, 8 other and 1 region${c.acks ? ' acked' : ' taken (no REPLY_ACK)'}`);
    },
  },
  {
    id: 'vu.mem-slots',
    title: `GET_MAX_MEM_SLOTS ≥ 8; ADD_MEM_REG up to min(max, ${MEM_SLOTS_CAP}) regions, REM_MEM_REG all, ${MEM_SLOT_CHURN_OPS} add/remove ops`,
    needs: [ProtocolFeature.CONFIGURE_MEM_SLOTS],
    async run(ctx) {
      const c = await ctx.open();
      const max = await c.queryU64(Request.GET_MAX_MEM_SLOTS);
      if (max < 8n) throw new BackendFault(`GET_MAX_MEM_SLOTS: ${max}, fewer than the 8 regions SET_MEM_TABLE alone carries`);
      const slots = Number(max < BigInt(MEM_SLOTS_CAP) ? max : BigInt(MEM_SLOTS_CAP));
      const started = performance.now();
      const before = c.sent;
      const add = async (slot: number): Promise<CheckRegion> => {
        const r = c.createRegion(0x1_0000_0000n + BigInt(slot) * REGION_STRIDE);
        await c.addRegion(r, `ADD_MEM_REG (slot ${slot})`);
        c.closeRegionFd(r);
        return r;
      };
      const remove = async (slot: number, r: CheckRegion): Promise<void> => {
        await c.removeRegion(r, `REM_MEM_REG (slot ${slot})`);
        c.releaseRegion(r);
      };
      const live = new Map<number, CheckRegion>();
      for (let slot = 0; slot < slots; slot++) live.set(slot, await add(slot));
      if (!c.acks) await c.sync(`GET_FEATURES after ${slots} ADD_MEM_REG`);
      // Odd slots first, then even ones: removals from the middle of the table.
      const order = [...live.keys()].sort((a, b) => (b % 2) - (a % 2) || a - b);
      for (const slot of order) {
        await remove(slot, live.get(slot)!);
        live.delete(slot);
      }
      if (!c.acks) await c.sync(`GET_FEATURES after removing all ${slots} regions`);
      const next = sequence(0x5eed);
      let adds = 0;
      let removes = 0;
      for (let op = 0; op < MEM_SLOT_CHURN_OPS; op++) {
        const free = Array.from({ length: slots }, (_, s) => s).filter((s) => !live.has(s));
        const adding = live.size === 0 || (free.length > 0 && next() % 3 !== 0);
        if (adding) {
          const slot = free[next() % free.length]!;
          live.set(slot, await add(slot));
          adds++;
        } else {
          const used = [...live.keys()];
          const slot = used[next() % used.length]!;
          await remove(slot, live.get(slot)!);
          live.delete(slot);
          removes++;
        }
      }
      for (const [slot, r] of live) await remove(slot, r);
      const remaining = live.size;
      live.clear();
      await c.sync();
      const ms = performance.now() - started;
      const messages = c.sent - before;
      return pass(`GET_MAX_MEM_SLOTS ${max}; ${slots} regions added (64 KiB each, distinct GPAs) and removed; churn of ${MEM_SLOT_CHURN_OPS} ops (${adds} adds, ${removes} removes), then ${remaining} removed; ${messages} messages${c.acks ? ' each acked' : ''} in ${ms.toFixed(0)} ms`);
    },
  },
  {
    id: 'vu.rem-unknown-region',
    title: 'REM_MEM_REG of a region never added is refused or harmless, and the back-end keeps serving',
    needs: [ProtocolFeature.CONFIGURE_MEM_SLOTS],
    async run(ctx) {
      const c = await ctx.open();
      const known = c.createRegion(0x1_0000_0000n);
      await c.addRegion(known, 'ADD_MEM_REG (the known region)');
      c.closeRegionFd(known);
      const unknown = c.createRegion(0x1_0000_0000n + 16n * REGION_STRIDE);
      let ack: bigint | undefined;
      /** What the back-end did with the unknown region, for the detail. */
      let outcome: string;
      /** The same, shortly, for a failure detail. */
      let handled: string;
      try {
        c.send(Request.REM_MEM_REG, FLAG_VERSION | (c.acks ? FLAG_NEED_REPLY : 0), singleRegionPayload(unknown));
        if (c.acks) {
          const m = await c.reply(Request.REM_MEM_REG, 'REM_MEM_REG (unknown region)');
          if (m.payload.length !== 8) throw new BackendFault(`REM_MEM_REG (unknown region): the ack has ${m.payload.length} bytes, expected 8`);
          ack = decodeStruct(U64Layout, m.payload).value;
        }
        await c.sync('GET_FEATURES after the unknown REM_MEM_REG');
        // Still connected: the known region must still be there to remove.
        try {
          await c.removeRegion(known, 'REM_MEM_REG (the known region, after the unknown one)');
          await c.sync();
        } catch (e) {
          if (e instanceof BackendFault) throw new BackendFault(`after REM_MEM_REG of an unknown region${ack !== undefined ? ` (ack ${ack})` : ''}, the region that was added could not be removed: ${e.message}`);
          throw e;
        }
        handled = ack !== undefined && ack !== 0n ? `refused (ack ${ack})` : `ignored${ack !== undefined ? ' (ack 0)' : ''}`;
        outcome = `${handled}; the connection kept working and the added region was still there`;
      } catch (e) {
        if (!(e instanceof BackendFault) || !c.ended) throw e;
        handled = `ended the connection${ack !== undefined ? ` (ack ${ack})` : ''}`;
        outcome = ack === 0n ? 'ended the connection after acknowledging it with 0 (the ack claimed success)' : handled;
      }
      c.close();
      try {
        const fresh = await ctx.open();
        await fresh.sync();
        fresh.close();
      } catch (e) {
        if (e instanceof BackendFault) throw new BackendFault(`the back-end ${handled} a REM_MEM_REG of an unknown region, and then the back-end no longer served a fresh connection: ${e.message}`);
        throw e;
      }
      return pass(`REM_MEM_REG of a region never added: ${outcome}; a fresh connection was served afterwards`);
    },
  },
  {
    id: 'vu.backend-channel',
    title: 'SET_BACKEND_REQ_FD acked, and the back-end keeps its end open',
    needs: [ProtocolFeature.BACKEND_REQ],
    async run(ctx) {
      const c = await ctx.open();
      const pair = c.backendChannelPair();
      try {
        await c.command(Request.SET_BACKEND_REQ_FD, undefined, [pair.theirs]);
      } finally {
        c.closeQuietly(pair.theirs);
      }
      await c.sync();
      await sleep(50);
      const end = pair.ours.end;
      if (end) throw new BackendFault(`the back-end channel ended right after SET_BACKEND_REQ_FD (${describeEnd(end)}): the back-end did not keep its end`);
      const seen = pair.received.length ? `; it sent ${pair.received.map((r) => `request ${r}`).join(', ')} on it` : '';
      return pass(`SET_BACKEND_REQ_FD ${c.acks ? 'acked' : 'taken (no REPLY_ACK)'}; the back-end keeps its end open${seen}`);
    },
  },
  {
    id: 'vu.fd-hygiene',
    title: `the back-end's fd count does not grow: ${FD_REPLACEMENTS} replacements of each fd while connected, ${FD_CHURN_CONNECTIONS + 2} connections opened and closed`,
    async run(ctx) {
      const pid = ctx.backendPid;
      if (pid === undefined) return { verdict: 'unsupported', detail: "needs the back-end's PID (--backend-pid) to read /proc/PID/fd" };
      const before = await settledFdTargets(pid);
      const c = await ctx.open({ protocol: [ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIGURE_MEM_SLOTS, ProtocolFeature.BACKEND_REQ] });
      const ring = c.createRegion(0n);
      let extra = c.createRegion(REGION_STRIDE);
      await c.setMemTable([ring, extra]);
      let fds = await setUpVring(c, ring, 0);
      let err = c.eventfd();
      await c.command(Request.SET_VRING_ERR, u64Payload(0n), [err]);
      const withBackendChannel = c.has(ProtocolFeature.BACKEND_REQ);
      let side = withBackendChannel ? c.backendChannelPair() : undefined;
      if (side) {
        await c.command(Request.SET_BACKEND_REQ_FD, undefined, [side.theirs]);
        c.closeQuietly(side.theirs);
      }
      await c.sync();
      const connected = openFdTargets(pid);
      for (let round = 1; round <= FD_REPLACEMENTS; round++) {
        const replacement = c.createRegion(BigInt(round + 1) * REGION_STRIDE);
        await c.setMemTable([ring, replacement], `SET_MEM_TABLE (replacement ${round})`);
        c.releaseRegion(extra);
        extra = replacement;
        const kick = c.eventfd();
        const call = c.eventfd();
        const nextErr = c.eventfd();
        await c.command(Request.SET_VRING_KICK, u64Payload(0n), [kick], `SET_VRING_KICK (replacement ${round})`);
        await c.command(Request.SET_VRING_CALL, u64Payload(0n), [call], `SET_VRING_CALL (replacement ${round})`);
        await c.command(Request.SET_VRING_ERR, u64Payload(0n), [nextErr], `SET_VRING_ERR (replacement ${round})`);
        c.closeEventfd(fds.kick);
        c.closeEventfd(fds.call);
        c.closeEventfd(err);
        fds = { kick, call };
        err = nextErr;
        if (side) {
          const replacementSide = c.backendChannelPair();
          await c.command(Request.SET_BACKEND_REQ_FD, undefined, [replacementSide.theirs], `SET_BACKEND_REQ_FD (replacement ${round})`);
          c.closeQuietly(replacementSide.theirs);
          c.closeSideChannel(side.ours);
          side = replacementSide;
        }
        if (c.has(ProtocolFeature.CONFIGURE_MEM_SLOTS)) {
          const slot = c.createRegion(0x1_0000_0000n + BigInt(round) * REGION_STRIDE);
          await c.addRegion(slot, `ADD_MEM_REG (round ${round})`);
          await c.removeRegion(slot, `REM_MEM_REG (round ${round})`);
          c.releaseRegion(slot);
        }
      }
      await c.sync();
      const kinds = ['memory table', 'kick', 'call', 'err', ...(side ? ['back-end channel'] : []), ...(c.has(ProtocolFeature.CONFIGURE_MEM_SLOTS) ? ['ADD/REM_MEM_REG'] : [])];
      const during = await fdCountWithin(pid, connected.length + FD_GROWTH_ALLOWED, 1000);
      if (during.length > connected.length + FD_GROWTH_ALLOWED) {
        throw new BackendFault(`while connected, the fd count went from ${connected.length} to ${during.length} over ${FD_REPLACEMENTS} replacements of each of: ${kinds.join(', ')} (replaced fds are not closed); new: ${fdDifference(connected, during)}`);
      }
      c.close();
      // More sessions: complete ones, and one that hangs up mid-message.
      for (let i = 0; i < FD_CHURN_CONNECTIONS; i++) {
        const s = await ctx.open();
        const r = s.createRegion(0n);
        await s.setMemTable([r]);
        await setUpVring(s, r, 0);
        await s.sync();
        s.close();
      }
      const cut = await ctx.open();
      const r = cut.createRegion(0n);
      await cut.setMemTable([r]);
      await cut.sync();
      cut.sendRaw(frameMessage(Request.SET_VRING_NUM, FLAG_VERSION, vringState(0, RING_SIZE)).subarray(0, HEADER_SIZE + 2));
      cut.close();
      const after = await fdCountWithin(pid, before.length, FD_SETTLE_MS);
      if (after.length > before.length) {
        throw new BackendFault(`the fd count went from ${before.length} to ${after.length} after ${FD_CHURN_CONNECTIONS + 2} connections closed (memory regions, vring fds${withBackendChannel ? ', back-end channels' : ''}); still open: ${fdDifference(before, after)}`);
      }
      return pass(`fds ${before.length} before, ${connected.length} → ${during.length} across ${FD_REPLACEMENTS} replacements of ${kinds.join(', ')}, ${after.length} after ${FD_CHURN_CONNECTIONS + 2} connections closed`);
    },
  },
  {
    id: 'vu.reconnect',
    title: 'after a half header, a truncated payload and an empty connection, fresh connections complete the handshake',
    async run(ctx) {
      const half = ctx.connect();
      half.sendRaw(frameMessage(Request.GET_FEATURES, FLAG_VERSION).subarray(0, HEADER_SIZE / 2));
      half.close();
      const truncated = ctx.connect();
      truncated.sendRaw(frameMessage(Request.SET_FEATURES, FLAG_VERSION, u64Payload(0n)).subarray(0, HEADER_SIZE + 3));
      truncated.close();
      ctx.connect().close();
      const timings: string[] = [];
      for (const label of ['first', 'second']) {
        const started = performance.now();
        try {
          const c = await ctx.open();
          await c.sync();
          c.close();
        } catch (e) {
          if (e instanceof BackendFault) throw new BackendFault(`the ${label} fresh connection after the aborted ones failed: ${e.message}`);
          throw e;
        }
        timings.push(`${(performance.now() - started).toFixed(1)} ms`);
      }
      return pass(`two fresh connections completed the handshake (${timings.join(', ')}) after a half header, a truncated payload and an empty connection`);
    },
  },
];

/** A context for one check; every connection it opens is recorded so the runner can close it. */
function checkContext(options: TransportCheckOptions, check: TransportCheck, connections: CheckConnection[]): TransportCheckContext {
  const replyTimeoutMs = options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
  const connect = (): CheckConnection => {
    let fd: number;
    try {
      fd = options.native.connect(options.socketPath);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (UNREACHABLE.has(code)) throw new BackendFault(`cannot connect to ${options.socketPath} (${(e as Error).message}): the back-end stopped serving`);
      throw e;
    }
    const c = new CheckConnection(options.native, fd, replyTimeoutMs);
    connections.push(c);
    return c;
  };
  return {
    native: options.native,
    socketPath: options.socketPath,
    backendPid: options.backendPid,
    replyTimeoutMs,
    connect,
    async open(opening?: OpeningOptions): Promise<CheckConnection> {
      const c = connect();
      await c.opening(check.needs ?? [], opening);
      return c;
    },
  };
}

/** Runs one check: its verdict, detail and duration. Never throws. */
export async function runTransportCheck(check: TransportCheck, options: TransportCheckOptions): Promise<CheckResult> {
  const started = performance.now();
  const connections: CheckConnection[] = [];
  let outcome: CheckOutcome;
  let deadline: NodeJS.Timeout | undefined;
  try {
    const running = check.run(checkContext(options, check, connections));
    running.catch(() => undefined);
    const overdue = new Promise<never>((_, reject) => {
      deadline = setTimeout(() => reject(new BackendFault(`the check did not finish within ${CHECK_DEADLINE_MS / 1000} s`)), CHECK_DEADLINE_MS);
    });
    outcome = await Promise.race([running, overdue]);
  } catch (e) {
    if (e instanceof BackendFault) outcome = { verdict: 'fail', detail: e.message };
    else if (e instanceof CheckNotApplicable) outcome = { verdict: 'unsupported', detail: e.message };
    else outcome = { verdict: 'error', detail: `our side failed: ${(e as Error).message ?? String(e)}` };
  } finally {
    if (deadline) clearTimeout(deadline);
    for (const c of connections) c.close();
  }
  return { id: check.id, title: check.title, verdict: outcome.verdict, detail: outcome.detail, durationMs: Math.round((performance.now() - started) * 10) / 10 };
}

/**
 * Runs every check in {@link TRANSPORT_CHECKS}, one after the other.
 * @throws TransportCheckError when nothing accepts connections on the socket.
 */
export async function runTransportChecks(options: TransportCheckOptions): Promise<CheckResult[]> {
  try {
    options.native.close(options.native.connect(options.socketPath));
  } catch (e) {
    throw new TransportCheckError(`cannot connect to ${options.socketPath}: ${(e as Error).message}`);
  }
  const results: CheckResult[] = [];
  for (const check of TRANSPORT_CHECKS) results.push(await runTransportCheck(check, options));
  return results;
}

/** Human-readable results: one line per check, then a summary line. */
export function formatCheckResults(results: readonly CheckResult[]): string {
  const idWidth = Math.max(0, ...results.map((r) => r.id.length));
  const lines = results.map((r) => `${r.verdict.padEnd(11)} ${r.id.padEnd(idWidth)} ${formatMs(r.durationMs).padStart(9)}  ${r.detail}\n`);
  const counts = (['pass', 'fail', 'unsupported', 'error'] as const).map((v) => `${results.filter((r) => r.verdict === v).length} ${v}`);
  const total = results.reduce((sum, r) => sum + r.durationMs, 0);
  lines.push(`${results.length} check${results.length === 1 ? '' : 's'}: ${counts.join(', ')} (${formatMs(total)})\n`);
  return lines.join('');
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}
