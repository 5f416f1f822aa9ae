/**
 * The kernels `vmemct guest build --kernel` packs, and what each one's package looks like: where
 * it comes from (the machine's own suites for 6.1; a suite added in a private apt configuration
 * for the newer ones), which of the guest's modules are built into it, and how its modules are
 * compressed. The decisions here are pure (text and file lists in, plans out); guest-build.ts
 * runs the tools.
 */

/** The modules the guest needs, in load order (the virtio PCI transport, the NIC for SSH, virtio_mem last). */
export const GUEST_MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  'failover',
  'net_failover',
  'virtio_net',
  'virtio_mem',
] as const;

/** One of {@link GUEST_MODULES}. */
export type GuestModule = (typeof GUEST_MODULES)[number];

/**
 * The kernel configuration symbol that builds each module: `=m` makes it a module file, `=y`
 * builds it into the kernel (virtio_ring is part of CONFIG_VIRTIO).
 */
export const MODULE_CONFIG: Readonly<Record<GuestModule, string>> = {
  virtio_ring: 'CONFIG_VIRTIO',
  virtio: 'CONFIG_VIRTIO',
  virtio_pci_modern_dev: 'CONFIG_VIRTIO_PCI_LIB',
  virtio_pci_legacy_dev: 'CONFIG_VIRTIO_PCI_LIB_LEGACY',
  virtio_pci: 'CONFIG_VIRTIO_PCI',
  failover: 'CONFIG_FAILOVER',
  net_failover: 'CONFIG_NET_FAILOVER',
  virtio_net: 'CONFIG_VIRTIO_NET',
  virtio_mem: 'CONFIG_VIRTIO_MEM',
};

/**
 * The kernels a guest can be built with: the Debian suite `linux-image-amd64` is taken from
 * (`system`: the machine's own apt sources, as they are) and the kernel releases that series
 * covers. Newer suites are read from the mirrors the machine's sources use for the Debian
 * archive, in a private apt configuration.
 */
export const GUEST_KERNELS = [
  { kernel: '6.1', suite: 'system', release: /^6\.1\./, folder: 'guest' },
  { kernel: '6.12', suite: 'bookworm-backports', release: /^6\.12\./, folder: 'guest-6.12' },
  { kernel: '7.x', suite: 'trixie-backports', release: /^7\./, folder: 'guest-7.x' },
] as const;

/** A kernel series `guest build --kernel` accepts. */
export type GuestKernel = (typeof GUEST_KERNELS)[number]['kernel'];

/** The kernel a guest is built with when none is named (and the one older manifests hold). */
export const DEFAULT_GUEST_KERNEL: GuestKernel = '6.1';

/** The table entry of one kernel series. */
export type GuestKernelSource = (typeof GUEST_KERNELS)[number];

/** The entry for `kernel`, or undefined when it is not one of {@link GUEST_KERNELS}. */
export function guestKernelSource(kernel: string): GuestKernelSource | undefined {
  return GUEST_KERNELS.find((k) => k.kernel === kernel);
}

/** The `NAME=value` settings of a kernel `config-*` file (`# NAME is not set` lines are left out). */
export function parseKernelConfig(text: string): ReadonlyMap<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) settings.set(m[1]!, m[2]!);
  }
  return settings;
}

/** Where the kernel image and its config are in the package's files, and the kernel release they name. */
export interface KernelFiles {
  readonly kernelRelease: string;
  /** Archive paths (`./…`). */
  readonly vmlinuz: string;
  readonly config: string | undefined;
}

/**
 * The kernel image and config among the package's files (`dpkg-deb -c` paths): 6.x packages
 * hold `boot/vmlinuz-RELEASE` and `boot/config-RELEASE`; Debian's 7.x packages
 * `usr/lib/modules/RELEASE/vmlinuz` and `usr/lib/modules/RELEASE/config`.
 */
