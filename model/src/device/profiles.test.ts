import {
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_ACPI_PXM,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  featureMask,
} from '../../../spec/src/index';
import {
  DEVICE_PROFILES,
  DEVICE_PROFILE_ALIASES,
  DeviceProfile,
  ProfileKnob,
  QEMU_10_0_PROFILE,
  QEMU_7_2_PROFILE,
  QEMU_PROFILE,
  deviceProfileNames,
  findDeviceProfile,
} from '../index';
import { BASE, BS, makeDevice } from './test/device-fixture';

const V1 = featureMask(VIRTIO_F_VERSION_1);
const PXM = featureMask(VIRTIO_MEM_F_ACPI_PXM);
const PS = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);

/** The knobs whose values differ between two profiles. */
function differingKnobs(a: DeviceProfile, b: DeviceProfile): ProfileKnob[] {
  const skip = new Set(['name', 'title', 'source', 'knobSources', 'notes']);
  const text = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
  return (Object.keys(a) as (keyof DeviceProfile)[])
    .filter((k) => !skip.has(k) && text(a[k]) !== text(b[k]))
    .sort() as ProfileKnob[];
}

describe('profile names and aliases', () => {
  test('qemu is an alias of qemu-7.2, resolved by findDeviceProfile', () => {
    expect(DEVICE_PROFILE_ALIASES.qemu).toBe('qemu-7.2');
    expect(findDeviceProfile('qemu')).toBe(QEMU_7_2_PROFILE);
    expect(findDeviceProfile('qemu-7.2')).toBe(QEMU_7_2_PROFILE);
    expect(findDeviceProfile('qemu-10.0')).toBe(QEMU_10_0_PROFILE);
    expect(QEMU_PROFILE).toBe(QEMU_7_2_PROFILE);
    expect(findDeviceProfile('qemu-9.2')).toBeUndefined();
    expect(findDeviceProfile('toString')).toBeUndefined();
  });

  test('DEVICE_PROFILES holds each profile once, under its own name, and no alias', () => {
    for (const [key, profile] of Object.entries(DEVICE_PROFILES)) expect(profile.name).toBe(key);
    expect(new Set(Object.values(DEVICE_PROFILES)).size).toBe(Object.keys(DEVICE_PROFILES).length);
    for (const alias of Object.keys(DEVICE_PROFILE_ALIASES)) expect(Object.keys(DEVICE_PROFILES)).not.toContain(alias);
    for (const target of Object.values(DEVICE_PROFILE_ALIASES)) expect(Object.keys(DEVICE_PROFILES)).toContain(target);
  });

  test('the names for help texts list every profile and every alias with its target', () => {
    expect(deviceProfileNames()).toBe('spec, qemu-7.2, qemu-10.0, cloud-hypervisor, firecracker, qemu (= qemu-7.2)');
  });
});

describe('the QEMU profiles', () => {
  test.each([
    [QEMU_7_2_PROFILE, 'v7.2.0'],
    [QEMU_10_0_PROFILE, 'v10.0.2'],
  ] as const)('every knob of %#: the profile cites its own version of QEMU for it', (profile, tag) => {
    const knobs = Object.keys(profile).filter(
      (k) => !['name', 'title', 'source', 'knobSources', 'notes'].includes(k),
    ) as ProfileKnob[];
    expect(profile.source).toBe(`https://github.com/qemu/qemu/blob/${tag}/hw/virtio/virtio-mem.c`);
    for (const knob of knobs) {
      const source = profile.knobSources?.[knob];
      expect({ knob, source }).toEqual({ knob, source: expect.stringContaining(`/qemu/qemu/blob/${tag}/`) });
      // No link to the other version slips in.
      expect(source).not.toMatch(tag === 'v7.2.0' ? /v10\.0\.2/ : /v7\.2\.0/);
    }
  });

  test('7.2 and 10.0 differ exactly in the wake-up, the persistent-suspend offer and UNPLUG ALL while busy', () => {
    expect(differingKnobs(QEMU_7_2_PROFILE, QEMU_10_0_PROFILE)).toEqual([
      'defaultFeatures',
      'platformCanSuspend',
      'suspendWithoutPersistence',
      'unplugAllWhileBusy',
    ]);
    expect(QEMU_7_2_PROFILE.defaultFeatures).toBe(V1 | PXM);
    expect(QEMU_10_0_PROFILE.defaultFeatures).toBe(V1 | PXM | PS);
    expect(QEMU_7_2_PROFILE.unplugAllWhileBusy).toBe('busy');
    expect(QEMU_10_0_PROFILE.unplugAllWhileBusy).toBe('ack-when-empty');
  });

  test('while the host holds the device busy: 7.2 answers an empty UNPLUG ALL with BUSY, 10.0 and the spec profile ACK it; both QEMUs keep blocks on a system reset', () => {
    expect(QEMU_7_2_PROFILE.unplugAllWhileBusy).toBe('busy');
    expect(QEMU_10_0_PROFILE.unplugAllWhileBusy).toBe('ack-when-empty');
    expect(DEVICE_PROFILES.spec!.unplugAllWhileBusy).toBe('ack-when-empty');
    expect([QEMU_7_2_PROFILE.systemResetWhileBusy, QEMU_10_0_PROFILE.systemResetWhileBusy]).toEqual(['keep', 'keep']);
    expect(DEVICE_PROFILES.spec!.systemResetWhileBusy).toBe('as-system-reset');
  });

  test('a wake-up without PERSISTENT_SUSPEND: 7.2 unplugs every block, 10.0 keeps blocks and contents', () => {
    const run = (profile: DeviceProfile) => {
      const device = makeDevice({ features: V1 | PXM | PS, plugged: [{ first: 2, count: 3 }] }, profile);
      device.writeMemory(BASE + 2n * BS, Uint8Array.of(7));
      expect(device.suspend().persistent).toBe(false);
      expect(device.wake()).toEqual([]);
      return { runs: device.pluggedRuns(), byte: device.readMemory(BASE + 2n * BS, 1) };
    };
    expect(run(QEMU_7_2_PROFILE).runs).toEqual([]);
    expect(run(QEMU_10_0_PROFILE)).toEqual({
      runs: [{ first: 2, count: 3 }],
      byte: { ok: true, data: Uint8Array.of(7) },
    });
  });

  test('both unplug every block on a system reset and keep them on a device reset', () => {
    for (const profile of [QEMU_7_2_PROFILE, QEMU_10_0_PROFILE]) {
      const device = makeDevice({ plugged: [{ first: 1, count: 2 }] }, profile);
      device.deviceReset();
      expect(device.pluggedRuns()).toEqual([{ first: 1, count: 2 }]);
      device.systemReset();
      expect(device.pluggedRuns()).toEqual([]);
    }
  });

  test('the default offer: 10.0 offers PERSISTENT_SUSPEND, 7.2 does not', () => {
    expect(makeDevice({}, QEMU_7_2_PROFILE).offeredFeatures).toBe(V1 | PXM);
    expect(makeDevice({}, QEMU_10_0_PROFILE).offeredFeatures).toBe(V1 | PXM | PS);
  });
});
