/**
 * The virtio-mem device model: request handling, host-side resize, device and system reset,
 * feature negotiation, guest accesses to the device memory (stored sparsely) and suspend-to-RAM
 * with wake-up, over the state of `device-state.ts` (block bitmap, configuration). Pure: no I/O, no
 * clocks, no randomness. Every chain is first *evaluated* (`chain.ts`): the evaluator of its
 * request type (`requests/`) finds the facts and the set of conforming outcomes (with the
 * requirement IDs that justify each), and the device's profile picks from them the one this
 * device produces (`choice.ts`, with the busy state of `busy.ts`); it applies it here and
 * checks the invariants after the step.
 */
import {
  BlockStateName,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_STATE_MIXED,
  VIRTIO_MEM_STATE_PLUGGED,
  VIRTIO_MEM_STATE_UNPLUGGED,
  VirtioMemResponseLayout,
  RESPONSE_CODE_NAMES,
  featureMask,
} from '../../../spec/src/index';
import { VirtioMemResponse, encodeResponse } from '../codec/codec';
import { usableFor } from './profiles';
import { DeviceOutcome } from './outcomes';
import { InvariantViolation, TransitionKind, checkConfigInvariants, checkTransition } from './invariants';
import { MemoryAccessResult } from './memory';
import { DescriptorChain, RequestEvaluation, evaluateChain, singleRequestChain } from './chain';
import { AccessRefusal, judgeAccess } from './access';
import { systemResetUnplugs } from './busy';
import { DeviceSteering, steeredOutcome, steeredUsable } from './steering';
import { DeviceState } from './device-state';
import { FastStep, NO_USED_ENTRY, writeFastResponse } from './fast-path';
import {
  DeviceUsageError,
  HostResizeResult,
  ProcessResult,
  SuspendResult,
  StatusWriteResult,
  UsedElement,
} from './device-types';

export * from './device-types';
export type { DescriptorChain, RequestEvaluation } from './chain';
export { NO_USED_ENTRY } from './fast-path';

const RESP_SIZE = VirtioMemResponseLayout.size;
const STATE_VALUES: Readonly<Record<BlockStateName, number>> = {
  PLUGGED: VIRTIO_MEM_STATE_PLUGGED,
  UNPLUGGED: VIRTIO_MEM_STATE_UNPLUGGED,
  MIXED: VIRTIO_MEM_STATE_MIXED,
};

/** The virtio-mem device: its state (`device-state.ts`) and every operation on it. */
export class VirtioMemDevice extends DeviceState {
  /**
   * A test and debug switch: when set, {@link processRequestFast} checks the invariants after every
   * step, exactly as {@link processChain} does, and appends what breaks to {@link stepViolations}.
   */
  checkEveryStep = false;
  /** Invariants broken by fast steps while {@link checkEveryStep} was set, oldest first. */
  readonly stepViolations: InvariantViolation[] = [];
  /** The fast path's decision, reused for every request. */
  private readonly fastStep = new FastStep();

  // ---------------------------------------------------------------- requests

  /**
   * Evaluates a chain without changing anything: the conforming outcomes and the profile's choice
   * (see {@link evaluateChain}).
   */
  evaluate(chain: DescriptorChain): RequestEvaluation {
    return evaluateChain(
      {
        config: this.config,
        blocks: this.blocks,
        needsReset: this.needsReset,
        busyPending: this.busy.busyPending,
        hostBusy: this.busy.hostBusy,
      },
      this.profile,
      chain,
    );
  }

