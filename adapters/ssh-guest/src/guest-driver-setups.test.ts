import type { DeviceSetup } from '../../core/src/contract';
import { FEATURE_MASKS } from '../../../spec/src/index';
import {
  DriverGuestConfiguration,
  driverConfigurationKey,
  driverGuestDeviceOptions,
  driverGuestTiming,
  drainsByReset,
  planDriverGuest,
  planDriverGuestGroup,
} from './guest-driver-setups';
import { guestQemuArguments } from './guest-vm';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
const TiB = 1n << 40n;
const { VERSION_1, ACPI_PXM, UNPLUGGED_INACCESSIBLE, PERSISTENT_SUSPEND } = FEATURE_MASKS;

const DEFAULT: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: GiB,
  addr: 4n * GiB,
  node_id: 0,
  requested_size: 0n,
  plugged: [],
};
const QEMU_72 = { qemu: '', version: '7.2.0' };
const QEMU_100 = { qemu: '/opt/qemu-10.0/qemu-system-x86_64', version: '10.0.0' };

function guestOf(setup: Partial<DeviceSetup>, vmm = QEMU_72): DriverGuestConfiguration {
  const plan = planDriverGuest({ ...DEFAULT, ...setup }, {}, vmm, false);
  if (plan.kind !== 'guest') throw new Error(`refused: ${plan.reason}`);
  return plan.configuration;
}

function refusalOf(setup: Partial<DeviceSetup>, vmm = QEMU_72, padding?: Uint8Array): string {
  const plan = planDriverGuest({ ...DEFAULT, ...setup }, { configPadding: padding }, vmm, false);
  if (plan.kind !== 'refused') throw new Error(`not refused: ${driverConfigurationKey(plan.configuration)}`);
  return plan.reason;
}

/** The QEMU command line of a configuration's guest, as one string. */
function commandLine(c: DriverGuestConfiguration): string {
  const files = { qmpSocket: '/q', controlSocket: '/c', traceLog: '/t', consoleLog: '/l' };
  return guestQemuArguments({ kernel: '/k', initrd: '/i' }, files, 40022, driverGuestDeviceOptions(c)).join(' ');
}

