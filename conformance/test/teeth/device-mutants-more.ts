/**
 * More broken variants of the model device: off-by-ones at the ends of the usable region, 16-bit
 * and 8-bit truncations, blocks at index ≥ 65,536, STATE shortcuts, BUSY that is not clean,
 * host-side resizes and resets that touch what they must not, and memory made inaccessible when
 * VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE was offered but not accepted. Each is a bug a device author
 * could plausibly write, built from the model device's public surface only, and each must be
 * caught. The requirement each one breaks is named on its class.
 */
import {
  DescriptorChain,
  DeviceParams,
  DeviceProfile,
  HostResizeResult,
  InvariantViolation,
  MemoryAccessResult,
  OutcomeEffect,
  ProcessResult,
  VirtioMemConfig,
  VirtioMemDevice,
  VirtioMemRequest,
  encodeRequest,
} from '../../../model/src/index';
import {
  VIRTIO_MEM_F_ACPI_PXM,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  VIRTIO_MEM_RESP_BUSY,
  VIRTIO_MEM_RESP_ERROR,
  VIRTIO_MEM_RESP_NACK,
  VIRTIO_MEM_STATE_MIXED,
  VIRTIO_MEM_STATE_UNPLUGGED,
  VirtioMemResponseLayout,
  featureMask,
} from '../../../spec/src/index';

import {
  ConfigViewDevice,
  Mutant,
  answered,
  concat,
  deviceMutant,
  profileMutant,
  requestOf,
  roundUp,
  wasAcked,
} from './mutant-kit';

const RANGED_TYPES: readonly number[] = [VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_UNPLUG, VIRTIO_MEM_REQ_STATE];

/** A chain carrying `request` instead of the original's request, with the original's response buffers. */
function rewritten(chain: DescriptorChain, request: VirtioMemRequest): DescriptorChain {
  return { readable: [encodeRequest(request)], writableSizes: chain.writableSizes };
}

/** The blocks [first, first + count) a PLUG/UNPLUG/STATE request covers, from its fields alone. */
function blocksOf(config: VirtioMemConfig, r: VirtioMemRequest): { first: number; count: number } {
  return { first: Number((r.addr - config.addr) / config.block_size), count: r.nb_blocks };
}

/** Changes block states as `effect` says, without a request (no BUSY, no response, no checks). */
function force(device: VirtioMemDevice, effect: OutcomeEffect): void {
  device.applyObserved({
    kind: 'response',
    response: 'ACK',
    class: 'required',
    requirements: [],
    effect,
    rationale: 'mutant',
  });
}

function plugOne(device: VirtioMemDevice, block: number): void {
  force(device, { kind: 'plug', firstBlock: block, count: 1 });
}

function unplugOne(device: VirtioMemDevice, block: number): void {
  force(device, { kind: 'unplug', firstBlock: block, count: 1 });
}

// ------------------------------------------------------------------------------------------------
// The ends of the usable region

/**
 * dev.plug.3: the range check compares the *first* byte of the last block with the usable end
 * (`addr + (nb_blocks - 1) × block_size ≤ usable end`), so a PLUG whose last block lies one block
 * past the usable region is acknowledged (the blocks inside it get plugged).
 */
class AcksPlugOneBlockPastUsableEnd extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    const c = this.readConfig();
    if (r && r.type === VIRTIO_MEM_REQ_PLUG && r.nb_blocks > 1 && !this.needsReset) {
      const end = r.addr + BigInt(r.nb_blocks) * c.block_size;
      if (r.addr % c.block_size === 0n && r.addr >= c.addr && end === c.addr + c.usable_region_size + c.block_size) {
        const inner = super.processChain(rewritten(chain, { ...r, nb_blocks: r.nb_blocks - 1 }));
        if (wasAcked(inner)) return answered(inner, VIRTIO_MEM_RESP_ACK);
        return inner;
      }
    }
    return super.processChain(chain);
  }
}

