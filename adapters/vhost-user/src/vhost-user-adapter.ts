/**
 * The `vhost-user` adapter: runs device vectors against a vhost-user back-end over its unix
 * socket. The adapter is the front-end (the VMM) and the virtio driver: each vector gets its own
 * connection, a memory table of two memfd regions (RAM for the ring and buffers, and the device
 * region [addr, addr + region_size)), vring 0 with kick and call eventfds, and the configuration
 * through GET_CONFIG. Configuration changes arrive as CONFIG_CHANGE_MSG on the back-end channel.
 *
 * With vmemct's control extension (a back-end such as `vmemct serve-vhost-user`) each vector's
 * device is set up to order and host resizes, resets, BUSY injection and suspend are available;
 * without it the back-end's own device is used, and vectors that need another one are `unsupported`.
 */
import {
  Adapter,
  AdapterError,
  AdapterInfo,
  AdapterTimeoutError,
  Capability,
  Chain,
  Completion,
  DeviceSession,
  DeviceSetup,
  HandshakeResult,
  MemoryAccess,
  ResizeOutcome,
  UnsupportedSetupError,
} from '../../core/src/contract';
import {
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_GUEST_REQUEST_QUEUE,
  VirtioMemConfigLayout,
} from '../../../spec/src/index';
import { decodeConfig } from '../../../model/src/codec/codec';
import { SplitQueueDriver, VirtioTransport, mappedMemoryPort, virtioHandshake } from '../../virtio/src/index';
import { ChannelClosedError } from './channel';
import { SharedRegion, VhostUserFrontEnd, VhostUserProtocolError, VhostUserTimeoutError } from './frontend';
import { RegionMemory } from './guest-memory';
import { VhostNative, vhostNative } from './native';
import {
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  Request,
  STANDARD_PROTOCOL_FEATURES,
  VMEMCT_MAX_PLUGGED_RUNS,
  VmemctAccessLayout,
  VmemctRequest,
  VmemctStatus,
  encodeStruct,
  encodeVmemctSetup,
  protocolMask,
  u64Payload,
} from './protocol';

/** Protocol features the adapter uses when offered. */
export const FRONTEND_PROTOCOL_FEATURES = STANDARD_PROTOCOL_FEATURES | protocolMask(ProtocolFeature.VMEMCT_CONTROL);

const MiB = 1n << 20n;
/** The RAM region: descriptor table, avail and used rings, then the buffers. */
const RAM_SIZE = 4n * MiB;
const QUEUE_SIZE = 256;
/** Offsets in the RAM region of the descriptor table, the avail ring, the used ring and the buffers. */
const RING = { desc: 0n, avail: 0x1000n, used: 0x2000n, buffers: 0x10000n } as const;
/** Largest total size of one chain's buffers (laid out 8-byte aligned). */
const VHOST_BUFFER_AREA_BYTES = Number(RAM_SIZE - RING.buffers);
/** How long a chain may wait for its used entry. */
const USED_TIMEOUT_MS = 2000;
/** After this long without a used entry the device status is checked for NEEDS_RESET. */
const USED_STATUS_CHECK_MS = 20;
/** Largest single memory access (a copy through the adapter). */
const MAX_ACCESS = 1 << 20;

/** Options of the vhost-user adapter. */
export interface VhostUserAdapterOptions {
  readonly socketPath: string;
  /** Bound on each reply of the back-end (default 2000 ms). */
  readonly replyTimeoutMs?: number;
  readonly native?: VhostNative;
}

/** The back-end could not be reached or does not speak enough of the protocol for device vectors. */
export class VhostUserSetupError extends Error {
  override readonly name = 'VhostUserSetupError';
}

/** What the probe connection learnt. */
interface Probe {
  readonly protocolFeatures: bigint;
  readonly implementation: string;
}

/**
 * Creates the adapter after a probe connection (features, protocol features, the back-end's
 * name): its capabilities follow from what the back-end offers.
 * @throws VhostUserSetupError when the socket does not answer as a vhost-user back-end.
 * @throws NativeHelperMissingError when the native helper is not built.
 */
