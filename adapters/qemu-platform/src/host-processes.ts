/**
 * Processes on the host: finding QEMU and other tools, telling whether a process lives, and
 * making sure the children we start (QEMU, ssh) never outlive the runner.
 */
import { ChildProcess, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QemuLaunch, qemuLaunchFor } from './unpacked-tree';

/** The QEMU binary could not be found or does not run. */
export class QemuMissingError extends Error {
  override readonly name = 'QemuMissingError';
}

/** The QEMU binary and its version, checked once. */
export interface QemuBinary {
  readonly path: string;
  /** e.g. `7.2.22`. */
  readonly version: string;
  /** Whether `setpriv --pdeathsig` is available to tie QEMU to this process. */
  readonly setpriv: string | undefined;
  /** Data folders and environment an unpacked QEMU needs (nothing for an installed one). */
  readonly launch: QemuLaunch;
}

const DEFAULT_BINARY = 'qemu-system-x86_64';

/** Finds QEMU and reads its version; throws {@link QemuMissingError} naming the package to install. */
export function locateQemu(binary: string | undefined = process.env.VMEMCT_QEMU): QemuBinary {
  const wanted = binary && binary.length > 0 ? binary : DEFAULT_BINARY;
  const resolved = wanted.includes('/') ? wanted : findOnPath(wanted);
  const hint =
    'install it with `apt-get install --no-install-recommends qemu-system-x86` (Debian/Ubuntu) or point --qemu / VMEMCT_QEMU at the binary';
  if (!resolved) throw new QemuMissingError(`${wanted} was not found on PATH; ${hint}`);
  if (!fs.existsSync(resolved)) throw new QemuMissingError(`${resolved} does not exist; ${hint}`);
  const probe = spawnSync(resolved, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error || probe.status !== 0) {
    throw new QemuMissingError(`${resolved} does not run (${probe.error?.message ?? `exit ${probe.status}`}); ${hint}`);
  }
  const m = /QEMU emulator version ([0-9]+\.[0-9]+(?:\.[0-9]+)?)/.exec(probe.stdout);
  if (!m)
    throw new QemuMissingError(`${resolved} is not QEMU (its --version does not say "QEMU emulator version"); ${hint}`);
  return {
    path: resolved,
    version: m[1]!,
    setpriv: findOnPath('setpriv'),
    launch: qemuLaunchFor(fs.realpathSync(resolved), isDirectory),
  };
}

/** Whether `dir` is a folder (following symbolic links). */
function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Finds an executable `name` on PATH, then in `extraDirs` (e.g. the sbin folders). */
export function findOnPath(name: string, extraDirs: readonly string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), ...extraDirs]) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Whether a process is alive; a zombie (dead, not yet reaped) is not. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return true;
  }
}

/** Children to kill when this process exits; each leaves the set when it exits itself. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Kills `child` if it is still running when this process exits (normal exit, or an uncaught
 * error). For children that must not outlive the runner: QEMU, ssh.
 */
export function killOnExit(child: ChildProcess): void {
  installExitHook();
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Takes `child` off the kill-on-exit list (it never started, so it will report no exit). */
export function forgetChild(child: ChildProcess): void {
  live.delete(child);
}

/** Kills every child still running when this process exits (normal exit, or an uncaught error). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}
