/**
 * The virtio side of the model device: the status register and feature negotiation. The block
 * states, the configuration and the memory are the device's (`device.ts`); this module only
 * tracks what the driver wrote and which features stuck. Internal to the device (not exported
 * from `model/`).
 */
import {
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  featureMask,
} from '../../../spec/src/index';
import type { StatusWriteResult } from './device-types';
import type { DeviceProfile } from './profiles';

/** The status register, the features the driver accepted and the last negotiation that stuck. */
export class VirtioStatus {
  private driverFeatures = 0n;
  private status = 0;
  /** Features of the last negotiation that stuck; kept across a device reset, cleared by a system reset. */
  private lastNegotiated = 0n;

  /**
   * @param offered the features the device offers.
   * @param profile decides what happens to a driver that does not accept UNPLUGGED_INACCESSIBLE.
   */
  constructor(
    readonly offered: bigint,
    private readonly profile: DeviceProfile,
  ) {}

  /** The status register. */
  get value(): number {
    return this.status;
  }

  /** True while DEVICE_NEEDS_RESET is set. */
  get needsReset(): boolean {
    return (this.status & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0;
  }

  /** True once the driver set DRIVER_OK (a driver is there to receive notifications). */
  get driverOk(): boolean {
    return (this.status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0;
  }

  /** Features accepted by the driver, once FEATURES_OK stuck; 0 before. */
  get negotiated(): bigint {
    return (this.status & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 ? this.driverFeatures : 0n;
  }

  /** Features of the most recent negotiation that stuck (survives a device reset). */
  get lastNegotiatedFeatures(): bigint {
    return this.lastNegotiated;
  }

  /** The driver writes its accepted features (before FEATURES_OK). */
  writeDriverFeatures(features: bigint): void {
    this.driverFeatures = features;
  }

  /**
   * The driver writes a nonzero status (writing 0 is the device's reset, see {@link reset}).
   * Setting FEATURES_OK validates the accepted features; a device may refuse a driver that does
   * not accept UNPLUGGED_INACCESSIBLE (dev.init.1), in which case FEATURES_OK does not stick, or
   * fail at DRIVER_OK by flagging NEEDS_RESET, as the profile says. NEEDS_RESET, once set,
   * stays until a reset.
   */
  write(value: number): StatusWriteResult {
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
    if (
      adding & VIRTIO_CONFIG_S_DRIVER_OK &&
      uiOffered &&
      !uiAccepted &&
      this.profile.unpluggedInaccessibleRequired === 'fail-driver-ok'
    ) {
      this.status = value | VIRTIO_CONFIG_S_NEEDS_RESET;
      return {
        status: this.status,
        refusal: 'driver did not accept VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE; activation failed',
        requirements: ['dev.init.1'],
      };
    }
    this.status = value | (this.status & VIRTIO_CONFIG_S_NEEDS_RESET);
    if (adding & VIRTIO_CONFIG_S_FEATURES_OK) this.lastNegotiated = this.driverFeatures;
    return { status: this.status, requirements: [] };
  }

  /** Sets DEVICE_NEEDS_RESET. Returns false when it was set already (nothing to announce). */
  flagNeedsReset(): boolean {
    if (this.needsReset) return false;
    this.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    return true;
  }

  /** Device reset: status and accepted features cleared; the last negotiation is kept. */
  reset(): void {
    this.status = 0;
    this.driverFeatures = 0n;
  }

  /** Forgets the last negotiation (a system reset). */
  forgetNegotiation(): void {
    this.lastNegotiated = 0n;
  }
}
