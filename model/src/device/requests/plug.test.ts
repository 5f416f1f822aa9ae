import { CLOUD_HYPERVISOR_PROFILE, QEMU_PROFILE } from '../../index';
import { BASE, BS, MiB, PLUG, allowed, answer, choiceConforms, makeDevice, send } from '../test/device-fixture';

describe('dev.plug', () => {
  test('dev.plug.6 dev.plug.7: should ACK a valid plug and add it to plugged_size', () => {
    const device = makeDevice();
    const result = send(device, PLUG, 0, 4);
    expect(answer(result)).toBe('ACK');
    expect(result.chosen.class).toBe('required');
    expect(result.chosen.requirements).toEqual(expect.arrayContaining(['dev.plug.6', 'dev.plug.7']));
    expect(device.readConfig().plugged_size).toBe(4n * BS);
    expect(result.violations).toEqual([]);
    expect(result.used?.length).toBe(10);
  });

  test.each([
    ['unaligned addr', BASE + MiB, 1],
    ['nb_blocks = 0', BASE, 0],
    ['addr below the region', BASE - BS, 1],
    ['range past the usable region', BASE + 127n * BS, 2],
    ['addr far beyond the region', 1n << 62n, 1],
  ])('dev.plug.3: should answer ERROR for %s', (_label, addr, nb) => {
    const device = makeDevice();
    const result = send(device, PLUG, addr, nb);
    expect(answer(result)).toBe('ERROR');
    expect(result.chosen.requirements).toContain('dev.plug.3');
    expect(allowed(result)).toEqual(['ERROR:required', 'BUSY:permitted']);
    expect(device.readConfig().plugged_size).toBe(0n);
  });

  test('dev.plug.4: should answer ERROR when a covered block is already plugged', () => {
    const device = makeDevice({ plugged: [{ first: 5, count: 1 }] });
    const result = send(device, PLUG, 4, 3);
    expect(answer(result)).toBe('ERROR');
    expect(result.chosen.requirements).toContain('dev.plug.4');
    expect(device.readConfig().plugged_size).toBe(BS);
  });

  test('dev.plug.4: with the state and the budget both failing, ERROR is required and NACK unspecified; QEMU picks NACK', () => {
    const params = { requested_size: 2n * BS, usable_region_size: 64n * BS, plugged: [{ first: 0, count: 2 }] };
    const spec = send(makeDevice(params), PLUG, 1, 2);
    expect(allowed(spec)).toEqual(['ERROR:required', 'NACK:unspecified', 'BUSY:permitted']);
    expect(answer(spec)).toBe('ERROR');
    const qemu = send(makeDevice(params, QEMU_PROFILE), PLUG, 1, 2);
    expect(answer(qemu)).toBe('NACK');
    expect(choiceConforms(qemu)).toBe(true);
  });

  test('should prefer NACK for a plug beyond requested_size (descriptive text), allow ERROR, discourage ACK at target', () => {
    const device = makeDevice({
      requested_size: 2n * BS,
      usable_region_size: 64n * BS,
      plugged: [{ first: 0, count: 2 }],
    });
    const result = send(device, PLUG, 10, 1);
    expect(answer(result)).toBe('NACK');
    expect(allowed(result)).toEqual(['NACK:recommended', 'ERROR:unspecified', 'ACK:discouraged', 'BUSY:permitted']);
    expect(device.readConfig().plugged_size).toBe(2n * BS);
  });

  test('should treat an overshooting plug (below target, ending above) as NACK recommended, ACK unspecified', () => {
    const device = makeDevice({
      requested_size: 4n * BS,
      usable_region_size: 64n * BS,
      plugged: [{ first: 0, count: 2 }],
    });
    const result = send(device, PLUG, 2, 3);
    expect(allowed(result)).toEqual(['NACK:recommended', 'ERROR:unspecified', 'ACK:unspecified', 'BUSY:permitted']);
  });

  test('dev.plug.3: cloud-hypervisor checks the budget first and answers NACK for nb_blocks = 0 — nonconforming', () => {
    const device = makeDevice({ requested_size: 2n * BS, plugged: [{ first: 0, count: 3 }] }, CLOUD_HYPERVISOR_PROFILE);
    const result = send(device, PLUG, 4, 0);
    expect(answer(result)).toBe('NACK');
    expect(result.chosen.class).toBe('nonconforming');
    expect(result.chosen.requirements).toContain('dev.plug.3');
    expect(choiceConforms(result)).toBe(false);
  });

  test('dev.plug.1 dev.plug.2: should ignore header and payload padding, citing the statements', () => {
    const clean = send(makeDevice(), PLUG, 0, 1);
    const device = makeDevice();
    const dirty = send(device, PLUG, 0, 1, {
      padding: Uint8Array.of(1, 2, 3, 4, 5, 6),
      payload_padding: Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
    });
    expect(answer(dirty)).toBe(answer(clean));
    expect(dirty.used?.written).toEqual(clean.used?.written);
    expect(dirty.nonzeroPadding.map((p) => p.field)).toEqual(['padding', 'payload_padding']);
    expect(dirty.chosen.requirements).toEqual(expect.arrayContaining(['dev.plug.1', 'dev.plug.2']));
  });

  test('dev.plug.5: should answer BUSY when busy and change nothing; BUSY is permitted', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    device.injectBusy(1);
    const busy = send(device, PLUG, 0, 1);
    expect(answer(busy)).toBe('BUSY');
    expect(busy.chosen.class).toBe('permitted');
    expect(device.readConfig().plugged_size).toBe(0n);
    expect(answer(send(device, PLUG, 0, 1))).toBe('ACK');
  });

  test('dev.cfg.10: should not notify when only plugged_size changes, but bump the config generation', () => {
    const device = makeDevice();
    const generation = device.configGeneration;
    const result = send(device, PLUG, 0, 1);
    expect(result.notified).toBe(false);
    expect(device.configGeneration).not.toBe(generation);
  });

  test('should write a 10-byte response with zero padding', () => {
    const result = send(makeDevice(), PLUG, 0, 1);
    expect(result.used?.written).toEqual(new Uint8Array(10));
  });
});
