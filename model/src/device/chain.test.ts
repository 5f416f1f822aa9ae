import { CLOUD_HYPERVISOR_PROFILE, QEMU_PROFILE, describeOutcome, encodeRequest } from '../index';
import { BASE, PLUG, allowed, answer, makeDevice, send } from './test/device-fixture';

describe('malformed chains', () => {
  test('should treat an unknown type as unspecified; QEMU flags NEEDS_RESET and returns no used entry', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    const result = send(device, 7, 0, 1);
    expect(result.problem).toBe('unknown-type');
    expect(allowed(result)).toEqual([
      'needs-reset:unspecified',
      'error-response:unspecified',
      'used-length-zero:unspecified',
      'no-used-entry:discouraged',
    ]);
    expect(result.used).toBeNull();
    expect(device.needsReset).toBe(true);
    expect(result.notified).toBe(true);
    // Nothing is processed until a device reset.
    expect(send(device, PLUG, 0, 1).used).toBeNull();
    device.deviceReset();
    expect(answer(send(device, PLUG, 0, 1))).toBe('ACK');
  });

  test('should flag a short request buffer and a short response buffer', () => {
    const device = makeDevice();
    const short = device.processChain({ readable: [new Uint8Array(20)], writableSizes: [10] });
    expect(short.problem).toBe('short-request');
    const noRoom = makeDevice().processChain({
      readable: [encodeRequest({ type: PLUG, addr: BASE, nb_blocks: 1 })],
      writableSizes: [8],
    });
    expect(noRoom.problem).toBe('short-response');
    expect(noRoom.outcomes.some((o) => describeOutcome(o) === 'error-response')).toBe(false);
  });

  test('cloud-hypervisor answers ERROR to an unknown type', () => {
    const result = send(makeDevice({}, CLOUD_HYPERVISOR_PROFILE), 9, 0, 1);
    expect(answer(result)).toBe('error-response');
    expect(result.used?.length).toBe(10);
  });

  test('should accept a request split over descriptors (Message Framing); single-descriptor profiles refuse it', () => {
    const bytes = encodeRequest({ type: PLUG, addr: BASE, nb_blocks: 1 });
    const chain = { readable: [bytes.subarray(0, 8), bytes.subarray(8)], writableSizes: [4, 6] };
    const spec = makeDevice().processChain(chain);
    expect(answer(spec)).toBe('ACK');
    const ch = makeDevice({}, CLOUD_HYPERVISOR_PROFILE).processChain(chain);
    expect(ch.chosen.class).toBe('nonconforming');
    expect(ch.used?.length).toBe(0);
  });
});
