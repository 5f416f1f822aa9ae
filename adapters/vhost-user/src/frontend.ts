/**
 * A vhost-user front-end: the VMM side of the protocol. It negotiates features, shares memory
 * (memfd regions), sets up vrings with kick and call eventfds, reads the device configuration and
 * serves back-end channels (configuration changes arrive there).
 *
 * Requests that have an answer (GET_*) wait for it; the others, when REPLY_ACK is negotiated, are
 * sent with NEED_REPLY and their ack is checked, so a failure is pinned to the message that caused it.
 *
 * With `strict: true` (the `vu.*` transport checks) every reply is held to the letter of the
 * protocol: header flags exactly 0x5 (version 1 and REPLY) and no fds. Without it a reply needs only
 * the same request code and the REPLY flag. Either way, everything the front-end creates (regions,
 * eventfds, back-end channels) is tracked and released by {@link VhostUserFrontEnd.close}, and the
 * messages sent are counted.
 *
 * Failures of the back-end throw {@link VhostUserProtocolError} (it broke the protocol, refused a
 * request or ended the connection) or {@link VhostUserTimeoutError} (no answer in time). Anything
 * else thrown is a failure on our side (a memfd, an eventfd, the native helper).
 */
import { ChannelClosedError, ChannelTimeoutError, MessageChannel, describeEnd } from './channel';
import type { MappingHandle, VhostNative } from './native';
import {
  BackendRequest,
  ConfigHeaderLayout,
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FLAG_VERSION,
  Message,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  Request,
  U64Layout,
  VRING_NOFD,
  VmemctReply,
  VringAddressLayout,
  VringStateLayout,
  decodeStruct,
  decodeVmemctReply,
  encodeStruct,
  memoryTablePayload,
  protocolMask,
  requestName,
  singleRegionPayload,
  u64Payload,
} from './protocol';

/** The back-end did something the protocol does not allow, refused a request, or ended the connection. */
export class VhostUserProtocolError extends Error {
  override readonly name = 'VhostUserProtocolError';
}

/** The back-end did not answer in time. */
export class VhostUserTimeoutError extends Error {
  override readonly name = 'VhostUserTimeoutError';
}

/** Header flags of a strict reply: version 1 and REPLY. */
const STRICT_REPLY_FLAGS = FLAG_VERSION | FLAG_REPLY;

/** A memfd-backed region the front-end owns and shares. */
export interface SharedRegion {
  /** Our fd of the memfd; -1 once closed on our side (the mapping keeps the memory alive). */
  fd: number;
  readonly mapping: MappingHandle;
  readonly guestAddress: bigint;
  readonly size: bigint;
  readonly userAddress: bigint;
}

/** A back-end channel (SET_BACKEND_REQ_FD): a socket pair whose one end the front-end serves. */
export interface BackendChannel {
  /** The end to send to the back-end; close it (with {@link VhostUserFrontEnd.closeFd}) once sent. */
  readonly theirs: number;
  /** Request codes received on it, in order. */
  readonly received: readonly number[];
  /** Why our end ended, when it did (the back-end closed its end, a framing error, …). */
  readonly ended: string | undefined;
}

/** What the handshake settled. */
export interface Negotiated {
  /** Virtio features the back-end offered (GET_FEATURES), bit 30 included. */
  readonly offeredFeatures: bigint;
  readonly offeredProtocolFeatures: bigint;
  /** The protocol features both sides use. */
  readonly protocolFeatures: bigint;
  /** GET_QUEUE_NUM, when MQ was negotiated. */
  readonly queueCount?: number;
}

/** Options of {@link VhostUserFrontEnd.connect}. */
export interface FrontEndOptions {
  /** Bound on every reply (default 2000 ms). */
  readonly replyTimeoutMs?: number;
  /** Hold replies to the letter: flags exactly 0x5, no fds (default false). */
  readonly strict?: boolean;
}

interface ServedChannel extends BackendChannel {
  readonly channel: MessageChannel;
  readonly received: number[];
}