export async function connectVhostUserAdapter(options: VhostUserAdapterOptions): Promise<Adapter> {
  const native = options.native ?? vhostNative();
  const probe = await probeBackend(native, options);
  const has = (bit: number): boolean => (probe.protocolFeatures & protocolMask(bit)) !== 0n;
  if (!has(ProtocolFeature.CONFIG))
    throw new VhostUserSetupError(
      `${options.socketPath}: the back-end does not offer the CONFIG protocol feature, so the virtio-mem configuration cannot be read`,
    );
  const capabilities: Capability[] = ['raw-descriptor-layout', 'read-raw-config'];
  if (has(ProtocolFeature.STATUS) || has(ProtocolFeature.RESET_DEVICE)) capabilities.push('device-reset');
  if (has(ProtocolFeature.STATUS)) capabilities.push('feature-negotiation');
  if (has(ProtocolFeature.VMEMCT_CONTROL))
    capabilities.push(
      'host-resize',
      'system-reset',
      'inject-busy',
      'host-busy',
      'initial-plugged',
      'memory-access',
      'suspend',
    );
  const info: AdapterInfo = {
    name: 'vhost-user',
    implementation: probe.implementation,
    targets: ['device'],
    capabilities,
    timeoutMultiplier: 4,
  };
  const sessions = new Set<VhostUserDeviceSession>();
  return {
    info,
    async openDevice(setup) {
      const session = await VhostUserDeviceSession.open(native, options, setup, probe);
      sessions.add(session);
      session.onClose = () => sessions.delete(session);
      return session;
    },
    async dispose() {
      for (const s of [...sessions]) await s.close();
    },
  };
}

async function probeBackend(native: VhostNative, options: VhostUserAdapterOptions): Promise<Probe> {
  let frontEnd: VhostUserFrontEnd;
  try {
    frontEnd = VhostUserFrontEnd.connect(native, options.socketPath, { replyTimeoutMs: options.replyTimeoutMs });
  } catch (e) {
    throw new VhostUserSetupError(
      `${options.socketPath}: cannot connect (${(e as Error).message}); is a back-end serving it? (vmemct serve-vhost-user --socket ${options.socketPath})`,
    );
  }
  try {
    const features = await frontEnd.queryU64(Request.GET_FEATURES);
    if (!(features & PROTOCOL_FEATURES_BIT))
      throw new VhostUserSetupError(
        `${options.socketPath}: the back-end offers no protocol features (bit 30 of GET_FEATURES), so its configuration cannot be read`,
      );
    const protocolFeatures = await frontEnd.queryU64(Request.GET_PROTOCOL_FEATURES);
    let implementation = `vhost-user back-end at ${options.socketPath}`;
    if (protocolFeatures & protocolMask(ProtocolFeature.VMEMCT_CONTROL)) {
      const info = await frontEnd.vmemct(VmemctRequest.INFO);
      if (info.status === VmemctStatus.OK && info.text) implementation = info.text;
    }
    return { protocolFeatures, implementation };
  } catch (e) {
    if (e instanceof VhostUserSetupError) throw e;
    throw new VhostUserSetupError(
      `${options.socketPath}: the back-end did not answer the opening requests (${(e as Error).message})`,
    );
  } finally {
    frontEnd.close();
  }
}

/** One vector's connection and device. */
export class VhostUserDeviceSession implements DeviceSession {
  private ram!: SharedRegion;
  private deviceRegion?: SharedRegion;
  private kickFd = -1;
  private callFd = -1;
  private callWake?: () => void;
  /** vring 0, once set up (none before the first handshake, after a reset or a refused FEATURES_OK). */
  private queue: SplitQueueDriver | undefined;
  private localStatus = 0;
  private closed = false;
  onClose?: () => void;

  private constructor(
    private readonly frontEnd: VhostUserFrontEnd,
    private readonly setup: DeviceSetup,
  ) {}

  /** Connects, sets the device up and shares memory. */
  static async open(
    native: VhostNative,
    options: VhostUserAdapterOptions,
    setup: DeviceSetup,
    probe: Probe,
  ): Promise<VhostUserDeviceSession> {
    let frontEnd: VhostUserFrontEnd;
    try {
      frontEnd = VhostUserFrontEnd.connect(native, options.socketPath, { replyTimeoutMs: options.replyTimeoutMs });
    } catch (e) {
      throw new AdapterError(`cannot connect to ${options.socketPath}: ${(e as Error).message}`);
    }
    const session = new VhostUserDeviceSession(frontEnd, setup);
    try {
      await session.guard('open', async () => {
        await frontEnd.handshake(FRONTEND_PROTOCOL_FEATURES & probe.protocolFeatures);
        if (frontEnd.has(ProtocolFeature.VMEMCT_CONTROL)) await session.sendSetup();
        else await session.checkFixedDevice();
        await session.shareMemory();
      });
    } catch (e) {
      await session.close();
      throw e;
    }
    return session;
  }