describe('the guest a driver vector set-up needs (QEMU 7.2 on x86)', () => {
  it('boots the default set-up on q35 with 1 GiB, 40 physical address bits, drained by shrinking', () => {
    const c = guestOf({ requested_size: 64n * MiB });
    expect(driverConfigurationKey(c)).toBe('block 0x200000 region 0x40000000 at 0x100000000 node 0');
    const line = commandLine(c);
    expect(line).toMatch(/-machine q35 .*-cpu max -smp 2 -m 1024M,/);
    expect(line).toContain('block-size=2M,requested-size=0M');
    expect(drainsByReset(c)).toBe(false);
    // The feature set every guest offers selects the same guest.
    expect(driverConfigurationKey(guestOf({ features: VERSION_1 | ACPI_PXM }))).toBe(driverConfigurationKey(c));
  });

  it.each([
    ['256 MiB region', { region_size: 256n * MiB }, /size=256M,reserve=off/, /phys-bits|-machine pc/],
    [
      '1 GiB blocks, 16 GiB at 64 GiB',
      { block_size: GiB, region_size: 16n * GiB, addr: 64n * GiB },
      /block-size=1024M,requested-size=0M,memaddr=68719476736/,
      /phys-bits|-machine pc/,
    ],
    [
      '64 GiB at 1 TiB: 48 physical address bits',
      { region_size: 64n * GiB, addr: TiB },
      /-cpu max,phys-bits=48 .*memaddr=1099511627776/,
      /-machine pc/,
    ],
    [
      'node 3 of 4',
      { node_id: 3, features: VERSION_1 | ACPI_PXM },
      /-numa node,nodeid=0,memdev=vmemct-ram0 -numa node,nodeid=1 -numa node,nodeid=2 -numa node,nodeid=3 .*,node=3/,
      /nodeid=4/,
    ],
    [
      'unplugged-inaccessible',
      { features: VERSION_1 | ACPI_PXM | UNPLUGGED_INACCESSIBLE },
      /unplugged-inaccessible=on/,
      /-machine pc/,
    ],
  ])('%s: the options QEMU needs', (_name, setup, present, absent) => {
    const line = commandLine(guestOf(setup));
    expect(line).toMatch(present);
    expect(line).not.toMatch(absent);
  });

  it('keeps a 256 GiB region at 4 GiB with pc and 3.25 GiB of boot memory, drained by a system reset', () => {
    const c = guestOf({ region_size: 256n * GiB });
    const line = commandLine(c);
    expect(line).toMatch(/-machine pc .*-m 3328M,maxmem=/);
    expect(line).toContain('size=262144M,reserve=off');
    expect(line).toContain('memaddr=4294967296');
    expect(drainsByReset(c)).toBe(true);
    expect(drainsByReset(guestOf({ region_size: 64n * GiB, addr: TiB }))).toBe(false);
  });

  it('waits longer where the driver is slow by design: 1 GiB blocks (stall), a 256 GiB region (commands)', () => {
    expect(driverGuestTiming(guestOf({}))).toEqual({});
    expect(driverGuestTiming(guestOf({ block_size: GiB, region_size: 16n * GiB, addr: 64n * GiB }))).toEqual({
      stallMs: 60_000,
    });
    expect(driverGuestTiming(guestOf({ region_size: 256n * GiB }))).toEqual({
      commandTimeoutMs: 120_000,
      settleBoundMs: 400_000,
    });
  });

  it('boots a requested_size above the region on the command line, as a guest of its own', () => {
    const c = guestOf({ region_size: 256n * MiB, requested_size: 512n * MiB });
    expect(c.bootRequestedSize).toBe(512n * MiB);
    expect(commandLine(c)).toContain(
      'size=256M,reserve=off -device virtio-mem-pci,id=vm0,memdev=vmemct-mem0,block-size=2M,requested-size=512M',
    );
    // Only a guest booted for it may ask for more than its region.
    const files = { qmpSocket: '/q', controlSocket: '/c', traceLog: '/t', consoleLog: '/l' };
    const options = { ...driverGuestDeviceOptions(c), requestedBeyondRegion: false };
    expect(() => guestQemuArguments({ kernel: '/k', initrd: '/i' }, files, 40022, options)).toThrow(
      /within the region/,
    );
    // A requested_size within the region is the adapter's to set: the region's one guest serves it.
    const within = guestOf({ region_size: 256n * MiB, requested_size: 256n * MiB });
    expect(within.bootRequestedSize).toBeUndefined();
    expect(driverConfigurationKey(within)).not.toBe(driverConfigurationKey(c));
    expect(driverConfigurationKey(within)).toBe(driverConfigurationKey(guestOf({ region_size: 256n * MiB })));
  });

  it('keys the guest on icount and the QEMU binary too', () => {
    const plain = planDriverGuest(DEFAULT, {}, QEMU_72, false);
    const icount = planDriverGuest(DEFAULT, {}, QEMU_72, true);
    const newer = planDriverGuest(
      { ...DEFAULT, features: VERSION_1 | ACPI_PXM | PERSISTENT_SUSPEND },
      {},
      QEMU_100,
      false,
    );
    const keys = [plain, icount, newer].map((p) =>
      p.kind === 'guest' ? driverConfigurationKey(p.configuration) : p.reason,
    );
    expect(keys[1]).toBe(`${keys[0]} icount`);
    expect(keys[2]).toBe(`${keys[0]} qemu ${QEMU_100.qemu}`);
  });

  it.each([
    [
      '6 MiB blocks',
      { block_size: 6n * MiB, region_size: 768n * MiB, addr: 6n * GiB },
      /block size to be a power of two of at least 1 MiB/,
    ],
    ['4 KiB blocks', { block_size: 4096n }, /block size to be a power of two of at least 1 MiB/],
    ['an empty region', { region_size: 0n }, /empty region/],
    ['a 1025 MiB region', { region_size: 1025n * MiB }, /region .* to be a multiple of the block size/],
    ['an unaligned address', { addr: 4n * GiB + MiB }, /address to be aligned to the block size/],
    ['an address below 4 GiB', { addr: 2n * GiB }, /device memory at or above 4 GiB/],
    ['a requested_size of 3 MiB', { requested_size: 3n * MiB }, /requested-size to be a multiple of the block size/],
    ['node 65535', { node_id: 65535 }, /at most 128/],
    ['no ACPI_PXM', { features: VERSION_1 }, /always offers ACPI_PXM on x86: q35 and pc/],
    ['node 7 without ACPI_PXM', { node_id: 7, features: VERSION_1 }, /always offers ACPI_PXM/],
    [
      'PERSISTENT_SUSPEND',
      { features: VERSION_1 | ACPI_PXM | PERSISTENT_SUSPEND },
      /QEMU 7\.2\.0 never offers PERSISTENT_SUSPEND/,
    ],
    ['UI without ACPI_PXM', { features: VERSION_1 | UNPLUGGED_INACCESSIBLE }, /always offers ACPI_PXM/],
    // No QEMU runs it (10.0 offers PERSISTENT_SUSPEND, but ACPI_PXM too): the rule of every version is named.
    ['PERSISTENT_SUSPEND without ACPI_PXM', { features: VERSION_1 | PERSISTENT_SUSPEND }, /always offers ACPI_PXM/],
    ['a region ending beyond 48 address bits', { addr: 1n << 48n, region_size: GiB }, /48 physical address bits/],
  ])('refuses %s with QEMU’s rule', (_name, setup, reason) => {
    expect(refusalOf(setup)).toMatch(reason);
  });

  it('refuses config padding (QEMU reads it as zero) and never hints at `guest up`', () => {
    expect(refusalOf({}, QEMU_72, new Uint8Array([0xff]))).toMatch(/config padding as zero/);
    for (const setup of [{ block_size: 6n * MiB }, { region_size: 0n }, { features: VERSION_1 }])
      expect(refusalOf(setup)).not.toMatch(/guest up/);
  });

  it('follows the QEMU version: 10.0 offers PERSISTENT_SUSPEND always, so a set-up without it is refused there', () => {
    expect(guestOf({ features: VERSION_1 | ACPI_PXM | PERSISTENT_SUSPEND }, QEMU_100).qemu).toBe(QEMU_100.qemu);
    expect(refusalOf({ features: VERSION_1 | ACPI_PXM }, QEMU_100)).toMatch(
      /10\.0\.0 always offers PERSISTENT_SUSPEND/,
    );
  });
});