/** dev.plug.6: the range check uses `≥` for the usable end, so a PLUG ending exactly at it is answered ERROR. */
class ErrorForPlugEndingAtUsableEnd extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    const r = evaluation.request;
    const c = this.readConfig();
    const ch = evaluation.chosen;
    if (
      r &&
      r.type === VIRTIO_MEM_REQ_PLUG &&
      ch.kind === 'response' &&
      ch.response === 'ACK' &&
      r.addr + BigInt(r.nb_blocks) * c.block_size === c.addr + c.usable_region_size
    ) {
      return answered(evaluation, VIRTIO_MEM_RESP_ERROR);
    }
    return super.processChain(chain);
  }
}

/**
 * dev.plug.3 / dev.state.3: requests are range-checked against region_size, not
 * usable_region_size (the device keeps the whole region usable inside and shows the driver a
 * usable_region_size of requested_size, grown on resizes and recomputed on UNPLUG ALL).
 */
class RangeCheckedAgainstRegion extends ConfigViewDevice {
  private shownUsable: bigint;
  constructor(params: DeviceParams, profile: DeviceProfile) {
    super(params, { ...profile, usablePolicy: { kind: 'whole-region' } });
    this.shownUsable = roundUp(params.requested_size ?? 0n, params.block_size);
  }
  override setRequestedSize(size: bigint): HostResizeResult {
    const r = super.setRequestedSize(size);
    const wanted = roundUp(size, this.readConfig().block_size);
    if (r.ok && wanted > this.shownUsable) this.shownUsable = wanted;
    return r;
  }
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    if (result.request?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) {
      const c = this.readConfig();
      this.shownUsable = roundUp(c.requested_size, c.block_size);
    }
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return { ...c, usable_region_size: this.shownUsable };
  }
}

/**
 * dev.unplugall.4 / dev.unplugall.5: the UNPLUG ALL loop stops one block short of the region's
 * end (`i < nb_blocks - 1`), so a plugged last block stays plugged (and counted) after the ACK.
 */
class UnplugAllSkipsLastBlock extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const last = this.blockCount - 1;
    const lastPlugged = last >= 0 && this.isPlugged(last) && !this.needsReset;
    const result = super.processChain(chain);
    if (lastPlugged && result.request?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) {
      plugOne(this, last);
    }
    return result;
  }
}

// ------------------------------------------------------------------------------------------------
// Truncations: nb_blocks, block indexes, byte counts

/** dev.plug.6 / dev.state.4 …: nb_blocks is stored in 8 bits, so a request over 256 blocks or more covers nb_blocks mod 256. */
class NbBlocksTruncatedTo8Bits extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    if (r && RANGED_TYPES.includes(r.type) && r.nb_blocks > 0xff)
      return super.processChain(rewritten(chain, { ...r, nb_blocks: r.nb_blocks & 0xff }));
    return super.processChain(chain);
  }
}

/**
 * dev.plug.6 / dev.unplug.6 / dev.state.4 …: the first block's index is kept in a 16-bit
 * variable (like nb_blocks), so a request at block 65,536 or beyond acts on block (index mod 65,536).
 */
class BlockIndexModulo65536 extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    const c = this.readConfig();
    if (r && RANGED_TYPES.includes(r.type) && r.addr >= c.addr && r.addr % c.block_size === 0n) {
      const { first } = blocksOf(c, r);
      if (first >= 0x10000)
        return super.processChain(rewritten(chain, { ...r, addr: c.addr + BigInt(first & 0xffff) * c.block_size }));
    }
    return super.processChain(chain);
  }
}

/** dev.unplug.7 / dev.cfg.3: an UNPLUG lowers plugged_size by nb_blocks (blocks, not bytes). */
class UnplugLowersPluggedSizeInBlocks extends ConfigViewDevice {
  private excess = 0n;
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    const r = result.request;
    if (r?.type === VIRTIO_MEM_REQ_UNPLUG && wasAcked(result))
      this.excess += BigInt(r.nb_blocks) * (this.readConfig().block_size - 1n);
    if (r?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) this.excess = 0n;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return { ...c, plugged_size: c.plugged_size + this.excess };
  }
}

