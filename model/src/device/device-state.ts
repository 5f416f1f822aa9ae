/**
 * The state of a virtio-mem device and what reads it: the block bitmap over the whole region,
 * the 56-byte configuration, the status register, the busy state and the device memory, with the
 * observation getters, snapshots for the invariant checks, and the few internal changes every
 * operation shares (applying an outcome's effect, a protocol violation, an unplug of everything).
 * The operations themselves (requests, memory accesses, suspend, host side, transport) are the
 * subclass {@link VirtioMemDevice} in `device.ts`. Pure: no I/O, no clocks, no randomness.
 */
import { VIRTIO_MEM_RESP_ERROR, VirtioMemResponseLayout } from '../../../spec/src/index';
import type { BlockRange } from '../../../spec/src/index';
import { VirtioMemConfig, encodeConfig, encodeResponse } from '../codec/codec';
import { BlockBitmap, MAX_TRACKED_BLOCKS } from '../blocks/bitmap';
import { DeviceProfile, SPEC_PROFILE, usableFor, ViolationHandling } from './profiles';
import { OutcomeEffect } from './outcomes';
import { DeviceSnapshot, InvariantViolation, checkConfigInvariants } from './invariants';
import { SparseMemory } from './memory';
import { VirtioStatus } from './virtio-status';
import { BusyState } from './busy';
import { DeviceSteering, ResetChange, steeredReset, steeredUsable } from './steering';
import { DeviceParams, DeviceParamsError, UsedElement } from './device-types';
import { FastGeometry, NO_USED_ENTRY } from './fast-path';

const RESP_SIZE = VirtioMemResponseLayout.size;

/** The state of a virtio-mem device and its observation; {@link VirtioMemDevice} adds the operations. */
export abstract class DeviceState {
  readonly profile: DeviceProfile;
  /** The configuration as last replaced (never mutated); read it through {@link config}. */
  private current!: VirtioMemConfig;
  /** A fast step changed the blocks after {@link current} was built: its plugged_size is behind. */
  private pluggedStale = false;
  /** The configuration fields the fast path reads, as numbers (kept in step by the {@link config} setter). */
  protected readonly geometry = new FastGeometry();
  protected readonly blocks: BlockBitmap;
  /** The status register and feature negotiation. */
  protected readonly virtio: VirtioStatus;
  protected generation = 0;
  protected notifications = 0;
  protected readonly busy = new BusyState();
  protected readonly memory: SparseMemory;
  /** Set between suspend() and wake(). */
  protected suspendedAt?: { readonly snapshot: DeviceSnapshot; readonly persistent: boolean };

