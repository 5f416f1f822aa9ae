/**
 * The generic vhost-user message handler: one front-end connection, whatever the device.
 *
 * Each message is checked against its rules ({@link FRONT_END_MESSAGES}: payload size, fds) and
 * handed to the method for its request; the device behind it is a {@link VhostUserDevice} and the
 * messages of a vendor's control extension go to its {@link VendorExtension}. The handler keeps
 * the protocol state: negotiated protocol features, ownership, the memory table, the request
 * queue ({@link Vring}) and the back-end channel, on which every configuration change the device
 * raises is announced with CONFIG_CHANGE_MSG.
 *
 * Malformed input never ends the server: a bad message is answered with a failure (when a reply
 * is due) and logged. Every fd received is either kept (and closed when replaced or at the end)
 * or closed once the message is handled.
 */
import { ChannelClosedError, ChannelTimeoutError, MessageChannel, describeEnd } from '../../vhost-user/src/channel';
import { GuestMemory } from '../../vhost-user/src/guest-memory';
import type { VhostNative } from '../../vhost-user/src/native';
import {
  BackendRequest,
  ConfigHeaderLayout,
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FLAG_VERSION,
  MAX_CONFIG_SIZE,
  MEM_TABLE_MAX_REGIONS,
  MemoryRegionLayout,
  MemoryTableHeaderLayout,
  Message,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  Request,
  STANDARD_PROTOCOL_FEATURES,
  U64Layout,
  decodeStruct,
  encodeStruct,
  protocolMask,
  requestName,
  u64Payload,
} from '../../vhost-user/src/protocol';
import type { VendorExtension, VhostUserDevice } from './device';
import { HandledRequest, OK, HandlerReply, refusal, messageRule, payloadProblem, takeFd } from './messages';
import { Vring, VringHost, wrongFdKind } from './vring';

/** Memory slots offered with CONFIGURE_MEM_SLOTS (virtio-mem makes VMMs use many). */
export const BACKEND_MAX_MEM_SLOTS = 509;
/** How long a back-end channel message waits for the front-end's ack. */
const BACKEND_ACK_TIMEOUT_MS = 2000;
/**
 * How long a send to a front-end waits for room in its socket: not at all. Sends never block the
 * event loop (MSG_DONTWAIT, whatever blocking mode the peer set on the shared socket); the
 * kernel's socket buffer is the bounded queue, and a peer that lets it fill is disconnected.
 */
export const SEND_TIMEOUT_MS = 0;

/** One front-end connection and its device (of type `D`). */
export class BackendConnection<D extends VhostUserDevice = VhostUserDevice> implements VringHost {
  readonly memory: GuestMemory;
  readonly device: D;
  private readonly vring: Vring;
  private owner = false;
  private protocolFeatures = 0n;
  private backendChannel?: MessageChannel;
  private announced: number;
  private work: Promise<void> = Promise.resolve();
  private endedFlag = false;
  private extension?: VendorExtension;

  constructor(
    readonly id: number,
    private readonly channel: MessageChannel,
    readonly native: VhostNative,
    makeDevice: (memory: GuestMemory, problem: (text: string) => void) => D,
    private readonly log: (line: string) => void,
  ) {
    this.memory = new GuestMemory(native);
    this.device = makeDevice(this.memory, (text) => this.problem(text));
    this.vring = new Vring(this);
    this.announced = this.device.configChanges;
  }

  /** Adds a vendor's control extension (its messages and its protocol-feature bit). */
  extend(extension: VendorExtension): void {
    this.extension = extension;
  }

  /** Protocol features offered (GET_PROTOCOL_FEATURES). */
  get offeredProtocolFeatures(): bigint {
    return STANDARD_PROTOCOL_FEATURES | (this.extension ? protocolMask(this.extension.protocolFeature) : 0n);
  }

  /** Whether a front-end took ownership (SET_OWNER): a device in use, not a control client. */
  get isOwned(): boolean {
    return this.owner;
  }

  /** Whether the connection has ended. */
  get ended(): boolean {
    return this.endedFlag;
  }

  /** Whether the device raised configuration changes not announced yet. */
  get announcing(): boolean {
    return this.announced < this.device.configChanges;
  }