/** dev.unplug.7 / dev.cfg.3: an UNPLUG lowers plugged_size by one block_size, whatever nb_blocks is. */
class UnplugLowersPluggedSizeByOneBlock extends ConfigViewDevice {
  private excess = 0n;
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    const r = result.request;
    if (r?.type === VIRTIO_MEM_REQ_UNPLUG && wasAcked(result))
      this.excess += BigInt(r.nb_blocks - 1) * this.readConfig().block_size;
    if (r?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) this.excess = 0n;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return { ...c, plugged_size: c.plugged_size + this.excess };
  }
}

// ------------------------------------------------------------------------------------------------
// STATE and the block-state checks of PLUG / UNPLUG

/** dev.state.5 / dev.state.7: STATE looks at the first covered block only. */
class StateLooksAtFirstBlockOnly extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    if (r && r.type === VIRTIO_MEM_REQ_STATE && r.nb_blocks > 1) {
      const full = this.evaluate(chain);
      const ch = full.chosen;
      // Range errors are still found on the whole range; only the state is taken from block 0.
      if (ch.kind === 'response' && ch.response === 'ACK')
        return { ...super.processChain(rewritten(chain, { ...r, nb_blocks: 1 })), request: r };
    }
    return super.processChain(chain);
  }
}

/** dev.state.7: STATE over a mix of plugged and unplugged blocks reports UNPLUGGED ("not all plugged"). */
class StateSaysUnpluggedForMixed extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    if (result.request?.type === VIRTIO_MEM_REQ_STATE && result.response?.state === VIRTIO_MEM_STATE_MIXED)
      return answered(result, VIRTIO_MEM_RESP_ACK, VIRTIO_MEM_STATE_UNPLUGGED);
    return result;
  }
}

/** dev.unplug.4: an UNPLUG of a partly plugged range is acknowledged (the plugged blocks among them get unplugged). */
class AcksUnplugOfPartlyPlugged extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    const ch = evaluation.chosen;
    const r = evaluation.request;
    if (
      r?.type === VIRTIO_MEM_REQ_UNPLUG &&
      ch.kind === 'response' &&
      ch.response === 'ERROR' &&
      ch.requirements.includes('dev.unplug.4')
    ) {
      const c = this.readConfig();
      const { first, count } = blocksOf(c, r);
      let any = false;
      for (let b = first; b < first + count; b++) any ||= this.isPlugged(b);
      if (any) {
        for (let b = first; b < first + count; b++) if (this.isPlugged(b)) unplugOne(this, b);
        return answered(evaluation, VIRTIO_MEM_RESP_ACK);
      }
    }
    return super.processChain(chain);
  }
}

/** dev.plug.6: the budget check uses `≥`, so a PLUG that takes plugged_size exactly to requested_size is NACKed. */
class NacksPlugReachingRequestedSize extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    const r = evaluation.request;
    const ch = evaluation.chosen;
    const c = this.readConfig();
    if (
      r?.type === VIRTIO_MEM_REQ_PLUG &&
      ch.kind === 'response' &&
      ch.response === 'ACK' &&
      c.plugged_size + BigInt(r.nb_blocks) * c.block_size === c.requested_size
    )
      return answered(evaluation, VIRTIO_MEM_RESP_NACK);
    return super.processChain(chain);
  }
}

// ------------------------------------------------------------------------------------------------
// BUSY that is not clean

/** dev.plug.5 / dev.cfg.3: a PLUG answered BUSY has already plugged its blocks (the state change ran before the busy check). */
class BusyPlugStillPlugs extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    const ch = result.chosen;
    if (result.request?.type === VIRTIO_MEM_REQ_PLUG && ch.kind === 'response' && ch.response === 'BUSY') {
      // The ACK the device would have given had it not been busy: its state change happened anyway.
      const ack = result.outcomes.find((o) => o.kind === 'response' && o.response === 'ACK' && o.class === 'required');
      if (ack?.kind === 'response') force(this, ack.effect);
    }
    return result;
  }
}