  /**
   * Processes one chain: evaluates it, applies the profile's outcome (or the conforming one `steering` picks), checks
   * invariants. Mutates blocks, configuration and status as the outcome says; a non-ACK response changes nothing.
   */
  processChain(chain: DescriptorChain, steering?: DeviceSteering): ProcessResult {
    const evaluation = this.evaluate(chain);
    const chosen = steeredOutcome(evaluation, steering);
    if (chosen.kind === 'response' && chosen.response === 'BUSY') this.busy.answeredBusy();
    const before = this.takeSnapshot(false);
    const notificationsBefore = this.notifications;
    let used: UsedElement | null = null;
    let response: VirtioMemResponse | undefined;
    let kind: TransitionKind = 'request';
    if (chosen.kind === 'response') {
      this.applyEffect(chosen.effect, undefined, steering);
      if (chosen.effect.kind === 'unplug-all') kind = 'unplug-all';
      response = {
        type: RESPONSE_CODE_NAMES.indexOf(chosen.response),
        padding: new Uint8Array(6),
        state: chosen.state ? STATE_VALUES[chosen.state] : 0,
      };
      used = { length: RESP_SIZE, written: encodeResponse(response) };
    } else {
      used = this.applyViolation(chosen.handling);
    }
    const notified = this.notifications !== notificationsBefore;
    const after = this.takeSnapshot(kind === 'unplug-all');
    const violations = checkConfigInvariants(after);
    const broken = checkTransition(before, after, kind, notified);
    if (broken.length > 0) violations.push(...broken);
    return { ...evaluation, chosen, used, response, notified, violations };
  }

  /** Convenience: processes a request given as bytes in the usual two-descriptor chain. */
  processRequest(request: Uint8Array): ProcessResult {
    return this.processChain(singleRequestChain(request));
  }

  /**
   * The fast path of {@link processRequest}: the same request in the usual two-descriptor chain,
   * the same decision, the same changes to blocks, configuration, status, notifications and busy
   * state, and the same response bytes, written into `response` (at least 10 bytes) instead of a
   * new result. It builds no outcome set and allocates nothing for a PLUG, UNPLUG, STATE or a chain
   * the device cannot process; an UNPLUG ALL, a region beyond 2^53 bytes or a subclass that
   * overrides the request methods (a mutant) take the full path (see `fast-path.ts`).
   * Invariants are not checked per step unless {@link checkEveryStep} is set; {@link checkInvariants}
   * checks them on demand.
   * @returns the used length: 10 (a response), 0, or {@link NO_USED_ENTRY}.
   * @throws DeviceUsageError when `response` is shorter than a response.
   */
  processRequestFast(request: Uint8Array, response: Uint8Array): number {
    if (response.length < RESP_SIZE)
      throw new DeviceUsageError(`the response buffer holds ${response.length} bytes; a response needs ${RESP_SIZE}`);
    const step = this.fastStep;
    if (
      this.overridesRequestPath() ||
      !step.decide(request, this.geometry, this.blocks, this.profile, this.busy, this.needsReset)
    ) {
      return this.fullPathInto(request, response);
    }
    const before = this.checkEveryStep ? this.takeSnapshot(false) : undefined;
    const notificationsBefore = this.notifications;
    let length: number;
    if (step.handling === undefined) {
      if (step.answer === 'BUSY') this.busy.answeredBusy();
      if (step.effect === 'plug') this.pluggedChangedBy(this.blocks.setRange(step.firstBlock, step.count));
      if (step.effect === 'unplug') {
        this.pluggedChangedBy(this.blocks.clearRange(step.firstBlock, step.count));
        // Unplugged memory has no content worth keeping (dev.op.2): discard it.
        this.memory.discardBlocks(step.firstBlock, step.count);
      }
      length = writeFastResponse(response, step.answer, step.state);
    } else {
      length = this.applyViolationState(step.handling);
      if (length === RESP_SIZE) writeFastResponse(response, 'ERROR', 0);
    }
    if (before) {
      const notified = this.notifications !== notificationsBefore;
      const after = this.takeSnapshot(false);
      this.stepViolations.push(...checkConfigInvariants(after), ...checkTransition(before, after, 'request', notified));
    }
    return length;
  }

  /** {@link processRequest}, its used element copied into `response` (the fast path's fallback). */
  private fullPathInto(request: Uint8Array, response: Uint8Array): number {
    const result = this.processRequest(request);
    if (this.checkEveryStep) this.stepViolations.push(...result.violations);
    if (!result.used) return NO_USED_ENTRY;
    response.set(result.used.written.subarray(0, Math.min(result.used.written.length, response.length)));
    return result.used.length;
  }

  /** A subclass (a mutant of the teeth test) replaced how requests are processed: the fast path must not bypass it. */
  private overridesRequestPath(): boolean {
    const own = VirtioMemDevice.prototype;
    return (
      this.processRequest !== own.processRequest ||
      this.processChain !== own.processChain ||
      this.evaluate !== own.evaluate
    );
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
    this.busy.inject(count);
  }

