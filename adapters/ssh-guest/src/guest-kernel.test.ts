import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  GUEST_MODULES,
  MODULE_CONFIG,
  findKernelFiles,
  findModuleFiles,
  guestKernelSource,
  parseKernelConfig,
  planModules,
} from './guest-kernel';
import { companionPackages, privateSuiteSources } from './guest-kernel-package';
import { initScript } from './guest-build';

const R612 = '6.12.95+deb12-amd64';

/** A 6.12-like package: virtio core and PCI transport built in, the rest as .ko.xz. */
const LISTING_612 = [
  './',
  `./boot/vmlinuz-${R612}`,
  `./boot/config-${R612}`,
  `./lib/modules/${R612}/kernel/drivers/net/failover.ko.xz`,
  `./lib/modules/${R612}/kernel/drivers/net/net_failover.ko.xz`,
  `./lib/modules/${R612}/kernel/drivers/net/virtio_net.ko.xz`,
  `./lib/modules/${R612}/kernel/drivers/virtio/virtio_mem.ko.xz`,
  `./lib/modules/${R612}/kernel/drivers/virtio/virtio_balloon.ko.xz`,
];
const CONFIG_612 = parseKernelConfig(
  [
    '# comment',
    'CONFIG_VIRTIO=y',
    'CONFIG_VIRTIO_PCI_LIB=y',
    'CONFIG_VIRTIO_PCI_LIB_LEGACY=y',
    'CONFIG_VIRTIO_PCI=y',
    'CONFIG_FAILOVER=m',
    'CONFIG_NET_FAILOVER=m',
    'CONFIG_VIRTIO_NET=m',
    'CONFIG_VIRTIO_MEM=m',
    '# CONFIG_VIRTIO_VDPA is not set',
  ].join('\n'),
);

describe('the kernels a guest is built with', () => {
  it('knows 6.1, 6.12 and 7.x, each with its own suite and default folder', () => {
    expect(guestKernelSource('6.1')).toMatchObject({ suite: 'system', folder: 'guest' });
    expect(guestKernelSource('6.12')).toMatchObject({ suite: 'bookworm-backports', folder: 'guest-6.12' });
    expect(guestKernelSource('7.x')).toMatchObject({ suite: 'trixie-backports' });
    expect(guestKernelSource('6.6')).toBeUndefined();
    expect(guestKernelSource('6.12')!.release.test(R612)).toBe(true);
    expect(guestKernelSource('6.1')!.release.test(R612)).toBe(false);
  });

  it('reads a kernel config: set values only, comments and "is not set" lines left out', () => {
    expect(CONFIG_612.get('CONFIG_VIRTIO_PCI')).toBe('y');
    expect(CONFIG_612.get('CONFIG_VIRTIO_MEM')).toBe('m');
    expect(CONFIG_612.has('CONFIG_VIRTIO_VDPA')).toBe(false);
  });

  it('finds the kernel image and config in /boot (6.x) and in /usr/lib/modules (7.x)', () => {
    expect(findKernelFiles(LISTING_612)).toEqual({
      kernelRelease: R612,
      vmlinuz: `./boot/vmlinuz-${R612}`,
      config: `./boot/config-${R612}`,
    });
    const r7 = '7.3.4+deb13-amd64';
    expect(
      findKernelFiles([`./usr/lib/modules/${r7}/vmlinuz`, `./usr/lib/modules/${r7}/config`, './usr/share/doc/x']),
    ).toEqual({
      kernelRelease: r7,
      vmlinuz: `./usr/lib/modules/${r7}/vmlinuz`,
      config: `./usr/lib/modules/${r7}/config`,
    });
    expect(findKernelFiles([`./boot/vmlinuz-${R612}`])?.config).toBeUndefined();
    expect(findKernelFiles(['./usr/share/doc/linux-image/changelog.gz'])).toBeUndefined();
  });

  it('finds the guest modules of the package, plain or xz, and only for its release', () => {
    const found = findModuleFiles([...LISTING_612, './lib/modules/6.1.0-9-amd64/kernel/virtio_mem.ko'], R612);
    expect(found.problem).toBeUndefined();
    expect([...found.files.keys()].sort()).toEqual(['failover', 'net_failover', 'virtio_mem', 'virtio_net']);
    expect(found.files.get('virtio_mem')).toEqual({
      archivePath: `./lib/modules/${R612}/kernel/drivers/virtio/virtio_mem.ko.xz`,
      compression: 'xz',
    });
    const plain = findModuleFiles([`./lib/modules/6.1.0-9-amd64/kernel/drivers/virtio/virtio.ko`], '6.1.0-9-amd64');
    expect(plain.files.get('virtio')?.compression).toBe('none');
    const usr = findModuleFiles(['./usr/lib/modules/7.3.4/kernel/drivers/virtio/virtio_mem.ko.xz'], '7.3.4');
    expect(usr.files.has('virtio_mem')).toBe(true);
  });

  it('names a module compressed another way than xz as a problem', () => {
    const found = findModuleFiles([`./lib/modules/${R612}/kernel/drivers/virtio/virtio_mem.ko.zst`], R612);
    expect(found.problem).toMatch(/virtio_mem\.ko\.zst: modules compressed as \.zst are not supported/);
  });

  it('packs the modules the package has and leaves out those built in (=y), in load order', () => {
    const plan = planModules(CONFIG_612, findModuleFiles(LISTING_612, R612).files, 'linux-image-x');
    if (!plan.ok) throw new Error(plan.problem);
    expect(plan.packed.map((p) => p.name)).toEqual(['failover', 'net_failover', 'virtio_net', 'virtio_mem']);
    expect(plan.builtIn).toEqual([
      'virtio_ring',
      'virtio',
      'virtio_pci_modern_dev',
      'virtio_pci_legacy_dev',
      'virtio_pci',
    ]);
    // /init loads only the packed modules.
    const init = initScript(
      R612,
      plan.packed.map((p) => p.name),
    );
    expect(init).toContain('for m in failover net_failover virtio_net virtio_mem; do');
    expect(init).not.toContain('virtio_pci');
  });

  it('packs every module of a 6.1-like package, where virtio is modular', () => {
    const release = '6.1.0-56-amd64';
    const listing = GUEST_MODULES.map((m) => `./lib/modules/${release}/kernel/drivers/${m}.ko`);
    const config = parseKernelConfig(
      Object.values(MODULE_CONFIG)
        .map((symbol) => `${symbol}=m`)
        .join('\n'),
    );
    const plan = planModules(config, findModuleFiles(listing, release).files, 'linux-image-6.1');
    if (!plan.ok) throw new Error(plan.problem);
    expect(plan.packed.map((p) => p.name)).toEqual([...GUEST_MODULES]);
    expect(plan.builtIn).toEqual([]);
  });

  it('is a clear error when a module is neither in the package nor built in', () => {
    const files = findModuleFiles(LISTING_612, R612).files;
    const withoutPci = new Map(CONFIG_612);
    withoutPci.delete('CONFIG_VIRTIO_PCI');
    const missing = planModules(withoutPci, files, 'linux-image-x');
    expect(missing).toEqual({
      ok: false,
      problem: expect.stringMatching(
        /linux-image-x has no virtio_pci\.ko and its config has CONFIG_VIRTIO_PCI not set/,
      ),
    });
    const asModule = new Map(CONFIG_612);
    asModule.set('CONFIG_VIRTIO_PCI', 'm');
    expect(planModules(asModule, files, 'linux-image-x')).toEqual({
      ok: false,
      problem: expect.stringMatching(/no virtio_pci\.ko and its config has CONFIG_VIRTIO_PCI=m/),
    });
  });

  it('refuses a kernel with virtio_mem built in (the driver is reloaded for every vector)', () => {
    const files = new Map(findModuleFiles(LISTING_612, R612).files);
    files.delete('virtio_mem');
    const builtIn = new Map(CONFIG_612);
    builtIn.set('CONFIG_VIRTIO_MEM', 'y');
    expect(planModules(builtIn, files, 'linux-image-x')).toEqual({
      ok: false,
      problem: expect.stringMatching(/virtio_mem built in \(CONFIG_VIRTIO_MEM=y\).*must be a module/),
    });
  });
});