  /** Handles messages until the connection ends. */
  async serve(): Promise<void> {
    for (;;) {
      const message = await this.channel.next();
      if (!message) break;
      await this.serialised(() => this.handle(message));
      if (this.endedFlag) return;
    }
    const end = this.channel.end;
    await this.end(end ? describeEnd(end) : 'closed');
  }

  /** Ends the connection and releases everything it holds. */
  async end(reason: string): Promise<void> {
    if (this.endedFlag) return;
    this.endedFlag = true;
    this.vring.reset();
    this.memory.clear();
    this.backendChannel?.close();
    this.channel.close();
    this.log(`connection ${this.id}: ended (${reason})`);
  }

  /** Runs `work` after everything queued on this connection before it; an exception is logged, never thrown. */
  serialised(work: () => Promise<void> | void): Promise<void> {
    const next = this.work.then(work, work);
    this.work = next.catch(() => undefined);
    return next.catch((e: unknown) => {
      this.log(`connection ${this.id}: internal error: ${(e as Error).stack ?? String(e)}`);
    });
  }

  /** Logs a problem with this connection. */
  problem(text: string): void {
    this.log(`connection ${this.id}: ${text}`);
  }

  /** The device was replaced or reset behind the handler's back: its changes so far are not announced. */
  forgetConfigChanges(): void {
    this.announced = this.device.configChanges;
  }

  /** A reset of the queue: it forgets its state and fds (the front-end sets it up again). */
  resetQueue(): void {
    this.vring.reset();
  }

  /** Sends CONFIG_CHANGE_MSG for every configuration change the device raised since the last one. */
  async announce(): Promise<void> {
    while (this.announced < this.device.configChanges) {
      this.announced++;
      const channel = this.backendChannel;
      if (!channel || !(this.protocolFeatures & protocolMask(ProtocolFeature.BACKEND_REQ))) continue;
      const needReply = (this.protocolFeatures & protocolMask(ProtocolFeature.REPLY_ACK)) !== 0n;
      try {
        channel.send(BackendRequest.CONFIG_CHANGE_MSG, FLAG_VERSION | (needReply ? FLAG_NEED_REPLY : 0));
        if (needReply) {
          const reply = await channel.next(BACKEND_ACK_TIMEOUT_MS);
          if (!reply) this.problem('back-end channel closed before CONFIG_CHANGE_MSG was acknowledged');
          else for (const fd of reply.fds) this.closeQuietly(fd);
        }
      } catch (e) {
        if (e instanceof ChannelTimeoutError)
          this.problem(`CONFIG_CHANGE_MSG not acknowledged within ${BACKEND_ACK_TIMEOUT_MS} ms`);
        else if (e instanceof ChannelClosedError) {
          this.problem(`back-end channel: ${e.message}`);
          // A front-end that cannot take its messages is disconnected rather than waited for.
          if (channel.end?.kind === 'io-error') {
            await this.end('the back-end channel cannot take its messages');
            return;
          }
        } else throw e;
      }
    }
  }

  private async handle(message: Message): Promise<void> {
    const name = requestName(message.request);
    let outcome: HandlerReply;
    let untaken = 0;
    try {
      outcome = await this.dispatch(message);
    } catch (e) {
      outcome = refusal(`failed: ${(e as Error).message}`);
    } finally {
      // Any fd the handler did not take is closed here: nothing received can leak.
      for (const fd of message.fds) {
        if (fd < 0) continue;
        untaken++;
        this.closeQuietly(fd);
      }
    }
    if ('problem' in outcome && outcome.problem) this.problem(`${name}: ${outcome.problem}`);
    else if (untaken > 0) this.problem(`${name}: ${untaken} unexpected fd(s) closed`);
    if (this.endedFlag) return;
    try {
      if ('reply' in outcome) this.channel.send(message.request, FLAG_VERSION | FLAG_REPLY, outcome.reply);
      else if (message.flags & FLAG_NEED_REPLY)
        this.channel.send(message.request, FLAG_VERSION | FLAG_REPLY, u64Payload(outcome.ack ? 0n : 1n));
    } catch (e) {
      if (!(e instanceof ChannelClosedError)) throw e;
    }
  }