  /** The host makes the device busy or releases it (QEMU: a migration active); see `busy.ts`. */
  setHostBusy(busy: boolean): void {
    this.busy.setHost(busy);
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
    const refused = this.accessRefusal(addr, length, 'read');
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
   * write is refused; on success `data` of the result is empty. `{zeros: n}`: n zeros, unallocated.
   */
  writeMemory(addr: bigint, data: Uint8Array | { readonly zeros: number }): MemoryAccessResult {
    const length = data instanceof Uint8Array ? data.length : data.zeros;
    const refused = this.accessRefusal(addr, length, 'write');
    if (refused) return refused;
    const keep = (block: number): boolean => this.profile.unpluggedMemory === 'open' || this.blocks.get(block);
    if (data instanceof Uint8Array) this.memory.write(addr - this.config.addr, data, keep);
    else this.memory.zero(addr - this.config.addr, length, keep);
    return { ok: true, data: new Uint8Array(0) };
  }

  /**
   * Judges a guest CPU access to [addr, addr + length) as {@link readMemory} and
   * {@link writeMemory} do, without touching memory: the refusal, or undefined when the access is
   * allowed. For a device whose memory lives elsewhere (a vhost-user back-end: the front-end's
   * shared region holds the bytes).
   */
  accessRefusal(
    addr: bigint,
    length: number,
    what: 'read' | 'write',
  ): (MemoryAccessResult & { ok: false }) | undefined {
    if (!Number.isSafeInteger(length) || length < 0)
      throw new RangeError(`length must be a non-negative integer (got ${length})`);
    return this.refusal(addr, length, what);
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
    const persistent = (this.virtio.lastNegotiatedFeatures & featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND)) !== 0n;
    const snapshot = this.takeSnapshot(true);
    this.suspendedAt = { snapshot, persistent };
    return {
      persistent,
      violations: [
        ...checkConfigInvariants(snapshot),
        ...checkTransition(snapshot, snapshot, 'suspend', false, { persistentSuspend: persistent }),
      ],
    };
  }

  /**
   * The platform wakes up from suspend-to-RAM. With PERSISTENT_SUSPEND negotiated block states and contents stay as
   * they were (dev.op.8, dev.op.3). Without it the profile (`suspendWithoutPersistence`) or `steering` decides: keep,
   * or unplug every block, discard contents and recompute usable_region_size, as a system reset with that policy does.
   * The virtio status is left alone: resetting and re-initialising the device around a suspend
   * is the driver's business (Linux resets it in its freeze callback and re-initialises it on restore).
   * Returns the invariants broken, comparing the state at {@link suspend} with the state now.
   * @throws DeviceUsageError when the device is not suspended.
   */
  wake(steering?: DeviceSteering): InvariantViolation[] {
    const at = this.suspendedAt;
    if (!at) throw new DeviceUsageError('wake() called without a preceding suspend()');
    this.suspendedAt = undefined;
    if (!at.persistent) this.resetBlocks('wake', this.profile.suspendWithoutPersistence === 'unplug-all', steering);
    const after = this.takeSnapshot(true);
    return [
      ...checkConfigInvariants(after),
      ...checkTransition(at.snapshot, after, 'wake', false, { persistentSuspend: at.persistent }),
    ];
  }

  // ---------------------------------------------------------------- host side

