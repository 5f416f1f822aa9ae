/**
 * What device fuzzing knows from the operations alone. After a system reset, until a request that
 * could plug (or a protocol breach, or host busy), every block should be unplugged (dev.op.7,
 * SHOULD): a valid STATE request there expects UNPLUGGED, anything else `non-strict`. And memory: which blocks are
 * certainly plugged (those plugged at start, until an operation that could unplug them) and the
 * bytes written to them since. A read that lies wholly in such blocks, of bytes all written there,
 * must return them (dev.op.3: the device never changes the contents of plugged blocks; dev.op.4:
 * plugged blocks can be read and written; dev.init.3: a device reset leaves them alone). Nothing
 * is assumed about answers the device chooses, so the expectation stays true on any conforming
 * device and after any shrinking: it is derived again from whatever operations are left.
 */
import type { DeviceSetup } from '../../../adapters/core/src/contract';
import { VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_REQ_UNPLUG, VIRTIO_MEM_REQ_UNPLUG_ALL } from '../../../spec/src/index';
import type { BlockCount, FuzzAddress, FuzzOperation } from './device-operations';

/** What a memory operation may be expected to do, given the operations before it. */
export type MemoryExpectation =
  /** Nothing is certain: either answer passes, data is not compared (for STATE: nothing stated). */
  | { readonly kind: 'open' }
  /** The access lies in certainly plugged blocks: it must go through; a read must return `data` when known. */
  | { readonly kind: 'plugged'; readonly data?: Uint8Array }
  /** A valid STATE request after a system reset, before anything could plug: all blocks should be unplugged. */
  | { readonly kind: 'unplugged-after-system-reset' };

/** Tracks certainly plugged blocks and their known bytes while operations are applied in order. */
export class StepKnowledge {
  /** Certainly plugged blocks → their known bytes (offset in the block → byte). */
  private readonly blocks = new Map<number, Map<number, number>>();
  private readonly blockBytes: number;
  /** Fewest blocks requested_size can hold now (resizes the host may refuse only lower it). */
  private requestedFloor: number;
  /** The host keeps the device busy (a system reset then may leave blocks as they are). */
  private hostBusy = false;
  /** A system reset came, and since then nothing that could plug a block, breach the protocol or keep the host busy. */
  private unpluggedBySystemReset = false;

  constructor(setup: DeviceSetup) {
    this.blockBytes = Number(setup.block_size);
    this.requestedFloor = Number(setup.requested_size / setup.block_size);
    for (const run of setup.plugged ?? [])
      for (let b = run.first; b < run.first + run.count; b++) this.blocks.set(b, new Map());
  }

  /** The blocks certainly plugged now. */
  pluggedBlocks(): number[] {
    return [...this.blocks.keys()];
  }

  /** The byte range of an `addr`-anchored address, as [block, offset in block]; undefined for other anchors. */
  private place(a: FuzzAddress): { block: number; offset: number } | undefined {
    if (!('anchor' in a) || a.anchor !== 'addr') return undefined;
    const total = a.blocks * this.blockBytes + a.bytes;
    if (total < 0) return undefined;
    return { block: Math.floor(total / this.blockBytes), offset: total % this.blockBytes };
  }

  /** The known bytes at a place, if the range lies in one certainly plugged block. */
  private within(a: FuzzAddress, length: number): Map<number, number> | undefined {
    const p = this.place(a);
    if (!p || p.offset + length > this.blockBytes) return undefined;
    return this.blocks.get(p.block);
  }

