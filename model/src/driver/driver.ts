/**
 * The reference driver: from configuration bytes and notifications it produces the requests a
 * conforming virtio-mem driver sends, one at a time, through a stepping API a harness drives.
 *
 * It knows the device only through bytes (configuration and responses); it never imports the
 * device model. It has no clock: a backoff is an action telling the harness how long to wait.
 *
 * After each acknowledged PLUG it initialises the new memory (drv.op.7) by asking the harness to
 * write the start of the plugged range; it never asks for a write to a block it does not believe
 * plugged (drv.op.1), and never for a read of unplugged memory (drv.op.2 … drv.op.5).
 *
 * Loop for a harness:
 * ```
 * for (;;) {
 *   const action = driver.next();
 *   if (action.kind === 'read-config') driver.onConfig(device.readConfigBytes());
 *   else if (action.kind === 'request') driver.onResponse(send(action.bytes));
 *   else if (action.kind === 'write-memory') driver.onMemoryWritten(writeGuestMemory(action.addr, new Uint8Array(action.length)));
 *   else break; // 'wait' (call onTimer() later), 'idle' (until onConfigChange()), 'broken'
 * }
 * ```
 * Before letting the guest suspend to RAM, ask {@link ReferenceDriver.maySuspend} (drv.op.11).
 */
import {
  VIRTIO_MEM_F_ACPI_PXM,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_KNOWN_FEATURES,
  VIRTIO_MEM_MAX_NB_BLOCKS,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  VIRTIO_MEM_RESP_BUSY,
  VIRTIO_MEM_RESP_NACK,
  VIRTIO_MEM_STATE_PLUGGED,
  VIRTIO_MEM_STATE_UNPLUGGED,
  REQUEST_TYPE_NAMES,
  featureMask,
  isPowerOfTwo,
} from '../../../spec/src/index';
import type { BlockRange } from '../../../spec/src/index';
import { VirtioMemConfig, VirtioMemRequest, decodeConfig, decodeResponse, encodeRequest } from '../codec/codec';
import { BlockBitmap, MAX_TRACKED_BLOCKS } from '../blocks/bitmap';

/** How the driver deals with memory found plugged at initialisation (drv.init.2, §5.15.5). */
export type InitStrategy = 'unplug-all' | 'state-resync';

/**
 * Options of the reference driver (not to be confused with the adapter contract's
 * `DriverOptions`, which a driver *session* is opened with).
 */
export interface ReferenceDriverOptions {
  /** Features the driver supports (it accepts the offered subset). Default: all four ({@link VIRTIO_MEM_KNOWN_FEATURES}). */
  readonly supportedFeatures?: bigint;
  /** What to do when plugged_size > 0 at start. Default 'unplug-all'. */
  readonly initStrategy?: InitStrategy;
  /** Largest nb_blocks per request; 65,535 at most (the field is 16 bits). */
  readonly maxBlocksPerRequest?: number;
  /**
   * First backoff after BUSY (or a failed UNPLUG ALL) in milliseconds. Default 50 s (Linux's timer).
   * Any positive backoff conforms; the suite only asks that the driver waits before retrying
   * (drv.suite.2) and does retry (drv.suite.1).
   */
  readonly initialBackoffMs?: number;
  /** Each further backoff in a row is the previous one times `backoffFactor`, up to `maxBackoffMs`. Default 2. */
  readonly backoffFactor?: number;
  /** Longest backoff in milliseconds. Default 300 s (Linux's timer). */
  readonly maxBackoffMs?: number;
  /** Initialise newly plugged memory with a 'write-memory' action after each acknowledged PLUG (drv.op.7). Default true. */
  readonly initialiseMemory?: boolean;
}

/** Bytes written per initialisation: at most one page, and never more than one block. */
export const MEMORY_INIT_BYTES = 4096;

/** Answer of {@link ReferenceDriver.maySuspend}. */
export interface SuspendPermission {
  /** Whether the driver lets the guest enter deep sleep / suspend-to-RAM. */
  readonly allowed: boolean;
  /** Why, citing the requirement. */
  readonly reason: string;
}

