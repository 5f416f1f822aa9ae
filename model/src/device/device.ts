/**
 * The virtio-mem device model: a block bitmap over the whole region, the 56-byte configuration,
 * request handling, host-side resize, device and system reset, feature negotiation, the content
 * of the device memory (stored sparsely) and suspend-to-RAM with wake-up.
 *
 * Pure: no I/O, no clocks, no randomness. Every request is first *evaluated* into the set of
 * conforming outcomes (with the requirement IDs that justify each); the device's profile then
 * picks the one this device produces, and invariants are checked after the step.
 */
import {
  BlockStateName,
  DeviceSetup,
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ERROR,
  VIRTIO_MEM_STATE_MIXED,
  VIRTIO_MEM_STATE_PLUGGED,
  VIRTIO_MEM_STATE_UNPLUGGED,
  VirtioMemRequestLayout,
  VirtioMemResponseLayout,
  RESPONSE_CODE_NAMES,
  featureMask,
} from '../../../spec/src/index';
import {
  VirtioMemConfig,
  VirtioMemRequest,
  VirtioMemResponse,
  decodeRequest,
  encodeConfig,
  encodeResponse,
  NonzeroPadding,
} from '../codec/codec';
import { BlockBitmap, BlockRun, MAX_TRACKED_BLOCKS } from '../blocks/bitmap';
import { DeviceProfile, SPEC_PROFILE, usableFor, ViolationHandling } from './profiles';
import { ChainProblem, DeviceOutcome, OutcomeEffect, ResponseOutcome, ViolationOutcome, sameObservable } from './outcomes';
import { DeviceSnapshot, InvariantViolation, TransitionKind, checkConfigInvariants, checkTransition } from './invariants';
import { MemoryAccessFailure, MemoryAccessResult, SparseMemory } from './memory';

/**
 * Initial parameters of a device: the set-up record ({@link DeviceSetup}), where a model test may
 * leave out `requested_size` (0), `node_id` (0) and `plugged` (none), plus an override of the
 * profile's initial usable_region_size (to set up unusual states). Sizes are bytes.
 */
export interface DeviceParams
  extends Pick<DeviceSetup, 'block_size' | 'region_size' | 'addr' | 'features'>,
    Partial<Pick<DeviceSetup, 'requested_size' | 'node_id' | 'plugged'>> {
  readonly usable_region_size?: bigint;
}

/** Thrown when the device is driven out of order (e.g. a wake-up without a suspend). */
export class DeviceUsageError extends Error {
  override readonly name = 'DeviceUsageError';
}

/** Thrown when device parameters cannot be modelled at all. */
export class DeviceParamsError extends Error {
  override readonly name = 'DeviceParamsError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** A descriptor chain as the device sees it: readable buffers, then writable buffer sizes. */
export interface DescriptorChain {
  readonly readable: readonly Uint8Array[];
  readonly writableSizes: readonly number[];
}

/** The usual chain: the request in one descriptor, a 10-byte response buffer in another. */
export function singleRequestChain(request: Uint8Array, responseSize = VirtioMemResponseLayout.size): DescriptorChain {
  return { readable: [request], writableSizes: [responseSize] };
}

/** The conforming outcomes for a chain, and what this device's profile does with it. */
export interface RequestEvaluation {
  /** The decoded request, when 24 readable bytes were present. */
  readonly request?: VirtioMemRequest;
  /** Why the chain is malformed, when it is. */
  readonly problem?: ChainProblem;
  /** Padding fields of the request holding nonzero bytes. */
  readonly nonzeroPadding: readonly NonzeroPadding[];
  /** Every conforming outcome (never empty). */
  readonly outcomes: readonly DeviceOutcome[];
  /** The outcome this device's profile produces; `class` is 'nonconforming' when outside the set. */
  readonly chosen: DeviceOutcome;
}

/** What the driver sees after the device handled one chain. */
export interface UsedElement {
  /** Bytes the device reports as written. */
  readonly length: number;
  /** The bytes written into the writable buffers. */
  readonly written: Uint8Array;
}

/** Result of processing one chain. */
export interface ProcessResult extends RequestEvaluation {
  /** The used element, or null when the device returned none. */
  readonly used: UsedElement | null;
  /** The decoded response, when one was written. */
  readonly response?: VirtioMemResponse;
  /** Whether a configuration-change notification was raised. */
  readonly notified: boolean;
  /** Invariants broken after the step (empty for a conforming device). */
  readonly violations: readonly InvariantViolation[];
}

/** Result of a host-side change of requested_size. */
export type HostResizeResult =
  | { readonly ok: false; readonly reason: string }
  | { readonly ok: true; readonly notified: boolean; readonly usableBefore: bigint; readonly usableAfter: bigint; readonly violations: readonly InvariantViolation[] };

/** Result of {@link VirtioMemDevice.suspend}. */
export interface SuspendResult {
  /** Whether VIRTIO_MEM_F_PERSISTENT_SUSPEND was negotiated: block states must survive the wake-up (dev.op.8). */
  readonly persistent: boolean;
  /** Invariants broken at the time of the suspend. */
  readonly violations: readonly InvariantViolation[];
}

/** Result of writing the device status register. */
export interface StatusWriteResult {
  /** The status as read back afterwards. */
  readonly status: number;
  /** Why the device refused FEATURES_OK or failed at DRIVER_OK, if it did. */
  readonly refusal?: string;
  readonly requirements: readonly string[];
}

const RESP_SIZE = VirtioMemResponseLayout.size;
const REQ_SIZE = VirtioMemRequestLayout.size;
const PLUGGED: BlockStateName = 'PLUGGED';
const STATE_VALUES: Readonly<Record<BlockStateName, number>> = {
  PLUGGED: VIRTIO_MEM_STATE_PLUGGED,
  UNPLUGGED: VIRTIO_MEM_STATE_UNPLUGGED,
  MIXED: VIRTIO_MEM_STATE_MIXED,
};

/** Per-request-type requirement IDs: [looks only at type/data, ignores data padding, range, state, BUSY, ACK, plugged_size]. */
const IDS = {
  plug: { only: 'dev.plug.1', padding: 'dev.plug.2', range: 'dev.plug.3', state: 'dev.plug.4', busy: 'dev.plug.5', ack: 'dev.plug.6', size: 'dev.plug.7' },
  unplug: { only: 'dev.unplug.1', padding: 'dev.unplug.2', range: 'dev.unplug.3', state: 'dev.unplug.4', busy: 'dev.unplug.5', ack: 'dev.unplug.6', size: 'dev.unplug.7' },
} as const;

/** Facts about a PLUG/UNPLUG/STATE request against the current state. */
interface RangeFacts {
  readonly problems: readonly string[];
  readonly firstBlock: number;
  readonly count: number;
}

/** The virtio-mem device. */
export class VirtioMemDevice {
  readonly profile: DeviceProfile;
  private config: VirtioMemConfig;
  private readonly blocks: BlockBitmap;
  private readonly offered: bigint;
  private driverFeatures = 0n;
  private status = 0;
  private generation = 0;
  private notifications = 0;
  private busyBudget = 0;
  private readonly memory: SparseMemory;
  /** Features of the last negotiation that stuck; kept across a device reset, cleared by a system reset. */
  private lastNegotiated = 0n;
  /** Set between suspend() and wake(). */
  private suspendedAt?: { readonly snapshot: DeviceSnapshot; readonly persistent: boolean };