  /**
   * @throws DeviceParamsError when the region cannot be modelled (zero block size, more than
   *   2^30 blocks, initial plugged blocks outside the region). Parameters that break the spec but
   *   can be modelled (a block size that is not a power of two, say) are accepted; invariants
   *   report them.
   */
  constructor(params: DeviceParams, profile: DeviceProfile = SPEC_PROFILE) {
    this.profile = profile;
    if (params.block_size <= 0n)
      throw new DeviceParamsError('block_size', `block_size must be > 0 (got ${params.block_size})`);
    const nbBlocks = params.region_size / params.block_size;
    if (nbBlocks > BigInt(MAX_TRACKED_BLOCKS)) {
      throw new DeviceParamsError(
        'region_size',
        `region_size / block_size = ${nbBlocks} blocks exceeds the model's limit of ${MAX_TRACKED_BLOCKS}`,
      );
    }
    const requested = params.requested_size ?? 0n;
    this.virtio = new VirtioStatus(params.features ?? profile.defaultFeatures, profile);
    this.blocks = new BlockBitmap(Number(nbBlocks));
    this.memory = new SparseMemory(params.block_size);
    const usable =
      params.usable_region_size ??
      usableFor(profile.usablePolicy, requested, params.block_size, params.region_size, 0n);
    const config: VirtioMemConfig = {
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
        throw new DeviceParamsError(
          'plugged',
          `plugged run [${run.first}, ${run.first + run.count}) is outside the region's ${this.blocks.length} blocks`,
        );
      }
      this.blocks.setRange(run.first, run.count);
    }
    config.plugged_size = BigInt(this.blocks.count) * params.block_size;
    this.config = config;
  }

  /**
   * The configuration. Replaced, never mutated, on every change, so a snapshot may share it. After
   * a fast step changed the blocks, the first read builds the new one with plugged_size brought up
   * to date (the fast path itself changes nothing it would have to allocate for).
   */
  protected get config(): VirtioMemConfig {
    if (this.pluggedStale) {
      this.pluggedStale = false;
      this.current = { ...this.current, plugged_size: BigInt(this.blocks.count) * this.current.block_size };
    }
    return this.current;
  }

  protected set config(next: VirtioMemConfig) {
    this.current = next;
    this.pluggedStale = false;
    this.geometry.update(next);
  }

  /**
   * A fast step plugged or unplugged `changed` blocks: plugged_size changes (read lazily, see
   * {@link config}) and with it the configuration generation.
   */
  protected pluggedChangedBy(changed: number): void {
    if (changed === 0) return;
    this.pluggedStale = true;
    this.bumpGeneration();
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
    return this.virtio.value;
  }

  /** True while the device has flagged DEVICE_NEEDS_RESET. */
  get needsReset(): boolean {
    return this.virtio.needsReset;
  }

  /** Features offered to the driver. */
  get offeredFeatures(): bigint {
    return this.virtio.offered;
  }

  /** Features accepted by the driver (meaningful once FEATURES_OK stuck). */
  get negotiatedFeatures(): bigint {
    return this.virtio.negotiated;
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
  pluggedRuns(): BlockRange[] {
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
    return this.virtio.lastNegotiatedFeatures;
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
  protected takeSnapshot(full: boolean, config: VirtioMemConfig = this.config): DeviceSnapshot {
    const base = { config, pluggedBlocks: this.blocks.count };
    if (!full) return base;
    return {
      ...base,
      pluggedEnd: this.blocks.findPrevious(true, this.blocks.length) + 1,
      blocksDigest: this.blocks
        .runs()
        .map((r) => `${r.first}+${r.count}`)
        .join(','),
      contentDigest: this.memory.digest,
    };
  }

  /** Checks the configuration invariants now. */
  checkInvariants(): InvariantViolation[] {
    return checkConfigInvariants(this.takeSnapshot(true));
  }

  // ---------------------------------------------------------------- internals

  /** Unplugs every block, discards all content and sets usable_region_size to `usable` (UNPLUG ALL, reset-time unplug). */
  protected unplugEverything(usable: bigint): void {
    this.blocks.clearAll();
    this.memory.discardAll();
    this.setConfig({ plugged_size: 0n, usable_region_size: usable });
  }

  /** On a reset-like change: unplugs every block when the profile, or a conforming steering choice, says so. */
  protected resetBlocks(change: ResetChange, profileUnplugs: boolean, steering?: DeviceSteering): void {
    const reset = steeredReset(change, profileUnplugs, this.config, this.recomputedUsable(), steering);
    if (reset.unplug) this.unplugEverything(reset.usable);
  }

  /** The usable_region_size the profile's policy wants for the current requested_size, starting from an empty region. */
  protected recomputedUsable(): bigint {
    const c = this.config;
    return usableFor(this.profile.usablePolicy, c.requested_size, c.block_size, c.region_size, 0n);
  }

  protected setConfig(change: Partial<VirtioMemConfig>): void {
    const next = { ...this.config, ...change };
    const differs = (Object.keys(change) as (keyof VirtioMemConfig)[]).some((k) => next[k] !== this.config[k]);
    this.config = next;
    if (differs) this.bumpGeneration();
  }

  protected bumpGeneration(): void {
    this.generation = (this.generation + 1) & 0xff;
  }

  protected applyEffect(effect: OutcomeEffect, usableAfter?: bigint, steering?: DeviceSteering): void {
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
        const policy = this.profile.unplugAllUsable;
        const own = policy === 'recompute' ? this.recomputedUsable() : policy === 'zero' ? 0n : c.usable_region_size;
        const proposed = { ...c, usable_region_size: own, plugged_size: 0n };
        const bounds = { min: effect.usableMin, max: effect.usableMax };
        const usable = usableAfter ?? steeredUsable('unplug-all', proposed, c, steering, bounds);
        // The spec exempts UNPLUG ALL from the notification rule (dev.cfg.9), so none is sent.
        this.unplugEverything(usable);
        return;
      }
    }
  }

  /**
   * Applies the state change of a protocol-violation handling (NEEDS_RESET with its notification)
   * and returns the used length it leaves: RESP_SIZE for an ERROR response, 0, or
   * {@link NO_USED_ENTRY}. Writes no bytes (the full path and the fast path each write their own).
   */
  protected applyViolationState(handling: ViolationHandling): number {
    switch (handling) {
      case 'needs-reset':
        // Virtio 1.x: setting DEVICE_NEEDS_RESET is announced with a configuration-change notification.
        if (this.virtio.flagNeedsReset()) this.notifications++;
        return NO_USED_ENTRY;
      case 'error-response':
        return RESP_SIZE;
      case 'used-length-zero':
        return 0;
      case 'no-used-entry':
        return NO_USED_ENTRY;
    }
  }

  protected applyViolation(handling: ViolationHandling): UsedElement | null {
    const length = this.applyViolationState(handling);
    if (length === NO_USED_ENTRY) return null;
    if (length === 0) return { length: 0, written: new Uint8Array(0) };
    return { length: RESP_SIZE, written: encodeResponse({ type: VIRTIO_MEM_RESP_ERROR }) };
  }
}