export function findKernelFiles(archivePaths: readonly string[]): KernelFiles | undefined {
  const paths = new Set(archivePaths.map((p) => `./${p.replace(/^\.?\//, '')}`));
  for (const p of paths) {
    const boot = /^\.\/boot\/vmlinuz-(\S+)$/.exec(p);
    if (boot) {
      const config = `./boot/config-${boot[1]}`;
      return { kernelRelease: boot[1]!, vmlinuz: p, config: paths.has(config) ? config : undefined };
    }
    const usr = /^\.\/usr\/lib\/modules\/([^/]+)\/vmlinuz$/.exec(p);
    if (usr) {
      const config = `./usr/lib/modules/${usr[1]}/config`;
      return { kernelRelease: usr[1]!, vmlinuz: p, config: paths.has(config) ? config : undefined };
    }
  }
  return undefined;
}

/** How a module file is stored in the package. */
export type ModuleCompression = 'none' | 'xz';

/** A module file of the package: its path in the archive and how it is compressed. */
export interface PackagedModule {
  readonly archivePath: string;
  readonly compression: ModuleCompression;
}

/** What to pack: the module files, in load order, and the modules the kernel has built in. */
export type ModulePlan =
  | {
      readonly ok: true;
      readonly packed: readonly { readonly name: GuestModule; readonly file: PackagedModule }[];
      readonly builtIn: readonly GuestModule[];
    }
  | { readonly ok: false; readonly problem: string };

/**
 * The guest's module files from the package's file list (`dpkg-deb -c` paths): each module of
 * {@link GUEST_MODULES} under `lib/modules/RELEASE/` or `usr/lib/modules/RELEASE/`, plain `.ko` or `.ko.xz`. Another compression
 * is a problem named with the file (busybox insmod loads plain files; only xz is unpacked here).
 */
export function findModuleFiles(
  archivePaths: readonly string[],
  kernelRelease: string,
): { readonly files: ReadonlyMap<string, PackagedModule>; readonly problem?: string } {
  const files = new Map<string, PackagedModule>();
  const wanted = new Set<string>(GUEST_MODULES);
  const prefixes = [`lib/modules/${kernelRelease}/`, `usr/lib/modules/${kernelRelease}/`];
  for (const raw of archivePaths) {
    const p = raw.replace(/^\.?\//, '');
    if (!prefixes.some((prefix) => p.startsWith(prefix))) continue;
    const m = /\/([A-Za-z0-9_-]+)\.ko(\.[a-z0-9]+)?$/.exec(p);
    if (!m || !wanted.has(m[1]!)) continue;
    const suffix = m[2];
    if (suffix === undefined) files.set(m[1]!, { archivePath: `./${p}`, compression: 'none' });
    else if (suffix === '.xz') files.set(m[1]!, { archivePath: `./${p}`, compression: 'xz' });
    else
      return {
        files,
        problem: `${p}: modules compressed as ${suffix} are not supported (plain .ko and .ko.xz are)`,
      };
  }
  return { files };
}

/**
 * Which modules to pack: a module whose file the package has is packed; one it lacks must be
 * built in (`=y` in the kernel's config) and is left out; one that is neither is an error, as is
 * a virtio_mem built in (the adapter unloads and reloads the driver for every vector).
 */
export function planModules(
  config: ReadonlyMap<string, string>,
  files: ReadonlyMap<string, PackagedModule>,
  packageName: string,
): ModulePlan {
  const packed: { name: GuestModule; file: PackagedModule }[] = [];
  const builtIn: GuestModule[] = [];
  for (const name of GUEST_MODULES) {
    const symbol = MODULE_CONFIG[name];
    const setting = config.get(symbol);
    const file = files.get(name);
    if (file) packed.push({ name, file });
    else if (setting === 'y') builtIn.push(name);
    else
      return {
        ok: false,
        problem: `${packageName} has no ${name}.ko and its config has ${setting === undefined ? `${symbol} not set` : `${symbol}=${setting}`}: the guest needs ${name} as a module or built in (${symbol}=m or =y)`,
      };
  }
  if (builtIn.includes('virtio_mem'))
    return {
      ok: false,
      problem: `${packageName} has virtio_mem built in (CONFIG_VIRTIO_MEM=y); the adapter reloads the driver for every vector, so it must be a module`,
    };
  return { ok: true, packed, builtIn };
}