  /**
   * @throws DeviceParamsError when the region cannot be modelled (zero block size, more than
   *   2^30 blocks, initial plugged blocks outside the region). Parameters that break the spec but
   *   can be modelled (a block size that is not a power of two, say) are accepted; invariants
   *   report them.
   */
  constructor(params: DeviceParams, profile: DeviceProfile = SPEC_PROFILE) {
    this.profile = profile;
    if (params.block_size <= 0n) throw new DeviceParamsError('block_size', `block_size must be > 0 (got ${params.block_size})`);
    const nbBlocks = params.region_size / params.block_size;
    if (nbBlocks > BigInt(MAX_TRACKED_BLOCKS)) {
      throw new DeviceParamsError('region_size', `region_size / block_size = ${nbBlocks} blocks exceeds the model's limit of ${MAX_TRACKED_BLOCKS}`);
    }
    const requested = params.requested_size ?? 0n;
    this.offered = params.features ?? profile.defaultFeatures;
    this.blocks = new BlockBitmap(Number(nbBlocks));
    this.memory = new SparseMemory(params.block_size);
    const usable = params.usable_region_size ?? usableFor(profile.usablePolicy, requested, params.block_size, params.region_size, 0n);
    this.config = {
      block_size: params.block_size,
      node_id: params.node_id ?? 0,
      padding: new Uint8Array(6),
      addr: params.addr,
      region_size: params.region_size,
      usable_region_size: usable,
      plugged_size: 0n,
      requested_size: requested,
    };
    for (const run of params.plugged ?? []) {
      if (run.first < 0 || run.count < 0 || run.first + run.count > this.blocks.length) {
        throw new DeviceParamsError('plugged', `plugged run [${run.first}, ${run.first + run.count}) is outside the region's ${this.blocks.length} blocks`);
      }
      this.blocks.setRange(run.first, run.count);
    }
    this.config.plugged_size = BigInt(this.blocks.count) * params.block_size;
  }

  // ---------------------------------------------------------------- observation

  /** A copy of the configuration as the driver would read it. */
  readConfig(): VirtioMemConfig {
    return { ...this.config, padding: this.config.padding.slice() };
  }

  /** The 56 configuration bytes. */
  readConfigBytes(): Uint8Array {
    return encodeConfig(this.config);
  }

  /** The 8-bit configuration generation (changes whenever a configuration field changes). */
  get configGeneration(): number {
    return this.generation;
  }

  /** Number of configuration-change notifications raised so far. */
  get notificationCount(): number {
    return this.notifications;
  }

  /** Device status register. */
  get deviceStatus(): number {
    return this.status;
  }

