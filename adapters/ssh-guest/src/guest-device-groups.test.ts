import { AdapterError, UnsupportedSetupError } from '../../core/src/contract';
import type { Adapter, DeviceSession, DeviceSetup } from '../../core/src/contract';
import { FEATURE_MASKS } from '../../../spec/src/index';
import { qemuConfigurationRefusal } from '../../qemu/src/qemu-adapter';
import { GuestConfigurationError } from './guest-device-adapter';
import {
  BootedGuest,
  GuestConfiguration,
  GuestPerConfigurationAdapter,
  configurationKey,
  configurationOf,
} from './guest-device-groups';

const MiB = 1n << 20n;
const GiB = 1n << 30n;

const DEFAULT: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: GiB,
  addr: 4n * GiB,
  node_id: 0,
  requested_size: 0n,
  plugged: [],
};

/** A guest double whose device has one configuration, as the real adapter refuses the others. */
function fakeGuest(configuration: GuestConfiguration, events: string[]): BootedGuest {
  const key = configurationKey(configuration);
  const adapter: Adapter = {
    info: {
      name: 'ssh-guest',
      implementation: 'fake',
      targets: ['device'],
      capabilities: [],
      missingCapabilities: {},
      timeoutMultiplier: 1,
    },
    openDevice: async (setup) => {
      if (configurationKey(configurationOf(setup)) !== key) throw new GuestConfigurationError(`not ${key}`);
      events.push(`open on ${key}`);
      return { served: key } as unknown as DeviceSession;
    },
    dispose: async () => undefined,
  };
  return { adapter, stop: async () => void events.push(`stop ${key}`) };
}

function served(session: DeviceSession): string {
  return (session as unknown as { served: string }).served;
}

describe('a guest per device configuration', () => {
  const small = { ...DEFAULT, block_size: MiB, region_size: 64n * MiB };
  const node1 = { ...DEFAULT, node_id: 1 };

  function adapterWith(events: string[], failing?: string) {
    const boot = async (c: GuestConfiguration) => {
      events.push(`boot ${configurationKey(c)}`);
      if (failing === configurationKey(c)) throw new Error('no SSH');
      return fakeGuest(c, events);
    };
    return new GuestPerConfigurationAdapter(
      fakeGuest(configurationOf(DEFAULT), events),
      boot,
      qemuConfigurationRefusal,
    );
  }

  it('runs vectors fitting the first guest there, boots one guest per run of another configuration, and ends each', async () => {
    const events: string[] = [];
    const adapter = adapterWith(events);
    expect(served(await adapter.openDevice(DEFAULT))).toBe(configurationKey(configurationOf(DEFAULT)));
    expect(served(await adapter.openDevice(small))).toBe(configurationKey(configurationOf(small)));
    expect(served(await adapter.openDevice({ ...small, requested_size: 8n * MiB }))).toBe(
      configurationKey(configurationOf(small)),
    );
    // Back to the first guest's configuration: no boot, the other guest stays for later.
    await adapter.openDevice(DEFAULT);
    await adapter.openDevice(node1);
    await adapter.dispose();
    const k = (s: DeviceSetup) => configurationKey(configurationOf(s));
    expect(events).toEqual([
      `open on ${k(DEFAULT)}`,
      `boot ${k(small)}`,
      `open on ${k(small)}`,
      `open on ${k(small)}`,
      `open on ${k(DEFAULT)}`,
      `stop ${k(small)}`,
      `boot ${k(node1)}`,
      `open on ${k(node1)}`,
      `stop ${k(node1)}`,
      `stop ${k(DEFAULT)}`,
    ]);
    expect(adapter.boots).toBe(2);
  });

  it('keeps a configuration QEMU refuses unsupported with its rule, and a region too large for the agent, booting nothing', async () => {
    const events: string[] = [];
    const adapter = adapterWith(events);
    const tiny = { ...DEFAULT, block_size: 4096n };
    const rejected = adapter.openDevice(tiny);
    await expect(rejected).rejects.toThrow(UnsupportedSetupError);
    await expect(rejected).rejects.toThrow(/QEMU cannot build this device: block_size must be a power of two/);
    await expect(adapter.openDevice({ ...DEFAULT, region_size: GiB + MiB })).rejects.toThrow(
      /region_size must be a positive multiple of block_size/,
    );
    await expect(adapter.openDevice({ ...DEFAULT, region_size: 256n * GiB })).rejects.toThrow(
      /above the 8589934592 the agent maps from \/dev\/mem in time/,
    );
    expect(events.filter((e) => e.startsWith('boot'))).toEqual([]);
    await adapter.dispose();
  });

  it('reports a guest that did not boot as an error, once booted, not again for its configuration', async () => {
    const events: string[] = [];
    const adapter = adapterWith(events, configurationKey(configurationOf(small)));
    await expect(adapter.openDevice(small)).rejects.toThrow(/booting a guest with .* failed: no SSH/);
    const again = adapter.openDevice(small);
    await expect(again).rejects.toThrow(AdapterError);
    await expect(again).rejects.toThrow(/did not boot: no SSH/);
    expect(events.filter((e) => e.startsWith('boot'))).toHaveLength(1);
    // The first guest still serves its vectors.
    expect(served(await adapter.openDevice(DEFAULT))).toBe(configurationKey(configurationOf(DEFAULT)));
    await adapter.dispose();
  });

  it('needs unplugged-inaccessible only when the set-up offers it', () => {
    expect(configurationOf(DEFAULT).unpluggedInaccessible).toBe(false);
    const features = FEATURE_MASKS.VERSION_1 | FEATURE_MASKS.UNPLUGGED_INACCESSIBLE;
    expect(configurationOf({ ...DEFAULT, features }).unpluggedInaccessible).toBe(true);
    expect(
      qemuConfigurationRefusal({ ...DEFAULT, requested_size: 3n * GiB, plugged: [{ first: 0, count: 9999 }] }),
    ).toBe(undefined);
  });
});

describe('disposing during a boot', () => {
  it('ends the guest whose boot completes after dispose, and ends the first guest at once', async () => {
    const events: string[] = [];
    let finishBoot: () => void = () => undefined;
    const boot = (c: GuestConfiguration) =>
      new Promise<BootedGuest>((resolve) => {
        events.push(`boot ${configurationKey(c)}`);
        finishBoot = () => resolve(fakeGuest(c, events));
      });
    const adapter = new GuestPerConfigurationAdapter(
      fakeGuest(configurationOf(DEFAULT), events),
      boot,
      qemuConfigurationRefusal,
    );
    const small = { ...DEFAULT, block_size: MiB, region_size: 64n * MiB };
    const opening = adapter.openDevice(small);
    await new Promise((r) => setImmediate(r));
    await adapter.dispose();
    expect(events).toEqual([
      `boot ${configurationKey(configurationOf(small))}`,
      `stop ${configurationKey(configurationOf(DEFAULT))}`,
    ]);
    finishBoot();
    await expect(opening).rejects.toThrow(/disposed during the boot/);
    expect(events[2]).toBe(`stop ${configurationKey(configurationOf(small))}`);
    await expect(adapter.openDevice(DEFAULT)).rejects.toThrow(/ended/);
  });
});
