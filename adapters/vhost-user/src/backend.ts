/**
 * `vmemct serve-vhost-user`: a vhost-user back-end whose device is the reference model.
 *
 * Each connection is one device: a fresh {@link VirtioMemDevice} built from the server's set-up
 * (or from a VMEMCT SETUP message). Requests arrive on vring 0 and are answered by the model;
 * configuration changes are announced with BACKEND_CONFIG_CHANGE_MSG on the back-end channel.
 *
 * The device region convention: the front-end shares the device's memory as an ordinary memory
 * region (SET_MEM_TABLE or ADD_MEM_REG) whose guest address range covers [addr, addr +
 * region_size). When the device unplugs blocks (UNPLUG, UNPLUG ALL, a system reset) the back-end
 * discards their pages in that region (MADV_REMOVE: a hole in the front-end's memfd), and it
 * never touches blocks that are unplugged (so UNPLUGGED_INACCESSIBLE front-ends can keep them
 * unmapped).
 *
 * Malformed input never ends the server: a bad message is answered with a failure (when a reply
 * is due) and logged; a framing error or a peer that hangs up mid-message ends that connection
 * only. Every fd received is either kept (and closed when replaced or at the end) or closed at once.
 */
import * as fs from 'node:fs';
import {
  DeviceParamsError,
  DeviceProfile,
  SPEC_PROFILE,
  VirtioMemDevice,
} from '../../../model/src/index';
import type { BlockRun } from '../../../model/src/blocks/bitmap';
import {
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTQ_MAX_SIZE,
  formatSize,
  virtqAvailBytes,
  virtqDescTableBytes,
  virtqUsedBytes,
} from '../../../spec/src/index';
import { DeviceSplitQueue, SplitQueuePosition } from '../../virtio/src/index';
import { ChannelClosedError, ChannelTimeoutError, MessageChannel, describeEnd } from './channel';
import { GuestMemory } from './guest-memory';
import { VhostNative, WatchHandle, vhostNative } from './native';
import {
  BackendRequest,
  BlockRunLayout,
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
  SINGLE_REGION_SIZE,
  U64Layout,
  VMEMCT_SETUP_FEATURES_GIVEN,
  VRING_INDEX_MASK,
  VRING_NOFD,
  VmemctAccessLayout,
  VmemctRequest,
  VmemctSetupLayout,
  VmemctStatus,
  VringAddressLayout,
  VringStateLayout,
  decodeStruct,
  encodeStruct,
  protocolMask,
  requestName,
  u64Payload,
  vmemctReplyPayload,
} from './protocol';

/** Protocol features the back-end offers. */
export const BACKEND_PROTOCOL_FEATURES = protocolMask(
  ProtocolFeature.MQ,
  ProtocolFeature.REPLY_ACK,
  ProtocolFeature.BACKEND_REQ,
  ProtocolFeature.CONFIG,
  ProtocolFeature.RESET_DEVICE,
  ProtocolFeature.CONFIGURE_MEM_SLOTS,
  ProtocolFeature.STATUS,
  ProtocolFeature.VMEMCT_CONTROL,
);

/** Memory slots offered with CONFIGURE_MEM_SLOTS (virtio-mem makes VMMs use many). */
export const BACKEND_MAX_MEM_SLOTS = 509;
/** How long a back-end channel message waits for the front-end's ack. */
const BACKEND_ACK_TIMEOUT_MS = 2000;

/** The device every new connection gets, unless it sends a VMEMCT SETUP. */
export interface BackendDeviceSetup {
  readonly block_size: bigint;
  readonly region_size: bigint;
  readonly addr: bigint;
  readonly requested_size: bigint;
  readonly node_id: number;
  readonly features?: bigint;
  readonly plugged?: readonly BlockRun[];
}

/** Options of {@link VhostUserBackend}. */
export interface BackendOptions {
  readonly socketPath: string;
  readonly setup: BackendDeviceSetup;
  readonly profile?: DeviceProfile;
  /** One line per event worth knowing (connections, malformed input, ends). */
  readonly log?: (line: string) => void;
  readonly native?: VhostNative;
}

/** The server is already running at that path, or the path cannot be used. */
export class BackendStartError extends Error {
  override readonly name = 'BackendStartError';
}

/** A vhost-user back-end serving the model, one device per connection. */
export class VhostUserBackend {
  private listenFd = -1;
  private listenWatch?: WatchHandle;
  private readonly sessions = new Set<BackendSession>();
  private nextId = 1;
  private setup: BackendDeviceSetup;
  readonly profile: DeviceProfile;
  private readonly log: (line: string) => void;
  private readonly native: VhostNative;
  private stopped = false;