  /** Checks the message against its rules, then runs its handler. */
  private async dispatch(m: Message): Promise<HandlerReply> {
    const rule = messageRule(m.request);
    if (!rule) {
      if (this.extension?.handles(m.request)) return this.extension.handle(m);
      return refusal(`unknown request ${m.request} (${m.payload.length}-byte payload, ${m.fds.length} fd(s)) ignored`);
    }
    const bad = payloadProblem(rule.payload, m.payload.length);
    if (bad) return refusal(bad);
    let fd = -1;
    if (rule.fds === 'one') {
      const taken = takeFd(m);
      if (typeof taken === 'string') return refusal(taken);
      fd = taken;
    }
    return this.handlers[m.request as HandledRequest](m, fd);
  }

  /** One handler per message; `fd` is the message's fd when its rule is `one` (the handler owns it). */
  private readonly handlers: Readonly<Record<HandledRequest, (m: Message, fd: number) => HandlerReply>> = {
    [Request.GET_FEATURES]: () => ({ reply: u64Payload(this.device.offeredFeatures | PROTOCOL_FEATURES_BIT) }),
    [Request.SET_FEATURES]: (m) => {
      this.device.ackFeatures(u64(m) & ~PROTOCOL_FEATURES_BIT);
      return OK;
    },
    [Request.GET_PROTOCOL_FEATURES]: () => ({ reply: u64Payload(this.offeredProtocolFeatures) }),
    [Request.SET_PROTOCOL_FEATURES]: (m) => {
      const wanted = u64(m);
      const extra = wanted & ~this.offeredProtocolFeatures;
      if (extra) return refusal(`protocol features 0x${extra.toString(16)} were not offered`);
      this.protocolFeatures = wanted;
      return OK;
    },
    [Request.SET_OWNER]: () => {
      this.owner = true;
      return OK;
    },
    [Request.RESET_OWNER]: () => this.resetDevice(),
    [Request.RESET_DEVICE]: () => this.resetDevice(),
    [Request.GET_QUEUE_NUM]: () => ({ reply: u64Payload(BigInt(this.device.queueCount)) }),
    [Request.GET_MAX_MEM_SLOTS]: () => ({ reply: u64Payload(BigInt(BACKEND_MAX_MEM_SLOTS)) }),
    [Request.SET_MEM_TABLE]: (m) => this.setMemTable(m),
    [Request.ADD_MEM_REG]: (m, fd) => {
      if (this.memory.count >= BACKEND_MAX_MEM_SLOTS) {
        this.closeQuietly(fd);
        return refusal(`all ${BACKEND_MAX_MEM_SLOTS} memory slots are in use`);
      }
      const r = decodeStruct(MemoryRegionLayout, m.payload, 8);
      this.memory.add(fd, r.guestAddress, r.size, r.userAddress, r.mmapOffset);
      return OK;
    },
    [Request.REM_MEM_REG]: (m) => {
      const r = decodeStruct(MemoryRegionLayout, m.payload, 8);
      if (!this.memory.remove(r.guestAddress, r.size))
        return refusal(`no region at guest address 0x${r.guestAddress.toString(16)} of size 0x${r.size.toString(16)}`);
      return OK;
    },
    [Request.SET_VRING_NUM]: (m) => this.vring.state(m),
    [Request.SET_VRING_BASE]: (m) => this.vring.state(m),
    [Request.SET_VRING_ENABLE]: (m) => this.vring.state(m),
    [Request.GET_VRING_BASE]: (m) => this.vring.state(m),
    [Request.SET_VRING_ADDR]: (m) => this.vring.address(m),
    [Request.SET_VRING_KICK]: (m) => this.vring.eventFd(m),
    [Request.SET_VRING_CALL]: (m) => this.vring.eventFd(m),
    [Request.SET_VRING_ERR]: (m) => this.vring.eventFd(m),
    [Request.SET_BACKEND_REQ_FD]: (_m, fd) => {
      const wrongKind = wrongFdKind(fd, 'socket');
      if (wrongKind) {
        this.closeQuietly(fd);
        return refusal(`fd refused: ${wrongKind}`);
      }
      this.backendChannel?.close();
      this.backendChannel = undefined;
      try {
        this.backendChannel = new MessageChannel(this.native, fd, SEND_TIMEOUT_MS);
      } catch (e) {
        // Not a socket that can be watched (a memfd, say): the fd is ours to close.
        this.closeQuietly(fd);
        return refusal(`the back-end channel fd cannot be used: ${(e as Error).message}`);
      }
      return OK;
    },
    [Request.GET_CONFIG]: (m) => this.getConfig(m),
    [Request.SET_CONFIG]: (m) => {
      const h = m.payload.length >= ConfigHeaderLayout.size ? decodeStruct(ConfigHeaderLayout, m.payload) : undefined;
      const written = this.device.writeConfig(h?.offset ?? 0, m.payload.subarray(ConfigHeaderLayout.size));
      return written.kind === 'unsupported' ? refusal(written.reason) : OK;
    },
    [Request.SET_STATUS]: (m) => {
      const value = Number(u64(m) & 0xffn);
      if (value === 0) return this.resetDevice();
      this.device.writeStatus(value);
      return OK;
    },
    [Request.GET_STATUS]: () => ({ reply: u64Payload(BigInt(this.device.readStatus())) }),
  };

