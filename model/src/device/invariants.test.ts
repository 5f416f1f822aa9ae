import { VIRTIO_F_VERSION_1, VIRTIO_MEM_F_PERSISTENT_SUSPEND, featureMask } from '../../../spec/src/index';
import { DEVICE_PROFILES, DeviceSnapshot, checkPersistentSuspendOffer, checkTransition } from '../index';
import { makeDevice } from './test/device-fixture';

const V1 = featureMask(VIRTIO_F_VERSION_1);
const PS = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);

describe('checkTransition across suspend and wake-up', () => {
  const base = makeDevice({ plugged: [{ first: 2, count: 3 }] });
  const before: DeviceSnapshot = base.snapshot(true);
  const unplugged: DeviceSnapshot = {
    config: { ...before.config, plugged_size: 0n },
    pluggedBlocks: 0,
    pluggedEnd: 0,
    blocksDigest: '',
    contentDigest: 'x',
  };

  test('dev.op.8: a persistent wake-up that changes block states is a MUST violation', () => {
    const violations = checkTransition(before, unplugged, 'wake', false, { persistentSuspend: true });
    expect(violations).toEqual([
      expect.objectContaining({
        invariant: 'blocks-unchanged-by-persistent-suspend',
        requirements: ['dev.op.8'],
        severity: 'must',
      }),
    ]);
    expect(
      checkTransition(before, unplugged, 'suspend', false, { persistentSuspend: true }).map((v) => v.requirements),
    ).toEqual([['dev.op.8']]);
  });

  test('dev.op.8: without block digests a changed plugged_size is enough', () => {
    const violations = checkTransition({ config: before.config }, { config: unplugged.config }, 'wake', false, {
      persistentSuspend: true,
    });
    expect(violations.map((v) => v.requirements)).toEqual([['dev.op.8']]);
  });

  test('a wake-up without PERSISTENT_SUSPEND may unplug everything and shrink usable_region_size (judged like a system reset)', () => {
    const shrunk = { ...unplugged, config: { ...unplugged.config, usable_region_size: 0n, requested_size: 0n } };
    expect(checkTransition(before, shrunk, 'wake', false)).toEqual([]);
    expect(checkTransition(before, shrunk, 'wake', false, { persistentSuspend: true }).map((v) => v.invariant)).toEqual(
      expect.arrayContaining([
        'usable-shrinks-only-on-unplug-all-or-system-reset',
        'blocks-unchanged-by-persistent-suspend',
      ]),
    );
  });

  test('dev.op.3 dev.init.3: contents of blocks that stay plugged must not change across a wake-up or a device reset', () => {
    const rewritten = { ...before, contentDigest: `${before.contentDigest}-changed` };
    expect(checkTransition(before, rewritten, 'wake', false)).toEqual([
      expect.objectContaining({
        invariant: 'plugged-contents-unchanged',
        requirements: ['dev.op.3'],
        severity: 'must',
      }),
    ]);
    expect(checkTransition(before, rewritten, 'device-reset', false)).toEqual([
      expect.objectContaining({ invariant: 'contents-unchanged-by-device-reset', requirements: ['dev.init.3'] }),
    ]);
    expect(checkTransition(before, before, 'wake', false, { persistentSuspend: true })).toEqual([]);
  });
});

describe('dev.init.4 checkPersistentSuspendOffer', () => {
  test('dev.init.4: a platform that can suspend with plugged blocks should have PERSISTENT_SUSPEND offered', () => {
    expect(checkPersistentSuspendOffer(V1, true)).toEqual(
      expect.objectContaining({
        invariant: 'persistent-suspend-offered',
        requirements: ['dev.init.4'],
        severity: 'should',
      }),
    );
    expect(checkPersistentSuspendOffer(V1 | PS, true)).toBeNull();
    expect(checkPersistentSuspendOffer(V1, false)).toBeNull();
    expect(checkPersistentSuspendOffer(V1 | PS, false)).toBeNull();
  });

  test.each(Object.entries(DEVICE_PROFILES))(
    'dev.init.4: the %s profile is consistent with its platform',
    (_name, profile) => {
      expect(checkPersistentSuspendOffer(profile.defaultFeatures, profile.platformCanSuspend)).toBeNull();
    },
  );
});
