import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE as A,
  VIRTIO_CONFIG_S_DRIVER as D,
  VIRTIO_CONFIG_S_DRIVER_OK as OK,
  VIRTIO_CONFIG_S_FEATURES_OK as F,
} from '../../../spec/src/index';
import { VirtioTransport, virtioHandshake } from './index';

/** A device behind a fake transport that records every call; `refuse` features make FEATURES_OK not stick. */
function fakeTransport(offered: bigint, refuse = 0n): { transport: VirtioTransport; calls: string[] } {
  const calls: string[] = [];
  let status = 0xff;
  let driverFeatures = 0n;
  const transport: VirtioTransport = {
    reset: async () => {
      calls.push('reset');
      status = 0;
    },
    readStatus: async () => {
      calls.push(`read-status ${status}`);
      return status;
    },
    writeStatus: async (value) => {
      calls.push(`write-status ${value}`);
      status = value & F && driverFeatures & refuse ? value & ~F : value;
    },
    readDeviceFeatures: async () => {
      calls.push('read-features');
      return offered;
    },
    writeDriverFeatures: async (features) => {
      calls.push(`write-features 0x${features.toString(16)}`);
      driverFeatures = features;
    },
    setUpQueues: async () => void calls.push('set-up-queues'),
  };
  return { transport, calls };
}

describe('virtioHandshake (VIRTIO 1.4 §3.1.1)', () => {
  test('should run reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK re-read, queues and DRIVER_OK in order', async () => {
    const { transport, calls } = fakeTransport(0x1_0000_0003n);
    const result = await virtioHandshake(transport, (offered) => offered & ~2n);
    expect(result).toEqual({
      offered: 0x1_0000_0003n,
      accepted: 0x1_0000_0001n,
      featuresOk: true,
      status: A | D | F | OK,
    });
    expect(calls).toEqual([
      'reset',
      `write-status ${A}`,
      `write-status ${A | D}`,
      'read-features',
      'write-features 0x100000001',
      `write-status ${A | D | F}`,
      `read-status ${A | D | F}`,
      'set-up-queues',
      `write-status ${A | D | F | OK}`,
      `read-status ${A | D | F | OK}`,
    ]);
  });

  test('should stop without queues or DRIVER_OK when FEATURES_OK does not stick', async () => {
    const { transport, calls } = fakeTransport(0x3n, 0x2n);
    const result = await virtioHandshake(transport, (offered) => offered);
    expect(result).toEqual({ offered: 3n, accepted: 3n, featuresOk: false, status: A | D });
    expect(calls).not.toContain('set-up-queues');
    expect(calls[calls.length - 1]).toBe(`read-status ${A | D}`);
  });
});