  private constructor(private readonly options: BackendOptions) {
    this.native = options.native ?? vhostNative();
    this.profile = options.profile ?? SPEC_PROFILE;
    this.setup = options.setup;
    this.log = options.log ?? (() => undefined);
    // Building the default device once checks the set-up before any client connects.
    buildDevice(this.setup, this.profile);
  }

  /**
   * Starts listening. A stale socket file (nobody accepting) is replaced.
   * @throws BackendStartError when another server answers on the path or it cannot be bound;
   *   DeviceParamsError when the set-up cannot be modelled; NativeHelperMissingError.
   */
  static async start(options: BackendOptions): Promise<VhostUserBackend> {
    const backend = new VhostUserBackend(options);
    backend.bind();
    return backend;
  }

  /** The socket path. */
  get socketPath(): string {
    return this.options.socketPath;
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.sessions.size;
  }

  /** The implementation name reported by VMEMCT INFO. */
  get implementation(): string {
    return `vmemct serve-vhost-user (model:${this.profile.name})`;
  }

  private bind(): void {
    const path = this.options.socketPath;
    try {
      const probe = this.native.connect(path);
      this.native.close(probe);
      throw new BackendStartError(`${path}: another back-end is already serving this socket`);
    } catch (e) {
      if (e instanceof BackendStartError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED') removeStale(path);
      else if (code !== 'ENOENT') throw new BackendStartError(`${path}: ${(e as Error).message}`);
    }
    try {
      this.listenFd = this.native.listen(path, 64);
    } catch (e) {
      throw new BackendStartError(`${path}: cannot listen (${(e as Error).message})`);
    }
    this.listenWatch = this.native.watch(this.listenFd, () => this.acceptAll());
  }

  private acceptAll(): void {
    for (;;) {
      let fd: number;
      try {
        fd = this.native.accept(this.listenFd);
      } catch (e) {
        // Out of fds (EMFILE) and the like: pause accepting briefly rather than spin on a readable listener.
        this.log(`accept failed: ${(e as Error).message}; accepting again in 200 ms`);
        this.pauseAccepting(200);
        return;
      }
      if (fd < 0) return;
      const id = this.nextId++;
      const session = new BackendSession(this, id, new MessageChannel(this.native, fd), this.native, this.log);
      this.sessions.add(session);
      this.log(`connection ${id}: opened`);
      void session.serve().finally(() => {
        this.sessions.delete(session);
      });
    }
  }

  private pauseAccepting(ms: number): void {
    if (!this.listenWatch || this.stopped) return;
    this.native.unwatch(this.listenWatch);
    this.listenWatch = undefined;
    setTimeout(() => {
      if (this.stopped || this.listenFd < 0) return;
      this.listenWatch = this.native.watch(this.listenFd, () => this.acceptAll());
      this.acceptAll();
    }, ms).unref();
  }

  /** The set-up new connections get. */
  defaultSetup(): BackendDeviceSetup {
    return this.setup;
  }

  /** A device for a new connection. */
  newDevice(setup: BackendDeviceSetup = this.setup): VirtioMemDevice {
    return buildDevice(setup, this.profile);
  }

  /**
   * A host resize of the whole back-end (vmemct vhost-user-ctl): the default set-up for new
   * connections and every connection's device, each announced to its front-end.
   */
  async resizeAll(requested: bigint): Promise<{ ok: boolean; text: string }> {
    const trial = buildDevice(this.setup, this.profile).setRequestedSize(requested);
    if (!trial.ok) return { ok: false, text: trial.reason };
    this.setup = { ...this.setup, requested_size: requested };
    const notes: string[] = [];
    // Control clients (no SET_OWNER) have no device a front-end uses.
    for (const s of [...this.sessions].filter((c) => c.isOwned)) {
      const r = await s.hostResize(requested);
      notes.push(`connection ${s.id}: ${r.ok ? 'applied' : `refused (${r.text})`}`);
    }
    const text = [`requested_size ${formatSize(requested)} for new connections`, ...notes].join('; ');
    this.log(`resize: ${text}`);
    return { ok: true, text };
  }

  /** JSON-ready description of the back-end (VMEMCT STATUS). */
  status(): unknown {
    const s = this.setup;
    return {
      implementation: this.implementation,
      socket: this.socketPath,
      setup: { block_size: s.block_size.toString(), region_size: s.region_size.toString(), addr: s.addr.toString(), requested_size: s.requested_size.toString(), node_id: s.node_id },
      connections: [...this.sessions].filter((c) => c.isOwned).map((c) => c.describe()),
    };
  }

  /** Stops accepting, ends every connection and removes the socket file. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.listenWatch) this.native.unwatch(this.listenWatch);
    if (this.listenFd >= 0) this.native.close(this.listenFd);
    this.listenFd = -1;
    removeStale(this.options.socketPath);
    await Promise.all([...this.sessions].map((s) => s.end('server stopping')));
  }
}

/** Removes a socket file nobody serves; any other kind of file is left alone. */
function removeStale(path: string): void {
  try {
    if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
  } catch {
    /* gone already */
  }
}

/** The set-up is the model's device parameters; a set-up the model cannot build throws DeviceParamsError. */
function buildDevice(setup: BackendDeviceSetup, profile: DeviceProfile): VirtioMemDevice {
  return new VirtioMemDevice(setup, profile);
}

/** vring 0 as the front-end described it (ring addresses are the front-end's user addresses). */
interface Vring {
  num: number;
  desc?: bigint;
  avail?: bigint;
  used?: bigint;
  /** The ring indices the device side reached (SET_VRING_BASE sets both, GET_VRING_BASE reports nextAvail). */
  position: SplitQueuePosition;
  enabled: boolean;
  kickFd: number;
  callFd: number;
  errFd: number;
  kickWatch?: WatchHandle;
}

function freshVring(): Vring {
  return { num: 0, position: { nextAvail: 0, nextUsed: 0 }, enabled: false, kickFd: -1, callFd: -1, errFd: -1 };
}

/** A request's reply: bytes to send back, or a failure to acknowledge. */
type Outcome = { readonly reply: Uint8Array } | { readonly ack: boolean; readonly problem?: string };

const ok: Outcome = { ack: true };
function fail(problem: string): Outcome {
  return { ack: false, problem };
}

/** One front-end connection and its device. */
class BackendSession {
  private device: VirtioMemDevice;
  private readonly memory: GuestMemory;
  private vring = freshVring();
  private owner = false;
  private protocolFeatures = 0n;
  private backendChannel?: MessageChannel;
  private announced: number;
  private work: Promise<void> = Promise.resolve();
  private ended = false;
  private unsharedNoted = false;

  constructor(
    private readonly server: VhostUserBackend,
    readonly id: number,
    private readonly channel: MessageChannel,
    private readonly native: VhostNative,
    private readonly log: (line: string) => void,
  ) {
    this.device = server.newDevice();
    this.announced = this.device.notificationCount;
    this.memory = new GuestMemory(native);
  }

  /** Whether a front-end took ownership (SET_OWNER): a device in use, not a control client. */
  get isOwned(): boolean {
    return this.owner;
  }

  describe(): unknown {
    const c = this.device.readConfig();
    return { id: this.id, owner: this.owner, status: this.device.deviceStatus, regions: this.memory.count, plugged_size: c.plugged_size.toString(), requested_size: c.requested_size.toString() };
  }

  /** Handles messages until the connection ends. */
  async serve(): Promise<void> {
    for (;;) {
      const message = await this.channel.next();
      if (!message) break;
      await this.serialised(() => this.handle(message));
      if (this.ended) return;
    }
    const end = this.channel.end;
    await this.end(end ? describeEnd(end) : 'closed');
  }

  /** Ends the connection and releases everything it holds. */
  async end(reason: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.stopRing();
    this.closeVringFds();
    this.memory.clear();
    this.backendChannel?.close();
    this.channel.close();
    this.log(`connection ${this.id}: ended (${reason})`);
  }

  private serialised(work: () => Promise<void> | void): Promise<void> {
    const next = this.work.then(work, work);
    this.work = next.catch(() => undefined);
    return next.catch((e: unknown) => {
      this.log(`connection ${this.id}: internal error: ${(e as Error).stack ?? String(e)}`);
    });
  }

  private problem(text: string): void {
    this.log(`connection ${this.id}: ${text}`);
  }

  private async handle(message: Message): Promise<void> {
    const name = requestName(message.request);
    let outcome: Outcome;
    let untaken = 0;
    try {
      outcome = await this.dispatch(message);
    } catch (e) {
      outcome = fail(`failed: ${(e as Error).message}`);
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
    if (this.ended) return;
    try {
      if ('reply' in outcome) this.channel.send(message.request, FLAG_VERSION | FLAG_REPLY, outcome.reply);
      else if (message.flags & FLAG_NEED_REPLY) this.channel.send(message.request, FLAG_VERSION | FLAG_REPLY, u64Payload(outcome.ack ? 0n : 1n));
    } catch (e) {
      if (!(e instanceof ChannelClosedError)) throw e;
    }
  }

  /** Takes the message's only fd (or fails when there is not exactly one). */
  private takeFd(message: Message): number | string {
    if (message.fds.length !== 1) return `expected 1 fd, got ${message.fds.length}`;
    const fd = message.fds[0]!;
    message.fds[0] = -1;
    return fd;
  }

  private closeQuietly(fd: number): void {
    try {
      this.native.close(fd);
    } catch {
      /* already closed */
    }
  }

  private async dispatch(m: Message): Promise<Outcome> {
    const size = m.payload.length;
    const want = (n: number): string | undefined => (size === n ? undefined : `payload of ${size} bytes, expected ${n}`);
    const noFds = (): string | undefined => (m.fds.length === 0 ? undefined : `${m.fds.length} unexpected fd(s) closed`);
    const u64 = (): bigint => decodeStruct(U64Layout, m.payload).value;
    const acked = (problem?: string): Outcome => (problem ? { ack: true, problem } : ok);
    switch (m.request) {
      case Request.GET_FEATURES: {
        const bad = want(0);
        if (bad) return fail(bad);
        return { reply: u64Payload(this.device.offeredFeatures | PROTOCOL_FEATURES_BIT) };
      }
      case Request.SET_FEATURES: {
        const bad = want(8);
        if (bad) return fail(bad);
        this.device.writeDriverFeatures(u64() & ~PROTOCOL_FEATURES_BIT);
        return acked(noFds());
      }
      case Request.GET_PROTOCOL_FEATURES: {
        const bad = want(0);
        if (bad) return fail(bad);
        return { reply: u64Payload(BACKEND_PROTOCOL_FEATURES) };
      }
      case Request.SET_PROTOCOL_FEATURES: {
        const bad = want(8);
        if (bad) return fail(bad);
        const wanted = u64();
        if (wanted & ~BACKEND_PROTOCOL_FEATURES) return fail(`protocol features 0x${(wanted & ~BACKEND_PROTOCOL_FEATURES).toString(16)} were not offered`);
        this.protocolFeatures = wanted;
        return ok;
      }
      case Request.SET_OWNER:
        if (want(0)) return fail(want(0)!);
        this.owner = true;
        return acked(noFds());
      case Request.RESET_OWNER:
      case Request.RESET_DEVICE:
        if (want(0)) return fail(want(0)!);
        this.resetDevice();
        return ok;
      case Request.GET_QUEUE_NUM:
        if (want(0)) return fail(want(0)!);
        return { reply: u64Payload(1n) };
      case Request.GET_MAX_MEM_SLOTS:
        if (want(0)) return fail(want(0)!);
        return { reply: u64Payload(BigInt(BACKEND_MAX_MEM_SLOTS)) };
      case Request.SET_MEM_TABLE:
        return this.setMemTable(m);
      case Request.ADD_MEM_REG: {
        if (want(SINGLE_REGION_SIZE)) return fail(want(SINGLE_REGION_SIZE)!);
        if (this.memory.count >= BACKEND_MAX_MEM_SLOTS) return fail(`all ${BACKEND_MAX_MEM_SLOTS} memory slots are in use`);
        const fd = this.takeFd(m);
        if (typeof fd === 'string') return fail(fd);
        const r = decodeStruct(MemoryRegionLayout, m.payload, 8);
        this.memory.add(fd, r.guestAddress, r.size, r.userAddress, r.mmapOffset);
        return ok;
      }
      case Request.REM_MEM_REG: {
        if (want(SINGLE_REGION_SIZE)) return fail(want(SINGLE_REGION_SIZE)!);
        const r = decodeStruct(MemoryRegionLayout, m.payload, 8);
        if (!this.memory.remove(r.guestAddress, r.size)) return fail(`no region at guest address 0x${r.guestAddress.toString(16)} of size 0x${r.size.toString(16)}`);
        return ok;
      }
      case Request.SET_VRING_NUM:
      case Request.SET_VRING_BASE:
      case Request.SET_VRING_ENABLE:
      case Request.GET_VRING_BASE:
        return this.vringState(m);
      case Request.SET_VRING_ADDR: {
        if (want(VringAddressLayout.size)) return fail(want(VringAddressLayout.size)!);
        const a = decodeStruct(VringAddressLayout, m.payload);
        if (a.index !== 0) return fail(`vring ${a.index} does not exist (virtio-mem has one queue)`);
        this.vring.desc = a.desc;
        this.vring.avail = a.avail;
        this.vring.used = a.used;
        return ok;
      }
      case Request.SET_VRING_KICK:
      case Request.SET_VRING_CALL:
      case Request.SET_VRING_ERR:
        return this.vringFd(m);
      case Request.SET_BACKEND_REQ_FD: {
        if (want(0)) return fail(want(0)!);
        const fd = this.takeFd(m);
        if (typeof fd === 'string') return fail(fd);
        this.backendChannel?.close();
        this.backendChannel = undefined;
        try {
          this.backendChannel = new MessageChannel(this.native, fd);
        } catch (e) {
          // Not a socket that can be watched (a memfd, say): the fd is ours to close.
          this.closeQuietly(fd);
          return fail(`the back-end channel fd cannot be used: ${(e as Error).message}`);
        }
        return ok;
      }
      case Request.GET_CONFIG: {
        if (size < ConfigHeaderLayout.size) return fail(`payload of ${size} bytes is shorter than the config header`);
        const h = decodeStruct(ConfigHeaderLayout, m.payload);
        const config = this.device.readConfigBytes();
        const asked = size - ConfigHeaderLayout.size;
        if (h.size !== asked || h.size > MAX_CONFIG_SIZE || h.offset + h.size > config.length || h.size === 0) {
          this.problem(`GET_CONFIG: offset ${h.offset} size ${h.size} with ${asked} bytes of room is outside the ${config.length}-byte config; answered with size 0`);
          return { reply: encodeStruct(ConfigHeaderLayout, { offset: h.offset, size: 0, flags: h.flags }) };
        }
        const out = Buffer.alloc(size);
        encodeStruct(ConfigHeaderLayout, h, out);
        out.set(config.subarray(h.offset, h.offset + h.size), ConfigHeaderLayout.size);
        return { reply: out };
      }
      case Request.SET_CONFIG:
        return fail('the virtio-mem configuration is read-only');
      case Request.SET_STATUS: {
        if (want(8)) return fail(want(8)!);
        const value = Number(u64() & 0xffn);
        if (value === 0) this.resetDevice();
        else this.device.writeStatus(value);
        return ok;
      }
      case Request.GET_STATUS:
        if (want(0)) return fail(want(0)!);
        return { reply: u64Payload(BigInt(this.device.deviceStatus)) };
      default:
        if (Object.values(VmemctRequest).includes(m.request as never)) return this.vmemct(m);
        return fail(`unknown request ${m.request} (${size}-byte payload, ${m.fds.length} fd(s)) ignored`);
    }
  }

  private setMemTable(m: Message): Outcome {
    if (m.payload.length < MemoryTableHeaderLayout.size) return fail(`payload of ${m.payload.length} bytes is shorter than the table header`);
    const n = decodeStruct(MemoryTableHeaderLayout, m.payload).regions;
    if (n > MEM_TABLE_MAX_REGIONS) return fail(`${n} regions; SET_MEM_TABLE carries at most ${MEM_TABLE_MAX_REGIONS}`);
    const expected = MemoryTableHeaderLayout.size + n * MemoryRegionLayout.size;
    // QEMU sends all 8 slots whatever n is; both sizes are fine.
    if (m.payload.length !== expected && m.payload.length !== MemoryTableHeaderLayout.size + MEM_TABLE_MAX_REGIONS * MemoryRegionLayout.size) {
      return fail(`payload of ${m.payload.length} bytes for ${n} regions (expected ${expected})`);
    }
    if (m.fds.length !== n) return fail(`${n} regions but ${m.fds.length} fd(s)`);
    this.memory.clear();
    for (let i = 0; i < n; i++) {
      const r = decodeStruct(MemoryRegionLayout, m.payload, MemoryTableHeaderLayout.size + i * MemoryRegionLayout.size);
      const fd = m.fds[i]!;
      m.fds[i] = -1;
      try {
        this.memory.add(fd, r.guestAddress, r.size, r.userAddress, r.mmapOffset);
      } catch (e) {
        this.memory.clear();
        return fail(`region ${i}: ${(e as Error).message}`);
      }
    }
    return ok;
  }

  private vringState(m: Message): Outcome {
    if (m.payload.length !== VringStateLayout.size) return fail(`payload of ${m.payload.length} bytes, expected ${VringStateLayout.size}`);
    const s = decodeStruct(VringStateLayout, m.payload);
    if (s.index !== 0) return fail(`vring ${s.index} does not exist (virtio-mem has one queue)`);
    switch (m.request) {
      case Request.SET_VRING_NUM:
        if (s.num === 0 || s.num > VIRTQ_MAX_SIZE || (s.num & (s.num - 1)) !== 0) return fail(`queue size ${s.num} is not a power of two up to ${VIRTQ_MAX_SIZE}`);
        this.vring.num = s.num;
        return ok;
      case Request.SET_VRING_BASE:
        if (s.num > 0xffff) return fail(`base ${s.num} exceeds 16 bits`);
        this.vring.position = { nextAvail: s.num, nextUsed: s.num };
        return ok;
      case Request.SET_VRING_ENABLE:
        this.vring.enabled = s.num !== 0;
        if (this.vring.enabled) this.kicked();
        return ok;
      default: {
        // GET_VRING_BASE stops the ring.
        const base = this.vring.position.nextAvail;
        this.stopRing();
        this.closeQuietly(this.vring.kickFd);
        this.vring.kickFd = -1;
        return { reply: encodeStruct(VringStateLayout, { index: 0, num: base }) };
      }
    }
  }

  private vringFd(m: Message): Outcome {
    if (m.payload.length !== 8) return fail(`payload of ${m.payload.length} bytes, expected 8`);
    const value = decodeStruct(U64Layout, m.payload).value;
    const index = Number(value & VRING_INDEX_MASK);
    if (index !== 0) return fail(`vring ${index} does not exist (virtio-mem has one queue)`);
    let fd = -1;
    if (!(value & VRING_NOFD)) {
      const taken = this.takeFd(m);
      if (typeof taken === 'string') return fail(taken);
      fd = taken;
    } else if (m.fds.length) {
      return fail(`the no-fd flag is set but ${m.fds.length} fd(s) came`);
    }
    const v = this.vring;
    if (m.request === Request.SET_VRING_KICK) {
      this.stopRing();
      this.closeQuietly(v.kickFd);
      v.kickFd = -1;
      if (fd >= 0) {
        try {
          v.kickWatch = this.native.watch(fd, () => this.kicked());
        } catch (e) {
          this.closeQuietly(fd);
          return fail(`the kick fd cannot be watched: ${(e as Error).message}`);
        }
      }
      v.kickFd = fd;
    } else if (m.request === Request.SET_VRING_CALL) {
      this.closeQuietly(v.callFd);
      v.callFd = fd;
    } else {
      this.closeQuietly(v.errFd);
      v.errFd = fd;
    }
    return ok;
  }

  private stopRing(): void {
    if (this.vring.kickWatch) this.native.unwatch(this.vring.kickWatch);
    this.vring.kickWatch = undefined;
  }

  private closeVringFds(): void {
    for (const fd of [this.vring.kickFd, this.vring.callFd, this.vring.errFd]) if (fd >= 0) this.closeQuietly(fd);
    this.vring.kickFd = this.vring.callFd = this.vring.errFd = -1;
  }

  /** A device reset: the model's status ← 0, and the ring forgets its state (the front-end sets it up again). */
  private resetDevice(): void {
    this.device.writeStatus(0);
    this.stopRing();
    this.closeVringFds();
    this.vring = freshVring();
  }

  private kicked(): void {
    if (this.vring.kickFd >= 0) this.native.drain(this.vring.kickFd);
    void this.serialised(() => this.processRing());
  }

  /**
   * Handles every chain the front-end made available, in order. Shared memory that cannot be
   * accessed (the front-end shrank its memfd under the mapping: SIGBUS, caught by the native
   * helper) marks the device NEEDS_RESET instead of ending the server.
   */
  private async processRing(): Promise<void> {
    try {
      await this.walkRing();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EFAULT') throw e;
      this.problem(`the ring cannot be processed: ${(e as Error).message}; the device is marked NEEDS_RESET`);
      this.device.writeStatus(this.device.deviceStatus | VIRTIO_CONFIG_S_NEEDS_RESET);
    }
  }

  private async walkRing(): Promise<void> {
    const v = this.vring;
    const queue = this.openQueue();
    if (!queue) return;
    let signalled = false;
    for (;;) {
      const popped = queue.pop();
      if (popped.kind === 'empty') break;
      if (popped.kind === 'malformed') {
        this.problem(`chain at descriptor ${popped.head}: ${popped.problem}; the device is marked NEEDS_RESET`);
        this.device.writeStatus(this.device.deviceStatus | VIRTIO_CONFIG_S_NEEDS_RESET);
        break;
      }
      const chain = popped.chain;
      const discard = this.unplugWatch(chain.readable);
      const result = this.device.processChain({ readable: chain.readable, writableSizes: chain.writable.map((w) => w.len) });
      discard();
      if (result.used) {
        queue.complete(chain, result.used.written, result.used.length);
        signalled = true;
      }
      // The notification goes out (and is acknowledged) before the used entry is signalled.
      if (this.announced < this.device.notificationCount) await this.announce();
      // The connection may have ended meanwhile (its memory is unmapped then).
      if (this.ended) return;
    }
    if (signalled && v.callFd >= 0) this.native.signal(v.callFd);
  }

  /** vring 0 over the shared memory, when it is enabled and its three areas are shared. */
  private openQueue(): DeviceSplitQueue | undefined {
    const v = this.vring;
    if (this.ended || !v.enabled || v.num === 0 || v.desc === undefined || v.avail === undefined || v.used === undefined) return undefined;
    const avail = this.memory.userToGuest(v.avail, BigInt(virtqAvailBytes(v.num)));
    const used = this.memory.userToGuest(v.used, BigInt(virtqUsedBytes(v.num)));
    const desc = this.memory.userToGuest(v.desc, BigInt(virtqDescTableBytes(v.num)));
    const queue = avail !== undefined && used !== undefined && desc !== undefined ? DeviceSplitQueue.open(this.memory, v.num, { desc, avail, used }, v.position) : undefined;
    if (queue === undefined || typeof queue === 'string') {
      this.problem('the vring addresses are not inside the shared memory; the queue is not processed');
      return undefined;
    }
    return queue;
  }

  /**
   * For requests that may unplug blocks (UNPLUG, UNPLUG ALL), returns a function that, after the
   * request, discards the pages of every block that went from plugged to unplugged. Blocks that
   * were unplugged already are never touched.
   */
  private unplugWatch(readable: readonly Uint8Array[]): () => void {
    const first = readable[0];
    if (!first || first.length < 2) return () => undefined;
    const type = first[0]! | (first[1]! << 8);
    if (type !== VIRTIO_MEM_REQ_UNPLUG && type !== VIRTIO_MEM_REQ_UNPLUG_ALL) return () => undefined;
    const before = this.device.pluggedRuns();
    return () => this.discardUnplugged(before);
  }

  private discardUnplugged(before: readonly BlockRun[]): void {
    if (before.length === 0) return;
    const c = this.device.readConfig();
    if (!this.memory.list().some((r) => r.guestAddress < c.addr + c.region_size && c.addr < r.guestAddress + r.size)) {
      if (!this.unsharedNoted) this.problem(`the device region [0x${c.addr.toString(16)}, +${formatSize(c.region_size)}) is not in the memory table: unplugged blocks are not discarded`);
      this.unsharedNoted = true;
      return;
    }
    for (const run of before) {
      let start = -1;
      for (let b = run.first; b <= run.first + run.count; b++) {
        const unplugged = b < run.first + run.count && !this.device.isPlugged(b);
        if (unplugged && start < 0) start = b;
        if (!unplugged && start >= 0) {
          this.memory.discardGuest(c.addr + BigInt(start) * c.block_size, BigInt(b - start) * c.block_size);
          start = -1;
        }
      }
    }
  }

  /** Sends CONFIG_CHANGE_MSG for every notification the device raised since the last one. */
  private async announce(): Promise<void> {
    while (this.announced < this.device.notificationCount) {
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
        if (e instanceof ChannelTimeoutError) this.problem(`CONFIG_CHANGE_MSG not acknowledged within ${BACKEND_ACK_TIMEOUT_MS} ms`);
        else if (e instanceof ChannelClosedError) this.problem(`back-end channel: ${e.message}`);
        else throw e;
      }
    }
  }

  /** A host resize of this connection's device. */
  async hostResize(requested: bigint): Promise<{ ok: boolean; text: string }> {
    let result: { ok: boolean; text: string } = { ok: false, text: 'connection ended' };
    await this.serialised(async () => {
      if (this.ended) return;
      const r = this.device.setRequestedSize(requested);
      result = r.ok ? { ok: true, text: 'applied' } : { ok: false, text: r.reason };
      await this.announce();
    });
    return result;
  }

  private async vmemct(m: Message): Promise<Outcome> {
    const reply = (status: bigint, text: string): Outcome => ({ reply: vmemctReplyPayload(status, text) });
    const bad = (text: string): Outcome => {
      this.problem(`${requestName(m.request)}: ${text}`);
      return reply(VmemctStatus.BAD_MESSAGE, text);
    };
    // Fds are closed and logged by handle().
    if (m.fds.length) return reply(VmemctStatus.BAD_MESSAGE, `${m.fds.length} unexpected fd(s) closed`);
    const size = m.payload.length;
    switch (m.request) {
      case VmemctRequest.INFO:
        return reply(VmemctStatus.OK, this.server.implementation);
      case VmemctRequest.STATUS:
        return reply(VmemctStatus.OK, JSON.stringify(this.owner ? this.describe() : this.server.status()));
      case VmemctRequest.SETUP: {
        if (size < VmemctSetupLayout.size) return bad(`payload of ${size} bytes is shorter than ${VmemctSetupLayout.size}`);
        const s = decodeStruct(VmemctSetupLayout, m.payload);
        if (size !== VmemctSetupLayout.size + s.pluggedRuns * BlockRunLayout.size) return bad(`payload of ${size} bytes for ${s.pluggedRuns} plugged runs`);
        if (this.device.deviceStatus & VIRTIO_CONFIG_S_DRIVER_OK) return reply(VmemctStatus.REFUSED, 'the device is running (DRIVER_OK); set it up before the handshake');
        const plugged: BlockRun[] = [];
        for (let i = 0; i < s.pluggedRuns; i++) {
          const r = decodeStruct(BlockRunLayout, m.payload, VmemctSetupLayout.size + i * BlockRunLayout.size);
          plugged.push({ first: r.first, count: r.count });
        }
        const setup: BackendDeviceSetup = {
          block_size: s.blockSize,
          region_size: s.regionSize,
          addr: s.addr,
          requested_size: s.requestedSize,
          node_id: s.nodeId,
          features: s.flags & VMEMCT_SETUP_FEATURES_GIVEN ? s.features : undefined,
          plugged,
        };
        try {
          this.device = this.server.newDevice(setup);
        } catch (e) {
          if (e instanceof DeviceParamsError) return reply(VmemctStatus.REFUSED, e.message);
          throw e;
        }
        this.announced = this.device.notificationCount;
        return reply(VmemctStatus.OK, 'set up');
      }
      case VmemctRequest.RESIZE: {
        if (size !== 8) return bad(`payload of ${size} bytes, expected 8`);
        const requested = decodeStruct(U64Layout, m.payload).value;
        if (!this.owner) {
          const r = await this.server.resizeAll(requested);
          return reply(r.ok ? VmemctStatus.OK : VmemctStatus.REFUSED, r.text);
        }
        const r = this.device.setRequestedSize(requested);
        if (!r.ok) return reply(VmemctStatus.REFUSED, r.reason);
        await this.announce();
        return reply(VmemctStatus.OK, 'applied');
      }
      case VmemctRequest.INJECT_BUSY: {
        if (size !== 8) return bad(`payload of ${size} bytes, expected 8`);
        this.device.injectBusy(Number(decodeStruct(U64Layout, m.payload).value));
        return reply(VmemctStatus.OK, 'armed');
      }
      case VmemctRequest.SYSTEM_RESET: {
        if (size !== 0) return bad(`payload of ${size} bytes, expected none`);
        const before = this.device.pluggedRuns();
        this.device.systemReset();
        this.discardUnplugged(before);
        this.stopRing();
        this.closeVringFds();
        this.vring = freshVring();
        return reply(VmemctStatus.OK, 'reset');
      }
      case VmemctRequest.SUSPEND_WAKE: {
        if (size !== 0) return bad(`payload of ${size} bytes, expected none`);
        const before = this.device.pluggedRuns();
        try {
          this.device.suspend();
          this.device.wake();
        } catch (e) {
          return reply(VmemctStatus.REFUSED, (e as Error).message);
        }
        this.discardUnplugged(before);
        await this.announce();
        return reply(VmemctStatus.OK, 'woken');
      }
      case VmemctRequest.CHECK_ACCESS: {
        if (size !== VmemctAccessLayout.size) return bad(`payload of ${size} bytes, expected ${VmemctAccessLayout.size}`);
        const a = decodeStruct(VmemctAccessLayout, m.payload);
        if (a.length > BigInt(Number.MAX_SAFE_INTEGER)) return bad('length too large');
        const refused = this.device.accessRefusal(a.addr, Number(a.length), a.write ? 'write' : 'read');
        return refused ? reply(VmemctStatus.REFUSED, `${refused.reason}: ${refused.detail}`) : reply(VmemctStatus.OK, 'allowed');
      }
      default:
        return bad('unknown vmemct request');
    }
  }
}