  private async sendSetup(): Promise<void> {
    const s = this.setup;
    if (s.plugged.length > VMEMCT_MAX_PLUGGED_RUNS)
      throw new UnsupportedSetupError(
        `${s.plugged.length} plugged runs; one SETUP carries at most ${VMEMCT_MAX_PLUGGED_RUNS}`,
      );
    // SETUP carries no usable_region_size: the back-end's device chooses it, and the runner's first read compares it with a stated one.
    const reply = await this.frontEnd.vmemct(VmemctRequest.SETUP, encodeVmemctSetup(s));
    if (reply.status === VmemctStatus.REFUSED)
      throw new UnsupportedSetupError(`the back-end cannot build this device: ${reply.text}`);
    if (reply.status !== VmemctStatus.OK) throw new AdapterError(`VMEMCT SETUP failed: ${reply.text}`);
  }

  /** Without the control extension the back-end's device must already be the vector's. */
  private async checkFixedDevice(): Promise<void> {
    const decoded = decodeConfig(await this.frontEnd.getConfig(0, VirtioMemConfigLayout.size));
    if (!decoded.ok) throw new AdapterError('the configuration does not decode');
    const c = decoded.value;
    const s = this.setup;
    const differs: string[] = [];
    if (c.block_size !== s.block_size) differs.push(`block_size ${c.block_size} (vector: ${s.block_size})`);
    if (c.region_size !== s.region_size) differs.push(`region_size ${c.region_size} (vector: ${s.region_size})`);
    if (c.addr !== s.addr) differs.push(`addr 0x${c.addr.toString(16)} (vector: 0x${s.addr.toString(16)})`);
    if (c.requested_size !== s.requested_size)
      differs.push(`requested_size ${c.requested_size} (vector: ${s.requested_size})`);
    if (c.node_id !== s.node_id) differs.push(`node_id ${c.node_id} (vector: ${s.node_id})`);
    if (s.usable_region_size !== undefined && c.usable_region_size !== s.usable_region_size)
      differs.push(`usable_region_size ${c.usable_region_size} (vector: ${s.usable_region_size})`);
    if (c.plugged_size !== 0n || s.plugged.length) differs.push('initially plugged blocks');
    if (s.features !== undefined) {
      const offered = (await this.frontEnd.queryU64(Request.GET_FEATURES)) & ~PROTOCOL_FEATURES_BIT;
      if (offered !== s.features)
        differs.push(`features 0x${offered.toString(16)} (vector: 0x${s.features.toString(16)})`);
    }
    if (differs.length)
      throw new UnsupportedSetupError(
        `the back-end's device differs and it cannot be set up (no vmemct control extension): ${differs.join(', ')}`,
      );
  }

  /** SET_MEM_TABLE: the RAM region and, per the region convention, the device region. */
  private async shareMemory(): Promise<void> {
    const s = this.setup;
    const deviceEnd = s.addr + s.region_size;
    const ramAddress = s.region_size === 0n || s.addr >= RAM_SIZE ? 0n : ((deviceEnd + MiB - 1n) / MiB) * MiB;
    this.ram = this.frontEnd.createRegion(ramAddress, RAM_SIZE, 'vmemct-ram');
    const regions = [this.ram];
    if (s.region_size > 0n) {
      if (deviceEnd > 1n << 64n)
        throw new UnsupportedSetupError(
          `the device region [0x${s.addr.toString(16)}, +0x${s.region_size.toString(16)}) passes the end of the 64-bit address space and cannot be shared`,
        );
      try {
        this.deviceRegion = this.frontEnd.createRegion(s.addr, s.region_size, 'vmemct-device');
      } catch (e) {
        throw new UnsupportedSetupError(
          `cannot create a shared device region of ${s.region_size} bytes: ${(e as Error).message}`,
        );
      }
      regions.push(this.deviceRegion);
    }
    await this.frontEnd.setMemTable(regions);
    this.kickFd = this.frontEnd.createEventfd();
    this.callFd = this.frontEnd.createEventfd();
    this.callWatch = this.frontEnd.native.watch(this.callFd, () => {
      this.frontEnd.native.drain(this.callFd);
      const wake = this.callWake;
      this.callWake = undefined;
      wake?.();
    });
  }

  private callWatch?: ReturnType<VhostNative['watch']>;

  private hasStatus(): boolean {
    return this.frontEnd.has(ProtocolFeature.STATUS);
  }

