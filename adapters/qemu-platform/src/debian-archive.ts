/**
 * A private apt configuration: its own sources, package lists, downloads, preferences and caches
 * in one folder, an empty dpkg status and no locking, so `apt-get update` and `apt-get download`
 * fetch from a suite the machine does not use without touching the machine's apt state (no file
 * under /etc/apt, /var/lib/apt or /var/cache/apt is written). Pure: paths and argument vectors.
 */
import * as path from 'node:path';

/** The Debian packages of a QEMU that emulates x86-64 and boots with SeaBIOS. */
export const QEMU_PACKAGES = [
  { name: 'qemu-system-x86', sameVersionAsQemu: true, holds: 'the emulator, usr/bin/qemu-system-x86_64' },
  { name: 'qemu-system-common', sameVersionAsQemu: true, holds: 'shared files and the module folder' },
  { name: 'qemu-system-data', sameVersionAsQemu: true, holds: 'firmware and option ROMs, usr/share/qemu' },
  { name: 'seabios', sameVersionAsQemu: false, holds: 'the BIOS images, usr/share/seabios' },
] as const;

/** The name of each package to download. */
export type QemuPackageName = (typeof QEMU_PACKAGES)[number]['name'];

/** Where the private configuration keeps each thing, all under one folder. */
export interface PrivateAptLayout {
  readonly dir: string;
  /** The main sources file (left empty: everything is in the parts folder). */
  readonly sourceList: string;
  readonly sourceParts: string;
  /** The one sources file written, in the parts folder. */
  readonly sourcesFile: string;
  readonly preferences: string;
  readonly preferenceParts: string;
  readonly lists: string;
  readonly cache: string;
  readonly archives: string;
}

/** The layout of a private apt configuration in `dir`. */
export function privateAptLayout(dir: string): PrivateAptLayout {
  return {
    dir,
    sourceList: path.join(dir, 'etc', 'sources.list'),
    sourceParts: path.join(dir, 'etc', 'sources.list.d'),
    sourcesFile: path.join(dir, 'etc', 'sources.list.d', 'vmemct.sources'),
    preferences: path.join(dir, 'etc', 'preferences'),
    preferenceParts: path.join(dir, 'etc', 'preferences.d'),
    lists: path.join(dir, 'lists'),
    cache: path.join(dir, 'cache'),
    archives: path.join(dir, 'cache', 'archives'),
  };
}

/** The folders the layout needs before apt runs (apt wants the `partial` ones to exist). */
export function privateAptFolders(layout: PrivateAptLayout): string[] {
  return [
    layout.sourceParts,
    layout.preferenceParts,
    path.join(layout.lists, 'partial'),
    path.join(layout.archives, 'partial'),
  ];
}

/**
 * The `-o` options that point apt at the private layout. `asRoot`: apt run as root drops to its
 * `_apt` sandbox user to download, which cannot write into a cache under a private home; the
 * download then stays with root (as apt itself would do after warning).
 */
export function privateAptOptions(layout: PrivateAptLayout, asRoot: boolean): string[] {
  const settings: [string, string][] = [
    ['Dir::Etc::sourcelist', layout.sourceList],
    ['Dir::Etc::sourceparts', layout.sourceParts],
    ['Dir::Etc::preferences', layout.preferences],
    ['Dir::Etc::preferencesparts', layout.preferenceParts],
    ['Dir::State::Lists', layout.lists],
    ['Dir::State::status', '/dev/null'],
    ['Dir::Cache', layout.cache],
    ['Dir::Cache::archives', layout.archives],
    ['Dir::Cache::pkgcache', path.join(layout.cache, 'pkgcache.bin')],
    ['Dir::Cache::srcpkgcache', path.join(layout.cache, 'srcpkgcache.bin')],
    ['Debug::NoLocking', '1'],
  ];
  if (asRoot) settings.push(['APT::Sandbox::User', 'root']);
  return settings.flatMap(([key, value]) => ['-o', `${key}=${value}`]);
}

/** `apt-get update` in the private configuration (argument vector, no shell). */
export function aptUpdateArgv(aptGet: string, layout: PrivateAptLayout, asRoot: boolean): string[] {
  return [aptGet, '-q', ...privateAptOptions(layout, asRoot), 'update'];
}

/** `apt-get download PACKAGE…` in the private configuration; it writes the `.deb` files into its working folder. */
export function aptDownloadArgv(
  aptGet: string,
  layout: PrivateAptLayout,
  asRoot: boolean,
  packages: readonly string[],
): string[] {
  return [aptGet, '-q', ...privateAptOptions(layout, asRoot), 'download', ...packages];
}

/**
 * The upstream part of a Debian version: no epoch, no Debian revision, no `+ds`/`~bpo` suffixes
 * (`1:10.0.2+ds-2+deb13u1~bpo12+1` → `10.0.2`).
 */
export function upstreamVersion(debianVersion: string): string {
  const noEpoch = debianVersion.replace(/^[0-9]+:/, '');
  return /^[0-9]+(?:\.[0-9]+)*/.exec(noEpoch)?.[0] ?? noEpoch;
}

/** Whether `version` (e.g. `10.0.2`) belongs to the release series `series` (e.g. `10.0`). */
export function inSeries(version: string, series: string): boolean {
  return version === series || version.startsWith(`${series}.`);
}