  /** What `op` may be expected to do now (for memory operations; `open` for the rest). */
  expectation(op: FuzzOperation): MemoryExpectation {
    if (op.kind === 'request') return this.stateExpectation(op);
    if (op.kind !== 'read-memory' && op.kind !== 'write-memory') return { kind: 'open' };
    const length = op.kind === 'read-memory' ? op.length : op.data.length;
    const known = this.within(op.addr, length);
    if (!known) return { kind: 'open' };
    if (op.kind === 'write-memory') return { kind: 'plugged' };
    const offset = this.place(op.addr)!.offset;
    const data = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      const byte = known.get(offset + i);
      if (byte === undefined) return { kind: 'plugged' };
      data[i] = byte;
    }
    return { kind: 'plugged', data };
  }

  /** Blocks from `addr` a STATE request may cover and still expect UNPLUGGED now (after a system reset), or 0. */
  unpluggedSpan(): number {
    return this.unpluggedBySystemReset ? Math.max(0, this.requestedFloor) : 0;
  }

  /** A STATE request the device must ACK (aligned, inside the requested size) after a system reset. */
  private stateExpectation(op: FuzzOperation & { kind: 'request' }): MemoryExpectation {
    const p = this.place(op.addr);
    const certain =
      this.unpluggedBySystemReset &&
      op.type === VIRTIO_MEM_REQ_STATE &&
      !op.layout &&
      !op.padding &&
      !op.payloadPadding &&
      p !== undefined &&
      p.offset === 0 &&
      typeof op.nbBlocks === 'number' &&
      op.nbBlocks >= 1 &&
      p.block + op.nbBlocks <= this.requestedFloor;
    return certain ? { kind: 'unplugged-after-system-reset' } : { kind: 'open' };
  }

  /** Takes `op` into account: writes to plugged blocks are remembered, anything that could unplug forgets. */
  apply(op: FuzzOperation): void {
    switch (op.kind) {
      case 'write-memory': {
        const known = this.within(op.addr, op.data.length);
        if (known) {
          const offset = this.place(op.addr)!.offset;
          op.data.forEach((byte, i) => known.set(offset + i, byte));
        } else this.forgetAround(op.addr, op.data.length);
        return;
      }
      case 'system-reset':
        this.blocks.clear();
        this.unpluggedBySystemReset = !this.hostBusy;
        return;
      case 'request':
        if (op.type === VIRTIO_MEM_REQ_UNPLUG_ALL) this.blocks.clear();
        else if (op.type === VIRTIO_MEM_REQ_UNPLUG) this.unplugged(op.addr, op.nbBlocks);
        if (
          op.layout ||
          (op.type !== VIRTIO_MEM_REQ_STATE &&
            op.type !== VIRTIO_MEM_REQ_UNPLUG &&
            op.type !== VIRTIO_MEM_REQ_UNPLUG_ALL)
        )
          this.unpluggedBySystemReset = false;
        return;
      case 'short-request':
        this.unpluggedBySystemReset = false;
        return;
      case 'host-busy':
        this.hostBusy = op.busy;
        if (op.busy) this.unpluggedBySystemReset = false;
        return;
      case 'resize':
        this.requestedFloor =
          op.bytes !== 0 || op.blocks > op.regionBlocks ? Math.min(this.requestedFloor, op.blocks) : op.blocks;
        return;
      default:
        // PLUG, STATE, resizes, device resets, BUSY: a conforming device keeps plugged blocks and their content.
        return;
    }
  }

  /** A write not wholly inside one certainly plugged block: the bytes it may have touched are no longer known. */
  private forgetAround(a: FuzzAddress, length: number): void {
    const p = this.place(a);
    if (!p) {
      this.blocks.clear();
      return;
    }
    for (let b = p.block; b <= p.block + Math.ceil((p.offset + length) / this.blockBytes); b++)
      this.blocks.get(b)?.clear();
  }

  /** An UNPLUG request: the blocks it could cover are no longer certainly plugged (all, when that is not known). */
  private unplugged(a: FuzzAddress, nbBlocks: BlockCount): void {
    const p = this.place(a);
    if (!p || typeof nbBlocks !== 'number') {
      this.blocks.clear();
      return;
    }
    // A misaligned address covers one more block at most.
    const last = p.block + nbBlocks + (p.offset !== 0 ? 1 : 0);
    for (const b of [...this.blocks.keys()]) if (b >= p.block && b < Math.max(last, p.block + 1)) this.blocks.delete(b);
  }
}