  /** True while the device has flagged DEVICE_NEEDS_RESET. */
  get needsReset(): boolean {
    return (this.status & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0;
  }

  /** Features offered to the driver. */
  get offeredFeatures(): bigint {
    return this.offered;
  }

  /** Features accepted by the driver (meaningful once FEATURES_OK stuck). */
  get negotiatedFeatures(): bigint {
    return (this.status & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 ? this.driverFeatures : 0n;
  }

  /** Number of blocks in the region. */
  get blockCount(): number {
    return this.blocks.length;
  }

  /** Whether block `index` is plugged. */
  isPlugged(index: number): boolean {
    return this.blocks.get(index);
  }

  /** Runs of plugged blocks, ascending. */
  pluggedRuns(): BlockRun[] {
    return this.blocks.runs();
  }

  /** Memory the block bitmap occupies, in bytes (memory contents not included; see {@link contentBytes}). */
  get stateBytes(): number {
    return this.blocks.byteLength;
  }

  /** Bytes of memory content the model stores (only pages written with nonzero data). */
  get contentBytes(): number {
    return this.memory.storedBytes;
  }

  /**
   * Features of the most recent negotiation that stuck (FEATURES_OK accepted). Unlike
   * {@link negotiatedFeatures} this survives a device reset — a driver may reset the device
   * before the platform suspends — and is cleared by a system reset.
   */
  get lastNegotiatedFeatures(): bigint {
    return this.lastNegotiated;
  }

  /** True between {@link suspend} and {@link wake}. */
  get suspended(): boolean {
    return this.suspendedAt !== undefined;
  }

  /**
   * A snapshot for invariant checks. `full` adds the end of the plugged area, a digest of all
   * blocks and a digest of the memory contents.
   */
  snapshot(full = false): DeviceSnapshot {
    return this.takeSnapshot(full, this.readConfig());
  }

  /**
   * Internal snapshots share the config object: it is replaced, never mutated, on every change,
   * and these snapshots never leave the device.
   */
  private takeSnapshot(full: boolean, config: VirtioMemConfig = this.config): DeviceSnapshot {
    const base = { config, pluggedBlocks: this.blocks.count };
    if (!full) return base;
    return {
      ...base,
      pluggedEnd: this.blocks.findPrevious(true, this.blocks.length) + 1,
      blocksDigest: this.blocks.runs().map((r) => `${r.first}+${r.count}`).join(','),
      contentDigest: this.memory.digest,
    };
  }

  /** Checks the configuration invariants now. */
  checkInvariants(): InvariantViolation[] {
    return checkConfigInvariants(this.takeSnapshot(true));
  }

  // ---------------------------------------------------------------- requests

  /**
   * Evaluates a chain without changing anything: the conforming outcomes and the profile's choice.
   */
  evaluate(chain: DescriptorChain): RequestEvaluation {
    const readableBytes = chain.readable.reduce((n, b) => n + b.length, 0);
    const writable = chain.writableSizes.reduce((n, s) => n + s, 0);
    if (this.needsReset) {
      const outcome: ViolationOutcome = {
        kind: 'protocol-violation',
        handling: 'no-used-entry',
        class: 'unspecified',
        requirements: [],
        rationale: 'the device flagged DEVICE_NEEDS_RESET; it processes nothing until the driver resets it',
      };
      return { nonzeroPadding: [], outcomes: [outcome], chosen: outcome };
    }
    if (readableBytes < REQ_SIZE) return this.malformed('short-request', writable, undefined, []);
    const requestBytes = chain.readable.length === 1 ? chain.readable[0] : concat(chain.readable);
    const decoded = decodeRequest(requestBytes);
    if (!decoded.ok) return this.malformed('short-request', writable, undefined, []);
    const request = decoded.value;
    if (writable < RESP_SIZE) return this.malformed('short-response', writable, request, decoded.nonzeroPadding);
    if (request.type > VIRTIO_MEM_REQ_STATE) return this.malformed('unknown-type', writable, request, decoded.nonzeroPadding);

    const outcomes = this.conformingOutcomes(request, decoded.nonzeroPadding);
    const refusesLayout =
      (this.profile.layoutStrictness !== 'any-split' && chain.readable[0].length < REQ_SIZE) ||
      (this.profile.layoutStrictness === 'exact-24' && chain.readable[0].length !== REQ_SIZE);
    const chosen = refusesLayout
      ? this.violation(this.profile.malformedChain, 'nonconforming', 'the profile requires the request in one descriptor; Message Framing says a device must not assume a descriptor layout')
      : this.pick(outcomes, this.profileResponse(request));
    return { request, nonzeroPadding: decoded.nonzeroPadding, outcomes, chosen };
  }

  /**
   * Processes one chain: evaluates it, applies the profile's outcome, checks invariants.
   * Mutates the block states, the configuration and the status as the outcome says; on a
   * non-ACK response nothing but the response is produced.
   */
  processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    if (evaluation.chosen.kind === 'response' && evaluation.chosen.response === 'BUSY' && this.busyBudget > 0) this.busyBudget--;
    const before = this.takeSnapshot(false);
    const notificationsBefore = this.notifications;
    const chosen = evaluation.chosen;
    let used: UsedElement | null = null;
    let response: VirtioMemResponse | undefined;
    let kind: TransitionKind = 'request';
    if (chosen.kind === 'response') {
      this.applyEffect(chosen.effect);
      if (chosen.effect.kind === 'unplug-all') kind = 'unplug-all';
      response = { type: RESPONSE_CODE_NAMES.indexOf(chosen.response), padding: new Uint8Array(6), state: chosen.state ? STATE_VALUES[chosen.state] : 0 };
      used = { length: RESP_SIZE, written: encodeResponse(response) };
    } else {
      used = this.applyViolation(chosen.handling);
    }
    const notified = this.notifications !== notificationsBefore;
    const after = this.takeSnapshot(kind === 'unplug-all');
    const violations = [...checkConfigInvariants(after), ...checkTransition(before, after, kind, notified)];
    return { ...evaluation, used, response, notified, violations };
  }

  /** Convenience: processes a request given as bytes in the usual two-descriptor chain. */
  processRequest(request: Uint8Array): ProcessResult {
    return this.processChain(singleRequestChain(request));
  }

  /**
   * Applies an outcome observed on a real device to this model (the runner's oracle keeps
   * its state in step with the device under test). `usableAfter` is the observed
   * usable_region_size for an UNPLUG ALL.
   */
  applyObserved(outcome: DeviceOutcome, usableAfter?: bigint): void {
    if (outcome.kind === 'response') {
      this.applyEffect(outcome.effect, usableAfter);
    } else {
      this.applyViolation(outcome.handling);
    }
  }

  /** Makes the next `count` requests that would otherwise succeed answer BUSY (as during migration). */
  injectBusy(count: number): void {
    this.busyBudget = count;
  }

  // ---------------------------------------------------------------- memory

  /**
   * The driver (CPU) reads `length` bytes of guest memory at guest-physical address `addr`.
   *
   * The range must lie inside [addr, addr + region_size) ('outside-region'). Each block it touches
   * is judged in ascending order and the first that fails decides the result:
   * - plugged: readable, returns what was last written, zeros if never written (dev.op.4, dev.op.3);
   * - unplugged inside usable_region_size: 'inaccessible' when VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE
   *   is negotiated (drv.op.5); otherwise readable and reads zeros (dev.op.5; the content of
   *   unplugged blocks is undefined and the model discards it, dev.op.2);
   * - unplugged beyond usable_region_size: 'beyond-usable' (drv.op.2).
   * @throws RangeError when `length` is not a non-negative integer.
   */
  readMemory(addr: bigint, length: number): MemoryAccessResult {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer (got ${length})`);
    const refused = this.judgeAccess(addr, length, 'read');
    if (refused) return refused;
    const data = new Uint8Array(length);
    this.memory.read(addr - this.config.addr, data);
    return { ok: true, data };
  }

  /**
   * The driver (CPU) writes `data` to guest memory at guest-physical address `addr`. Judged like
   * {@link readMemory}. Bytes for plugged blocks are stored (dev.op.4); bytes for unplugged blocks
   * inside the usable region without UNPLUGGED_INACCESSIBLE are accepted and discarded (the driver
   * must not write there, drv.op.1; the device may lose them, dev.op.2). Nothing is stored when the
   * write is refused. On success `data` of the result is empty.
   */
  writeMemory(addr: bigint, data: Uint8Array): MemoryAccessResult {
    const refused = this.judgeAccess(addr, data.length, 'write');
    if (refused) return refused;
    const open = this.profile.unpluggedMemory === 'open';
    this.memory.write(addr - this.config.addr, data, (block) => open || this.blocks.get(block));
    return { ok: true, data: new Uint8Array(0) };
  }

  /**
   * Judges a guest CPU access to [addr, addr + length) as {@link readMemory} and
   * {@link writeMemory} do, without touching memory: the refusal, or undefined when the access is
   * allowed. For a device whose memory lives elsewhere (a vhost-user back-end: the front-end's
   * shared region holds the bytes).
   */
  accessRefusal(addr: bigint, length: number, what: 'read' | 'write'): (MemoryAccessResult & { ok: false }) | undefined {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer (got ${length})`);
    const refused = this.judgeAccess(addr, length, what);
    return refused && !refused.ok ? refused : undefined;
  }