/** dev.unplugall.3 / dev.cfg.3: an UNPLUG ALL answered BUSY has already unplugged everything. */
class BusyUnplugAllStillUnplugs extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    const ch = result.chosen;
    if (result.request?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && ch.kind === 'response' && ch.response === 'BUSY')
      for (const run of this.pluggedRuns()) force(this, { kind: 'unplug', firstBlock: run.first, count: run.count });
    return result;
  }
}

/** dev.unplug.5 / dev.cfg.3: an UNPLUG answered BUSY has already unplugged its blocks. */
class BusyUnplugStillUnplugs extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    const ch = result.chosen;
    if (result.request?.type === VIRTIO_MEM_REQ_UNPLUG && ch.kind === 'response' && ch.response === 'BUSY') {
      const ack = result.outcomes.find((o) => o.kind === 'response' && o.response === 'ACK' && o.class === 'required');
      if (ack?.kind === 'response') force(this, ack.effect);
    }
    return result;
  }
}

/** dev.plug.4 / dev.cfg.3: plugged_size is raised before the block-state check, so a PLUG rejected for covering plugged blocks still counts. */
class RejectedPlugStillCounts extends ConfigViewDevice {
  private ghost = 0n;
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    const ch = result.chosen;
    const r = result.request;
    if (
      r?.type === VIRTIO_MEM_REQ_PLUG &&
      ch.kind === 'response' &&
      ch.response === 'ERROR' &&
      ch.requirements.includes('dev.plug.4')
    )
      this.ghost += BigInt(r.nb_blocks) * this.readConfig().block_size;
    if (r?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) this.ghost = 0n;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return { ...c, plugged_size: c.plugged_size + this.ghost };
  }
}

/** dev.state.4: while the device is busy (migration), STATE is answered BUSY as well. */
class StateBusyWhileBusy extends VirtioMemDevice {
  private pending = 0;
  override injectBusy(count: number): void {
    this.pending = count;
    super.injectBusy(count);
  }
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    if (r?.type === VIRTIO_MEM_REQ_STATE && this.pending > 0 && !this.needsReset)
      return answered(this.evaluate(chain), VIRTIO_MEM_RESP_BUSY);
    const result = super.processChain(chain);
    const ch = result.chosen;
    if (ch.kind === 'response' && ch.response === 'BUSY') this.pending--;
    return result;
  }
  override deviceReset(): InvariantViolation[] {
    this.pending = 0;
    return super.deviceReset();
  }
}

// ------------------------------------------------------------------------------------------------
// Host side: resize and resets

/** dev.op.3 / dev.cfg.3: a host resize below plugged_size unplugs the plugged blocks above requested_size on its own. */
class ResizeDownUnplugsOnItsOwn extends VirtioMemDevice {
  override setRequestedSize(size: bigint): HostResizeResult {
    const before = this.readConfig().requested_size;
    const r = super.setRequestedSize(size);
    if (r.ok && size < before) {
      const c = this.readConfig();
      const keep = Number(roundUp(size, c.block_size) / c.block_size);
      for (const run of this.pluggedRuns()) {
        const first = Math.max(run.first, keep);
        if (first < run.first + run.count)
          force(this, { kind: 'unplug', firstBlock: first, count: run.first + run.count - first });
      }
    }
    return r;
  }
}

/** dev.cfg.2: a host resize also writes the new size into region_size. */
class ResizeOverwritesRegionSize extends ConfigViewDevice {
  private shownRegion?: bigint;
  override setRequestedSize(size: bigint): HostResizeResult {
    const r = super.setRequestedSize(size);
    if (r.ok) this.shownRegion = r.usableAfter;
    return r;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return this.shownRegion !== undefined ? { ...c, region_size: this.shownRegion } : c;
  }
}