  /** A device reset: the device's status ← 0, and the queue forgets its state (the front-end sets it up again). */
  private resetDevice(): HandlerReply {
    this.device.reset();
    this.vring.reset();
    return OK;
  }

  private setMemTable(m: Message): HandlerReply {
    const n = decodeStruct(MemoryTableHeaderLayout, m.payload).regions;
    if (n > MEM_TABLE_MAX_REGIONS)
      return refusal(`${n} regions; SET_MEM_TABLE carries at most ${MEM_TABLE_MAX_REGIONS}`);
    const expected = MemoryTableHeaderLayout.size + n * MemoryRegionLayout.size;
    // QEMU sends all 8 slots whatever n is; both sizes are fine.
    if (
      m.payload.length !== expected &&
      m.payload.length !== MemoryTableHeaderLayout.size + MEM_TABLE_MAX_REGIONS * MemoryRegionLayout.size
    ) {
      return refusal(`payload of ${m.payload.length} bytes for ${n} regions (expected ${expected})`);
    }
    if (m.fds.length !== n) return refusal(`${n} regions but ${m.fds.length} fd(s)`);
    this.memory.clear();
    for (let i = 0; i < n; i++) {
      const r = decodeStruct(MemoryRegionLayout, m.payload, MemoryTableHeaderLayout.size + i * MemoryRegionLayout.size);
      const fd = m.fds[i]!;
      m.fds[i] = -1;
      try {
        this.memory.add(fd, r.guestAddress, r.size, r.userAddress, r.mmapOffset);
      } catch (e) {
        this.memory.clear();
        return refusal(`region ${i}: ${(e as Error).message}`);
      }
    }
    return OK;
  }

  private getConfig(m: Message): HandlerReply {
    const size = m.payload.length;
    const h = decodeStruct(ConfigHeaderLayout, m.payload);
    const config = this.device.readConfig();
    if (!(config instanceof Uint8Array)) return refusal(config.reason);
    const asked = size - ConfigHeaderLayout.size;
    if (h.size !== asked || h.size > MAX_CONFIG_SIZE || h.offset + h.size > config.length || h.size === 0) {
      this.problem(
        `GET_CONFIG: offset ${h.offset} size ${h.size} with ${asked} bytes of room is outside the ${config.length}-byte config; answered with size 0`,
      );
      return { reply: encodeStruct(ConfigHeaderLayout, { offset: h.offset, size: 0, flags: h.flags }) };
    }
    const out = Buffer.alloc(size);
    encodeStruct(ConfigHeaderLayout, h, out);
    out.set(config.subarray(h.offset, h.offset + h.size), ConfigHeaderLayout.size);
    return { reply: out };
  }

  private closeQuietly(fd: number): void {
    try {
      this.native.close(fd);
    } catch {
      /* already closed */
    }
  }
}

function u64(m: Message): bigint {
  return decodeStruct(U64Layout, m.payload).value;
}
