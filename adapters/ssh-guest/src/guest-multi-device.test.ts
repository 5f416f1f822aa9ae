import { UnsupportedSetupError } from '../../core/src/contract';
import type { DeviceSetup, NamedDeviceSetup } from '../../core/src/contract';
import type { HostView, QemuMemoryDevice } from '../../qemu-platform/src/index';
import { matchDevices, nodeGains, parseNodeMemTotal } from './guest-multi-device';
import { guestQemuArguments } from './guest-vm';
import { extraDevicesOption } from '../../../conformance/src/cli/guest-commands';

const MiB = 1n << 20n;
const GiB = 1n << 30n;

describe('a two-node guest', () => {
  const files = { qmpSocket: '/r/q', controlSocket: '/r/c', traceLog: '/r/t', consoleLog: '/r/l' };
  const manifest = { kernel: '/g/vmlinuz', initrd: '/g/initrd.gz' };

  it('splits boot memory by memdev over the nodes, a CPU on each, and puts each device on its node', () => {
    const args = guestQemuArguments(manifest, files, 40022, {
      addr: 4n * GiB,
      extraDevices: [{ node: 1, addr: 5n * GiB, regionSize: GiB }],
    }).join(' ');
    expect(args).toContain('-m 1024M,maxmem=4096M');
    expect(args).toContain(
      '-object memory-backend-ram,id=vmemct-ram0,size=512M -numa node,nodeid=0,cpus=0,memdev=vmemct-ram0 ' +
        '-object memory-backend-ram,id=vmemct-ram1,size=512M -numa node,nodeid=1,cpus=1,memdev=vmemct-ram1',
    );
    // The first device before the second: the guest's PCI functions come in that order.
    expect(args).toMatch(
      /virtio-mem-pci,id=vm0,memdev=vmemct-mem0,block-size=2M,requested-size=0M,memaddr=4294967296,unplugged-inaccessible=off .*-device virtio-mem-pci,id=vm1,memdev=vmemct-mem1,block-size=2M,requested-size=0,memaddr=5368709120,node=1,unplugged-inaccessible=off$/,
    );
  });

  it('refuses boot memory too small to give each node 128 MiB', () => {
    expect(() =>
      guestQemuArguments(manifest, files, 40022, { memory: 256n * MiB, extraDevices: [{ node: 2 }] }),
    ).toThrow(/less than 128 MiB of boot memory on each of 3 nodes/);
  });

  it('places `guest up --extra-device` devices one region after another', () => {
    expect(extraDevicesOption('guest up', ['1', '2'], GiB)).toEqual([
      { node: 1, regionSize: GiB, addr: 5n * GiB },
      { node: 2, regionSize: GiB, addr: 6n * GiB },
    ]);
    expect(() => extraDevicesOption('guest up', ['one'], GiB)).toThrow("takes a NUMA node number (got 'one')");
  });
});

describe('the memory per node', () => {
  it('reads each node MemTotal in bytes and reports what each node gained', () => {
    const before = parseNodeMemTotal('0 469360\n1 447172\n');
    const after = parseNodeMemTotal('1 840388\n0 731504\n');
    expect(nodeGains(before, after)).toEqual(
      new Map([
        [0, 262144n * 1024n],
        [1, 393216n * 1024n],
      ]),
    );
    expect(nodeGains(before, before)).toEqual(new Map());
  });
});

describe('matching a vector devices to the guest', () => {
  const view = (memaddr: bigint, node: number): HostView => ({
    size: 0n,
    requestedSize: 0n,
    blockSize: 2n * MiB,
    maxSize: GiB,
    memaddr,
    node,
  });
  const guest = [
    { device: { id: 'vm0' } as QemuMemoryDevice, view: view(4n * GiB, 0) },
    { device: { id: 'vm1' } as QemuMemoryDevice, view: view(5n * GiB, 1) },
  ];
  const setup = (addr: bigint, node_id: number, more: Partial<DeviceSetup> = {}): DeviceSetup => ({
    block_size: 2n * MiB,
    region_size: GiB,
    addr,
    requested_size: 0n,
    node_id,
    plugged: [],
    ...more,
  });
  const named = (name: string, s: DeviceSetup): NamedDeviceSetup => ({ name, setup: s, options: {} });

  it('finds each by its address, in the vector order', () => {
    const m = matchDevices([named('b', setup(5n * GiB, 1)), named('a', setup(4n * GiB, 0))], guest);
    expect(m.map((x) => [x.wanted.name, x.device.id])).toEqual([
      ['b', 'vm1'],
      ['a', 'vm0'],
    ]);
  });

  it('refuses, as unsupported and saying why, a device the guest lacks or has elsewhere', () => {
    expect(() => matchDevices([named('a', setup(6n * GiB, 0))], guest)).toThrow(UnsupportedSetupError);
    expect(() => matchDevices([named('a', setup(6n * GiB, 0))], guest)).toThrow(
      'device a: the guest has no virtio-mem device at 0x180000000 (has vm0 at 0x100000000 on node 0, vm1 at 0x140000000 on node 1)',
    );
    expect(() => matchDevices([named('a', setup(5n * GiB, 3))], guest)).toThrow(
      "device a: the guest's vm1 has node_id 1; the vector needs 3",
    );
    expect(() => matchDevices([named('a', setup(4n * GiB, 0, { plugged: [{ first: 0, count: 1 }] }))], guest)).toThrow(
      /blocks plugged at start are not offered/,
    );
  });
});
