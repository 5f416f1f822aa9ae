import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  featureMask,
} from '../../../spec/src/index';
import {
  CLOUD_HYPERVISOR_PROFILE,
  DeviceParamsError,
  DeviceProfile,
  DeviceUsageError,
  FIRECRACKER_PROFILE,
  QEMU_PROFILE,
  SPEC_PROFILE,
  VirtioMemDevice,
  encodeRequest,
} from '../index';
import { BASE, BS, GiB, MiB, UNPLUG_ALL, activated, makeDevice } from './test/device-fixture';

describe('VirtioMemDevice construction', () => {
  test('should start with every block unplugged and usable_region_size from the profile', () => {
    const spec = makeDevice();
    expect(spec.readConfig().plugged_size).toBe(0n);
    expect(spec.readConfig().usable_region_size).toBe(256n * MiB);
    const qemu = makeDevice({}, QEMU_PROFILE);
    expect(qemu.readConfig().usable_region_size).toBe(512n * MiB);
    const ch = makeDevice({}, CLOUD_HYPERVISOR_PROFILE);
    expect(ch.readConfig().usable_region_size).toBe(1n * GiB);
  });

  test('should reproduce the QEMU example: 16 GiB region, 1 GiB requested → 1.25 GiB usable', () => {
    const device = new VirtioMemDevice(
      { block_size: BS, addr: BASE, region_size: 16n * GiB, requested_size: 1n * GiB },
      QEMU_PROFILE,
    );
    expect(device.readConfig().usable_region_size).toBe(1280n * MiB);
  });

  test('should account initial plugged blocks in plugged_size', () => {
    const device = makeDevice({ plugged: [{ first: 3, count: 5 }] });
    expect(device.readConfig().plugged_size).toBe(5n * BS);
    expect(device.pluggedRuns()).toEqual([{ first: 3, count: 5 }]);
  });

  test('should refuse parameters it cannot model, naming the field', () => {
    expect(() => makeDevice({ block_size: 0n })).toThrow(DeviceParamsError);
    expect(() => makeDevice({ block_size: 1n, region_size: 1n << 40n })).toThrow(/region_size/);
    expect(() => makeDevice({ plugged: [{ first: 510, count: 5 }] })).toThrow(/plugged/);
  });

  test('should keep a 1 TiB region of 2 MiB blocks in a few hundred KiB', () => {
    const device = new VirtioMemDevice({ block_size: BS, addr: 0n, region_size: 1n << 40n, requested_size: 0n });
    expect(device.stateBytes).toBeLessThanOrEqual(256 * 1024);
  });
});

describe('dev.cfg.5 dev.cfg.6 configuration invariants', () => {
  test('dev.cfg.5: should report a block_size that is not a power of two', () => {
    const device = makeDevice({ block_size: 6n * MiB, region_size: 600n * MiB, requested_size: 0n });
    expect(
      device
        .checkInvariants()
        .map((v) => v.requirements)
        .flat(),
    ).toContain('dev.cfg.5');
  });

  test('dev.cfg.6: should report fields that are not multiples of block_size', () => {
    const device = makeDevice({ region_size: 1n * GiB + MiB });
    const violation = device.checkInvariants().find((v) => v.invariant === 'fields-aligned');
    expect(violation?.requirements).toEqual(['dev.cfg.6']);
    expect(violation?.detail).toMatch(/region_size/);
  });

  test('dev.cfg.4: should report usable_region_size below requested_size', () => {
    const device = makeDevice({ usable_region_size: 128n * MiB });
    expect(device.checkInvariants().map((v) => v.invariant)).toContain('usable-covers-requested');
  });

  test('should report no violation for a conforming configuration', () => {
    expect(makeDevice().checkInvariants()).toEqual([]);
  });
});

