/**
 * Pure checks of the virtio core rules (VIRTIO 1.4 §2, §4.1) that every device step can show being
 * broken, whatever the vector states: the configuration generation (dev.virtio.6), the
 * notification that announces DEVICE_NEEDS_RESET (dev.virtio.1), the status after a reset
 * (dev.virtio.4), a refused FEATURES_OK (dev.virtio.2, dev.virtio.3, dev.init.1) and the used
 * length of a request (dev.virtio.5). The device runner and the request step call them with what
 * they observed.
 */
import type { Chain, Completion, HandshakeResult } from '../../../adapters/core/src/contract';
import {
  FEATURE_BITS,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  VirtioMemConfigLayout,
  VirtioMemResponseLayout,
  featureMask,
  writablePoisonByte,
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
 * - VIRTIO_F_VERSION_1 not accepted: a modern device may refuse (§6.2), `acceptable`;
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
        'the device refused FEATURES_OK to a driver that did not accept VIRTIO_F_VERSION_1 (a device may fail to operate without it, §6.2)',
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

/**
 * The used length of an answered request, judged exactly (`used_length`). A virtio-mem response
 * is 10 bytes (§5.15.6), and a conforming device reports what it wrote (QEMU: exactly 10).
 * - more than the chain's device-writable bytes: the device cannot have written them (dev.virtio.5), `fail`;
 * - bytes inside the used length that still hold the driver's poison pre-fill at the end (two or
 *   more, or any beyond the 10-byte response): reported as written but never written (dev.virtio.5), `fail`;
 * - more than 10 bytes, all written: bytes beyond the response, `informational`;
 * - 2 to 9 bytes with room for the whole response: the core lets the used length understate what
 *   was written (§2.7.8.2) and the driver needs only the type, `informational` (a STATE answer
 *   without its state is judged by the response check).
 * Lengths 0 and 1 are outcomes of their own (the response check judges them).
 */
export function judgeUsedLength(completion: Completion, chain: Chain, step: number): Finding[] {
  if (completion.kind !== 'used' || completion.length < 2) return [];
  const length = completion.length;
  const writable = chain.writableSizes.reduce((n, s) => n + s, 0);
  const response = VirtioMemResponseLayout.size;
  const finding = (verdict: Finding['verdict'], message: string, requirements?: string[]): Finding => ({
    verdict,
    step,
    check: 'used_length',
    message,
    expected: `${response} (the response) and never more than the ${writable} device-writable bytes`,
    observed: String(length),
    ...(requirements ? { requirements } : {}),
  });
  if (length > writable)
    return [
      finding(
        'fail',
        `the used length ${length} is more than the ${writable} device-writable bytes of the chain: the device cannot have written them`,
        ['dev.virtio.5'],
      ),
    ];
  let unwritten = 0;
  while (
    unwritten < length &&
    completion.written[length - 1 - unwritten] === writablePoisonByte(length - 1 - unwritten)
  )
    unwritten++;
  if (unwritten >= 2 || (unwritten > 0 && length - unwritten >= response))
    return [
      finding(
        'fail',
        `the used length ${length} claims bytes the device never wrote: the last ${unwritten} still hold the driver's pre-fill`,
        ['dev.virtio.5'],
      ),
    ];
  if (length > response)
    return [
      finding('informational', `the device reported ${length} bytes written, more than the ${response}-byte response`),
    ];
  if (length < response && writable >= response)
    return [
      finding(
        'informational',
        `a used length of ${length}, shorter than the ${response}-byte response; the core lets it understate what was written (§2.7.8.2)`,
      ),
    ];
  return [];
}