  /**
   * The host changes requested_size (QEMU: `qom-set … requested-size`). Grows usable_region_size first when the policy
   * (or `steering`, conformingly) wants more room (dev.cfg.4), and raises a notification when either field changed
   * (dev.cfg.9) or when the profile always notifies (dev.cfg.11).
   */
  setRequestedSize(size: bigint, steering?: DeviceSteering): HostResizeResult {
    const c = this.config;
    const rules = this.profile.resizeValidation;
    if (size < 0n) return { ok: false, reason: 'requested_size must not be negative' };
    if (rules.aligned && size % c.block_size !== 0n) {
      return {
        ok: false,
        reason: `requested_size 0x${size.toString(16)} is not a multiple of block_size 0x${c.block_size.toString(16)}`,
      };
    }
    if (rules.withinRegion && size > c.region_size) {
      return {
        ok: false,
        reason: `requested_size 0x${size.toString(16)} exceeds region_size 0x${c.region_size.toString(16)}`,
      };
    }
    if (rules.mustDiffer && size === c.requested_size) {
      return { ok: false, reason: 'requested_size already has that value' };
    }
    const before = this.takeSnapshot(false);
    const usableBefore = c.usable_region_size;
    const wanted = usableFor(this.profile.usablePolicy, size, c.block_size, c.region_size, usableBefore);
    // Resizes only ever grow the usable region (dev.cfg.8).
    const proposed = { ...c, usable_region_size: wanted > usableBefore ? wanted : usableBefore, requested_size: size };
    const usableAfter = steeredUsable('host-resize', proposed, c, steering);
    const changed = usableAfter !== usableBefore || size !== c.requested_size;
    this.config = { ...c, usable_region_size: usableAfter, requested_size: size };
    if (changed) this.bumpGeneration();
    // A notification needs a driver to receive it: none is raised before DRIVER_OK (the driver reads the values when it initialises).
    const driverActive = this.virtio.driverOk;
    const notified = driverActive && (changed || this.profile.notifyOnUnchangedResize);
    if (notified) this.notifications++;
    const after = this.takeSnapshot(false);
    return {
      ok: true,
      notified,
      usableBefore,
      usableAfter,
      violations: [
        ...checkConfigInvariants(after),
        ...checkTransition(before, after, 'host-resize', notified, { driverActive }),
      ],
    };
  }

  /**
   * Virtio device reset (status ← 0). Block states, the contents of plugged memory and the
   * configuration stay as they are (dev.init.2, dev.init.3); status, features and NEEDS_RESET
   * are cleared.
   */
  deviceReset(): InvariantViolation[] {
    const before = this.takeSnapshot(true);
    this.virtio.reset();
    this.busy.reset();
    const after = this.takeSnapshot(true);
    return [...checkConfigInvariants(after), ...checkTransition(before, after, 'device-reset', false)];
  }

  /**
   * System reset (VM reboot). With the `unplug-all` policy (or `steering`'s choice) every block is unplugged
   * (dev.op.7), its content discarded, and usable_region_size is recomputed (it may shrink); a device reset
   * happens as well, and the last negotiation is forgotten. A suspended device is woken.
   */
  systemReset(steering?: DeviceSteering): InvariantViolation[] {
    const before = this.takeSnapshot(true);
    this.resetBlocks('system-reset', systemResetUnplugs(this.profile, this.busy.view), steering);
    this.suspendedAt = undefined;
    this.virtio.forgetNegotiation();
    this.virtio.reset();
    this.busy.reset();
    const after = this.takeSnapshot(true);
    return [...checkConfigInvariants(after), ...checkTransition(before, after, 'system-reset', false)];
  }

  // ---------------------------------------------------------------- transport

  /** The driver writes its accepted features (before FEATURES_OK). */
  writeDriverFeatures(features: bigint): void {
    this.virtio.writeDriverFeatures(features);
  }

  /**
   * The driver writes the status register. Writing 0 is a device reset. Setting FEATURES_OK
   * validates the accepted features; a device may refuse a driver that does not accept
   * UNPLUGGED_INACCESSIBLE (dev.init.1), in which case FEATURES_OK does not stick (see
   * {@link VirtioStatus.write}).
   */
  writeStatus(value: number): StatusWriteResult {
    if (value === 0) {
      this.deviceReset();
      return { status: 0, requirements: ['dev.init.2'] };
    }
    const flagged = this.needsReset;
    const result = this.virtio.write(value);
    // A device that fails at DRIVER_OK sets DEVICE_NEEDS_RESET with DRIVER_OK set: it announces it (dev.virtio.1).
    if (!flagged && this.needsReset && this.virtio.driverOk) this.notifications++;
    return result;
  }

  // ---------------------------------------------------------------- internals

  /** Why an access to [addr, addr + length) is refused, or undefined when it is allowed (see {@link judgeAccess}). */
  private refusal(addr: bigint, length: number, what: 'read' | 'write'): AccessRefusal | undefined {
    return judgeAccess(
      {
        config: this.config,
        blocks: this.blocks,
        negotiatedFeatures: this.negotiatedFeatures,
        unpluggedMemory: this.profile.unpluggedMemory,
      },
      addr,
      length,
      what,
    );
  }
}