describe('host resize', () => {
  test('dev.cfg.9 dev.cfg.4: should grow usable first and notify when requested_size changes', () => {
    const device = activated(makeDevice({}, QEMU_PROFILE));
    const result = device.setRequestedSize(768n * MiB);
    expect(result).toMatchObject({ ok: true, notified: true, usableAfter: 1n * GiB, violations: [] });
    expect(device.readConfig().requested_size).toBe(768n * MiB);
  });

  test('dev.cfg.8: should never shrink usable_region_size on a resize', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    device.setRequestedSize(768n * MiB);
    const result = device.setRequestedSize(2n * BS);
    expect(result.ok && result.usableAfter).toBe(1n * GiB);
  });

  test('dev.cfg.11: QEMU notifies even when nothing changed; the spec profile does not', () => {
    const qemu = activated(makeDevice({}, QEMU_PROFILE));
    expect(qemu.setRequestedSize(256n * MiB)).toMatchObject({ ok: true, notified: true });
    const spec = activated(makeDevice());
    expect(spec.setRequestedSize(256n * MiB)).toMatchObject({ ok: true, notified: false });
  });

  test('dev.cfg.9: a resize before DRIVER_OK takes effect without a notification (no driver to receive it)', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    expect(device.setRequestedSize(768n * MiB)).toMatchObject({ ok: true, notified: false, violations: [] });
    expect(device.notificationCount).toBe(0);
    activated(device);
    expect(device.readConfig().requested_size).toBe(768n * MiB);
    expect(device.setRequestedSize(512n * MiB)).toMatchObject({ ok: true, notified: true });
    expect(device.notificationCount).toBe(1);
  });

  test('should refuse unaligned sizes and sizes beyond the region, changing nothing', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    expect(device.setRequestedSize(MiB)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/multiple of block_size/),
    });
    expect(device.setRequestedSize(2n * GiB)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/exceeds region_size/),
    });
    expect(device.readConfig().requested_size).toBe(256n * MiB);
    expect(device.notificationCount).toBe(0);
  });

  test('cloud-hypervisor refuses a resize to the current value', () => {
    expect(makeDevice({}, CLOUD_HYPERVISOR_PROFILE).setRequestedSize(256n * MiB)).toMatchObject({ ok: false });
  });

  test('Firecracker grows usable in 128 MiB slots', () => {
    const device = makeDevice({ requested_size: 0n }, FIRECRACKER_PROFILE);
    expect(device.readConfig().usable_region_size).toBe(0n);
    device.setRequestedSize(130n * MiB);
    expect(device.readConfig().usable_region_size).toBe(256n * MiB);
  });
});

describe('resets', () => {
  test('dev.init.2: a device reset changes no block and no configuration field', () => {
    const device = makeDevice({ plugged: [{ first: 1, count: 3 }] }, QEMU_PROFILE);
    const config = device.readConfig();
    expect(device.deviceReset()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([{ first: 1, count: 3 }]);
    expect(device.readConfig()).toEqual(config);
    expect(device.deviceStatus).toBe(0);
  });

  test('dev.op.7 dev.op.6: a QEMU system reset unplugs everything and may shrink usable', () => {
    const device = makeDevice({ plugged: [{ first: 1, count: 3 }] }, QEMU_PROFILE);
    device.setRequestedSize(768n * MiB);
    device.setRequestedSize(0n);
    expect(device.systemReset()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([]);
    expect(device.readConfig()).toMatchObject({ plugged_size: 0n, usable_region_size: 0n });
  });

  test('a profile that keeps blocks on system reset keeps them', () => {
    const device = makeDevice({ plugged: [{ first: 1, count: 3 }] }, CLOUD_HYPERVISOR_PROFILE);
    device.systemReset();
    expect(device.pluggedRuns()).toEqual([{ first: 1, count: 3 }]);
  });
});

describe('snapshot', () => {
  test('should hand out a copy: mutating a snapshot does not change the device', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    const snapshot = device.snapshot(true);
    (snapshot.config as { plugged_size: bigint }).plugged_size = 0n;
    snapshot.config.padding[0] = 0xff;
    expect(device.readConfig().plugged_size).toBe(2n * BS);
    expect(device.readConfig().padding[0]).toBe(0);
    expect(snapshot.blocksDigest).toBe('0+2');
  });
});

describe('applyObserved', () => {
  test('should keep an oracle in step with an observed UNPLUG ALL and its usable size', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    const evaluation = device.evaluate({ readable: [encodeRequest({ type: UNPLUG_ALL })], writableSizes: [10] });
    device.applyObserved(evaluation.outcomes[0], 512n * MiB);
    expect(device.readConfig()).toMatchObject({ plugged_size: 0n, usable_region_size: 512n * MiB });
  });
});

