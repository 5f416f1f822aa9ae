import { RESPONSE_CODE_NAMES } from '../../../spec/src/index';
import { describeOutcome, encodeRequest, singleRequestChain } from '../index';
import type { DeviceOutcome, DeviceSteering } from '../index';
import { BASE, BS, MiB, PLUG, UNPLUG_ALL, activated, makeDevice, send } from './test/device-fixture';
import { responseOutcome } from './build-outcome';

const plugBlock = (block: number, nb_blocks = 1): ReturnType<typeof singleRequestChain> =>
  singleRequestChain(encodeRequest({ type: PLUG, addr: BASE + BigInt(block) * BS, nb_blocks }));

describe('a steered device', () => {
  test('takes the conforming outcome the steering picks instead of the profile’s, with its effect', () => {
    const device = activated(makeDevice());
    const busy: DeviceSteering = {
      chooseOutcome: (evaluation) => evaluation.outcomes.find((o) => describeOutcome(o) === 'BUSY'),
    };
    const result = device.processChain(plugBlock(0), busy);
    expect(describeOutcome(result.chosen)).toBe('BUSY');
    expect(result.response?.type).toBe(RESPONSE_CODE_NAMES.indexOf('BUSY'));
    expect(device.isPlugged(0)).toBe(false);
    // Without steering the spec profile acknowledges and plugs.
    expect(describeOutcome(device.processChain(plugBlock(0)).chosen)).toBe('ACK');
    expect(device.isPlugged(0)).toBe(true);
  });

  test('ignores an outcome outside the conforming set', () => {
    const device = activated(makeDevice());
    const nack: DeviceOutcome = responseOutcome('NACK', 'recommended', [], { kind: 'none' }, 'made up');
    const result = device.processChain(plugBlock(0), { chooseOutcome: () => nack });
    expect(describeOutcome(result.chosen)).toBe('ACK');
    expect(device.isPlugged(0)).toBe(true);
  });

  test('takes a conforming usable_region_size after a resize and an UNPLUG ALL, and ignores others', () => {
    const device = activated(makeDevice({ requested_size: 0n }));
    device.setRequestedSize(64n * MiB, { chooseUsable: () => 320n * MiB });
    expect(device.readConfig().usable_region_size).toBe(320n * MiB);
    // Shrinking on a resize (dev.cfg.8), unaligned, below requested_size or beyond the region: not followed.
    for (const wanted of [128n * MiB, 321n * MiB, 2n * MiB, 2048n * MiB]) {
      device.setRequestedSize(64n * MiB, { chooseUsable: () => wanted });
      expect(device.readConfig().usable_region_size).toBe(320n * MiB);
    }
    send(device, PLUG, 0, 2);
    const unplugAll = singleRequestChain(encodeRequest({ type: UNPLUG_ALL, addr: 0n, nb_blocks: 0 }));
    // UNPLUG ALL may shrink the usable region, down to requested_size (the spec profile would recompute 64 MiB).
    device.processChain(unplugAll, { chooseUsable: (change) => (change === 'unplug-all' ? 96n * MiB : undefined) });
    expect(device.readConfig().usable_region_size).toBe(96n * MiB);
    expect(device.readConfig().plugged_size).toBe(0n);
  });

  test('keeps or unplugs the blocks on a system reset as the steering says, with a conforming usable_region_size', () => {
    const device = activated(makeDevice({ requested_size: 64n * MiB }));
    send(device, PLUG, 0, 2);
    device.systemReset({ chooseResetUnplug: () => false });
    expect(device.readConfig().plugged_size).toBe(2n * BS);
    expect(device.isPlugged(1)).toBe(true);
    device.systemReset({ chooseResetUnplug: () => true, chooseUsable: () => 128n * MiB });
    expect(device.readConfig().plugged_size).toBe(0n);
    expect(device.readConfig().usable_region_size).toBe(128n * MiB);
    // Below requested_size is not conforming: the profile's recomputed value is kept.
    device.systemReset({ chooseUsable: () => 32n * MiB });
    expect(device.readConfig().usable_region_size).toBe(64n * MiB);
  });
});
