import { AdapterError, UnsupportedSetupError } from '../../core/src/contract';
import type { Adapter, AdapterInfo, DeviceSetup, DriverSession } from '../../core/src/contract';
import { FEATURE_MASKS } from '../../../spec/src/index';
import { BootedDriverGuest, GuestPerDriverSetupAdapter, vectorNeedsFastTimers } from './guest-driver-groups';
import { DriverGuestConfiguration, driverConfigurationKey } from './guest-driver-setups';

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
const INFO: AdapterInfo = {
  name: 'ssh-guest',
  implementation: 'Linux test',
  targets: ['driver'],
  capabilities: [],
  timeoutMultiplier: 1,
};

/** A guest double that records which set-ups its driver was opened for. */
function fakeGuest(c: DriverGuestConfiguration, events: string[]): BootedDriverGuest {
  const key = driverConfigurationKey(c);
  const adapter: Adapter = {
    info: INFO,
    openDevice: async () => {
      throw new Error('not here');
    },
    openDriver: async (setup) => {
      events.push(`open ${setup.region_size} on ${key}`);
      return { served: key } as unknown as DriverSession;
    },
    openDrivers: async (devices) => {
      events.push(`open ${devices.map((d) => d.name).join('+')} on ${key}`);
      return devices.map(() => ({ served: key }) as unknown as DriverSession);
    },
    dispose: async () => undefined,
  };
  return { adapter, stop: async () => void events.push(`stop ${key}`) };
}

function adapterWith(events: string[], failing?: (c: DriverGuestConfiguration) => boolean) {
  return new GuestPerDriverSetupAdapter(
    INFO,
    async (c) => {
      events.push(`boot ${driverConfigurationKey(c)}`);
      if (failing?.(c)) throw new Error('no SSH');
      return fakeGuest(c, events);
    },
    () => '7.2.0',
  );
}

const small = { ...DEFAULT, region_size: 256n * MiB };
const beyond = { ...small, requested_size: 512n * MiB };

describe('a guest per driver set-up', () => {
  it('boots one guest per run of a configuration, only when a vector opens, and ends each', async () => {
    const events: string[] = [];
    const adapter = adapterWith(events);
    expect(events).toEqual([]);
    await adapter.openDriver(DEFAULT, {});
    await adapter.openDriver({ ...DEFAULT, requested_size: 64n * MiB }, {});
    await adapter.openDriver(small, {});
    await adapter.openDriver({ ...small, requested_size: small.region_size }, {});
    await adapter.openDriver(beyond, {});
    await adapter.dispose();
    const d = 'block 0x200000 region 0x40000000 at 0x100000000 node 0';
    const s = 'block 0x200000 region 0x10000000 at 0x100000000 node 0';
    const b = `${s} requested 0x20000000 at boot`;
    expect(events).toEqual([
      `boot ${d}`,
      `open ${GiB} on ${d}`,
      `open ${GiB} on ${d}`,
      `stop ${d}`,
      `boot ${s}`,
      `open ${256n * MiB} on ${s}`,
      `open ${256n * MiB} on ${s}`,
      `stop ${s}`,
      `boot ${b}`,
      `open ${256n * MiB} on ${b}`,
      `stop ${b}`,
    ]);
    expect(adapter.boots).toBe(3);
  });

  it('boots the guest a vector needs when the runner prepares it, and opens the vector on it without booting again', async () => {
    const events: string[] = [];
    const adapter = adapterWith(events);
    await adapter.prepare('driver', small, {});
    await adapter.prepare('driver', { ...DEFAULT, block_size: 6n * MiB }, {});
    expect(events).toEqual(['boot block 0x200000 region 0x10000000 at 0x100000000 node 0']);
    await adapter.openDriver(small, {});
    expect(adapter.boots).toBe(1);
    await adapter.dispose();
  });

  it('keeps a set-up QEMU refuses unsupported with its rule, booting nothing', async () => {
    const events: string[] = [];
    const adapter = adapterWith(events);
    await expect(adapter.openDriver({ ...DEFAULT, block_size: 6n * MiB, region_size: 768n * MiB }, {})).rejects.toThrow(
      new UnsupportedSetupError('QEMU requires the block size to be a power of two of at least 1 MiB (got 0x600000)'),
    );
    await expect(adapter.openDriver({ ...DEFAULT, features: FEATURE_MASKS.VERSION_1 }, {})).rejects.toThrow(
      /always offers ACPI_PXM/,
    );
    expect(events).toEqual([]);
    expect(adapter.scheduleKey('driver', { ...DEFAULT, region_size: 0n }, {})).toBeUndefined();
  });

  it('groups vectors by the configuration their guest is booted with', () => {
    const adapter = adapterWith([]);
    const key = (setup: DeviceSetup) => adapter.scheduleKey('driver', setup, {});
    expect(key({ ...DEFAULT, requested_size: 8n * MiB })).toBe(key(DEFAULT));
    expect(key(small)).not.toBe(key(DEFAULT));
    expect(key(beyond)).not.toBe(key(small));
    expect(adapter.scheduleKey('device', DEFAULT, {})).toBeUndefined();
  });

  it('reports a guest that did not boot as an error, not booting it again', async () => {
    const events: string[] = [];
    const adapter = adapterWith(events, (c) => c.regionSize === small.region_size);
    await expect(adapter.openDriver(small, {})).rejects.toThrow(AdapterError);
    await expect(adapter.openDriver(small, {})).rejects.toThrow(/did not boot: no SSH/);
    await adapter.openDriver(DEFAULT, {});
    expect(events.filter((e) => e.startsWith('boot'))).toHaveLength(2);
    await adapter.dispose();
    await expect(adapter.openDriver(DEFAULT, {})).rejects.toThrow(/the guests were ended/);
  });
});

