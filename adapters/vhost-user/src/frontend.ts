/**
 * A vhost-user front-end: the VMM side of the protocol. It negotiates features, shares memory
 * (memfd regions), sets up vrings with kick and call eventfds, reads the device configuration and
 * listens on the back-end channel for configuration changes.
 *
 * Requests that have an answer (GET_*) wait for it; the others, when REPLY_ACK is negotiated, are
 * sent with NEED_REPLY and their ack is checked, so a failure is pinned to the message that caused it.
 */
import { ChannelTimeoutError, MessageChannel, describeEnd } from './channel';
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

/** The back-end did something the protocol does not allow, or refused a request. */
export class VhostUserProtocolError extends Error {
  override readonly name = 'VhostUserProtocolError';
}

/** The back-end did not answer in time. */
export class VhostUserTimeoutError extends Error {
  override readonly name = 'VhostUserTimeoutError';
}

/** A memfd-backed region the front-end owns and shares. */
export interface SharedRegion {
  readonly fd: number;
  readonly mapping: MappingHandle;
  readonly guestAddress: bigint;
  readonly size: bigint;
  readonly userAddress: bigint;
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
}

/** One connection to a back-end, as its front-end. */
export class VhostUserFrontEnd {
  private readonly channel: MessageChannel;
  private backendChannel?: MessageChannel;
  private protocolFeatures = 0n;
  private speaksProtocolFeatures = false;
  private configChanges = 0;
  private readonly regions: SharedRegion[] = [];
  private readonly eventfds: number[] = [];
  private closed = false;
  readonly replyTimeoutMs: number;
  /** Called for each CONFIG_CHANGE_MSG. */
  onConfigChange?: () => void;
  /** Back-end channel messages other than CONFIG_CHANGE_MSG (for the transport checks). */
  readonly otherBackendMessages: number[] = [];

  private constructor(
    readonly native: VhostNative,
    fd: number,
    options: FrontEndOptions,
  ) {
    this.channel = new MessageChannel(native, fd);
    this.replyTimeoutMs = options.replyTimeoutMs ?? 2000;
  }

  /** Connects to a back-end's socket. */
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

  /** CONFIG_CHANGE_MSG messages received so far. */
  get configChangeCount(): number {
    return this.configChanges;
  }

  /** Whether the connection is still up. */
  get alive(): boolean {
    return !this.closed && this.channel.end === undefined;
  }

  /** Sends a message and returns its reply (for requests that have one). */
  async query(request: number, payload?: Uint8Array, fds: readonly number[] = []): Promise<Message> {
    this.channel.send(request, FLAG_VERSION, payload, fds);
    return this.reply(request);
  }

  /**
   * Sends a message that has no reply of its own. With REPLY_ACK it asks for an ack and throws
   * when the back-end reports failure.
   */
  async command(request: number, payload?: Uint8Array, fds: readonly number[] = []): Promise<void> {
    const ack = this.has(ProtocolFeature.REPLY_ACK);
    this.channel.send(request, FLAG_VERSION | (ack ? FLAG_NEED_REPLY : 0), payload, fds);
    if (!ack) return;
    const reply = await this.reply(request);
    if (reply.payload.length !== 8) throw new VhostUserProtocolError(`${requestName(request)}: the ack has ${reply.payload.length} bytes, not 8`);
    const status = decodeStruct(U64Layout, reply.payload).value;
    if (status !== 0n) throw new VhostUserProtocolError(`${requestName(request)}: the back-end reported failure (${status})`);
  }

  /** A u64 answer (GET_FEATURES, GET_PROTOCOL_FEATURES, …). */
  async queryU64(request: number): Promise<bigint> {
    const reply = await this.query(request);
    if (reply.payload.length !== 8) throw new VhostUserProtocolError(`${requestName(request)}: reply of ${reply.payload.length} bytes, not 8`);
    return decodeStruct(U64Layout, reply.payload).value;
  }

  /** A vmemct control request; its reply. */
  async vmemct(request: number, payload?: Uint8Array): Promise<VmemctReply> {
    const reply = await this.query(request, payload);
    const decoded = decodeVmemctReply(reply.payload);
    if (!decoded) throw new VhostUserProtocolError(`${requestName(request)}: reply of ${reply.payload.length} bytes`);
    return decoded;
  }

