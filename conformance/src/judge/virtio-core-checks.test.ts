import {
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  FEATURE_MASKS,
  writablePoison,
} from '../../../spec/src/index';
import {
  changedConfigFields,
  judgeConfigGeneration,
  judgeFeaturesOkRefusal,
  judgeNeedsResetNotification,
  judgeStatusAfterReset,
  judgeUsedLength,
} from './virtio-core-checks';

const chain = (writable: number[]) => ({ readable: [new Uint8Array(24)], writableSizes: writable });
const used = (length: number, written: Uint8Array) => ({ kind: 'used' as const, length, written });
const response = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 1, 0);

describe('config_generation (dev.virtio.6)', () => {
  const bytes = new Uint8Array(56);
  const plugged = bytes.slice();
  plugged[41] = 0x20;

  test('names the fields that changed', () => {
    expect(changedConfigFields(bytes, plugged)).toEqual(['plugged_size']);
  });

  test('a change under an unchanged generation fails; a changed generation or no change passes', () => {
    const f = judgeConfigGeneration({ bytes, generation: 3 }, { bytes: plugged, generation: 3 }, 2);
    expect(f).toMatchObject({ verdict: 'fail', check: 'config_generation', step: 2, requirements: ['dev.virtio.6'] });
    expect(judgeConfigGeneration({ bytes, generation: 3 }, { bytes: plugged, generation: 4 }, 2)).toBeUndefined();
    expect(judgeConfigGeneration({ bytes, generation: 3 }, { bytes, generation: 3 }, 2)).toBeUndefined();
    expect(judgeConfigGeneration(undefined, { bytes: plugged, generation: 3 }, 2)).toBeUndefined();
  });
});

describe('NEEDS_RESET notification (dev.virtio.1)', () => {
  const ok = VIRTIO_CONFIG_S_DRIVER_OK | 0xb;
  test('raised while DRIVER_OK without a notification fails', () => {
    expect(judgeNeedsResetNotification(ok, ok | VIRTIO_CONFIG_S_NEEDS_RESET, false, 1)).toMatchObject({
      verdict: 'fail',
      check: 'notification.needs_reset',
      requirements: ['dev.virtio.1'],
    });
  });
  test('with a notification, before DRIVER_OK, or already set: no finding', () => {
    expect(judgeNeedsResetNotification(ok, ok | VIRTIO_CONFIG_S_NEEDS_RESET, true, 1)).toBeUndefined();
    expect(judgeNeedsResetNotification(0xb, 0xb | VIRTIO_CONFIG_S_NEEDS_RESET, false, 1)).toBeUndefined();
    const set = ok | VIRTIO_CONFIG_S_NEEDS_RESET;
    expect(judgeNeedsResetNotification(set, set, false, 1)).toBeUndefined();
  });
});

describe('status after a reset (dev.virtio.4)', () => {
  test('0 passes, anything else fails', () => {
    expect(judgeStatusAfterReset(0, 1)).toBeUndefined();
    expect(judgeStatusAfterReset(0xf, 1)).toMatchObject({ verdict: 'fail', requirements: ['dev.virtio.4'] });
  });
});

describe('a refused FEATURES_OK', () => {
  const offered = FEATURE_MASKS.VERSION_1 | FEATURE_MASKS.ACPI_PXM | FEATURE_MASKS.UNPLUGGED_INACCESSIBLE;
  const init = (accepted: bigint) => ({ offered, accepted, featuresOk: false, status: 0x3 });
  test('a valid subset refused is a SHOULD-level deviation (dev.virtio.2), and dev.virtio.3 when it stuck before', () => {
    expect(judgeFeaturesOkRefusal(init(offered), 0)).toMatchObject({
      verdict: 'non-strict',
      check: 'features_ok',
      requirements: ['dev.virtio.2'],
    });
    expect(judgeFeaturesOkRefusal(init(offered), 3, offered).requirements).toEqual(['dev.virtio.2', 'dev.virtio.3']);
  });
  test('UNPLUGGED_INACCESSIBLE not accepted, or VERSION_1 not accepted: a permitted refusal', () => {
    expect(judgeFeaturesOkRefusal(init(FEATURE_MASKS.VERSION_1), 0)).toMatchObject({
      verdict: 'acceptable',
      requirements: ['dev.init.1'],
    });
    expect(judgeFeaturesOkRefusal(init(FEATURE_MASKS.ACPI_PXM | FEATURE_MASKS.UNPLUGGED_INACCESSIBLE), 0).verdict).toBe(
      'acceptable',
    );
  });
});

describe('used length (dev.virtio.5)', () => {
  test('exactly the 10-byte response passes', () => {
    expect(judgeUsedLength(used(10, response), chain([10]), 1)).toEqual([]);
    expect(judgeUsedLength(used(10, response), chain([16]), 1)).toEqual([]);
  });
  test('more than the writable bytes fails', () => {
    expect(judgeUsedLength(used(12, response), chain([10]), 1)).toMatchObject([
      { verdict: 'fail', check: 'used_length', requirements: ['dev.virtio.5'] },
    ]);
  });
  test('bytes inside the used length still holding the pre-fill fail', () => {
    const written = new Uint8Array([...response, ...writablePoison(2, 10)]);
    expect(judgeUsedLength(used(12, written), chain([16]), 1)).toMatchObject([
      { verdict: 'fail', requirements: ['dev.virtio.5'] },
    ]);
    const typeOnly = new Uint8Array([0, 0, ...writablePoison(8, 2)]);
    expect(judgeUsedLength(used(10, typeOnly), chain([10]), 1)).toMatchObject([{ verdict: 'fail' }]);
  });
  test('written bytes beyond the response, or a short length with room for it, are informational', () => {
    expect(judgeUsedLength(used(12, new Uint8Array(12)), chain([16]), 1)).toMatchObject([{ verdict: 'informational' }]);
    expect(judgeUsedLength(used(2, new Uint8Array(2)), chain([10]), 1)).toMatchObject([{ verdict: 'informational' }]);
  });
  test('lengths 0 and 1 and missing used entries are left to the response check', () => {
    expect(judgeUsedLength(used(0, new Uint8Array(0)), chain([10]), 1)).toEqual([]);
    expect(judgeUsedLength({ kind: 'no-used-entry' }, chain([10]), 1)).toEqual([]);
  });
});
