import { FIRECRACKER_PROFILE, QEMU_PROFILE } from '../../index';
import { GiB, MiB, UNPLUG_ALL, allowed, answer, makeDevice, send } from '../test/device-fixture';

describe('dev.unplugall', () => {
  test('dev.unplugall.4 dev.unplugall.5: should ACK, leave plugged_size 0 and keep usable ≥ requested', () => {
    const device = makeDevice(
      {
        plugged: [
          { first: 0, count: 8 },
          { first: 100, count: 3 },
        ],
      },
      QEMU_PROFILE,
    );
    const result = send(device, UNPLUG_ALL, 0, 0);
    expect(answer(result)).toBe('ACK');
    expect(device.readConfig().plugged_size).toBe(0n);
    expect(device.pluggedRuns()).toEqual([]);
    expect(device.readConfig().usable_region_size).toBeGreaterThanOrEqual(device.readConfig().requested_size);
    expect(result.violations).toEqual([]);
  });

  test('dev.unplugall.6 dev.cfg.9: may shrink usable_region_size without a notification', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    device.setRequestedSize(800n * MiB);
    device.setRequestedSize(0n);
    const usable = device.readConfig().usable_region_size;
    expect(usable).toBeGreaterThan(0n);
    const result = send(device, UNPLUG_ALL, 0, 0);
    expect(device.readConfig().usable_region_size).toBe(0n);
    expect(result.notified).toBe(false);
    expect(result.violations).toEqual([]);
    const effect = result.chosen.kind === 'response' ? result.chosen.effect : undefined;
    expect(effect).toEqual({ kind: 'unplug-all', usableMin: 0n, usableMax: GiB });
  });

  test('dev.unplugall.1: should ignore addr and nb_blocks (garbage gives the same answer)', () => {
    const a = send(makeDevice({ plugged: [{ first: 0, count: 1 }] }), UNPLUG_ALL, 0, 0);
    const b = send(makeDevice({ plugged: [{ first: 0, count: 1 }] }), UNPLUG_ALL, 0xdeadbeefn, 0xffff, {
      payload_padding: Uint8Array.of(9, 9, 9, 9, 9, 9),
    });
    expect(answer(b)).toBe(answer(a));
    expect(b.chosen.requirements).toEqual(expect.arrayContaining(['dev.unplugall.1', 'dev.unplugall.2']));
  });

  test('dev.unplugall.3: BUSY is permitted; ERROR and NACK are unspecified', () => {
    const result = send(makeDevice(), UNPLUG_ALL, 0, 0);
    expect(allowed(result)).toEqual(['ACK:required', 'BUSY:permitted', 'ERROR:unspecified', 'NACK:unspecified']);
  });

  test('dev.cfg.4: Firecracker zeroes usable_region_size on UNPLUG ALL even with requested_size > 0', () => {
    const device = makeDevice({}, FIRECRACKER_PROFILE);
    device.setRequestedSize(256n * MiB);
    const result = send(device, UNPLUG_ALL, 0, 0);
    expect(result.violations.map((v) => v.requirements).flat()).toContain('dev.cfg.4');
  });
});
