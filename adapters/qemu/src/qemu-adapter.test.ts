import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UnsupportedSetupError } from '../../core/src/contract';
import type { DeviceSetup } from '../../core/src/contract';
import { offersPersistentSuspend, qemuArguments } from './qemu-adapter';
import { QemuMissingError, locateQemu } from '../../qemu-platform/src/index';

const KiB = 1n << 10n;
const MiB = 1n << 20n;
const GiB = 1n << 30n;
const TiB = 1n << 40n;

const ACPI_PXM = 1n << 0n;
const UNPLUGGED_INACCESSIBLE = 1n << 1n;
const PERSISTENT_SUSPEND = 1n << 2n;
const VERSION_1 = 1n << 32n;

const NORMAL: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 1n * GiB,
  addr: 4n * GiB,
  requested_size: 64n * MiB,
  node_id: 0,
  plugged: [],
};

function setup(changes: Partial<DeviceSetup>): DeviceSetup {
  return { ...NORMAL, ...changes };
}

/** Every value that follows `option` in the argument vector. */
function valuesOf(args: readonly string[], option: string): string[] {
  return args.flatMap((a, i) => (a === option && i + 1 < args.length ? [args[i + 1]!] : []));
}

/** The one `-device virtio-mem-pci,...` string, as a property map. */
function virtioMemDevice(args: readonly string[]): Map<string, string> {
  const devices = valuesOf(args, '-device').filter((d) => d.startsWith('virtio-mem-pci,'));
  expect(devices).toHaveLength(1);
  const props = new Map<string, string>();
  for (const part of devices[0]!.split(',').slice(1)) {
    const [key, value] = part.split('=');
    props.set(key!, value!);
  }
  return props;
}

/** The maxmem of `-m`, in MiB. */
function maxmemMiB(args: readonly string[]): bigint {
  const [memory] = valuesOf(args, '-m');
  const m = /^(\d+)M,maxmem=(\d+)M$/.exec(memory ?? '');
  expect(m).not.toBeNull();
  return BigInt(m![2]!);
}

function expectRefused(s: DeviceSetup, why?: RegExp): void {
  expect(() => qemuArguments(s)).toThrow(UnsupportedSetupError);
  if (why) expect(() => qemuArguments(s)).toThrow(why);
}

