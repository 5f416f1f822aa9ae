/**
 * The model served over vhost-user: a {@link ModelHost} behind the generic handler's device
 * interface, plus the device-region convention for the memory the model does not hold itself.
 *
 * The device region convention: the front-end shares the device's memory as an ordinary memory
 * region (SET_MEM_TABLE or ADD_MEM_REG) whose guest address range covers [addr, addr +
 * region_size). When the device unplugs blocks (UNPLUG, UNPLUG ALL, a system reset, a wake-up
 * that loses the plugged state) their pages in that region are discarded (MADV_REMOVE: a hole in
 * the front-end's memfd); blocks that are unplugged already are never touched, so
 * UNPLUGGED_INACCESSIBLE front-ends can keep them unmapped.
 */
import type { Chain, Completion } from '../../core/src/contract';
import type { ModelHost } from '../../../model/src/index';
import { BlockRange, formatSize } from '../../../spec/src/index';
import type { GuestMemory } from '../../vhost-user/src/guest-memory';
import type { ChainLimits } from '../../virtio/src/index';
import { Unsupported, VhostUserDevice, unsupportedAbility } from './device';

/**
 * What one virtio-mem chain may carry: a request is 24 bytes and a response 10, so one page
 * (4 KiB) of readable and of writable buffers is ample room for a driver's padding, and bounds
 * what one chain costs to copy.
 */
export const VIRTIO_MEM_CHAIN_LIMITS: ChainLimits = { readableBytes: 4096, writableBytes: 4096 };

/** The model device of one connection. */
export class ModelVhostDevice extends VhostUserDevice {
  readonly name = 'virtio-mem';
  private unsharedNoted = false;

  constructor(
    private current: ModelHost,
    private readonly memory: GuestMemory,
    private readonly problem: (text: string) => void,
  ) {
    super();
  }

  override get chainLimits(): ChainLimits {
    return VIRTIO_MEM_CHAIN_LIMITS;
  }

  /** The host of the device now (the control extension drives it). */
  get host(): ModelHost {
    return this.current;
  }

  /** Replaces the device (VMEMCT SETUP); the connection forgets the old device's configuration changes. */
  replace(host: ModelHost): void {
    this.current = host;
  }

  get offeredFeatures(): bigint {
    return this.current.offeredFeatures;
  }

  ackFeatures(features: bigint): void {
    this.current.writeDriverFeatures(features);
  }

  readStatus(): number {
    return this.current.readStatus();
  }

  writeStatus(value: number): void {
    this.current.writeStatus(value);
  }

  reset(): void {
    this.current.deviceReset();
  }

  processChain(chain: Chain): Completion {
    const done = this.current.submit(chain);
    this.discard(done.unplugged);
    return done.kind === 'used'
      ? { kind: 'used', length: done.length, written: done.written }
      : { kind: 'no-used-entry' };
  }

  failQueue(): void {
    this.current.markNeedsReset();
  }

  get configChanges(): number {
    return this.current.notificationCount;
  }

  override readConfig(): Uint8Array {
    return this.current.readConfig();
  }

  override writeConfig(): Unsupported {
    return unsupportedAbility('the virtio-mem configuration is read-only');
  }

  /**
   * Discards the pages of blocks the device unplugged, in the shared device region. Without a
   * region covering the device's, nothing is discarded (noted once).
   */
  discard(unplugged: readonly BlockRange[]): void {
    if (unplugged.length === 0) return;
    const c = this.current.config();
    if (!this.memory.list().some((r) => r.guestAddress < c.addr + c.region_size && c.addr < r.guestAddress + r.size)) {
      if (!this.unsharedNoted)
        this.problem(
          `the device region [0x${c.addr.toString(16)}, +${formatSize(c.region_size)}) is not in the memory table: unplugged blocks are not discarded`,
        );
      this.unsharedNoted = true;
      return;
    }
    for (const run of unplugged)
      this.memory.discardGuest(c.addr + BigInt(run.first) * c.block_size, BigInt(run.count) * c.block_size);
  }
}