describe('the kernel package and its companions', () => {
  it('takes the image, modules and base packages of the same ABI (7.x), and nothing else', () => {
    const depends =
      'dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)';
    expect(companionPackages(depends, 'linux-image-7.3.4+deb13-amd64')).toEqual([
      'linux-base-7.3.4+deb13-amd64',
      'linux-binary-7.3.4+deb13-amd64',
      'linux-modules-7.3.4+deb13-amd64',
    ]);
    expect(
      companionPackages(
        'kmod, linux-base (>= 4.3~), initramfs-tools | linux-initramfs-tool',
        'linux-image-6.12.95+deb12-amd64',
      ),
    ).toEqual([]);
  });

  it("reads the suite from the machine's Debian mirrors, with their key, and writes no other address", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-kernel-apt-'));
    try {
      fs.mkdirSync(path.join(dir, 'apt', 'sources.list.d'), { recursive: true });
      fs.writeFileSync(
        path.join(dir, 'apt', 'sources.list.d', 'debian.sources'),
        'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n' +
          'Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n',
      );
      fs.writeFileSync(path.join(dir, 'os-release'), 'ID=debian\nVERSION_CODENAME=bookworm\n');
      const host = { aptDir: path.join(dir, 'apt'), osReleaseFile: path.join(dir, 'os-release') };
      const sources = privateSuiteSources(host, 'trixie-backports');
      if (!sources.ok) throw new Error(sources.problem);
      expect(sources.text).toBe(
        'Types: deb\nURIs: http://mirror.example/debian\nSuites: trixie-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
      );
      fs.writeFileSync(path.join(dir, 'os-release'), 'ID=debian\n');
      expect(privateSuiteSources(host, 'bookworm-backports')).toEqual({
        ok: false,
        problem: expect.stringMatching(/names no VERSION_CODENAME/),
      });
      fs.writeFileSync(path.join(dir, 'os-release'), 'VERSION_CODENAME=trixie\n');
      expect(privateSuiteSources(host, 'bookworm-backports')).toEqual({
        ok: false,
        problem: expect.stringMatching(/no apt source in .* serves the Debian archive suites trixie or trixie-updates/),
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