  private async reply(request: number): Promise<Message> {
    let reply: Message | null;
    try {
      reply = await this.channel.next(this.replyTimeoutMs);
    } catch (e) {
      if (e instanceof ChannelTimeoutError) throw new VhostUserTimeoutError(`${requestName(request)}: no reply within ${this.replyTimeoutMs} ms`);
      throw e;
    }
    if (!reply) {
      const end = this.channel.end;
      throw new VhostUserProtocolError(`${requestName(request)}: the connection ended before the reply (${end ? describeEnd(end) : 'closed'})`);
    }
    for (const fd of reply.fds) this.native.close(fd);
    if (reply.request !== request) throw new VhostUserProtocolError(`${requestName(request)}: the reply is for ${requestName(reply.request)}`);
    if (!(reply.flags & FLAG_REPLY)) throw new VhostUserProtocolError(`${requestName(request)}: the reply lacks the reply flag (flags 0x${reply.flags.toString(16)})`);
    return reply;
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
      const use = offeredProtocolFeatures & wanted;
      this.protocolFeatures = use;
      this.speaksProtocolFeatures = true;
      // With REPLY_ACK in the set, this message is already acknowledged (both qemu-storage-daemon and ours do).
      await this.command(Request.SET_PROTOCOL_FEATURES, u64Payload(use));
    }
    await this.command(Request.SET_OWNER);
    const queueCount = this.has(ProtocolFeature.MQ) ? Number(await this.queryU64(Request.GET_QUEUE_NUM)) : undefined;
    if (this.has(ProtocolFeature.BACKEND_REQ)) await this.openBackendChannel();
    return { offeredFeatures, offeredProtocolFeatures, protocolFeatures: this.protocolFeatures, queueCount };
  }

  /** SET_BACKEND_REQ_FD: a socket pair, one end sent, the other served here. */
  async openBackendChannel(): Promise<void> {
    const [ours, theirs] = this.native.socketPair();
    try {
      await this.command(Request.SET_BACKEND_REQ_FD, undefined, [theirs]);
    } finally {
      this.native.close(theirs);
    }
    this.backendChannel = new MessageChannel(this.native, ours);
    this.backendChannel.onMessage = () => this.serveBackendChannel();
  }

  private serveBackendChannel(): void {
    const channel = this.backendChannel;
    if (!channel) return;
    for (let m = channel.poll(); m; m = channel.poll()) {
      for (const fd of m.fds) this.native.close(fd);
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

  /** A new memfd region of `size` bytes, mapped here; not yet shared. */
  createRegion(guestAddress: bigint, size: bigint, name = 'vmemct'): SharedRegion {
    const fd = this.native.memfd(name, size);
    try {
      const mapping = this.native.map(fd, size, 0);
      const region: SharedRegion = { fd, mapping, guestAddress, size, userAddress: this.native.address(mapping) };
      this.regions.push(region);
      return region;
    } catch (e) {
      this.native.close(fd);
      throw e;
    }
  }

  /** Releases a region (after the back-end dropped it). */
  destroyRegion(region: SharedRegion): void {
    const i = this.regions.indexOf(region);
    if (i >= 0) this.regions.splice(i, 1);
    this.native.unmap(region.mapping);
    this.native.close(region.fd);
  }

  /** SET_MEM_TABLE with these regions (at most 8). */
  async setMemTable(regions: readonly SharedRegion[]): Promise<void> {
    await this.command(Request.SET_MEM_TABLE, memoryTablePayload(regions), regions.map((r) => r.fd));
  }

  /** ADD_MEM_REG (CONFIGURE_MEM_SLOTS). */
  async addRegion(region: SharedRegion): Promise<void> {
    await this.command(Request.ADD_MEM_REG, singleRegionPayload(region), [region.fd]);
  }

  /** REM_MEM_REG (CONFIGURE_MEM_SLOTS). */
  async removeRegion(region: SharedRegion): Promise<void> {
    await this.command(Request.REM_MEM_REG, singleRegionPayload(region));
  }

  /** A new eventfd, closed with the connection. */
  createEventfd(): number {
    const fd = this.native.eventfd();
    this.eventfds.push(fd);
    return fd;
  }

  /**
   * Sets up vring `index`: size, base 0, addresses (front-end user addresses), kick and call
   * eventfds, then enables it.
   */
  async setupVring(index: number, size: number, addresses: { desc: bigint; avail: bigint; used: bigint }, kickFd: number, callFd: number, enable = true): Promise<void> {
    await this.command(Request.SET_VRING_NUM, encodeStruct(VringStateLayout, { index, num: size }));
    await this.command(Request.SET_VRING_BASE, encodeStruct(VringStateLayout, { index, num: 0 }));
    await this.command(Request.SET_VRING_ADDR, encodeStruct(VringAddressLayout, { index, flags: 0, desc: addresses.desc, used: addresses.used, avail: addresses.avail, log: 0n }));
    await this.command(Request.SET_VRING_KICK, u64Payload(BigInt(index)), [kickFd]);
    await this.command(Request.SET_VRING_CALL, u64Payload(BigInt(index)), [callFd]);
    // Without protocol features a ring starts enabled and SET_VRING_ENABLE does not exist.
    if (enable && this.speaksProtocolFeatures) await this.command(Request.SET_VRING_ENABLE, encodeStruct(VringStateLayout, { index, num: 1 }));
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
    if (reply.payload.length < ConfigHeaderLayout.size) throw new VhostUserProtocolError(`GET_CONFIG: reply of ${reply.payload.length} bytes`);
    const h = decodeStruct(ConfigHeaderLayout, reply.payload);
    if (h.size === 0) throw new VhostUserProtocolError(`GET_CONFIG: the back-end refused offset ${offset} size ${size} (size 0 in the reply)`);
    if (h.size !== size || reply.payload.length !== ConfigHeaderLayout.size + size) throw new VhostUserProtocolError(`GET_CONFIG: asked ${size} bytes, the reply carries ${h.size} in ${reply.payload.length - ConfigHeaderLayout.size}`);
    return new Uint8Array(reply.payload.subarray(ConfigHeaderLayout.size));
  }

  /** Closes the connection, the back-end channel, the eventfds and every region. Never throws. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
    this.backendChannel?.close();
    for (const fd of this.eventfds.splice(0)) safely(() => this.native.close(fd));
    for (const r of this.regions.splice(0)) {
      safely(() => this.native.unmap(r.mapping));
      safely(() => this.native.close(r.fd));
    }
  }
}

function safely(work: () => void): void {
  try {
    work();
  } catch {
    /* closing anyway */
  }
}