/** dev.cfg.6: after a resize up usable_region_size is requested_size plus a 1 MiB margin, not rounded to block_size. */
class UsableNotAlignedAfterResizeUp extends ConfigViewDevice {
  private margin = 0n;
  override setRequestedSize(size: bigint): HostResizeResult {
    const before = this.readConfig();
    const r = super.setRequestedSize(size);
    if (r.ok && size > before.requested_size && before.block_size > 1n << 20n) this.margin = 1n << 20n;
    return r;
  }
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    if (result.request?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) this.margin = 0n;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    const usable = c.usable_region_size + this.margin;
    return this.margin > 0n && usable <= c.region_size ? { ...c, usable_region_size: usable } : c;
  }
}

/** dev.cfg.8: a device reset shares the system reset's code and recomputes (shrinks) usable_region_size. */
class DeviceResetShrinksUsable extends ConfigViewDevice {
  private shrunk?: bigint;
  override deviceReset(): InvariantViolation[] {
    const c = this.readConfig();
    const v = super.deviceReset();
    const recomputed = roundUp(c.requested_size, c.block_size);
    let pluggedEnd = 0n;
    for (const run of this.pluggedRuns()) pluggedEnd = BigInt(run.first + run.count) * c.block_size;
    const floor = recomputed > pluggedEnd ? recomputed : pluggedEnd;
    if (floor < c.usable_region_size) this.shrunk = floor;
    return v;
  }
  override setRequestedSize(size: bigint): HostResizeResult {
    const r = super.setRequestedSize(size);
    if (r.ok && this.shrunk !== undefined && r.usableAfter > r.usableBefore) this.shrunk = undefined;
    return r;
  }
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    if (result.request?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) this.shrunk = undefined;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return this.shrunk !== undefined ? { ...c, usable_region_size: this.shrunk } : c;
  }
}

/** dev.cfg.3: a system reset unplugs every block but leaves plugged_size at its old value. */
class SystemResetKeepsPluggedSize extends ConfigViewDevice {
  private ghost = 0n;
  override systemReset(): InvariantViolation[] {
    const before = this.readConfig().plugged_size;
    const v = super.systemReset();
    this.ghost += before - this.readConfig().plugged_size;
    return v;
  }
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    if (result.request?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) this.ghost = 0n;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return { ...c, plugged_size: c.plugged_size + this.ghost };
  }
}

// ------------------------------------------------------------------------------------------------
// Features, memory, chains

/**
 * dev.op.5: unplugged memory is made inaccessible whenever UNPLUGGED_INACCESSIBLE was *offered*,
 * although the driver did not accept it and the device accepted FEATURES_OK and goes on working.
 */
class InaccessibleWhenOfferedNotAccepted extends VirtioMemDevice {
  override readMemory(addr: bigint, length: number): MemoryAccessResult {
    const ui = featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
    if ((this.offeredFeatures & ui) !== 0n && (this.negotiatedFeatures & ui) === 0n && length > 0) {
      const c = this.readConfig();
      const first = Number((addr - c.addr) / c.block_size);
      const stop = Number((addr + BigInt(length) - 1n - c.addr) / c.block_size) + 1;
      for (let b = Math.max(first, 0); b < Math.min(stop, this.blockCount); b++) {
        if (!this.isPlugged(b))
          return {
            ok: false,
            reason: 'inaccessible',
            detail: `block ${b} is unplugged (UNPLUGGED_INACCESSIBLE offered)`,
          };
      }
    }
    return super.readMemory(addr, length);
  }
}

/** dev.cfg.2: node_id reads 0 once VIRTIO_MEM_F_ACPI_PXM is negotiated (the device fills it only before negotiation). */
class NodeIdLostWithPxm extends ConfigViewDevice {
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return (this.negotiatedFeatures & featureMask(VIRTIO_MEM_F_ACPI_PXM)) !== 0n ? { ...c, node_id: 0 } : c;
  }
}

/** The handling of a request of unknown type: ACK (a switch whose default case falls through to success). */
class AcksUnknownRequestType extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    if (
      r &&
      r.type > VIRTIO_MEM_REQ_STATE &&
      !this.needsReset &&
      chain.writableSizes[0] >= VirtioMemResponseLayout.size
    )
      return answered(this.evaluate(chain), VIRTIO_MEM_RESP_ACK);
    return super.processChain(chain);
  }
}