/** What the driver wants the harness to do next. */
export type DriverAction =
  /** Read the 56 configuration bytes and pass them to {@link ReferenceDriver.onConfig}. */
  | { readonly kind: 'read-config' }
  /** Send this request and pass the response bytes (or null for none) to {@link ReferenceDriver.onResponse}. */
  | {
      readonly kind: 'request';
      readonly request: VirtioMemRequest;
      readonly bytes: Uint8Array;
      readonly purpose: string;
    }
  /**
   * Write `length` bytes (the driver's choice of content; zeros do) of guest memory at guest-physical
   * `addr`, which lies inside one block the driver believes plugged, and report the outcome to
   * {@link ReferenceDriver.onMemoryWritten}.
   */
  | { readonly kind: 'write-memory'; readonly addr: bigint; readonly length: number; readonly purpose: string }
  /** Nothing until `delayMs` have passed ({@link ReferenceDriver.onTimer}) or the config changes. */
  | { readonly kind: 'wait'; readonly delayMs: number; readonly reason: string }
  /** Converged, or cannot progress until the configuration changes. */
  | { readonly kind: 'idle'; readonly reason: string }
  /** The driver gave up on the device. */
  | { readonly kind: 'broken'; readonly reason: string }
  /** A request is outstanding: feed its response first. */
  | { readonly kind: 'awaiting-response' };

/** Thrown when a harness drives the driver out of order. */
export class DriverUsageError extends Error {
  override readonly name = 'DriverUsageError';
}

type Phase = 'need-config' | 'unplug-all' | 'resync' | 'run' | 'broken';

/** A conforming virtio-mem driver, stepped by a harness. */
export class ReferenceDriver {
  private readonly supported: bigint;
  private readonly initStrategy: InitStrategy;
  private readonly maxBlocks: number;
  private readonly initialBackoff: number;
  private readonly maxBackoff: number;
  private readonly backoffFactor: number;
  private readonly initialiseMemory: boolean;

  private phase: Phase = 'need-config';
  private config?: VirtioMemConfig;
  private blocks?: BlockBitmap;
  private initialised = false;
  private configDirty = true;
  private outstanding?: VirtioMemRequest;
  private waitingMs = 0;
  private backoffMs: number;
  private plugHeld = false;
  private errorStreak = 0;
  private brokenReason = '';
  private resyncQueue: BlockRange[] = [];
  private features = 0n;
  private readonly log: VirtioMemRequest[] = [];
  /** The initialisation write owed after an acknowledged PLUG, until onMemoryWritten(). */
  private pendingWrite?: { readonly addr: bigint; readonly length: number; readonly purpose: string };
  /** plugged_size as last read, adjusted by acknowledged requests (Linux's vm->plugged_size); undefined before any read. */
  private knownPluggedSize?: bigint;

  constructor(options: ReferenceDriverOptions = {}) {
    this.supported = options.supportedFeatures ?? VIRTIO_MEM_KNOWN_FEATURES;
    this.initStrategy = options.initStrategy ?? 'unplug-all';
    this.maxBlocks = Math.min(options.maxBlocksPerRequest ?? VIRTIO_MEM_MAX_NB_BLOCKS, VIRTIO_MEM_MAX_NB_BLOCKS);
    this.initialBackoff = options.initialBackoffMs ?? 50_000;
    this.maxBackoff = options.maxBackoffMs ?? 300_000;
    this.backoffFactor = options.backoffFactor ?? 2;
    this.initialiseMemory = options.initialiseMemory ?? true;
    this.backoffMs = this.initialBackoff;
  }

  /**
   * Picks the features to accept from those offered: the supported subset. Accepts
   * UNPLUGGED_INACCESSIBLE whenever offered, since this driver never reads unplugged memory (drv.init.1).
   */
  negotiate(offered: bigint): bigint {
    this.features = offered & this.supported;
    return this.features;
  }

  /** Features accepted by {@link negotiate}. */
  get acceptedFeatures(): bigint {
    return this.features;
  }

