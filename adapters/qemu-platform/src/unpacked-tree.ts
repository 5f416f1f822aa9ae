/**
 * Running a QEMU that was unpacked from Debian packages into a folder (`vmemct qemu fetch`)
 * rather than installed: such a binary still looks for its firmware and modules in the system's
 * `/usr`, where another QEMU's files live. Debian builds QEMU with the firmware path
 * `/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu`, not relative to the binary, so the
 * unpacked tree's own folders are put first with `-L` (searched in the order given, before the
 * built-in ones) and its module folder is named in `QEMU_MODULE_DIR`.
 */
import * as path from 'node:path';

/**
 * The data folders of an unpacked tree, relative to its root, in QEMU's search order: QEMU's own
 * files first, then the BIOS (Debian's qemu-system-data leaves the SeaBIOS images to the seabios
 * package's folder), then iPXE's option ROMs. Only the folders that exist are passed.
 */
export const UNPACKED_DATA_DIRS = ['usr/share/qemu', 'usr/share/seabios', 'usr/lib/ipxe/qemu'] as const;

/** Debian's multiarch folder of each Node.js architecture QEMU may run on. */
const MULTIARCH_TRIPLETS: Readonly<Partial<Record<NodeJS.Architecture, string>>> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
};

/** What starting a QEMU binary needs beyond its own arguments. */
export interface QemuLaunch {
  /** Folders passed with `-L`, in order (empty for an installed QEMU). */
  readonly dataDirs: readonly string[];
  /** Variables added to QEMU's environment (`QEMU_MODULE_DIR` for an unpacked tree). */
  readonly environment: Readonly<Record<string, string>>;
}

/** An installed QEMU: nothing to add. */
export const INSTALLED_LAUNCH: QemuLaunch = { dataDirs: [], environment: {} };

/**
 * How to start the QEMU at `binaryPath` (its real path, symbolic links resolved): when it lies
 * in an unpacked tree (`<root>/usr/bin/<name>` with `<root>/usr/share/qemu` beside it, `<root>`
 * not `/`), its data folders and module folder; otherwise nothing. `isDirectory` is the file
 * system's answer (injected so the derivation is testable on a fake tree).
 */
export function qemuLaunchFor(
  binaryPath: string,
  isDirectory: (dir: string) => boolean,
  arch: NodeJS.Architecture = process.arch,
): QemuLaunch {
  const binDir = path.dirname(binaryPath);
  const usrDir = path.dirname(binDir);
  const root = path.dirname(usrDir);
  if (path.basename(binDir) !== 'bin' || path.basename(usrDir) !== 'usr' || root === usrDir) return INSTALLED_LAUNCH;
  if (root === path.parse(root).root) return INSTALLED_LAUNCH;
  if (!isDirectory(path.join(root, UNPACKED_DATA_DIRS[0]))) return INSTALLED_LAUNCH;
  const dataDirs = UNPACKED_DATA_DIRS.map((d) => path.join(root, d)).filter((d) => isDirectory(d));
  const triplet = MULTIARCH_TRIPLETS[arch];
  const moduleDir = triplet === undefined ? undefined : path.join(root, 'usr', 'lib', triplet, 'qemu');
  const environment: Record<string, string> =
    moduleDir !== undefined && isDirectory(moduleDir) ? { QEMU_MODULE_DIR: moduleDir } : {};
  return { dataDirs, environment };
}

/** The `-L DIR` arguments of a launch, to go before the machine options. */
export function dataDirArguments(launch: QemuLaunch): string[] {
  return launch.dataDirs.flatMap((dir) => ['-L', dir]);
}
