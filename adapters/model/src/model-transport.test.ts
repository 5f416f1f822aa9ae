import { SPEC_PROFILE, ModelHost, VirtioMemDevice, deviceRegisters } from '../../../model/src/index';
import { virtioHandshake, virtioHandshakeSync } from '../../virtio/src/index';
import { modelTransport } from './model-transport';

describe('the handshake run synchronously on a model device (as the oracle does) and asynchronously over the model transport', () => {
  const MiB = 1n << 20n;
  const setup = {
    block_size: 2n * MiB,
    region_size: 128n * MiB,
    addr: 1n << 32n,
    requested_size: 16n * MiB,
    node_id: 0,
    features: 0x1_0000_0003n,
    plugged: [],
  };

  test.each([
    ['every offered feature', (offered: bigint) => offered],
    ['no feature (FEATURES_OK refused without VERSION_1)', () => 0n],
    ['a feature that was not offered', (offered: bigint) => offered | 4n],
    ['the device-specific bits only', (offered: bigint) => offered & 0xffn],
  ] as const)('should agree on %s', async (_name, accept) => {
    const viaModel = new VirtioMemDevice(setup, SPEC_PROFILE);
    const built = ModelHost.create(setup, SPEC_PROFILE);
    if (built.kind !== 'ready') throw new Error(built.reason);
    const viaLayer = built.host.device;
    const expected = virtioHandshakeSync(deviceRegisters(viaModel), accept);
    expect(await virtioHandshake(modelTransport(built.host), accept)).toEqual(expected);
    expect(viaLayer.deviceStatus).toBe(viaModel.deviceStatus);
  });
});
