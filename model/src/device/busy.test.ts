/**
 * The host-made busy state: while the host holds the device busy, PLUG, UNPLUG and UNPLUG ALL
 * that pass their checks are answered BUSY and change nothing; STATE is answered as usual; an
 * empty UNPLUG ALL follows the profile's `unplugAllWhileBusy`; the release ends it.
 */
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
} from '../../../spec/src/index';
import { QEMU_PROFILE, SPEC_PROFILE } from './profiles';
import { BS, activated, answer, makeDevice, send } from './test/device-fixture';

describe('host-busy', () => {
  test('PLUG, UNPLUG and UNPLUG ALL are answered BUSY and change nothing; STATE is answered', () => {
    const device = activated(makeDevice({ plugged: [{ first: 0, count: 2 }] }));
    device.setHostBusy(true);
    expect(answer(send(device, VIRTIO_MEM_REQ_PLUG, 4, 1))).toBe('BUSY');
    expect(answer(send(device, VIRTIO_MEM_REQ_UNPLUG, 0, 1))).toBe('BUSY');
    expect(answer(send(device, VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0))).toBe('BUSY');
    expect(answer(send(device, VIRTIO_MEM_REQ_STATE, 0, 3))).toBe('ACK(MIXED)');
    expect(device.readConfig().plugged_size).toBe(2n * BS);
    expect(device.pluggedRuns()).toEqual([{ first: 0, count: 2 }]);
  });

  test('the request checks run first: an invalid PLUG gets ERROR even while busy', () => {
    const device = activated(makeDevice({ plugged: [{ first: 0, count: 2 }] }));
    device.setHostBusy(true);
    expect(answer(send(device, VIRTIO_MEM_REQ_PLUG, 0, 1))).toBe('ERROR');
  });

  test.each([
    { profile: SPEC_PROFILE, expected: 'ACK' },
    { profile: QEMU_PROFILE, expected: 'BUSY' },
  ])('UNPLUG ALL with nothing plugged while busy: profile $profile.name answers $expected', ({ profile, expected }) => {
    const device = activated(makeDevice({}, profile));
    device.setHostBusy(true);
    expect(answer(send(device, VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0))).toBe(expected);
  });

  test('the release ends it; BUSY answers made while the host was busy use up no injected BUSY', () => {
    const device = activated(makeDevice());
    device.injectBusy(1);
    device.setHostBusy(true);
    expect(answer(send(device, VIRTIO_MEM_REQ_PLUG, 0, 1))).toBe('BUSY');
    expect(answer(send(device, VIRTIO_MEM_REQ_PLUG, 0, 1))).toBe('BUSY');
    device.setHostBusy(false);
    expect(answer(send(device, VIRTIO_MEM_REQ_PLUG, 0, 1))).toBe('BUSY');
    expect(answer(send(device, VIRTIO_MEM_REQ_PLUG, 0, 1))).toBe('ACK');
  });

  test('a device reset drops injected BUSY answers but not the host busy period', () => {
    const device = activated(makeDevice());
    device.setHostBusy(true);
    device.deviceReset();
    activated(device);
    expect(answer(send(device, VIRTIO_MEM_REQ_PLUG, 0, 1))).toBe('BUSY');
  });

  test.each([
    { profile: SPEC_PROFILE, left: [] },
    { profile: QEMU_PROFILE, left: [{ first: 0, count: 2 }] },
  ])('a system reset while busy: profile $profile.name leaves $left plugged', ({ profile, left }) => {
    const device = activated(makeDevice({ plugged: [{ first: 0, count: 2 }] }, profile));
    device.setHostBusy(true);
    device.systemReset();
    expect(device.pluggedRuns()).toEqual(left);
    device.setHostBusy(false);
    device.systemReset();
    expect(device.pluggedRuns()).toEqual([]);
  });
});