describe('suspend and wake-up (dev.op.8, dev.init.4)', () => {
  const V1 = featureMask(VIRTIO_F_VERSION_1);
  const PS = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);
  const negotiate = (device: VirtioMemDevice, accepted: bigint): void => {
    device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    device.writeDriverFeatures(accepted);
    expect(
      device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK).refusal,
    ).toBeUndefined();
  };
  const plugged = (profile: DeviceProfile): VirtioMemDevice => {
    const device = makeDevice({ plugged: [{ first: 2, count: 3 }] }, profile);
    expect(device.writeMemory(BASE + 2n * BS + 5n, Uint8Array.of(1, 2, 3)).ok).toBe(true);
    return device;
  };

  test('dev.init.4: the spec profile offers PERSISTENT_SUSPEND by default', () => {
    expect(SPEC_PROFILE.defaultFeatures & PS).toBe(PS);
    expect(makeDevice().offeredFeatures).toBe(V1 | PS);
  });

  test('dev.op.8: with PERSISTENT_SUSPEND negotiated block states and contents survive suspend and wake-up', () => {
    const device = plugged(SPEC_PROFILE);
    negotiate(device, V1 | PS);
    const before = device.snapshot(true);
    expect(device.suspend()).toEqual({ persistent: true, violations: [] });
    expect(device.suspended).toBe(true);
    expect(device.wake()).toEqual([]);
    expect(device.suspended).toBe(false);
    expect(device.snapshot(true)).toEqual(before);
    expect(device.readMemory(BASE + 2n * BS + 5n, 3)).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
    // The virtio status is the driver's business: the wake-up leaves it alone.
    expect(device.negotiatedFeatures).toBe(V1 | PS);
  });

  test('dev.op.8: the negotiation counts even when the driver reset the device before suspending (Linux freeze)', () => {
    const device = makeDevice({ features: V1 | PS, plugged: [{ first: 2, count: 3 }] }, QEMU_PROFILE);
    negotiate(device, V1 | PS);
    device.writeStatus(0);
    expect(device.negotiatedFeatures).toBe(0n);
    expect(device.lastNegotiatedFeatures).toBe(V1 | PS);
    expect(device.suspend().persistent).toBe(true);
    expect(device.wake()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([{ first: 2, count: 3 }]);
    // A system reset forgets the negotiation.
    device.systemReset();
    expect(device.lastNegotiatedFeatures).toBe(0n);
  });

  test('without PERSISTENT_SUSPEND the QEMU 7.2 profile unplugs everything on wake-up, discarding contents', () => {
    const device = plugged(QEMU_PROFILE);
    negotiate(device, V1);
    expect(device.suspend().persistent).toBe(false);
    expect(device.wake()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([]);
    expect(device.readConfig().plugged_size).toBe(0n);
    expect(device.contentBytes).toBe(0);
  });

  test.each([
    ['spec', SPEC_PROFILE],
    ['cloud-hypervisor', CLOUD_HYPERVISOR_PROFILE],
    ['firecracker', FIRECRACKER_PROFILE],
  ] as const)('without PERSISTENT_SUSPEND the %s profile keeps blocks and contents on wake-up', (_name, profile) => {
    const device = plugged(profile);
    expect(device.suspend().persistent).toBe(false);
    expect(device.wake()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([{ first: 2, count: 3 }]);
    expect(device.readMemory(BASE + 2n * BS + 5n, 3)).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
  });

  test('refuses to be suspended twice or woken without a suspend', () => {
    const device = makeDevice();
    expect(() => device.wake()).toThrow(DeviceUsageError);
    device.suspend();
    expect(() => device.suspend()).toThrow(DeviceUsageError);
    device.systemReset();
    expect(device.suspended).toBe(false);
  });
});