  // ---------------------------------------------------------------- suspend

  /**
   * The platform enters suspend-to-RAM (deep sleep, S3). Whether block states must survive is
   * decided now: VIRTIO_MEM_F_PERSISTENT_SUSPEND in the last negotiation that stuck (a driver may
   * have reset the device in its freeze callback already; see {@link lastNegotiatedFeatures}).
   * Nothing changes until {@link wake}.
   * @throws DeviceUsageError when the device is already suspended.
   */
  suspend(): SuspendResult {
    if (this.suspendedAt) throw new DeviceUsageError('suspend() called while already suspended');
    const persistent = (this.lastNegotiated & featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND)) !== 0n;
    const snapshot = this.takeSnapshot(true);
    this.suspendedAt = { snapshot, persistent };
    return { persistent, violations: [...checkConfigInvariants(snapshot), ...checkTransition(snapshot, snapshot, 'suspend', false, { persistentSuspend: persistent })] };
  }

  /**
   * The platform wakes up from suspend-to-RAM. With PERSISTENT_SUSPEND negotiated block states
   * and contents stay as they were (dev.op.8, dev.op.3). Without it the profile decides
   * (`suspendWithoutPersistence`): 'keep', or 'unplug-all' — every block unplugged, contents
   * discarded and usable_region_size recomputed, as a system reset with that policy does.
   * The virtio status is left alone: resetting and re-initialising the device around a suspend
   * is the driver's business (Linux resets it in its freeze callback and re-initialises it on restore).
   * Returns the invariants broken, comparing the state at {@link suspend} with the state now.
   * @throws DeviceUsageError when the device is not suspended.
   */
  wake(): InvariantViolation[] {
    const at = this.suspendedAt;
    if (!at) throw new DeviceUsageError('wake() called without a preceding suspend()');
    this.suspendedAt = undefined;
    if (!at.persistent && this.profile.suspendWithoutPersistence === 'unplug-all') this.unplugAllForReset();
    const after = this.takeSnapshot(true);
    return [...checkConfigInvariants(after), ...checkTransition(at.snapshot, after, 'wake', false, { persistentSuspend: at.persistent })];
  }

  // ---------------------------------------------------------------- host side