  private async setStatus(value: number): Promise<void> {
    this.localStatus = value;
    if (this.hasStatus()) await this.frontEnd.command(Request.SET_STATUS, u64Payload(BigInt(value)));
  }

  private async getStatus(): Promise<number> {
    if (!this.hasStatus()) return this.localStatus;
    return Number((await this.frontEnd.queryU64(Request.GET_STATUS)) & 0xffn);
  }

  initialise(accept: (offered: bigint) => bigint): Promise<HandshakeResult> {
    return this.guard('initialise', () => virtioHandshake(this.transport(), accept));
  }

  /** SET/GET_STATUS and GET/SET_FEATURES as the handshake's transport. */
  private transport(): VirtioTransport {
    let offeredRaw = 0n;
    return {
      reset: async () => {
        this.queue = undefined;
        await this.setStatus(0);
      },
      readStatus: () => this.getStatus(),
      writeStatus: (status) => this.setStatus(status),
      readDeviceFeatures: async () => {
        offeredRaw = await this.frontEnd.queryU64(Request.GET_FEATURES);
        return offeredRaw & ~PROTOCOL_FEATURES_BIT;
      },
      writeDriverFeatures: (features) => this.frontEnd.setFeatures(features, offeredRaw),
      setUpQueues: () => this.setupRing(),
    };
  }

  private async setupRing(): Promise<void> {
    const ram = this.ram;
    const native = this.frontEnd.native;
    const index = VIRTIO_MEM_GUEST_REQUEST_QUEUE.index;
    const queue = new SplitQueueDriver({
      port: mappedMemoryPort(new RegionMemory(native, ram.mapping, ram.guestAddress, ram.size), () =>
        native.signal(this.kickFd),
      ),
      queueIndex: index,
      size: QUEUE_SIZE,
      rings: {
        desc: ram.guestAddress + RING.desc,
        avail: ram.guestAddress + RING.avail,
        used: ram.guestAddress + RING.used,
      },
      buffers: ram.guestAddress + RING.buffers,
      bufferBytes: VHOST_BUFFER_AREA_BYTES,
    });
    await queue.clear();
    const ua = ram.userAddress;
    await this.frontEnd.setupVring(
      index,
      QUEUE_SIZE,
      { desc: ua + RING.desc, avail: ua + RING.avail, used: ua + RING.used },
      this.kickFd,
      this.callFd,
    );
    this.queue = queue;
  }

  readConfig(): Promise<Uint8Array> {
    return this.guard('GET_CONFIG', () => this.frontEnd.getConfig(0, VirtioMemConfigLayout.size));
  }

  submit(chain: Chain): Promise<Completion> {
    return this.guard('submit', async () => {
      if (!this.queue) return { kind: 'no-used-entry' };
      const result = await this.queue.submit(chain, this.usedWaiter());
      if (result.kind === 'unfit') throw new UnsupportedSetupError(result.problem);
      if (result.kind === 'bad-used-entry') throw new VhostUserProtocolError(result.problem);
      return result;
    });
  }

  /**
   * Waits for the call eventfd while the used index has not moved: up to USED_TIMEOUT_MS in all,
   * with one look at the device status after USED_STATUS_CHECK_MS (a device that marked itself
   * NEEDS_RESET will not answer, so there is no need to wait out the bound).
   */
  private usedWaiter(): () => Promise<boolean> {
    const start = Date.now();
    let statusChecked = false;
    return async () => {
      const elapsed = Date.now() - start;
      if (elapsed >= USED_TIMEOUT_MS) return false;
      if (!this.frontEnd.alive) throw new VhostUserProtocolError('the back-end closed the connection');
      if (!statusChecked && elapsed >= USED_STATUS_CHECK_MS && this.hasStatus()) {
        statusChecked = true;
        return ((await this.getStatus()) & VIRTIO_CONFIG_S_NEEDS_RESET) === 0;
      }
      const bound = statusChecked || !this.hasStatus() ? USED_TIMEOUT_MS - elapsed : USED_STATUS_CHECK_MS - elapsed;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(
          () => {
            this.callWake = undefined;
            resolve();
          },
          Math.max(1, bound),
        );
        this.callWake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      return true;
    };
  }

  notificationCount(): Promise<number> {
    return Promise.resolve(this.frontEnd.configChangeCount);
  }

  readStatus(): Promise<number> {
    return this.guard('GET_STATUS', () => this.getStatus());
  }