describe('a guest per multi-device vector', () => {
  const devices = [
    { name: 'vm0', setup: DEFAULT, options: {} },
    { name: 'vm1', setup: { ...DEFAULT, addr: 5n * GiB, node_id: 1 }, options: {} },
  ];
  const both = `block 0x200000 region 0x40000000 at 0x100000000 node 0 vm1: block 0x200000 region 0x40000000 at 0x140000000 node 1`;

  it('groups and prepares the vector by its devices, then opens them all on that one guest', async () => {
    const events: string[] = [];
    const adapter = adapterWith(events);
    expect(adapter.scheduleKey('driver', DEFAULT, { devices })).toBe(both);
    expect(adapter.scheduleKey('driver', DEFAULT, { devices })).not.toBe(adapter.scheduleKey('driver', DEFAULT, {}));
    await adapter.prepare('driver', DEFAULT, { devices });
    const sessions = await adapter.openDrivers(devices);
    expect(sessions).toHaveLength(2);
    await adapter.dispose();
    expect(events).toEqual([`boot ${both}`, `open vm0+vm1 on ${both}`, `stop ${both}`]);
  });

  it('refuses devices QEMU cannot build together, booting nothing', async () => {
    const events: string[] = [];
    const adapter = adapterWith(events);
    const overlapping = [devices[0]!, { ...devices[1]!, setup: { ...devices[1]!.setup, addr: 4n * GiB } }];
    await expect(adapter.openDrivers(overlapping)).rejects.toThrow(UnsupportedSetupError);
    expect(adapter.scheduleKey('driver', DEFAULT, { devices: overlapping })).toBeUndefined();
    expect(events).toEqual([]);
  });
});

describe('vectorNeedsFastTimers (which booted guests run with icount)', () => {
  const settle = { kind: 'settle' };
  // Actions as a loaded vector's steps carry them (kind and fields).
  const busy3 = { kind: 'inject', response: 'BUSY', count: 3 };
  const nack5 = { kind: 'inject', response: 'NACK', count: 5 };
  test('scripted BUSY answers retried across one settle need the icount guest', () => {
    const options = { stepActions: [{ kind: 'start' }, busy3, settle] };
    expect(vectorNeedsFastTimers(options)).toBe(true);
    const adapter = new GuestPerDriverSetupAdapter(
      INFO,
      async () => ({}) as BootedDriverGuest,
      () => '7.2.0',
    );
    const plain = adapter.scheduleKey('driver', DEFAULT, { stepActions: [{ kind: 'start' }, settle] });
    expect(adapter.scheduleKey('driver', DEFAULT, options)).toBe(`${plain} icount`);
  });
  test('a busy host always does (the adapter offers host-busy only there)', () => {
    expect(vectorNeedsFastTimers({ stepActions: [{ kind: 'host-busy' }] })).toBe(true);
  });
  test('plain resizes and NACK scripts do not', () => {
    expect(vectorNeedsFastTimers({ stepActions: [{ kind: 'start' }, { kind: 'resize' }, settle] })).toBe(false);
    expect(vectorNeedsFastTimers({ stepActions: [nack5, settle] })).toBe(false);
    expect(vectorNeedsFastTimers({})).toBe(false);
  });
});

describe('which QEMU a vector guest runs under', () => {
  const PXM = FEATURE_MASKS.VERSION_1 | FEATURE_MASKS.ACPI_PXM;
  const versions: Record<string, string> = { '': '7.2.22', '/cache/qemu-10.0/qemu-system-x86_64': '10.0.2' };
  const adapterWith = (fetched: string | undefined): GuestPerDriverSetupAdapter =>
    new GuestPerDriverSetupAdapter(
      INFO,
      async () => ({}) as BootedDriverGuest,
      (q) => versions[q]!,
      () => fetched,
    );
  test('a set-up offering PERSISTENT_SUSPEND boots the fetched QEMU 10.0; one without it the default', () => {
    const adapter = adapterWith('/cache/qemu-10.0/qemu-system-x86_64');
    const ps = adapter.plan({ ...DEFAULT, features: PXM | FEATURE_MASKS.PERSISTENT_SUSPEND }, {});
    expect(ps).toMatchObject({ kind: 'guest', configuration: { qemu: '/cache/qemu-10.0/qemu-system-x86_64' } });
    expect(adapter.plan({ ...DEFAULT, features: PXM }, {})).toMatchObject({
      kind: 'guest',
      configuration: { qemu: '' },
    });
  });
  test('without a fetched 10.0 the vector is unsupported, saying how to fetch it', () => {
    const plan = adapterWith(undefined).plan({ ...DEFAULT, features: PXM | FEATURE_MASKS.PERSISTENT_SUSPEND }, {});
    expect(plan).toMatchObject({
      kind: 'refused',
      reason: expect.stringContaining('vmemct qemu fetch --version 10.0'),
    });
  });
});
