/**
 * Shared set-up of the QEMU test suite (`npm run test:qemu`): these tests start real QEMU
 * processes and fail, rather than skip, when QEMU is missing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QemuBinary, defaultQemuCacheDir, locateQemu, readFetchedQemu } from '../../qemu-platform/src/index';
import type { DeviceSetup } from '../../core/src/contract';
import { loadVectors } from '../../../conformance/src/loader/load';
import type { Vector } from '../../../conformance/src/loader/types';

/** The QEMU under test (throws with the package to install when it is missing). */
export const QEMU = locateQemu();

/**
 * QEMU 10.0 as `vmemct qemu fetch` unpacked it into the default cache folder (`npm run
 * test:qemu` fetches it first). Throws naming the command when it is not there.
 */
export function locateQemu10(): QemuBinary {
  const dir = defaultQemuCacheDir('10.0');
  const fetched = readFetchedQemu(dir, '10.0');
  if (!fetched)
    throw new Error(
      `QEMU 10.0 is not in ${dir}: run \`node conformance/bin/vmemct.js qemu fetch\` (npm run test:qemu does)`,
    );
  return locateQemu(fetched.binary);
}

/** The repository root. */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

const MiB = 1n << 20n;

/** A device of 512 blocks of 2 MiB at 4 GiB, 64 MiB requested. */
export const SMALL_DEVICE: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 1024n * MiB,
  addr: 4n << 30n,
  requested_size: 64n * MiB,
  node_id: 0,
  plugged: [],
};

/** The shipped device vectors. */
export function deviceVectors(): Vector[] {
  const loaded = loadVectors([path.join(ROOT, 'conformance', 'vectors', 'device')]);
  if (loaded.problems.length > 0)
    throw new Error(`corpus problems: ${loaded.problems.map((p) => p.reason).join('; ')}`);
  return loaded.vectors;
}

/** Whether a process is running (a zombie awaiting its reaper counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Processes whose parent is `parent`, whose command name starts with `name` and whose arguments include `argument`. */
export function childrenNamed(parent: number, name: string, argument: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent || !comm.startsWith(name)) continue;
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(argument)) found.push(Number(entry));
    } catch {
      /* the process ended meanwhile */
    }
  }
  return found;
}

/** Polls `condition` every 20 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return condition();
}
