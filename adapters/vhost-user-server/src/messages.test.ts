import { Request } from '../../vhost-user/src/protocol';
import type { Chain, Completion } from '../../core/src/contract';
import { VhostUserDevice } from './device';
import { FRONT_END_MESSAGES, messageRule, payloadProblem, takeFd } from './messages';

/** A device with only the required core: every optional ability keeps its default. */
class BareDevice extends VhostUserDevice {
  readonly name = 'bare';
  readonly offeredFeatures = 0n;
  readonly configChanges = 0;
  ackFeatures(): void {}
  readStatus(): number {
    return 0;
  }
  writeStatus(): void {}
  reset(): void {}
  processChain(chain: Chain): Completion {
    void chain;
    return { kind: 'no-used-entry' };
  }
  failQueue(): void {}
}

describe('front-end message rules', () => {
  test('should have a rule for every request the back-end handles and none for the others', () => {
    const handled = [
      'GET_FEATURES',
      'SET_FEATURES',
      'SET_OWNER',
      'RESET_OWNER',
      'SET_MEM_TABLE',
      'SET_VRING_NUM',
      'SET_VRING_ADDR',
      'SET_VRING_BASE',
      'GET_VRING_BASE',
      'SET_VRING_KICK',
      'SET_VRING_CALL',
      'SET_VRING_ERR',
      'GET_PROTOCOL_FEATURES',
      'SET_PROTOCOL_FEATURES',
      'GET_QUEUE_NUM',
      'SET_VRING_ENABLE',
      'SET_BACKEND_REQ_FD',
      'GET_CONFIG',
      'SET_CONFIG',
      'RESET_DEVICE',
      'GET_MAX_MEM_SLOTS',
      'ADD_MEM_REG',
      'REM_MEM_REG',
      'SET_STATUS',
      'GET_STATUS',
    ] as const;
    expect(
      Object.keys(FRONT_END_MESSAGES)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual(handled.map((n) => Request[n]).sort((a, b) => a - b));
    expect(messageRule(Request.SET_LOG_BASE)).toBeUndefined();
    expect(messageRule(0x564d0001)).toBeUndefined();
  });

  test.each([
    [Request.GET_FEATURES, 0, undefined],
    [Request.GET_FEATURES, 3, 'payload of 3 bytes, expected 0'],
    [Request.SET_FEATURES, 4, 'payload of 4 bytes, expected 8'],
    [Request.SET_VRING_ADDR, 39, 'payload of 39 bytes, expected 40'],
    [Request.SET_MEM_TABLE, 4, 'payload of 4 bytes is shorter than the table header'],
    [Request.SET_MEM_TABLE, 40, undefined],
    [Request.GET_CONFIG, 11, 'payload of 11 bytes is shorter than the config header'],
    [Request.SET_CONFIG, 1, undefined],
  ])('should judge request %d with a %d-byte payload: %s', (request, size, problem) => {
    expect(payloadProblem(messageRule(request)!.payload, size)).toBe(problem);
  });

  test('should take exactly one fd and leave the message without it', () => {
    const m = { request: Request.ADD_MEM_REG, flags: 1, payload: Buffer.alloc(40), fds: [7] };
    expect(takeFd(m)).toBe(7);
    expect(m.fds).toEqual([-1]);
    expect(takeFd({ ...m, fds: [1, 2] })).toBe('expected 1 fd, got 2');
  });
});

describe('VhostUserDevice', () => {
  test('should answer unsupported for abilities a device does not override', () => {
    const device = new BareDevice();
    expect(device.readConfig()).toEqual({ kind: 'unsupported', reason: 'the device has no configuration space' });
    expect(device.writeConfig(0, new Uint8Array(1))).toEqual({
      kind: 'unsupported',
      reason: 'the device configuration is read-only',
    });
    expect(device.queueCount).toBe(1);
  });
});