/** One connection to a back-end, as its front-end. */
export class VhostUserFrontEnd {
  private readonly channel: MessageChannel;
  private readonly backendChannels = new Map<number, ServedChannel>();
  private protocolFeatures = 0n;
  private speaksProtocolFeatures = false;
  private configChanges = 0;
  private readonly regions = new Set<SharedRegion>();
  private readonly eventfds = new Set<number>();
  private closed = false;
  readonly replyTimeoutMs: number;
  readonly strict: boolean;
  /** Messages sent so far. */
  sent = 0;
  /** Called for each CONFIG_CHANGE_MSG. */
  onConfigChange?: () => void;
  /** Back-end channel messages other than CONFIG_CHANGE_MSG. */
  readonly otherBackendMessages: number[] = [];

  private constructor(
    readonly native: VhostNative,
    fd: number,
    options: FrontEndOptions,
  ) {
    this.channel = new MessageChannel(native, fd);
    this.replyTimeoutMs = options.replyTimeoutMs ?? 2000;
    this.strict = options.strict ?? false;
  }

  /** Connects to a back-end's socket (the errno error of connect(2) propagates). */
  static connect(native: VhostNative, socketPath: string, options: FrontEndOptions = {}): VhostUserFrontEnd {
    return new VhostUserFrontEnd(native, native.connect(socketPath), options);
  }

  /** Protocol features in use. */
  get negotiatedProtocolFeatures(): bigint {
    return this.protocolFeatures;
  }

  /** Whether a protocol feature is in use. */
  has(bit: number): boolean {
    return (this.protocolFeatures & protocolMask(bit)) !== 0n;
  }

  /** Whether REPLY_ACK is in use (so {@link command} asks for and checks an ack). */
  get acks(): boolean {
    return this.has(ProtocolFeature.REPLY_ACK);
  }

  /** CONFIG_CHANGE_MSG messages received so far. */
  get configChangeCount(): number {
    return this.configChanges;
  }

  /** Whether the connection is still up. */
  get alive(): boolean {
    return !this.closed && this.channel.end === undefined;
  }

  /** Whether the back-end ended the connection (or the channel failed); not after our own close. */
  get ended(): boolean {
    return this.channel.end !== undefined && this.channel.end.kind !== 'closed';
  }

  private endText(): string {
    const end = this.channel.end;
    return end ? describeEnd(end) : 'the connection is open';
  }

  /** Sends one message as given (any flags); counted in {@link sent}. */
  send(request: number, flags: number, payload?: Uint8Array, fds: readonly number[] = []): void {
    try {
      this.channel.send(request, flags, payload, fds);
      this.sent++;
    } catch (e) {
      if (e instanceof ChannelClosedError)
        throw new VhostUserProtocolError(
          `${requestName(request)}: cannot send, the connection ended (${this.endText()})`,
        );
      throw e;
    }
  }

  /** Sends bytes as they are (a partial or malformed message). */
  sendRaw(bytes: Uint8Array): void {
    this.channel.sendRaw(bytes);
  }

  /** The next message, whatever it is; its fds are closed. */
  async receive(label: string): Promise<Message> {
    const m = await this.next(label);
    for (const fd of m.fds) this.closeFd(fd);
    return m;
  }

  /** The next message with its fds still open (the caller closes them). */
  private async next(label: string): Promise<Message> {
    let message: Message | null;
    try {
      message = await this.channel.next(this.replyTimeoutMs);
    } catch (e) {
      if (e instanceof ChannelTimeoutError)
        throw new VhostUserTimeoutError(`${label}: no reply within ${this.replyTimeoutMs} ms`);
      throw e;
    }
    if (!message)
      throw new VhostUserProtocolError(`${label}: the connection ended before the reply (${this.endText()})`);
    return message;
  }

  /** The reply to `request`: the same request code and the REPLY flag (strict: flags exactly 0x5, no fds). */
  async reply(request: number, label = requestName(request)): Promise<Message> {
    const m = await this.next(label);
    for (const fd of m.fds) this.closeFd(fd);
    if (m.request !== request)
      throw new VhostUserProtocolError(
        `${label}: the next message is ${requestName(m.request)} (code ${m.request}), not the reply to ${requestName(request)} (code ${request})`,
      );
    if (this.strict) {
      if (m.flags !== STRICT_REPLY_FLAGS)
        throw new VhostUserProtocolError(
          `${label}: reply flags 0x${m.flags.toString(16)}, expected 0x5 (version 1 + REPLY)`,
        );
      if (m.fds.length) throw new VhostUserProtocolError(`${label}: the reply carries ${m.fds.length} fd(s)`);
    } else if (!(m.flags & FLAG_REPLY)) {
      throw new VhostUserProtocolError(`${label}: the reply lacks the reply flag (flags 0x${m.flags.toString(16)})`);
    }
    return m;
  }