  /** Every request sent so far, in order. */
  get sentRequests(): readonly VirtioMemRequest[] {
    return this.log;
  }

  /** Blocks this driver believes plugged (undefined before the first configuration). */
  get pluggedBlocks(): number | undefined {
    return this.blocks?.count;
  }

  /**
   * The NUMA node this driver adds its device's memory to: the configuration's `node_id` when
   * VIRTIO_MEM_F_ACPI_PXM was negotiated (the device says where its memory belongs, §5.15.3);
   * undefined without the feature, where `node_id` is disregarded (drv.cfg.3) and the platform
   * places the memory; undefined before the first configuration.
   */
  get memoryNode(): number | undefined {
    if ((this.features & featureMask(VIRTIO_MEM_F_ACPI_PXM)) === 0n) return undefined;
    return this.config?.node_id;
  }

  /** Bytes this driver believes plugged (0 before the first configuration). */
  get pluggedBytes(): bigint {
    return this.config && this.blocks ? BigInt(this.blocks.count) * this.config.block_size : 0n;
  }

  /** Runs of blocks this driver believes plugged. */
  pluggedRuns(): BlockRange[] {
    return this.blocks?.runs() ?? [];
  }

  /**
   * drv.op.11: whether the driver lets the guest enter deep sleep / suspend-to-RAM now. With
   * VIRTIO_MEM_F_PERSISTENT_SUSPEND negotiated it always does; without it, never — the statement
   * has no exception for "nothing plugged" (Linux >= 6.10 makes one; that is its deviation). The
   * reason says what the driver knows (plugged_size unread, a PLUG outstanding, plugged memory).
   * (s2idle is not deep sleep and is not restricted; this answers for deep sleep.)
   */
  maySuspend(): SuspendPermission {
    if ((this.features & featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND)) !== 0n) {
      return {
        allowed: true,
        reason:
          'VIRTIO_MEM_F_PERSISTENT_SUSPEND was negotiated: the device keeps block states across suspend and wake-up (dev.op.8)',
      };
    }
    if (this.knownPluggedSize === undefined) {
      return {
        allowed: false,
        reason: 'plugged_size has not been read yet and VIRTIO_MEM_F_PERSISTENT_SUSPEND was not negotiated (drv.op.11)',
      };
    }
    if (this.outstanding?.type === VIRTIO_MEM_REQ_PLUG) {
      return {
        allowed: false,
        reason: 'a PLUG request is outstanding and VIRTIO_MEM_F_PERSISTENT_SUSPEND was not negotiated (drv.op.11)',
      };
    }
    if (this.knownPluggedSize > 0n) {
      return {
        allowed: false,
        reason: `0x${this.knownPluggedSize.toString(16)} bytes are plugged and VIRTIO_MEM_F_PERSISTENT_SUSPEND was not negotiated (drv.op.11)`,
      };
    }
    return {
      allowed: false,
      reason:
        'VIRTIO_MEM_F_PERSISTENT_SUSPEND was not negotiated (drv.op.11 forbids deep sleep without it, even with nothing plugged)',
    };
  }

  /** The next action. Calling it again without feeding anything returns the same kind of action. */
  next(): DriverAction {
    if (this.phase === 'broken') return { kind: 'broken', reason: this.brokenReason };
    if (this.outstanding) return { kind: 'awaiting-response' };
    if (this.pendingWrite) {
      // drv.op.1: only ever write to memory believed plugged (the view may have changed since the ACK).
      if (this.believesPlugged(this.pendingWrite.addr, this.pendingWrite.length))
        return { kind: 'write-memory', ...this.pendingWrite };
      this.pendingWrite = undefined;
    }
    // A configuration change is picked up before the next request (and cancels a backoff).
    if (this.configDirty) return { kind: 'read-config' };
    if (this.waitingMs > 0) return { kind: 'wait', delayMs: this.waitingMs, reason: 'backing off after BUSY' };
    switch (this.phase) {
      case 'need-config':
        return { kind: 'read-config' };
      case 'unplug-all':
        // drv.init.2: memory found plugged at start is unplugged with UNPLUG ALL, retried until it succeeds.
        return this.send({ type: VIRTIO_MEM_REQ_UNPLUG_ALL }, 'unplug all memory found plugged at initialisation');
      case 'resync':
        return this.nextResync();
      case 'run':
        return this.nextResize();
    }
  }

  /** The configuration bytes the harness read. */
  onConfig(bytes: Uint8Array): void {
    if (this.phase === 'broken') return;
    const decoded = decodeConfig(bytes);
    if (!decoded.ok)
      return this.breakDown(`configuration too short: ${decoded.error.actual} of ${decoded.error.expected} bytes`);
    // drv.cfg.2 / drv.cfg.3: padding is never looked at, node_id only with ACPI_PXM (it changes nothing here).
    const config = decoded.value;
    const problem = validateConfig(config);
    if (problem) return this.breakDown(problem);
    this.configDirty = false;
    this.waitingMs = 0;
    this.plugHeld = false;
    this.knownPluggedSize = config.plugged_size;
    const regionBlocks = Number(config.region_size / config.block_size);
    if (!this.blocks || this.blocks.length !== regionBlocks || (this.config && this.config.addr !== config.addr)) {
      this.blocks = new BlockBitmap(regionBlocks);
      this.initialised = false;
    }
    this.config = config;
    if (!this.initialised) {
      this.initialised = true;
      if (config.plugged_size > 0n) {
        if (this.initStrategy === 'unplug-all') {
          this.phase = 'unplug-all';
        } else {
          this.startResync();
        }
        return;
      }
      this.phase = 'run';
      return;
    }
    if (this.phase === 'run' && BigInt(this.blocks.count) * config.block_size !== config.plugged_size) {
      // The device accounts differently from us: learn the truth with STATE requests.
      this.startResync();
    }
  }

  /** The device raised a configuration-change notification. */
  onConfigChange(): void {
    this.configDirty = true;
  }

  /**
   * The harness performed the last 'write-memory' action: `ok` is whether the device accepted the
   * write. A refused write to memory the driver believes plugged means its view is wrong (or the
   * device breaks dev.op.4): it resynchronises with STATE, and gives up if that happens again.
   * @throws DriverUsageError when no write was asked for.
   */
  onMemoryWritten(ok: boolean): void {
    if (!this.pendingWrite) throw new DriverUsageError('onMemoryWritten() called with no memory write pending');
    this.pendingWrite = undefined;
    if (!ok && this.phase !== 'broken') this.errorSeen('initialising plugged memory');
  }

  /** The backoff delay of a 'wait' action has passed. */
  onTimer(): void {
    this.waitingMs = 0;
  }

  /**
   * The response to the outstanding request, or null when the device returned no used entry
   * (or a used length below 10). Only the response type is looked at (drv.plug.1, drv.unplug.1,
   * drv.unplugall.1), and the state only for an acknowledged STATE (drv.state.1, drv.state.2).
   */
  onResponse(bytes: Uint8Array | null): void {
    const request = this.outstanding;
    if (!request) throw new DriverUsageError('onResponse() called with no request outstanding');
    this.outstanding = undefined;
    if (bytes === null) return this.breakDown(`the device returned no response to ${REQUEST_TYPE_NAMES[request.type]}`);
    const decoded = decodeResponse(bytes);
    if (!decoded.ok) return this.breakDown(`response too short: ${decoded.error.actual} bytes`);
    const code = decoded.value.type;
    const blocks = this.blocks as BlockBitmap;
    const first = this.blockIndex(request.addr);
    if (code === VIRTIO_MEM_RESP_BUSY) {
      // A STATE range is asked again after the backoff; other requests are re-planned from the config.
      if (request.type === VIRTIO_MEM_REQ_STATE) this.resyncQueue.unshift({ first, count: request.nb_blocks });
      return this.backOff();
    }
    switch (request.type) {
      case VIRTIO_MEM_REQ_UNPLUG_ALL:
        if (code !== VIRTIO_MEM_RESP_ACK) {
          // Keep trying until it succeeds (drv.init.2), without spinning.
          return this.backOff();
        }
        blocks.clearAll();
        this.knownPluggedSize = 0n;
        this.succeeded();
        this.phase = 'run';
        // The device may have changed usable_region_size without a notification (dev.cfg.9 exemption).
        this.configDirty = true;
        return;
      case VIRTIO_MEM_REQ_STATE: {
        if (code !== VIRTIO_MEM_RESP_ACK) return this.errorSeen('STATE');
        // Only a PLUG/UNPLUG/UNPLUG ALL that succeeds clears the error streak: a resync that
        // succeeds and then fails the same way again must end in giving up, not in a loop.
        this.backoffMs = this.initialBackoff;
        const state = decoded.value.state;
        if (state === VIRTIO_MEM_STATE_PLUGGED) blocks.setRange(first, request.nb_blocks);
        else if (state === VIRTIO_MEM_STATE_UNPLUGGED) blocks.clearRange(first, request.nb_blocks);
        else {
          const half = Math.floor(request.nb_blocks / 2);
          this.resyncQueue.unshift({ first, count: half }, { first: first + half, count: request.nb_blocks - half });
        }
        if (this.resyncQueue.length === 0) this.phase = 'run';
        return;
      }
      default: {
        const isPlug = request.type === VIRTIO_MEM_REQ_PLUG;
        if (code === VIRTIO_MEM_RESP_ACK) {
          this.succeeded();
          const size = BigInt(request.nb_blocks) * (this.config as VirtioMemConfig).block_size;
          const known = this.knownPluggedSize ?? 0n;
          if (isPlug) {
            blocks.setRange(first, request.nb_blocks);
            this.knownPluggedSize = known + size;
            // drv.op.7: the content of newly plugged memory is undefined; initialise it (the start of the range only, to stay cheap).
            if (this.initialiseMemory)
              this.pendingWrite = {
                addr: request.addr,
                length: this.initLength(),
                purpose: 'initialise newly plugged memory (drv.op.7)',
              };
          } else {
            blocks.clearRange(first, request.nb_blocks);
            this.knownPluggedSize = known > size ? known - size : 0n;
          }
          return;
        }
        if (code === VIRTIO_MEM_RESP_NACK && isPlug) {
          // Denied: stop plugging until the device changes its configuration (no spinning).
          this.plugHeld = true;
          return;
        }
        return this.errorSeen(REQUEST_TYPE_NAMES[request.type]);
      }
    }
  }

  // ---------------------------------------------------------------- internals

  /** Waits the current backoff before the next request (drv.suite.2) and lengthens the one after it. */
  private backOff(): void {
    this.waitingMs = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * this.backoffFactor, this.maxBackoff);
  }

  private succeeded(): void {
    this.backoffMs = this.initialBackoff;
    this.errorStreak = 0;
  }

  /** ERROR (or a code that makes no sense for the request): resynchronise once, then give up. */
  private errorSeen(what: string): void {
    this.errorStreak++;
    if (this.errorStreak > 1) return this.breakDown(`${what} failed again after resynchronising`);
    this.startResync();
  }

  private breakDown(reason: string): void {
    this.phase = 'broken';
    this.brokenReason = reason;
  }

  private startResync(): void {
    const config = this.config as VirtioMemConfig;
    const blocks = this.blocks as BlockBitmap;
    blocks.clearAll();
    const usableBlocks = Math.min(Number(config.usable_region_size / config.block_size), blocks.length);
    this.resyncQueue = [];
    for (let first = 0; first < usableBlocks; first += this.maxBlocks) {
      this.resyncQueue.push({ first, count: Math.min(this.maxBlocks, usableBlocks - first) });
    }
    this.phase = this.resyncQueue.length > 0 ? 'resync' : 'run';
  }

  private nextResync(): DriverAction {
    const range = this.resyncQueue.shift() as BlockRange;
    return this.send(
      { type: VIRTIO_MEM_REQ_STATE, addr: this.blockAddr(range.first), nb_blocks: range.count },
      'learn which blocks are plugged',
    );
  }

  /** Plans the next PLUG or UNPLUG toward requested_size, inside the usable region (drv.op.8, drv.op.9). */
  private nextResize(): DriverAction {
    const config = this.config as VirtioMemConfig;
    const blocks = this.blocks as BlockBitmap;
    const target = Number(config.requested_size / config.block_size);
    const have = blocks.count;
    const usableBlocks = Math.min(Number(config.usable_region_size / config.block_size), blocks.length);
    if (have < target) {
      if (this.plugHeld)
        return { kind: 'idle', reason: 'the device denied a plug (NACK); waiting for a configuration change' };
      const start = blocks.findNext(false, 0, usableBlocks);
      if (start === -1) return { kind: 'idle', reason: 'no unplugged block left inside the usable region (drv.op.10)' };
      const stop = blocks.findNext(true, start, usableBlocks);
      const runEnd = stop === -1 ? usableBlocks : stop;
      const count = Math.min(runEnd - start, target - have, this.maxBlocks);
      return this.send(
        { type: VIRTIO_MEM_REQ_PLUG, addr: this.blockAddr(start), nb_blocks: count },
        `plug toward requested_size (${have} → ${target} blocks)`,
      );
    }
    if (have > target) {
      const last = blocks.findPrevious(true, blocks.length);
      const runStart = blocks.findPrevious(false, last) + 1;
      const count = Math.min(last - runStart + 1, have - target, this.maxBlocks);
      return this.send(
        { type: VIRTIO_MEM_REQ_UNPLUG, addr: this.blockAddr(last + 1 - count), nb_blocks: count },
        `unplug toward requested_size (${have} → ${target} blocks)`,
      );
    }
    return { kind: 'idle', reason: 'plugged_size equals requested_size' };
  }

  private send(fields: Partial<VirtioMemRequest>, purpose: string): DriverAction {
    const request: VirtioMemRequest = {
      type: 0,
      padding: new Uint8Array(6),
      addr: 0n,
      nb_blocks: 0,
      payload_padding: new Uint8Array(6),
      ...fields,
    };
    this.outstanding = request;
    this.log.push(request);
    return { kind: 'request', request, bytes: encodeRequest(request), purpose };
  }

  /** Bytes of one initialisation write: one page, or the whole block when blocks are smaller. */
  private initLength(): number {
    const blockSize = (this.config as VirtioMemConfig).block_size;
    return blockSize < BigInt(MEMORY_INIT_BYTES) ? Number(blockSize) : MEMORY_INIT_BYTES;
  }

  /** True when [addr, addr + length) lies inside one block this driver believes plugged. */
  private believesPlugged(addr: bigint, length: number): boolean {
    const config = this.config;
    const blocks = this.blocks;
    if (!config || !blocks || addr < config.addr) return false;
    const index = this.blockIndex(addr);
    if (index >= blocks.length || !blocks.get(index)) return false;
    return addr + BigInt(length) <= this.blockAddr(index) + config.block_size;
  }

  private blockAddr(index: number): bigint {
    const config = this.config as VirtioMemConfig;
    return config.addr + BigInt(index) * config.block_size;
  }

  private blockIndex(addr: bigint): number {
    const config = this.config as VirtioMemConfig;
    return Number((addr - config.addr) / config.block_size);
  }
}

/** Why a configuration cannot be driven, or undefined when it can. */
export function validateConfig(config: VirtioMemConfig): string | undefined {
  if (!isPowerOfTwo(config.block_size))
    return `block_size 0x${config.block_size.toString(16)} is not a power of two (dev.cfg.5); refusing the device`;
  for (const name of ['addr', 'region_size'] as const) {
    if (config[name] % config.block_size !== 0n)
      return `${name} 0x${config[name].toString(16)} is not a multiple of block_size (dev.cfg.6); refusing the device`;
  }
  if (config.region_size / config.block_size > BigInt(MAX_TRACKED_BLOCKS))
    return `region of ${config.region_size / config.block_size} blocks is too large to track`;
  return undefined;
}
