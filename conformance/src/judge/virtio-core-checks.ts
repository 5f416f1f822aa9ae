/**
 * Pure checks of the virtio core rules (VIRTIO 1.4 §2, §4.1) that every device step can show being
 * broken, whatever the vector states: the configuration generation (dev.virtio.6), the
 * notification that announces DEVICE_NEEDS_RESET (dev.virtio.1), the status after a reset
 * (dev.virtio.4) and a refused FEATURES_OK (dev.virtio.2, dev.virtio.3, dev.init.1). The device
 * runner calls them with what it observed.
 */
import type { HandshakeResult } from '../../../adapters/core/src/contract';
import {
  FEATURE_BITS,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  VirtioMemConfigLayout,
  featureMask,
} from '../../../spec/src/index';
import type { Finding } from './verdicts';

/** The configuration bytes the runner read last, with the generation read right after them. */
export interface GenerationSample {
  readonly bytes: Uint8Array;
  readonly generation: number;
}

/** Names of the configuration fields whose bytes differ between `a` and `b`. */
export function changedConfigFields(a: Uint8Array, b: Uint8Array): string[] {
  return VirtioMemConfigLayout.fields
    .filter((f) => {
      for (let i = f.offset; i < f.offset + f.size; i++) if (a[i] !== b[i]) return true;
      return false;
    })
    .map((f) => f.name);
}

/**
 * dev.virtio.6 (§4.1.4.3.1): a configuration value the driver reads that changed since its
 * previous read comes with a changed `config_generation`. Undefined when the rule holds.
 */
export function judgeConfigGeneration(
  previous: GenerationSample | undefined,
  now: GenerationSample,
  step: number,
): Finding | undefined {
  if (!previous || previous.generation !== now.generation) return undefined;
  const changed = changedConfigFields(previous.bytes, now.bytes);
  if (changed.length === 0) return undefined;
  return {
    verdict: 'fail',
    step,
    check: 'config_generation',
    message: `${changed.join(', ')} changed since the previous configuration read, but config_generation did not (still ${now.generation})`,
    expected: `a config_generation other than ${previous.generation}`,
    observed: String(now.generation),
    requirements: ['dev.virtio.6'],
  };
}

/**
 * dev.virtio.1 (§2.1.2): a device that sets DEVICE_NEEDS_RESET while DRIVER_OK is set sends a
 * configuration-change notification. `statusBefore` is the status the runner last saw (before
 * the step), `statusAfter` the status after it. Undefined when the rule holds or does not apply.
 */
export function judgeNeedsResetNotification(
  statusBefore: number,
  statusAfter: number,
  notified: boolean,
  step: number,
): Finding | undefined {
  const raised =
    (statusAfter & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0 && (statusBefore & VIRTIO_CONFIG_S_NEEDS_RESET) === 0;
  const driverOk = ((statusBefore | statusAfter) & VIRTIO_CONFIG_S_DRIVER_OK) !== 0;
  if (!raised || !driverOk || notified) return undefined;
  return {
    verdict: 'fail',
    step,
    check: 'notification.needs_reset',
    message: 'the device set DEVICE_NEEDS_RESET while DRIVER_OK was set, without a configuration-change notification',
    expected: 'a configuration-change notification',
    observed: 'none',
    requirements: ['dev.virtio.1'],
  };
}

/** dev.virtio.4 (§2.4.1): after a reset the status reads 0. Undefined when it does. */
export function judgeStatusAfterReset(status: number, step: number): Finding | undefined {
  if (status === 0) return undefined;
  return {
    verdict: 'fail',
    step,
    check: 'device_reset.status',
    message: `after the reset the device status reads 0x${status.toString(16)}, not 0 (the driver has not initialised it again)`,
    expected: '0x0',
    observed: `0x${status.toString(16)}`,
    requirements: ['dev.virtio.4'],
  };
}

function featureNames(mask: bigint): string {
  const names = FEATURE_BITS.filter((f) => (mask & featureMask(f.value)) !== 0n).map((f) => f.name);
  return names.length > 0 ? names.join(', ') : 'none';
}

/**
 * A FEATURES_OK the device refused, judged (`features_ok`):
 * - VIRTIO_F_VERSION_1 not accepted: a modern device may refuse (§6.1), `acceptable`;
 * - UNPLUGGED_INACCESSIBLE offered but not accepted: dev.init.1 lets the device stop working, `acceptable`;
 * - any other valid subset: dev.virtio.2 says the device SHOULD accept it, `non-strict`; when the
 *   same set stuck before (`acceptedBefore`, a re-initialisation after a reset), dev.virtio.3 too.
 */
export function judgeFeaturesOkRefusal(init: HandshakeResult, step: number, acceptedBefore?: bigint): Finding {
  const observed = `FEATURES_OK refused (offered ${featureNames(init.offered)}; accepted ${featureNames(init.accepted)})`;
  const notAccepted = init.offered & ~init.accepted;
  if ((init.accepted & featureMask(VIRTIO_F_VERSION_1)) === 0n)
    return {
      verdict: 'acceptable',
      step,
      check: 'features_ok',
      message:
        'the device refused FEATURES_OK to a driver that did not accept VIRTIO_F_VERSION_1 (a modern device may)',
      observed,
    };
  if ((notAccepted & featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE)) !== 0n)
    return {
      verdict: 'acceptable',
      step,
      check: 'features_ok',
      message:
        'the device refused FEATURES_OK to a driver that did not accept VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE (allowed)',
      observed,
      requirements: ['dev.init.1'],
    };
  const again = acceptedBefore !== undefined && acceptedBefore === init.accepted;
  return {
    verdict: 'non-strict',
    step,
    check: 'features_ok',
    message: again
      ? 'the device refused FEATURES_OK for the feature set it had accepted before the reset'
      : 'the device refused FEATURES_OK for a valid subset of the features it offered',
    expected: 'FEATURES_OK accepted',
    observed,
    requirements: again ? ['dev.virtio.2', 'dev.virtio.3'] : ['dev.virtio.2'],
  };
}