  /**
   * The host changes requested_size (QEMU: `qom-set … requested-size`). Grows usable_region_size
   * first when the policy wants more room (dev.cfg.4), and raises a notification when either
   * field changed (dev.cfg.9) or when the profile always notifies (dev.cfg.11).
   */
  setRequestedSize(size: bigint): HostResizeResult {
    const c = this.config;
    const rules = this.profile.resizeValidation;
    if (size < 0n) return { ok: false, reason: 'requested_size must not be negative' };
    if (rules.aligned && size % c.block_size !== 0n) {
      return { ok: false, reason: `requested_size 0x${size.toString(16)} is not a multiple of block_size 0x${c.block_size.toString(16)}` };
    }
    if (rules.withinRegion && size > c.region_size) {
      return { ok: false, reason: `requested_size 0x${size.toString(16)} exceeds region_size 0x${c.region_size.toString(16)}` };
    }
    if (rules.mustDiffer && size === c.requested_size) {
      return { ok: false, reason: 'requested_size already has that value' };
    }
    const before = this.takeSnapshot(false);
    const usableBefore = c.usable_region_size;
    const wanted = usableFor(this.profile.usablePolicy, size, c.block_size, c.region_size, usableBefore);
    // Resizes only ever grow the usable region (dev.cfg.8).
    const usableAfter = wanted > usableBefore ? wanted : usableBefore;
    const changed = usableAfter !== usableBefore || size !== c.requested_size;
    this.config = { ...c, usable_region_size: usableAfter, requested_size: size };
    if (changed) this.bumpGeneration();
    // A notification needs a driver to receive it: none is raised before DRIVER_OK (the driver reads the values when it initialises).
    const driverActive = (this.status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0;
    const notified = driverActive && (changed || this.profile.notifyOnUnchangedResize);
    if (notified) this.notifications++;
    const after = this.takeSnapshot(false);
    return { ok: true, notified, usableBefore, usableAfter, violations: [...checkConfigInvariants(after), ...checkTransition(before, after, 'host-resize', notified, { driverActive })] };
  }

  /**
   * Virtio device reset (status ← 0). Block states, the contents of plugged memory and the
   * configuration stay as they are (dev.init.2, dev.init.3); status, features and NEEDS_RESET
   * are cleared.
   */
  deviceReset(): InvariantViolation[] {
    const before = this.takeSnapshot(true);
    this.status = 0;
    this.driverFeatures = 0n;
    this.busyBudget = 0;
    const after = this.takeSnapshot(true);
    return [...checkConfigInvariants(after), ...checkTransition(before, after, 'device-reset', false)];
  }

  /**
   * System reset (VM reboot). With the `unplug-all` policy every block is unplugged (dev.op.7),
   * its content discarded, and usable_region_size is recomputed (it may shrink); a device reset
   * happens as well, and the last negotiation is forgotten. A suspended device is woken.
   */
  systemReset(): InvariantViolation[] {
    const before = this.takeSnapshot(true);
    if (this.profile.systemReset === 'unplug-all') this.unplugAllForReset();
    this.suspendedAt = undefined;
    this.lastNegotiated = 0n;
    this.status = 0;
    this.driverFeatures = 0n;
    this.busyBudget = 0;
    const after = this.takeSnapshot(true);
    return [...checkConfigInvariants(after), ...checkTransition(before, after, 'system-reset', false)];
  }

  // ---------------------------------------------------------------- transport

  /** The driver writes its accepted features (before FEATURES_OK). */
  writeDriverFeatures(features: bigint): void {
    this.driverFeatures = features;
  }

  /**
   * The driver writes the status register. Writing 0 is a device reset. Setting FEATURES_OK
   * validates the accepted features; a device may refuse a driver that does not accept
   * UNPLUGGED_INACCESSIBLE (dev.init.1), in which case FEATURES_OK does not stick.
   */
  writeStatus(value: number): StatusWriteResult {
    if (value === 0) {
      this.deviceReset();
      return { status: 0, requirements: ['dev.init.2'] };
    }
    const adding = value & ~this.status;
    const uiOffered = (this.offered & featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE)) !== 0n;
    const uiAccepted = (this.driverFeatures & featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE)) !== 0n;
    if (adding & VIRTIO_CONFIG_S_FEATURES_OK) {
      let refusal: string | undefined;
      let requirements: string[] = [];
      if ((this.driverFeatures & ~this.offered) !== 0n) {
        refusal = `driver accepted features not offered: 0x${(this.driverFeatures & ~this.offered).toString(16)}`;
      } else if ((this.driverFeatures & featureMask(VIRTIO_F_VERSION_1)) === 0n) {
        refusal = 'driver did not accept VIRTIO_F_VERSION_1; the device is modern-only';
      } else if (uiOffered && !uiAccepted && this.profile.unpluggedInaccessibleRequired === 'refuse-features-ok') {
        refusal = 'driver did not accept VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE';
        requirements = ['dev.init.1'];
      }
      if (refusal) {
        this.status = value & ~VIRTIO_CONFIG_S_FEATURES_OK;
        return { status: this.status, refusal, requirements };
      }
    }
    if (adding & VIRTIO_CONFIG_S_DRIVER_OK && uiOffered && !uiAccepted && this.profile.unpluggedInaccessibleRequired === 'fail-driver-ok') {
      this.status = value | VIRTIO_CONFIG_S_NEEDS_RESET;
      return { status: this.status, refusal: 'driver did not accept VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE; activation failed', requirements: ['dev.init.1'] };
    }
    this.status = value | (this.status & VIRTIO_CONFIG_S_NEEDS_RESET);
    if (adding & VIRTIO_CONFIG_S_FEATURES_OK) this.lastNegotiated = this.driverFeatures;
    return { status: this.status, requirements: [] };
  }

  // ---------------------------------------------------------------- internals

  /** Unplugs every block, discards all content and recomputes usable_region_size (reset-time unplug). */
  private unplugAllForReset(): void {
    this.blocks.clearAll();
    this.memory.discardAll();
    const c = this.config;
    const usable = usableFor(this.profile.usablePolicy, c.requested_size, c.block_size, c.region_size, 0n);
    this.setConfig({ plugged_size: 0n, usable_region_size: usable });
  }

  /** Why an access to [addr, addr + length) is refused, or undefined when it is allowed. */
  private judgeAccess(addr: bigint, length: number, what: 'read' | 'write'): MemoryAccessResult | undefined {
    const c = this.config;
    const end = addr + BigInt(length);
    const hexOf = (v: bigint): string => `0x${v.toString(16)}`;
    const fail = (reason: MemoryAccessFailure, detail: string): MemoryAccessResult => ({ ok: false, reason, detail });
    // Only whole blocks are memory: a tail of region_size that is not a multiple of block_size (dev.cfg.6) is not.
    const regionEnd = c.addr + BigInt(this.blocks.length) * c.block_size;
    if (addr < c.addr || end > regionEnd) {
      return fail('outside-region', `${what} of [${hexOf(addr)}, ${hexOf(end)}) reaches outside the device region [${hexOf(c.addr)}, ${hexOf(regionEnd)})`);
    }
    if (length === 0 || this.profile.unpluggedMemory === 'open') return undefined;
    const first = Number((addr - c.addr) / c.block_size);
    const stop = Number((end - 1n - c.addr) / c.block_size) + 1;
    const usableBlocks = Math.min(Number(c.usable_region_size / c.block_size), this.blocks.length);
    const inaccessible = (this.negotiatedFeatures & featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE)) !== 0n;
    // The first unplugged block that fails: with UNPLUGGED_INACCESSIBLE every unplugged block
    // fails; without it only those beyond the usable region do.
    const failing = this.blocks.findNext(false, inaccessible ? first : Math.max(first, usableBlocks), stop);
    if (failing === -1) return undefined;
    const blockAddr = hexOf(c.addr + BigInt(failing) * c.block_size);
    if (failing >= usableBlocks) {
      return fail('beyond-usable', `${what} touches unplugged block ${failing} at ${blockAddr}, beyond usable_region_size ${hexOf(c.usable_region_size)} (drv.op.${what === 'read' ? 2 : 1})`);
    }
    return fail('inaccessible', `${what} touches unplugged block ${failing} at ${blockAddr} and VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE was negotiated (drv.op.${what === 'read' ? 5 : 1})`);
  }

  private setConfig(change: Partial<VirtioMemConfig>): void {
    const next = { ...this.config, ...change };
    const differs = (Object.keys(change) as (keyof VirtioMemConfig)[]).some((k) => next[k] !== this.config[k]);
    this.config = next;
    if (differs) this.bumpGeneration();
  }

  private bumpGeneration(): void {
    this.generation = (this.generation + 1) & 0xff;
  }

  private rangeFacts(request: VirtioMemRequest): RangeFacts {
    const c = this.config;
    const problems: string[] = [];
    if (request.addr % c.block_size !== 0n) problems.push(`addr 0x${request.addr.toString(16)} is not aligned to block_size`);
    if (request.nb_blocks === 0) problems.push('nb_blocks is 0');
    const end = request.addr + BigInt(request.nb_blocks) * c.block_size;
    if (request.addr < c.addr || end > c.addr + c.usable_region_size) {
      problems.push('the range reaches outside the usable region');
    }
    if (problems.length > 0) return { problems, firstBlock: -1, count: 0 };
    return { problems, firstBlock: Number((request.addr - c.addr) / c.block_size), count: request.nb_blocks };
  }

  /** The conforming set for a well-formed request of a known type. */
  private conformingOutcomes(request: VirtioMemRequest, padding: readonly NonzeroPadding[]): DeviceOutcome[] {
    const paddingTouched = (name: string): boolean => padding.some((p) => p.field === name);
    switch (request.type) {
      case VIRTIO_MEM_REQ_PLUG:
      case VIRTIO_MEM_REQ_UNPLUG: {
        const isPlug = request.type === VIRTIO_MEM_REQ_PLUG;
        const ids = isPlug ? IDS.plug : IDS.unplug;
        const base = [ids.only, ...(paddingTouched('payload_padding') ? [ids.padding] : [])];
        const facts = this.rangeFacts(request);
        const busy = response('BUSY', 'permitted', [...base, ids.busy], { kind: 'none' }, 'the device may answer BUSY when it cannot process the request now');
        if (facts.problems.length > 0) {
          return [response('ERROR', 'required', [...base, ids.range], { kind: 'none' }, facts.problems.join('; ')), busy];
        }
        const plugged = this.blocks.countRange(facts.firstBlock, facts.count);
        const stateError = isPlug ? plugged > 0 : plugged < facts.count;
        const c = this.config;
        const overBudget = isPlug && c.plugged_size + BigInt(facts.count) * c.block_size > c.requested_size;
        if (stateError) {
          const set: DeviceOutcome[] = [
            response('ERROR', 'required', [...base, ids.state], { kind: 'none' }, isPlug ? 'a covered block is already plugged' : 'a covered block is already unplugged'),
          ];
          if (overBudget) {
            set.push(response('NACK', 'unspecified', [...base, ids.state], { kind: 'none' }, 'over budget as well; the spec does not order the budget check against the state check (QEMU checks the budget first)'));
          }
          set.push(busy);
          return set;
        }
        const effect: OutcomeEffect = { kind: isPlug ? 'plug' : 'unplug', firstBlock: facts.firstBlock, count: facts.count };
        if (overBudget) {
          const alreadyAtTarget = c.plugged_size >= c.requested_size;
          return [
            response('NACK', 'recommended', base, { kind: 'none' }, 'the plug would take plugged_size beyond requested_size; the descriptive text says such plugs are rejected'),
            response('ERROR', 'unspecified', base, { kind: 'none' }, 'ERROR for an over-budget plug is not required by any statement (Firecracker does it; Linux then marks the device broken)'),
            response('ACK', alreadyAtTarget ? 'discouraged' : 'unspecified', [...base, ids.ack, ids.size], effect,
              alreadyAtTarget ? 'plugged_size already reaches requested_size; the descriptive text says the device rejects further plugs' : 'a plug that overshoots requested_size is not addressed by the spec'),
            busy,
          ];
        }
        return [response('ACK', 'required', [...base, ids.ack, ids.size], effect, isPlug ? 'every covered block was unplugged and inside the budget' : 'every covered block was plugged'), busy];
      }
      case VIRTIO_MEM_REQ_UNPLUG_ALL: {
        const c = this.config;
        // addr and nb_blocks have no meaning for UNPLUG ALL: only the type counts (dev.unplugall.1).
        const base = ['dev.unplugall.1', ...(paddingTouched('payload_padding') ? ['dev.unplugall.2'] : [])];
        return [
          response('ACK', 'required', [...base, 'dev.unplugall.4', 'dev.unplugall.5', 'dev.unplugall.6'],
            { kind: 'unplug-all', usableMin: c.requested_size, usableMax: c.region_size }, 'every block unplugged; usable_region_size may change before the ACK'),
          response('BUSY', 'permitted', [...base, 'dev.unplugall.3'], { kind: 'none' }, 'the device may answer BUSY when it cannot process the request now'),
          response('ERROR', 'unspecified', base, { kind: 'none' }, 'failure codes other than BUSY are not defined for UNPLUG ALL'),
          response('NACK', 'unspecified', base, { kind: 'none' }, 'failure codes other than BUSY are not defined for UNPLUG ALL'),
        ];
      }
      default: {
        const base = ['dev.state.1', ...(paddingTouched('payload_padding') ? ['dev.state.2'] : [])];
        const facts = this.rangeFacts(request);
        if (facts.problems.length > 0) return [response('ERROR', 'required', [...base, 'dev.state.3'], { kind: 'none' }, facts.problems.join('; '))];
        const fill = this.blocks.fill(facts.firstBlock, facts.count);
        const state: BlockStateName = fill === 'all' ? PLUGGED : fill === 'none' ? 'UNPLUGGED' : 'MIXED';
        const stateId = fill === 'all' ? 'dev.state.5' : fill === 'none' ? 'dev.state.6' : 'dev.state.7';
        return [{ ...response('ACK', 'required', [...base, 'dev.state.4', stateId], { kind: 'none' }, `the covered blocks are ${state.toLowerCase()}`), state }];
      }
    }
  }

  /** What this device's profile answers, as a response code (the effect follows from the set). */
  private profileResponse(request: VirtioMemRequest): 'ACK' | 'NACK' | 'BUSY' | 'ERROR' {
    const c = this.config;
    if (request.type === VIRTIO_MEM_REQ_UNPLUG_ALL) return this.takeBusy() ? 'BUSY' : 'ACK';
    const facts = this.rangeFacts(request);
    if (request.type === VIRTIO_MEM_REQ_STATE) return facts.problems.length > 0 ? 'ERROR' : 'ACK';
    const isPlug = request.type === VIRTIO_MEM_REQ_PLUG;
    const order = isPlug ? this.profile.plugCheckOrder : (['range', 'state'] as const);
    for (const check of order) {
      if (check === 'range' && facts.problems.length > 0) return 'ERROR';
      if (check === 'budget' && this.profile.overBudget !== 'accept') {
        const size = BigInt(request.nb_blocks) * c.block_size;
        if (c.plugged_size + size > c.requested_size) return this.profile.overBudget;
      }
      if (check === 'state' && facts.problems.length === 0) {
        const plugged = this.blocks.countRange(facts.firstBlock, facts.count);
        if (isPlug ? plugged > 0 : plugged < facts.count) return 'ERROR';
      }
    }
    return this.takeBusy() ? 'BUSY' : 'ACK';
  }

  /** Whether an injected BUSY is pending (used up by processChain, never by evaluate). */
  private takeBusy(): boolean {
    return this.busyBudget > 0;
  }

  /** Finds the profile's answer in the set, or builds a nonconforming outcome for it. */
  private pick(outcomes: readonly DeviceOutcome[], answer: 'ACK' | 'NACK' | 'BUSY' | 'ERROR'): DeviceOutcome {
    const found = outcomes.find((o) => o.kind === 'response' && o.response === answer);
    if (found) return found;
    const allowed = outcomes.filter((o): o is ResponseOutcome => o.kind === 'response' && o.class !== 'permitted');
    const expected = allowed.map((o) => o.response).join(' or ');
    const requirements = [...new Set(allowed.flatMap((o) => o.requirements))];
    return response(answer, 'nonconforming', requirements, { kind: 'none' }, `profile '${this.profile.name}' answers ${answer} where the spec allows ${expected}`);
  }

  private malformed(problem: ChainProblem, writable: number, request: VirtioMemRequest | undefined, padding: readonly NonzeroPadding[]): RequestEvaluation {
    const why: Record<ChainProblem, string> = {
      'short-request': 'fewer than 24 device-readable bytes',
      'short-response': 'fewer than 10 device-writable bytes',
      'unknown-type': `unknown request type ${request?.type}`,
    };
    const outcomes: DeviceOutcome[] = [
      this.violation('needs-reset', 'unspecified', `${why[problem]}: the spec does not say; flagging DEVICE_NEEDS_RESET is the generic virtio way out`),
      ...(writable >= RESP_SIZE ? [this.violation('error-response', 'unspecified', `${why[problem]}: the spec does not say; answering ERROR is one choice`)] : []),
      this.violation('used-length-zero', 'unspecified', `${why[problem]}: the spec does not say; returning the chain unused is one choice`),
      this.violation('no-used-entry', 'discouraged', `${why[problem]}: returning nothing without flagging NEEDS_RESET leaves the driver waiting forever`),
    ];
    let handling = problem === 'unknown-type' ? this.profile.unknownType : this.profile.malformedChain;
    if (handling === 'error-response' && writable < RESP_SIZE) handling = 'used-length-zero';
    const chosen = outcomes.find((o) => o.kind === 'protocol-violation' && o.handling === handling) ?? outcomes[0];
    return { request, problem, nonzeroPadding: padding, outcomes, chosen };
  }

  private violation(handling: ViolationHandling, cls: ViolationOutcome['class'], rationale: string): ViolationOutcome {
    return { kind: 'protocol-violation', handling, class: cls, requirements: [], rationale };
  }

  private applyEffect(effect: OutcomeEffect, usableAfter?: bigint): void {
    const c = this.config;
    switch (effect.kind) {
      case 'none':
        return;
      case 'plug':
        this.blocks.setRange(effect.firstBlock, effect.count);
        this.setConfig({ plugged_size: BigInt(this.blocks.count) * c.block_size });
        return;
      case 'unplug':
        this.blocks.clearRange(effect.firstBlock, effect.count);
        // Unplugged memory has no content worth keeping (dev.op.2): discard it.
        this.memory.discardBlocks(effect.firstBlock, effect.count);
        this.setConfig({ plugged_size: BigInt(this.blocks.count) * c.block_size });
        return;
      case 'unplug-all': {
        this.blocks.clearAll();
        this.memory.discardAll();
        let usable = usableAfter ?? c.usable_region_size;
        if (usableAfter === undefined) {
          if (this.profile.unplugAllUsable === 'recompute') usable = usableFor(this.profile.usablePolicy, c.requested_size, c.block_size, c.region_size, 0n);
          if (this.profile.unplugAllUsable === 'zero') usable = 0n;
        }
        // The spec exempts UNPLUG ALL from the notification rule (dev.cfg.9), so none is sent.
        this.setConfig({ plugged_size: 0n, usable_region_size: usable });
        return;
      }
    }
  }

  private applyViolation(handling: ViolationHandling): UsedElement | null {
    switch (handling) {
      case 'needs-reset':
        if (!this.needsReset) {
          this.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
          // Virtio 1.x: setting DEVICE_NEEDS_RESET is announced with a configuration-change notification.
          this.notifications++;
        }
        return null;
      case 'error-response':
        return { length: RESP_SIZE, written: encodeResponse({ type: VIRTIO_MEM_RESP_ERROR }) };
      case 'used-length-zero':
        return { length: 0, written: new Uint8Array(0) };
      case 'no-used-entry':
        return null;
    }
  }
}

