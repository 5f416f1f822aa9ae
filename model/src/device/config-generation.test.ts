/**
 * dev.virtio.6 (§4.1.4.3.1): the model changes its configuration generation with every change of
 * the configuration a driver can read, whatever caused it, and only then.
 */
import { findDeviceProfile } from '../index';
import { BS, MiB, PLUG, UNPLUG, UNPLUG_ALL, activated, makeDevice, send } from './test/device-fixture';
import type { VirtioMemDevice } from './device';

/** Runs `change` and says whether the configuration bytes and the generation changed. */
function observe(device: VirtioMemDevice, change: () => void): { config: boolean; generation: boolean } {
  const bytes = device.readConfigBytes();
  const generation = device.configGeneration;
  change();
  const after = device.readConfigBytes();
  return { config: after.some((b, i) => b !== bytes[i]), generation: device.configGeneration !== generation };
}

describe('config_generation follows every configuration change (dev.virtio.6)', () => {
  const both = { config: true, generation: true };
  const neither = { config: false, generation: false };

  test('PLUG, UNPLUG and UNPLUG ALL that change plugged_size', () => {
    const device = activated(makeDevice());
    expect(observe(device, () => send(device, PLUG, 0, 4))).toEqual(both);
    expect(observe(device, () => send(device, UNPLUG, 2, 2))).toEqual(both);
    expect(observe(device, () => send(device, UNPLUG_ALL, 0, 0))).toEqual(both);
  });

  test('requests that change nothing leave it alone', () => {
    const device = activated(makeDevice());
    expect(observe(device, () => send(device, UNPLUG_ALL, 0, 0))).toEqual(neither);
    expect(observe(device, () => send(device, PLUG, 1000, 1))).toEqual(neither);
  });

  test('host resizes, with a driver and before one, including a usable_region_size that grows', () => {
    const device = makeDevice({ requested_size: 0n });
    expect(observe(device, () => device.setRequestedSize(64n * MiB))).toEqual(both);
    activated(device);
    expect(observe(device, () => device.setRequestedSize(1024n * MiB))).toEqual(both);
    expect(observe(device, () => device.setRequestedSize(1024n * MiB))).toEqual(neither);
  });

  test('a system reset that unplugs everything, and a wake-up that does (profile without persistence)', () => {
    const device = activated(makeDevice());
    send(device, PLUG, 0, 2);
    expect(observe(device, () => device.systemReset())).toEqual(both);

    // The qemu profile unplugs everything on a wake-up without PERSISTENT_SUSPEND (it does not offer it).
    const qemu = findDeviceProfile('qemu')!;
    const other = activated(makeDevice({}, qemu));
    send(other, PLUG, 0, 2);
    const woken = observe(other, () => {
      other.suspend();
      other.wake();
    });
    expect(woken).toEqual(both);
  });

  test('a device reset keeps the configuration, and so the generation', () => {
    const device = activated(makeDevice());
    send(device, PLUG, 0, 1);
    expect(observe(device, () => device.deviceReset())).toEqual(neither);
    expect(device.readConfig().plugged_size).toBe(BS);
  });
});