/** Message Framing: only the first device-readable descriptor is read; bytes of the request in later descriptors read as zero. */
class ReadsFirstDescriptorOnly extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    if (chain.readable.length > 1 && chain.readable[0].length < 24) {
      const bytes = new Uint8Array(Math.max(24, concat(chain.readable).length));
      bytes.set(chain.readable[0]);
      return super.processChain({ readable: [bytes], writableSizes: chain.writableSizes });
    }
    return super.processChain(chain);
  }
}

/** The device mutants of this file. */
export const MORE_DEVICE_MUTANTS: readonly Mutant[] = [
  deviceMutant('ACKs a PLUG whose last block is one past the usable end', AcksPlugOneBlockPastUsableEnd),
  deviceMutant('ERROR for a PLUG ending exactly at the usable end', ErrorForPlugEndingAtUsableEnd),
  deviceMutant('range checked against region_size, not usable_region_size', RangeCheckedAgainstRegion),
  deviceMutant('UNPLUG ALL leaves the last block of the region plugged', UnplugAllSkipsLastBlock),
  deviceMutant('nb_blocks truncated to 8 bits', NbBlocksTruncatedTo8Bits),
  deviceMutant('block index taken modulo 65,536', BlockIndexModulo65536),
  deviceMutant('UNPLUG lowers plugged_size by nb_blocks bytes', UnplugLowersPluggedSizeInBlocks),
  deviceMutant('UNPLUG lowers plugged_size by one block only', UnplugLowersPluggedSizeByOneBlock),
  deviceMutant('STATE looks at the first block only', StateLooksAtFirstBlockOnly),
  deviceMutant('STATE reports UNPLUGGED for mixed blocks', StateSaysUnpluggedForMixed),
  deviceMutant('ACKs UNPLUG of a partly plugged range', AcksUnplugOfPartlyPlugged),
  deviceMutant('NACKs a PLUG reaching requested_size exactly', NacksPlugReachingRequestedSize),
  deviceMutant('PLUG answered BUSY still plugs', BusyPlugStillPlugs),
  deviceMutant('UNPLUG ALL answered BUSY still unplugs', BusyUnplugAllStillUnplugs),
  deviceMutant('UNPLUG answered BUSY still unplugs', BusyUnplugStillUnplugs),
  deviceMutant('STATE answered BUSY while busy', StateBusyWhileBusy),
  deviceMutant('PLUG rejected for plugged blocks still raises plugged_size', RejectedPlugStillCounts),
  deviceMutant('host resize down unplugs blocks on its own', ResizeDownUnplugsOnItsOwn),
  deviceMutant('host resize overwrites region_size', ResizeOverwritesRegionSize),
  deviceMutant('usable_region_size not block-aligned after resize up', UsableNotAlignedAfterResizeUp),
  deviceMutant('device reset shrinks usable_region_size', DeviceResetShrinksUsable),
  deviceMutant('system reset keeps plugged_size', SystemResetKeepsPluggedSize),
  deviceMutant(
    'unplugged memory inaccessible when UNPLUGGED_INACCESSIBLE offered, not accepted',
    InaccessibleWhenOfferedNotAccepted,
  ),
  deviceMutant('node_id reads 0 with ACPI_PXM negotiated', NodeIdLostWithPxm),
  deviceMutant('ACK for an unknown request type', AcksUnknownRequestType),
  deviceMutant('reads the first descriptor of a split request only', ReadsFirstDescriptorOnly),
  profileMutant('profile: host resize beyond region_size accepted', {
    resizeValidation: { aligned: true, withinRegion: false, mustDiffer: false },
  }),
  profileMutant('profile: host resize to a size not a multiple of block_size accepted', {
    resizeValidation: { aligned: false, withinRegion: true, mustDiffer: false },
  }),
  profileMutant('profile: over-budget PLUG acknowledged (strict)', { overBudget: 'accept' }, true),
];
