import { describeOutcome } from '../../index';
import { BASE, BS, UNPLUG, answer, makeDevice, send } from '../test/device-fixture';

describe('dev.unplug', () => {
  test('dev.unplug.6 dev.unplug.7: should ACK a valid unplug and subtract it', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 8 }] });
    const result = send(device, UNPLUG, 4, 4);
    expect(answer(result)).toBe('ACK');
    expect(result.chosen.requirements).toEqual(expect.arrayContaining(['dev.unplug.6', 'dev.unplug.7']));
    expect(device.readConfig().plugged_size).toBe(4n * BS);
  });

  test('dev.unplug.3: should answer ERROR for an unaligned, empty or out-of-range unplug', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 8 }] });
    expect(answer(send(device, UNPLUG, BASE + 1n, 1))).toBe('ERROR');
    expect(answer(send(device, UNPLUG, 0, 0))).toBe('ERROR');
    expect(answer(send(device, UNPLUG, 127, 2))).toBe('ERROR');
    expect(device.readConfig().plugged_size).toBe(8n * BS);
  });

  test('dev.unplug.4: should answer ERROR when a covered block is already unplugged', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    const result = send(device, UNPLUG, 1, 2);
    expect(answer(result)).toBe('ERROR');
    expect(result.chosen.requirements).toContain('dev.unplug.4');
  });

  test('should ACK an unplug that takes plugged_size below requested_size (never NACK)', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    const result = send(device, UNPLUG, 0, 2);
    expect(answer(result)).toBe('ACK');
    expect(result.outcomes.some((o) => describeOutcome(o) === 'NACK')).toBe(false);
  });

  test('dev.unplug.5: BUSY is permitted for UNPLUG', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    device.injectBusy(1);
    const result = send(device, UNPLUG, 0, 1);
    expect(answer(result)).toBe('BUSY');
    expect(result.chosen.requirements).toContain('dev.unplug.5');
  });
});
