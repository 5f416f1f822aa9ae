/**
 * Broken variants of the model device, each a bug a device author could plausibly write. Each
 * overrides public methods of the model device (or tweaks a profile) and must be caught.
 */
import {
  DescriptorChain,
  HostResizeResult,
  InvariantViolation,
  MemoryAccessResult,
  ProcessResult,
  VirtioMemConfig,
  VirtioMemDevice,
  encodeRequest,
} from '../../../model/src/index';
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  VIRTIO_MEM_RESP_ERROR,
  VIRTIO_MEM_RESP_NACK,
  VIRTIO_MEM_STATE_MIXED,
  VIRTIO_MEM_STATE_PLUGGED,
} from '../../../spec/src/index';

import {
  ConfigViewDevice,
  Mutant,
  answered,
  chainOf,
  deviceMutant,
  profileMutant,
  requestOf,
  roundUp,
  wasAcked,
} from './mutant-kit';

/** dev.plug.3: a PLUG at an address that is not a multiple of block_size is acknowledged (the block containing it is plugged). */
class AcksMisalignedPlug extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    const bs = this.readConfig().block_size;
    if (r && r.type === VIRTIO_MEM_REQ_PLUG && r.addr % bs !== 0n) {
      return super.processChain({
        readable: [encodeRequest({ ...r, addr: r.addr - (r.addr % bs) })],
        writableSizes: chain.writableSizes,
      });
    }
    return super.processChain(chain);
  }
}

/** dev.plug.7 / dev.cfg.3: plugged_size is not raised by an acknowledged PLUG. */
class ForgetsPluggedSizeOnPlug extends ConfigViewDevice {
  private hidden = 0n;
  override processChain(chain: DescriptorChain): ProcessResult {
    const before = this.readConfig().plugged_size;
    const result = super.processChain(chain);
    if (requestOf(chain)?.type === VIRTIO_MEM_REQ_PLUG && wasAcked(result))
      this.hidden += this.readConfig().plugged_size - before;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    const shown = c.plugged_size - this.hidden;
    return { ...c, plugged_size: shown > 0n ? shown : 0n };
  }
}

/** dev.cfg.8: usable_region_size shrinks with requested_size on a host resize down. */
class ShrinksUsableOnResizeDown extends ConfigViewDevice {
  private shrunk?: bigint;
  override setRequestedSize(size: bigint): HostResizeResult {
    const before = this.readConfig();
    const r = super.setRequestedSize(size);
    if (r.ok) this.shrunk = size < before.requested_size ? roundUp(size, before.block_size) : undefined;
    return r;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return this.shrunk !== undefined && this.shrunk < c.usable_region_size
      ? { ...c, usable_region_size: this.shrunk }
      : c;
  }
}

/** dev.init.2: a device reset (of a device that was in use) unplugs every block. */
class DeviceResetUnplugsAll extends VirtioMemDevice {
  override deviceReset(): InvariantViolation[] {
    const live = this.deviceStatus !== 0;
    const violations = super.deviceReset();
    if (live && this.pluggedRuns().length > 0) super.processChain(chainOf({ type: VIRTIO_MEM_REQ_UNPLUG_ALL }));
    return violations;
  }
}

/** dev.cfg.9: a host resize changes requested_size (and usable_region_size) without a config-change notification. */
class SilentResize extends VirtioMemDevice {
  private swallowed = 0;
  override setRequestedSize(size: bigint): HostResizeResult {
    const before = super.notificationCount;
    const r = super.setRequestedSize(size);
    this.swallowed += super.notificationCount - before;
    return r.ok ? { ...r, notified: false } : r;
  }
  override get notificationCount(): number {
    return super.notificationCount - this.swallowed;
  }
}

