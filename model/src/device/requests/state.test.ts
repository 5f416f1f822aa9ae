import { VirtioMemDevice, decodeResponse } from '../../index';
import { BASE, BS, PLUG, STATE, allowed, answer, makeDevice, send } from '../test/device-fixture';

describe('dev.state', () => {
  test('dev.state.5 dev.state.6 dev.state.7: should report PLUGGED, UNPLUGGED and MIXED', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 4 }] });
    const plugged = send(device, STATE, 0, 4);
    expect(answer(plugged)).toBe('ACK(PLUGGED)');
    expect(plugged.chosen.requirements).toContain('dev.state.5');
    expect(decodeResponse(plugged.used!.written)).toMatchObject({ ok: true, value: { type: 0, state: 0 } });
    expect(answer(send(device, STATE, 4, 4))).toBe('ACK(UNPLUGGED)');
    const mixed = send(device, STATE, 2, 4);
    expect(answer(mixed)).toBe('ACK(MIXED)');
    expect(mixed.chosen.requirements).toContain('dev.state.7');
  });

  test('dev.state.3: should answer ERROR for unaligned, empty and out-of-range STATE; never BUSY', () => {
    const device = makeDevice();
    for (const [addr, nb] of [
      [BASE + 4096n, 1],
      [BASE, 0],
      [BASE + 128n * BS, 1],
    ] as const) {
      const result = send(device, STATE, addr, nb);
      expect(answer(result)).toBe('ERROR');
      expect(allowed(result)).toEqual(['ERROR:required']);
    }
  });

  test('dev.state.4: should answer STATE over 65,535 blocks with one word-wise count', () => {
    const device = new VirtioMemDevice({ block_size: BS, addr: 0n, region_size: 1n << 40n, requested_size: 1n << 39n });
    send(device, PLUG, 0n, 65535);
    expect(answer(send(device, STATE, 0n, 65535))).toBe('ACK(PLUGGED)');
    expect(answer(send(device, STATE, BS, 65535))).toBe('ACK(MIXED)');
  });

  test('dev.state.1 dev.state.2: padding does not change the answer', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 1 }] });
    const result = send(device, STATE, 0, 1, {
      padding: Uint8Array.of(1, 1, 1, 1, 1, 1),
      payload_padding: Uint8Array.of(2, 2, 2, 2, 2, 2),
    });
    expect(answer(result)).toBe('ACK(PLUGGED)');
    expect(result.chosen.requirements).toEqual(expect.arrayContaining(['dev.state.1', 'dev.state.2']));
  });
});