  /** Checks an ack: the reply to `request` with an 8-byte payload of 0. */
  async ack(request: number, label = requestName(request)): Promise<void> {
    const m = await this.reply(request, `${label} ack`);
    if (m.payload.length !== 8)
      throw new VhostUserProtocolError(`${label}: the ack has ${m.payload.length} bytes, expected 8`);
    const status = decodeStruct(U64Layout, m.payload).value;
    if (status !== 0n) throw new VhostUserProtocolError(`${label}: the back-end reported failure (ack ${status})`);
  }

  /** Sends a message and returns its reply (for requests that have one). */
  async query(
    request: number,
    payload?: Uint8Array,
    fds: readonly number[] = [],
    label = requestName(request),
  ): Promise<Message> {
    this.send(request, FLAG_VERSION, payload, fds);
    return this.reply(request, label);
  }

  /** Sends a message that has no reply of its own; with REPLY_ACK it sets NEED_REPLY and checks the ack. */
  async command(
    request: number,
    payload?: Uint8Array,
    fds: readonly number[] = [],
    label = requestName(request),
  ): Promise<void> {
    const ack = this.acks;
    this.send(request, FLAG_VERSION | (ack ? FLAG_NEED_REPLY : 0), payload, fds);
    if (ack) await this.ack(request, label);
  }

  /** A u64 answer (GET_FEATURES, GET_PROTOCOL_FEATURES, …). */
  async queryU64(request: number, label = requestName(request)): Promise<bigint> {
    const reply = await this.query(request, undefined, [], label);
    if (reply.payload.length !== 8)
      throw new VhostUserProtocolError(`${label}: reply of ${reply.payload.length} bytes, expected 8`);
    return decodeStruct(U64Layout, reply.payload).value;
  }

  /**
   * A GET_FEATURES round trip: every earlier message was handled, nothing stray came before its
   * reply and the connection is alive.
   */
  async sync(label = 'GET_FEATURES (sync)'): Promise<void> {
    await this.queryU64(Request.GET_FEATURES, label);
  }

  /** A vmemct control request; its reply. */
  async vmemct(request: number, payload?: Uint8Array): Promise<VmemctReply> {
    const reply = await this.query(request, payload);
    const decoded = decodeVmemctReply(reply.payload);
    if (!decoded) throw new VhostUserProtocolError(`${requestName(request)}: reply of ${reply.payload.length} bytes`);
    return decoded;
  }

  /**
   * SET_PROTOCOL_FEATURES. With `acked` (and REPLY_ACK in `mask`) the message itself asks for an
   * ack, as qemu-storage-daemon and vmemct's back-end give; without, it is sent as QEMU sends it.
   */
  async setProtocolFeatures(mask: bigint, acked = true): Promise<void> {
    this.protocolFeatures = mask;
    this.speaksProtocolFeatures = true;
    if (acked) await this.command(Request.SET_PROTOCOL_FEATURES, u64Payload(mask));
    else this.send(Request.SET_PROTOCOL_FEATURES, FLAG_VERSION, u64Payload(mask));
  }

  /**
   * The usual opening: GET_FEATURES, GET_PROTOCOL_FEATURES and SET_PROTOCOL_FEATURES (those in
   * `wanted` that are offered), SET_OWNER, GET_QUEUE_NUM (with MQ), and the back-end channel
   * (with BACKEND_REQ).
   */
  async handshake(wanted: bigint): Promise<Negotiated> {
    const offeredFeatures = await this.queryU64(Request.GET_FEATURES);
    let offeredProtocolFeatures = 0n;
    if (offeredFeatures & PROTOCOL_FEATURES_BIT) {
      offeredProtocolFeatures = await this.queryU64(Request.GET_PROTOCOL_FEATURES);
      await this.setProtocolFeatures(offeredProtocolFeatures & wanted);
    }
    await this.command(Request.SET_OWNER);
    const queueCount = this.has(ProtocolFeature.MQ) ? Number(await this.queryU64(Request.GET_QUEUE_NUM)) : undefined;
    if (this.has(ProtocolFeature.BACKEND_REQ)) await this.openBackendChannel();
    return { offeredFeatures, offeredProtocolFeatures, protocolFeatures: this.protocolFeatures, queueCount };
  }