/** dev.plug.3 / dev.unplug.3: nb_blocks = 0 is answered NACK instead of ERROR. */
class NackForZeroBlocks extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    if (
      r &&
      (r.type === VIRTIO_MEM_REQ_PLUG || r.type === VIRTIO_MEM_REQ_UNPLUG) &&
      r.nb_blocks === 0 &&
      !this.needsReset
    ) {
      return answered(this.evaluate(chain), VIRTIO_MEM_RESP_NACK);
    }
    return super.processChain(chain);
  }
}

/** dev.unplug.6: a valid UNPLUG of plugged blocks is answered ERROR (and nothing is unplugged). */
class ErrorForValidUnplug extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    const c = evaluation.chosen;
    if (evaluation.request?.type === VIRTIO_MEM_REQ_UNPLUG && c.kind === 'response' && c.response === 'ACK')
      return answered(evaluation, VIRTIO_MEM_RESP_ERROR);
    return super.processChain(chain);
  }
}

/** dev.state.7: STATE over a mix of plugged and unplugged blocks reports PLUGGED. */
class StateSaysPluggedForMixed extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    if (
      result.request?.type === VIRTIO_MEM_REQ_STATE &&
      result.response &&
      result.response.state === VIRTIO_MEM_STATE_MIXED &&
      wasAcked(result)
    ) {
      return answered(result, VIRTIO_MEM_RESP_ACK, VIRTIO_MEM_STATE_PLUGGED);
    }
    return result;
  }
}

/** dev.plug.4: a PLUG covering already plugged blocks is acknowledged (the unplugged ones among them get plugged). */
class AcksPlugOfPluggedBlocks extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    const c = evaluation.chosen;
    const r = evaluation.request;
    if (
      r &&
      r.type === VIRTIO_MEM_REQ_PLUG &&
      c.kind === 'response' &&
      c.response === 'ERROR' &&
      c.requirements.includes('dev.plug.4')
    ) {
      const cfg = this.readConfig();
      const first = Number((r.addr - cfg.addr) / cfg.block_size);
      for (let i = first; i < first + r.nb_blocks; i++) {
        if (!this.isPlugged(i))
          super.processChain(
            chainOf({ type: VIRTIO_MEM_REQ_PLUG, addr: cfg.addr + BigInt(i) * cfg.block_size, nb_blocks: 1 }),
          );
      }
      return answered(evaluation, VIRTIO_MEM_RESP_ACK);
    }
    return super.processChain(chain);
  }
}

/** dev.unplugall.5: an acknowledged UNPLUG ALL leaves plugged_size at its old value. */
class UnplugAllKeepsPluggedSize extends ConfigViewDevice {
  private ghost = 0n;
  override processChain(chain: DescriptorChain): ProcessResult {
    const before = this.readConfig().plugged_size;
    const result = super.processChain(chain);
    if (requestOf(chain)?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) this.ghost += before;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return { ...c, plugged_size: c.plugged_size + this.ghost };
  }
}

/** dev.cfg.10 (SHOULD NOT): every acknowledged PLUG raises a config-change notification. */
class NotifiesOnEveryPlug extends VirtioMemDevice {
  private extra = 0;
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    if (result.request?.type === VIRTIO_MEM_REQ_PLUG && wasAcked(result)) {
      this.extra++;
      return { ...result, notified: true };
    }
    return result;
  }
  override get notificationCount(): number {
    return super.notificationCount + this.extra;
  }
}

/** dev.cfg.5: block_size reads as 1.5 × the real block size (not a power of two). */
class BlockSizeNotPowerOfTwo extends ConfigViewDevice {
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return { ...c, block_size: (c.block_size * 3n) / 2n };
  }
}

/** dev.plug.2 / dev.unplug.2 / dev.state.2 …: nonzero padding in a request is answered ERROR instead of being ignored. */
class ErrorOnGarbagePadding extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    if (
      evaluation.request &&
      evaluation.request.type <= VIRTIO_MEM_REQ_STATE &&
      evaluation.nonzeroPadding.length > 0 &&
      !this.needsReset
    ) {
      return answered(evaluation, VIRTIO_MEM_RESP_ERROR);
    }
    return super.processChain(chain);
  }
}