function response(code: ResponseOutcome['response'], cls: ResponseOutcome['class'], requirements: readonly string[], effect: OutcomeEffect, rationale: string): ResponseOutcome {
  return { kind: 'response', response: code, class: cls, requirements, effect, rationale };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Outcome of {@link initialiseDevice}. */
export interface HandshakeResult {
  readonly offered: bigint;
  readonly accepted: bigint;
  /** Whether FEATURES_OK stuck. */
  readonly featuresOk: boolean;
  /** The status register at the end (DRIVER_OK set only when FEATURES_OK stuck). */
  readonly status: number;
}

/**
 * The virtio handshake a driver performs on the device: reset, ACKNOWLEDGE, DRIVER, the
 * accepted features (picked by `accept` from those offered), FEATURES_OK and, if it stuck,
 * DRIVER_OK. Blocks and the configuration are untouched (a device reset keeps them).
 */
export function initialiseDevice(device: VirtioMemDevice, accept: (offered: bigint) => bigint): HandshakeResult {
  device.writeStatus(0);
  device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
  device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  const offered = device.offeredFeatures;
  const accepted = accept(offered);
  device.writeDriverFeatures(accepted);
  const afterFeatures = device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK).status;
  const featuresOk = (afterFeatures & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
  const status = featuresOk ? device.writeStatus(afterFeatures | VIRTIO_CONFIG_S_DRIVER_OK).status : afterFeatures;
  return { offered, accepted, featuresOk, status };
}

/** True when the chosen outcome is one of the conforming ones. */
export function choiceConforms(evaluation: RequestEvaluation): boolean {
  return evaluation.outcomes.some((o) => sameObservable(o, evaluation.chosen));
}