  resize(requestedSize: bigint): Promise<ResizeOutcome> {
    return this.guard('resize', async () => {
      const reply = await this.frontEnd.vmemct(VmemctRequest.RESIZE, u64Payload(requestedSize));
      if (reply.status === VmemctStatus.OK) return { kind: 'applied' };
      if (reply.status === VmemctStatus.REFUSED) return { kind: 'refused', reason: reply.text };
      throw new AdapterError(`VMEMCT RESIZE failed: ${reply.text}`);
    });
  }

  deviceReset(): Promise<void> {
    return this.guard('device reset', async () => {
      this.queue = undefined;
      if (this.hasStatus()) await this.setStatus(0);
      else await this.frontEnd.command(Request.RESET_DEVICE);
    });
  }

  systemReset(): Promise<void> {
    return this.control('system reset', VmemctRequest.SYSTEM_RESET).then(() => {
      this.queue = undefined;
    });
  }

  injectBusy(count: number): Promise<void> {
    return this.control('inject BUSY', VmemctRequest.INJECT_BUSY, u64Payload(BigInt(count)));
  }

  hostBusy(busy: boolean): Promise<void> {
    return this.control(busy ? 'host busy' : 'host release', VmemctRequest.HOST_BUSY, u64Payload(busy ? 1n : 0n));
  }

  suspendAndWake(): Promise<void> {
    return this.control('suspend', VmemctRequest.SUSPEND_WAKE);
  }

  private control(what: string, request: number, payload?: Uint8Array): Promise<void> {
    return this.guard(what, async () => {
      const reply = await this.frontEnd.vmemct(request, payload);
      if (reply.status !== VmemctStatus.OK)
        throw new AdapterError(`${what}: the back-end answered ${reply.status}: ${reply.text}`);
    });
  }

  readMemory(addr: bigint, length: number): Promise<MemoryAccess> {
    return this.guard('read memory', async () => {
      const refused = await this.checkAccess(addr, length, false);
      if (refused) return refused;
      if (length === 0) return { ok: true, data: new Uint8Array(0) };
      const data = this.frontEnd.native.read(this.deviceRegion!.mapping, addr - this.setup.addr, length);
      return { ok: true, data: new Uint8Array(data) };
    });
  }

  writeMemory(addr: bigint, data: Uint8Array): Promise<MemoryAccess> {
    return this.guard('write memory', async () => {
      const refused = await this.checkAccess(addr, data.length, true);
      if (refused) return refused;
      if (data.length > 0) this.frontEnd.native.write(this.deviceRegion!.mapping, addr - this.setup.addr, data);
      return { ok: true, data: new Uint8Array(0) };
    });
  }

  /**
   * The guest CPU's view: the back-end's device decides whether the range is accessible now (the
   * front-end would map or unmap blocks accordingly); the bytes come from the shared region.
   */
  private async checkAccess(addr: bigint, length: number, write: boolean): Promise<MemoryAccess | undefined> {
    if (length > MAX_ACCESS)
      throw new UnsupportedSetupError(
        `memory accesses above ${MAX_ACCESS} bytes are not supported by the vhost-user adapter`,
      );
    const payload = encodeStruct(VmemctAccessLayout, { addr, length: BigInt(length), write: write ? 1 : 0 });
    const reply = await this.frontEnd.vmemct(VmemctRequest.CHECK_ACCESS, payload);
    if (reply.status === VmemctStatus.REFUSED) return { ok: false, reason: reply.text };
    if (reply.status !== VmemctStatus.OK) throw new AdapterError(`CHECK_ACCESS failed: ${reply.text}`);
    const region = this.deviceRegion;
    if (!region || addr < region.guestAddress || addr + BigInt(length) > region.guestAddress + region.size) {
      return { ok: false, reason: 'outside the shared device region' };
    }
    return undefined;
  }

  private async guard<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new AdapterError(`${what}: the session is closed`);
    try {
      return await work();
    } catch (e) {
      if (e instanceof AdapterError || e instanceof UnsupportedSetupError) throw e;
      if (e instanceof VhostUserTimeoutError) throw new AdapterTimeoutError(`${what}: ${e.message}`);
      if (e instanceof VhostUserProtocolError || e instanceof ChannelClosedError)
        throw new AdapterError(`${what}: ${e.message}`);
      throw new AdapterError(`${what}: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.callWatch) this.frontEnd.native.unwatch(this.callWatch);
    this.callWatch = undefined;
    this.frontEnd.close();
    this.onClose?.();
  }
}