describe('qemuArguments', () => {
  test('a normal setup keeps the CPU stopped under TCG', () => {
    const args = qemuArguments(NORMAL);
    expect(args).toContain('-S');
    expect(valuesOf(args, '-accel')).toEqual(['tcg']);
    expect(valuesOf(args, '-machine')).toEqual(['q35']);
  });

  test('a normal setup backs the region with unreserved RAM of the region size', () => {
    const args = qemuArguments(NORMAL);
    const backends = valuesOf(args, '-object').filter((o) => o.startsWith('memory-backend-ram,id=mem0,'));
    expect(backends).toEqual([`memory-backend-ram,id=mem0,size=${1n * GiB},reserve=off`]);
  });

  test('a normal setup builds virtio-mem-pci with the block size, requested size and address of the setup', () => {
    const props = virtioMemDevice(qemuArguments(NORMAL));
    expect(props.get('memdev')).toBe('mem0');
    expect(props.get('block-size')).toBe(String(2n * MiB));
    expect(props.get('requested-size')).toBe(String(64n * MiB));
    expect(props.get('memaddr')).toBe(String(4n * GiB));
    expect(props.get('node')).toBe('0');
    expect(props.get('unplugged-inaccessible')).toBe('off');
  });

  test('a normal setup creates no NUMA nodes', () => {
    expect(valuesOf(qemuArguments(NORMAL), '-numa')).toEqual([]);
  });

  test('features with UNPLUGGED_INACCESSIBLE turn unplugged-inaccessible on', () => {
    const props = virtioMemDevice(qemuArguments(setup({ features: VERSION_1 | ACPI_PXM | UNPLUGGED_INACCESSIBLE })));
    expect(props.get('unplugged-inaccessible')).toBe('on');
  });

  test('features without UNPLUGGED_INACCESSIBLE leave unplugged-inaccessible off', () => {
    const props = virtioMemDevice(qemuArguments(setup({ features: VERSION_1 | ACPI_PXM })));
    expect(props.get('unplugged-inaccessible')).toBe('off');
  });

  test('node_id 3 creates NUMA nodes 0 to 3 and places the device on node 3', () => {
    const args = qemuArguments(setup({ node_id: 3 }));
    const nodes = valuesOf(args, '-numa');
    expect(nodes).toHaveLength(4);
    expect(nodes[0]).toMatch(/^node,nodeid=0,memdev=ram0$/);
    expect(nodes.slice(1)).toEqual(['node,nodeid=1', 'node,nodeid=2', 'node,nodeid=3']);
    expect(valuesOf(args, '-object')).toContain('memory-backend-ram,id=ram0,size=512M');
    expect(virtioMemDevice(args).get('node')).toBe('3');
  });

  test('maxmem leaves room for the guest RAM and device memory up to the end of the region', () => {
    const args = qemuArguments(setup({ addr: 8n * GiB, region_size: 8n * GiB, requested_size: 0n }));
    // Device memory starts at 4 GiB, so it must reach 16 GiB: 12 GiB on top of the 512 MiB of RAM.
    expect(maxmemMiB(args)).toBeGreaterThanOrEqual(512n + (12n * GiB) / MiB);
  });

  test('maxmem of a normal setup covers its 1 GiB region at 4 GiB', () => {
    expect(maxmemMiB(qemuArguments(NORMAL))).toBeGreaterThanOrEqual(512n + 1024n);
  });

  test('refuses a 4 KiB block size', () => {
    expectRefused(setup({ block_size: 4n * KiB, region_size: 1n * GiB }), /block_size/);
  });

  test('refuses a block size that is not a power of two', () => {
    expectRefused(setup({ block_size: 3n * MiB, region_size: 3n * GiB, requested_size: 0n }), /block_size/);
  });

  test('refuses an empty region', () => {
    expectRefused(setup({ region_size: 0n, requested_size: 0n }), /region_size/);
  });

  test('refuses a region that is not a multiple of the block size', () => {
    expectRefused(setup({ region_size: 1n * GiB + 1n * MiB }), /region_size/);
  });

  test('refuses a requested size beyond the region', () => {
    expectRefused(setup({ requested_size: 1n * GiB + 2n * MiB }), /requested_size/);
  });

  test('accepts a requested size equal to the region', () => {
    expect(virtioMemDevice(qemuArguments(setup({ requested_size: 1n * GiB }))).get('requested-size')).toBe(
      String(1n * GiB),
    );
  });

  test('refuses an address below 4 GiB', () => {
    expectRefused(setup({ addr: 2n * GiB }), /4 GiB/);
  });

  test('refuses an address not aligned to the block size', () => {
    expectRefused(setup({ addr: 4n * GiB + 1n * MiB }), /aligned/);
  });

  test('refuses a region that ends beyond 980 GiB (40 address bits less the PCI hole that follows)', () => {
    expectRefused(setup({ addr: TiB - 1n * GiB, region_size: 2n * GiB }), /980 GiB/);
    expectRefused(setup({ addr: TiB }), /980 GiB/);
    expectRefused(setup({ addr: 980n * GiB, region_size: 1n * GiB }), /980 GiB/);
    expect(() => qemuArguments(setup({ addr: 979n * GiB, region_size: 1n * GiB }))).not.toThrow();
  });

  test('refuses a node_id above 15', () => {
    expectRefused(setup({ node_id: 16 }), /node_id/);
  });

  test('refuses features lacking ACPI_PXM, which QEMU always offers on x86-64', () => {
    expectRefused(setup({ features: VERSION_1 }), /ACPI_PXM/);
  });

  test('refuses features lacking VERSION_1', () => {
    expectRefused(setup({ features: ACPI_PXM }));
  });

  test('refuses more initial plugged blocks than requested_size (they are plugged through the queue)', () => {
    expectRefused(
      setup({ requested_size: 4n * MiB, plugged: [{ first: 0, count: 3 }] }),
      /more initial plugged blocks than requested_size/,
    );
    expect(() => qemuArguments(setup({ requested_size: 4n * MiB, plugged: [{ first: 5, count: 2 }] }))).not.toThrow();
  });

  test('refuses features with PERSISTENT_SUSPEND, which QEMU 7.2 never offers', () => {
    expectRefused(
      setup({ features: VERSION_1 | ACPI_PXM | PERSISTENT_SUSPEND }),
      /QEMU 7.2.0 never offers VIRTIO_MEM_F_PERSISTENT_SUSPEND/,
    );
    expect(() => qemuArguments(setup({ features: VERSION_1 | ACPI_PXM | PERSISTENT_SUSPEND }), '9.1.3')).toThrow(
      /QEMU 9.1.3 never offers VIRTIO_MEM_F_PERSISTENT_SUSPEND/,
    );
  });

  test('builds a set-up with PERSISTENT_SUSPEND on QEMU 9.2 and later, which offer it', () => {
    for (const version of ['9.2.0', '10.0.2'])
      expect(() =>
        qemuArguments(setup({ features: VERSION_1 | ACPI_PXM | PERSISTENT_SUSPEND }), version),
      ).not.toThrow();
    expect(offersPersistentSuspend('10.0.2')).toBe(true);
    expect(offersPersistentSuspend('9.2.0')).toBe(true);
    expect(offersPersistentSuspend('9.1.3')).toBe(false);
    expect(offersPersistentSuspend('7.2.22')).toBe(false);
  });
});

describe('locateQemu', () => {
  let dir: string | undefined;

  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function script(name: string, body: string): string {
    dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-locate-'));
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return file;
  }

  test('a path that does not exist throws QemuMissingError naming the Debian package', () => {
    expect(() => locateQemu('/nonexistent/qemu-system-x86_64')).toThrow(QemuMissingError);
    expect(() => locateQemu('/nonexistent/qemu-system-x86_64')).toThrow(/qemu-system-x86\b/);
  });

  test('a name not on PATH throws QemuMissingError naming the Debian package', () => {
    const missing = () => locateQemu('vmemct-no-such-qemu-binary');
    expect(missing).toThrow(QemuMissingError);
    expect(missing).toThrow(/vmemct-no-such-qemu-binary was not found on PATH.*qemu-system-x86\b/);
  });

  test('a binary that exits with status 1 throws QemuMissingError', () => {
    const broken = script('qemu-system-x86_64', 'exit 1');
    expect(() => locateQemu(broken)).toThrow(QemuMissingError);
    expect(() => locateQemu(broken)).toThrow(/does not run \(exit 1\)/);
  });

  test('a binary that answers --version is returned with its version', () => {
    const fake = script(
      'qemu-system-x86_64',
      '[ "$1" = --version ] || exit 2\necho "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)"',
    );
    const found = locateQemu(fake);
    expect(found.path).toBe(fake);
    expect(found.version).toBe('7.2.22');
  });

  test('a binary that does not say it is QEMU is refused (e.g. --qemu /bin/true)', () => {
    const fake = script('qemu-system-x86_64', 'echo "something else"');
    expect(() => locateQemu(fake)).toThrow(QemuMissingError);
    expect(() => locateQemu(fake)).toThrow(/is not QEMU/);
    expect(() => locateQemu('/bin/true')).toThrow(/is not QEMU/);
  });
});