/** dev.cfg.4: a host resize up raises requested_size but usable_region_size stays where it was. */
class UsableBelowRequestedAfterResize extends ConfigViewDevice {
  private frozen?: bigint;
  override setRequestedSize(size: bigint): HostResizeResult {
    const usableBefore = this.readConfig().usable_region_size;
    const r = super.setRequestedSize(size);
    if (r.ok && r.usableAfter > usableBefore && this.frozen === undefined) this.frozen = usableBefore;
    return r;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return this.frozen !== undefined ? { ...c, usable_region_size: this.frozen } : c;
  }
}

/** dev.init.3: a device reset (of a device in use) scrambles the contents of plugged memory. */
class DeviceResetAltersPluggedMemory extends VirtioMemDevice {
  private readonly written: { addr: bigint; length: number }[] = [];
  override writeMemory(addr: bigint, data: Uint8Array): MemoryAccessResult {
    const r = super.writeMemory(addr, data);
    if (r.ok && data.length > 0) this.written.push({ addr, length: data.length });
    return r;
  }
  override deviceReset(): InvariantViolation[] {
    const live = this.deviceStatus !== 0;
    const violations = super.deviceReset();
    if (!live) return violations;
    const c = this.readConfig();
    const spots = [...this.written];
    // Also the start of every plugged block (the first 4096 plugged blocks at most).
    let budget = 4096;
    for (const run of this.pluggedRuns()) {
      for (let b = run.first; b < run.first + run.count && budget > 0; b++, budget--) {
        spots.push({
          addr: c.addr + BigInt(b) * c.block_size,
          length: Number(c.block_size < 64n ? c.block_size : 64n),
        });
      }
    }
    for (const s of spots) {
      const r = super.readMemory(s.addr, s.length);
      if (r.ok)
        super.writeMemory(
          s.addr,
          r.data.map((byte) => byte ^ 0xa5),
        );
    }
    return violations;
  }
}

/** The device mutants. */
export const DEVICE_MUTANTS: readonly Mutant[] = [
  deviceMutant('plug ACKs a misaligned addr and plugs', AcksMisalignedPlug),
  deviceMutant('plugged_size not updated after PLUG', ForgetsPluggedSizeOnPlug),
  deviceMutant('usable_region_size shrinks on resize down', ShrinksUsableOnResizeDown),
  deviceMutant('device reset unplugs all blocks', DeviceResetUnplugsAll),
  deviceMutant('no notification on host resize', SilentResize),
  deviceMutant('NACK instead of ERROR for nb_blocks = 0', NackForZeroBlocks),
  deviceMutant('ERROR instead of ACK for a valid UNPLUG', ErrorForValidUnplug),
  deviceMutant('STATE reports PLUGGED for mixed blocks', StateSaysPluggedForMixed),
  deviceMutant('ACKs PLUG of already plugged blocks', AcksPlugOfPluggedBlocks),
  deviceMutant('UNPLUG ALL leaves plugged_size nonzero', UnplugAllKeepsPluggedSize),
  deviceMutant('notifies on every PLUG (SHOULD NOT, strict)', NotifiesOnEveryPlug, true),
  deviceMutant('config block_size not a power of two', BlockSizeNotPowerOfTwo),
  deviceMutant('garbage request padding answered ERROR', ErrorOnGarbagePadding),
  deviceMutant('usable_region_size < requested_size after resize', UsableBelowRequestedAfterResize),
  deviceMutant('device reset alters plugged memory', DeviceResetAltersPluggedMemory),
  profileMutant('profile: UNPLUG ALL sets usable_region_size to 0', { unplugAllUsable: 'zero' }),
  profileMutant('profile: request must sit in one descriptor', { layoutStrictness: 'single-descriptor' }),
  profileMutant('profile: system reset keeps blocks (SHOULD, strict)', { systemReset: 'keep' }, true),
];
