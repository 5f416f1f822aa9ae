/**
 * The oracle: a `spec`-profile model device kept in step with the device under test. Before a
 * request it says which outcomes conform (and how each is graded); after the request it applies
 * what the device really did, so block-level facts (which blocks are plugged, hence what
 * plugged_size must be) stay known even for a device that only shows its configuration.
 */
import {
  DescriptorChain,
  DeviceOutcome,
  RequestEvaluation,
  SPEC_PROFILE,
  VirtioMemConfig,
  VirtioMemDevice,
  deviceRegisters,
} from '../../../model/src/index';
import type { BlockRange } from '../../../spec/src/index';
import { virtioHandshakeSync } from '../../../adapters/virtio/src/index';

/** The label the runner gives an observed outcome: `ACK`, `NACK`, `BUSY`, `ERROR`, `needs-reset`, `no-used-entry`, `used-length-zero`, … */
export function outcomeLabel(outcome: DeviceOutcome): string {
  if (outcome.kind === 'response') return outcome.response;
  return outcome.handling === 'error-response' ? 'ERROR' : outcome.handling;
}

/** A model device that follows the device under test. */
export class Oracle {
  private device: VirtioMemDevice;
  /** False once the device did something whose effect on blocks cannot be known. */
  private known = true;

  constructor(
    config: VirtioMemConfig,
    plugged: readonly BlockRange[],
    private readonly features: bigint,
  ) {
    this.device = Oracle.build(config, plugged, features);
  }

  private static build(config: VirtioMemConfig, plugged: readonly BlockRange[], features: bigint): VirtioMemDevice {
    const device = new VirtioMemDevice(
      {
        block_size: config.block_size,
        region_size: config.region_size,
        addr: config.addr,
        requested_size: config.requested_size,
        usable_region_size: config.usable_region_size,
        node_id: config.node_id,
        features,
        plugged,
      },
      SPEC_PROFILE,
    );
    virtioHandshakeSync(deviceRegisters(device), () => features);
    return device;
  }

  /** Number of plugged blocks, when known. */
  get pluggedBlocks(): number | undefined {
    return this.known ? this.device.pluggedRuns().reduce((n, r) => n + r.count, 0) : undefined;
  }

  /** The conforming outcomes of a chain in the current state (undefined when blocks are unknown). */
  evaluate(chain: DescriptorChain): RequestEvaluation | undefined {
    return this.known ? this.device.evaluate(chain) : undefined;
  }

  /** Applies the outcome the device produced; `usableAfter` is the observed usable_region_size. */
  apply(outcome: DeviceOutcome, usableAfter: bigint): void {
    if (this.known) this.device.applyObserved(outcome, usableAfter);
  }

  /** The device did something unexplained: stop judging block-level facts. */
  forget(): void {
    this.known = false;
  }

  /** Re-bases the oracle on an observed configuration (after a resize or a reset); blocks keep their states. */
  rebase(config: VirtioMemConfig): void {
    if (!this.known) return;
    this.device = Oracle.build(config, this.device.pluggedRuns(), this.features);
  }

  /** After a system reset: blocks are all unplugged if plugged_size reads 0; otherwise unknown unless unchanged. */
  afterSystemReset(config: VirtioMemConfig, pluggedBefore: bigint): void {
    if (config.plugged_size === 0n) {
      this.known = true;
      this.device = Oracle.build(config, [], this.features);
    } else if (config.plugged_size === pluggedBefore) {
      this.rebase(config);
    } else {
      this.known = false;
    }
  }

  /** After an acknowledged UNPLUG ALL every block is unplugged: knowledge is restored. */
  restoreAllUnplugged(config: VirtioMemConfig): void {
    this.known = true;
    this.device = Oracle.build(config, [], this.features);
  }
}
