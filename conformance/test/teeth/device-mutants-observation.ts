/**
 * Broken variants of the model device that only the runner's own observations catch, whatever a
 * vector states: the configuration generation (dev.virtio.6), the exact used length
 * (dev.virtio.5), the notification with DEVICE_NEEDS_RESET (dev.virtio.1), a refused FEATURES_OK
 * (dev.virtio.2) and the status after a reset (dev.virtio.4).
 */
import {
  DescriptorChain,
  HostResizeResult,
  InvariantViolation,
  ProcessResult,
  StatusWriteResult,
  VirtioMemDevice,
} from '../../../model/src/index';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VirtioMemResponseLayout,
} from '../../../spec/src/index';
import { Mutant, deviceMutant } from './mutant-kit';

const RESPONSE = VirtioMemResponseLayout.size;

/** dev.virtio.6: config_generation never changes. */
class NeverBumpsGeneration extends VirtioMemDevice {
  override get configGeneration(): number {
    return 0;
  }
}

/** dev.virtio.6: config_generation changes only when the host resizes (not when PLUG or UNPLUG change plugged_size). */
class BumpsGenerationOnlyOnResize extends VirtioMemDevice {
  private resizes = 0;
  override setRequestedSize(size: bigint): HostResizeResult {
    const r = super.setRequestedSize(size);
    if (r.ok) this.resizes++;
    return r;
  }
  override get configGeneration(): number {
    return this.resizes & 0xff;
  }
}

/** The writable bytes of a chain. */
function writableOf(chain: DescriptorChain): number {
  return chain.writableSizes.reduce((n, s) => n + s, 0);
}

/** dev.virtio.5: with room for it, the used length claims 12 bytes though only the 10-byte response was written. */
class ClaimsTwoUnwrittenBytes extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = super.processChain(chain);
    if (r.used && r.used.length === RESPONSE && writableOf(chain) >= RESPONSE + 2)
      return { ...r, used: { length: RESPONSE + 2, written: r.used.written } };
    return r;
  }
}

/** dev.virtio.5: the used length is two more than the chain's device-writable bytes. */
class UsedLengthBeyondWritable extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = super.processChain(chain);
    if (r.used && r.used.length === RESPONSE) return { ...r, used: { ...r.used, length: writableOf(chain) + 2 } };
    return r;
  }
}

/** dev.virtio.1: DEVICE_NEEDS_RESET is set without the configuration-change notification that must announce it. */
class SilentNeedsReset extends VirtioMemDevice {
  private swallowed = 0;
  override processChain(chain: DescriptorChain): ProcessResult {
    const flagged = this.needsReset;
    const before = super.notificationCount;
    const r = super.processChain(chain);
    if (!flagged && this.needsReset) this.swallowed += super.notificationCount - before;
    return r;
  }
  override get notificationCount(): number {
    return super.notificationCount - this.swallowed;
  }
}

/** dev.virtio.2: FEATURES_OK is refused unless the driver accepts every offered feature. */
class RefusesFeatureSubsets extends VirtioMemDevice {
  private accepted = 0n;
  override writeDriverFeatures(features: bigint): void {
    this.accepted = features;
    super.writeDriverFeatures(features);
  }
  override writeStatus(value: number): StatusWriteResult {
    const adding = value & ~this.deviceStatus;
    if (adding & VIRTIO_CONFIG_S_FEATURES_OK && this.accepted !== this.offeredFeatures)
      return super.writeStatus(value & ~VIRTIO_CONFIG_S_FEATURES_OK);
    return super.writeStatus(value);
  }
}

/** dev.virtio.4: after a device reset the device runs the handshake itself and reads DRIVER_OK again. */
class ReinitialisesAfterReset extends VirtioMemDevice {
  override deviceReset(): InvariantViolation[] {
    const features = this.lastNegotiatedFeatures;
    const violations = super.deviceReset();
    if (features === 0n) return violations;
    super.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    super.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    super.writeDriverFeatures(features);
    super.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    super.writeStatus(
      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
    );
    return violations;
  }
}

/** The mutants of this file. */
export const OBSERVATION_MUTANTS: readonly Mutant[] = [
  deviceMutant('config_generation never changes', NeverBumpsGeneration),
  deviceMutant('config_generation changes only on host resize', BumpsGenerationOnlyOnResize),
  deviceMutant('used length 12 with only the 10-byte response written', ClaimsTwoUnwrittenBytes),
  deviceMutant('used length beyond the writable bytes', UsedLengthBeyondWritable),
  deviceMutant('NEEDS_RESET without a notification', SilentNeedsReset),
  deviceMutant('FEATURES_OK refused for a valid subset', RefusesFeatureSubsets, true),
  deviceMutant('device reset re-initialises the device itself', ReinitialisesAfterReset),
];