describe('the guest of a multi-device vector', () => {
  const device = (name: string, setup: Partial<DeviceSetup>) => ({
    name,
    setup: { ...DEFAULT, ...setup },
    options: {},
  });
  const twoNodes = [device('vm0', { node_id: 0 }), device('vm1', { addr: 5n * GiB, node_id: 1 })];

  it('boots every device on its node, the first as vm0, and keys the guest on all of them', () => {
    const plan = planDriverGuestGroup(twoNodes, QEMU_72, false);
    if (plan.kind !== 'guest') throw new Error(plan.reason);
    const c = plan.configuration;
    expect(c.extraDevices).toEqual([
      { node: 1, blockSize: 2n * MiB, regionSize: GiB, addr: 5n * GiB, unpluggedInaccessible: false },
    ]);
    expect(driverConfigurationKey(c)).toBe(
      'block 0x200000 region 0x40000000 at 0x100000000 node 0 vm1: block 0x200000 region 0x40000000 at 0x140000000 node 1',
    );
    expect(driverConfigurationKey(c)).not.toBe(driverConfigurationKey(guestOf({})));
    const line = commandLine(c);
    expect(line).toContain('-numa node,nodeid=0,cpus=0,memdev=vmemct-ram0');
    expect(line).toContain('-numa node,nodeid=1,cpus=1,memdev=vmemct-ram1');
    expect(line).toContain(
      'virtio-mem-pci,id=vm1,memdev=vmemct-mem1,block-size=2M,requested-size=0,memaddr=5368709120,node=1,unplugged-inaccessible=off',
    );
  });

  it('gives each further device its own block size and feature, and more boot memory for more nodes', () => {
    const plan = planDriverGuestGroup(
      [
        device('a', {}),
        device('b', {
          addr: 8n * GiB,
          block_size: 4n * MiB,
          node_id: 5,
          features: VERSION_1 | ACPI_PXM | UNPLUGGED_INACCESSIBLE,
        }),
      ],
      QEMU_72,
      false,
    );
    if (plan.kind !== 'guest') throw new Error(plan.reason);
    const line = commandLine(plan.configuration);
    expect(line).toContain('block-size=4M');
    expect(line).toMatch(/id=vm1,[^ ]*unplugged-inaccessible=on/);
    // Six nodes at 256 MiB each.
    expect(line).toMatch(/-m 1536M,/);
  });

  it.each([
    [
      'a device QEMU refuses, naming it',
      [twoNodes[0]!, device('vm1', { addr: 5n * GiB, block_size: 3n * MiB })],
      /^device vm1: QEMU requires the block size/,
    ],
    [
      'overlapping regions',
      [twoNodes[0]!, device('vm1', { addr: 4n * GiB + 512n * MiB, node_id: 1 })],
      /regions overlap \(vm0 and vm1\)/,
    ],
    [
      'more nodes than boot memory below 4 GiB holds',
      [twoNodes[0]!, device('vm1', { addr: 5n * GiB, node_id: 20 })],
      /over 21 NUMA nodes/,
    ],
    [
      'a requested size above a region',
      [twoNodes[0]!, device('vm1', { addr: 5n * GiB, requested_size: 2n * GiB })],
      /^device vm1: a multi-device guest boots each device asking for nothing/,
    ],
    ['no devices', [], /no devices/],
  ])('refuses %s', (_name, devices, reason) => {
    const plan = planDriverGuestGroup(devices, QEMU_72, false);
    expect(plan.kind === 'refused' ? plan.reason : 'booted').toMatch(reason);
  });
});