  /** SET_BACKEND_REQ_FD with a new back-end channel (the end sent is closed here afterwards). */
  async openBackendChannel(label = requestName(Request.SET_BACKEND_REQ_FD)): Promise<BackendChannel> {
    const channel = this.createBackendChannel();
    try {
      await this.command(Request.SET_BACKEND_REQ_FD, undefined, [channel.theirs], label);
    } finally {
      this.closeFd(channel.theirs);
    }
    return channel;
  }

  /**
   * A back-end channel, not yet sent: CONFIG_CHANGE_MSG on it counts as a configuration change
   * and is acked with 0; other requests are recorded and refused (ack 1) when they ask for a reply.
   */
  createBackendChannel(): BackendChannel {
    const [ours, theirs] = this.native.socketPair();
    const channel = new MessageChannel(this.native, ours);
    const received: number[] = [];
    const served: ServedChannel = {
      channel,
      theirs,
      received,
      get ended() {
        return channel.end ? describeEnd(channel.end) : undefined;
      },
    };
    channel.onMessage = () => this.serveBackendChannel(served);
    this.backendChannels.set(theirs, served);
    return served;
  }

  /** Closes our end of a back-end channel made by {@link createBackendChannel}. */
  closeBackendChannel(channel: BackendChannel): void {
    const served = this.backendChannels.get(channel.theirs);
    if (!served) return;
    this.backendChannels.delete(channel.theirs);
    served.channel.close();
  }

  private serveBackendChannel(served: ServedChannel): void {
    const channel = served.channel;
    for (let m = channel.poll(); m; m = channel.poll()) {
      for (const fd of m.fds) this.closeFd(fd);
      served.received.push(m.request);
      const known = m.request === BackendRequest.CONFIG_CHANGE_MSG;
      if (known) {
        this.configChanges++;
        this.onConfigChange?.();
      } else {
        this.otherBackendMessages.push(m.request);
      }
      if (m.flags & FLAG_NEED_REPLY) {
        try {
          channel.send(m.request, FLAG_VERSION | FLAG_REPLY, u64Payload(known ? 0n : 1n));
        } catch {
          /* the back-end went away */
        }
      }
    }
  }

  /** SET_FEATURES; bit 30 is added when the back-end offered it (libvhost-user keys ring enabling on it). */
  async setFeatures(features: bigint, offered: bigint): Promise<void> {
    const value = features | (offered & PROTOCOL_FEATURES_BIT);
    await this.command(Request.SET_FEATURES, u64Payload(value));
  }

  /** A new memfd region of `size` bytes at `guestAddress`, mapped here; not yet shared. */
  createRegion(guestAddress: bigint, size: bigint, name = 'vmemct'): SharedRegion {
    const fd = this.native.memfd(name, size);
    try {
      const mapping = this.native.map(fd, size, 0);
      const region: SharedRegion = { fd, mapping, guestAddress, size, userAddress: this.native.address(mapping) };
      this.regions.add(region);
      return region;
    } catch (e) {
      this.native.close(fd);
      throw e;
    }
  }

  /** Writes bytes into a region's mapping at `offset`. */
  writeRegion(region: SharedRegion, offset: bigint, bytes: Uint8Array): void {
    this.native.write(region.mapping, offset, bytes);
  }

  /** Closes our fd of a region (after it was shared; the mapping stays). */
  closeRegionFd(region: SharedRegion): void {
    if (region.fd >= 0) this.closeFd(region.fd);
    region.fd = -1;
  }

  /** Unmaps a region and closes its fd (after the back-end dropped it). */
  destroyRegion(region: SharedRegion): void {
    if (!this.regions.delete(region)) return;
    this.closeRegionFd(region);
    safely(() => this.native.unmap(region.mapping));
  }

  /** SET_MEM_TABLE with these regions (at most 8), each with its fd. */
  async setMemTable(regions: readonly SharedRegion[], label = requestName(Request.SET_MEM_TABLE)): Promise<void> {
    await this.command(
      Request.SET_MEM_TABLE,
      memoryTablePayload(regions),
      regions.map((r) => r.fd),
      label,
    );
  }

  /** ADD_MEM_REG of one region, its fd along (CONFIGURE_MEM_SLOTS). */
  async addRegion(region: SharedRegion, label = requestName(Request.ADD_MEM_REG)): Promise<void> {
    await this.command(Request.ADD_MEM_REG, singleRegionPayload(region), [region.fd], label);
  }

  /** REM_MEM_REG of one region (CONFIGURE_MEM_SLOTS). */
  async removeRegion(region: SharedRegion, label = requestName(Request.REM_MEM_REG)): Promise<void> {
    await this.command(Request.REM_MEM_REG, singleRegionPayload(region), [], label);
  }

  /** A new eventfd, closed with the connection. */
  createEventfd(): number {
    const fd = this.native.eventfd();
    this.eventfds.add(fd);
    return fd;
  }

  /** Closes an eventfd made by {@link createEventfd}. */
  closeEventfd(fd: number): void {
    if (this.eventfds.delete(fd)) this.closeFd(fd);
  }

  /**
   * Sets up vring `index`: size, base 0, addresses (front-end user addresses), kick and call
   * eventfds, then enables it.
   */
  async setupVring(
    index: number,
    size: number,
    addresses: { desc: bigint; avail: bigint; used: bigint },
    kickFd: number,
    callFd: number,
    enable = true,
  ): Promise<void> {
    await this.command(Request.SET_VRING_NUM, encodeStruct(VringStateLayout, { index, num: size }));
    await this.command(Request.SET_VRING_BASE, encodeStruct(VringStateLayout, { index, num: 0 }));
    await this.command(
      Request.SET_VRING_ADDR,
      encodeStruct(VringAddressLayout, {
        index,
        flags: 0,
        desc: addresses.desc,
        used: addresses.used,
        avail: addresses.avail,
        log: 0n,
      }),
    );
    await this.command(Request.SET_VRING_KICK, u64Payload(BigInt(index)), [kickFd]);
    await this.command(Request.SET_VRING_CALL, u64Payload(BigInt(index)), [callFd]);
    // Without protocol features a ring starts enabled and SET_VRING_ENABLE does not exist.
    if (enable && this.speaksProtocolFeatures)
      await this.command(Request.SET_VRING_ENABLE, encodeStruct(VringStateLayout, { index, num: 1 }));
  }

  /** SET_VRING_ERR with no fd. */
  async clearVringErr(index: number): Promise<void> {
    await this.command(Request.SET_VRING_ERR, u64Payload(BigInt(index) | VRING_NOFD));
  }

  /** GET_CONFIG of `size` bytes at `offset`. */
  async getConfig(offset: number, size: number): Promise<Uint8Array> {
    const payload = Buffer.alloc(ConfigHeaderLayout.size + size);
    encodeStruct(ConfigHeaderLayout, { offset, size, flags: 0 }, payload);
    const reply = await this.query(Request.GET_CONFIG, payload);
    if (reply.payload.length < ConfigHeaderLayout.size)
      throw new VhostUserProtocolError(`GET_CONFIG: reply of ${reply.payload.length} bytes`);
    const h = decodeStruct(ConfigHeaderLayout, reply.payload);
    if (h.size === 0)
      throw new VhostUserProtocolError(
        `GET_CONFIG: the back-end refused offset ${offset} size ${size} (size 0 in the reply)`,
      );
    if (h.size !== size || reply.payload.length !== ConfigHeaderLayout.size + size)
      throw new VhostUserProtocolError(
        `GET_CONFIG: asked ${size} bytes, the reply carries ${h.size} in ${reply.payload.length - ConfigHeaderLayout.size}`,
      );
    return new Uint8Array(reply.payload.subarray(ConfigHeaderLayout.size));
  }

  /** Closes an fd, ignoring one that is closed already. */
  closeFd(fd: number): void {
    safely(() => this.native.close(fd));
  }

  /** Closes the connection, the back-end channels, the eventfds and every region. Never throws; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
    for (const served of this.backendChannels.values()) served.channel.close();
    this.backendChannels.clear();
    for (const fd of this.eventfds) this.closeFd(fd);
    this.eventfds.clear();
    for (const r of [...this.regions]) this.destroyRegion(r);
  }
}

function safely(work: () => void): void {
  try {
    work();
  } catch {
    /* closing anyway */
  }
}
