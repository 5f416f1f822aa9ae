/**
 * The cache folder of a fetched QEMU (`vmemct qemu fetch`):
 *
 *     <dir>/root/…                 the packages unpacked (usr/bin/qemu-system-x86_64, usr/share/…)
 *     <dir>/vmemct-qemu.json       what was fetched; written last, so its presence means complete
 *
 * A fetch works in a sibling `<dir>.partial-<pid>` and renames it into place when complete, so a
 * folder is either complete or absent, and two fetches at once do not mix their files.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { processAlive } from './host-processes';

/** The file recording a complete fetch. */
export const FETCH_RECORD = 'vmemct-qemu.json';
/** Format tag of {@link FETCH_RECORD}. */
export const FETCH_RECORD_FORMAT = 'vmemct-qemu-fetch/1';
/** The QEMU binary, relative to the cache folder. */
export const BINARY_IN_CACHE = path.join('root', 'usr', 'bin', 'qemu-system-x86_64');
/** Everything a fetch puts in its folder: a folder holding anything else is not ours to replace. */
export const CACHE_ENTRIES = ['root', 'apt', 'debs', FETCH_RECORD] as const;

/** What {@link FETCH_RECORD} says. */
export interface FetchRecord {
  readonly format: typeof FETCH_RECORD_FORMAT;
  /** The release series asked for, e.g. `10.0`. */
  readonly series: string;
  /** The version the binary reports, e.g. `10.0.2`. */
  readonly qemuVersion: string;
  /** The suite the packages came from, e.g. `bookworm-backports`. */
  readonly suite: string;
  /** Debian version of each package unpacked. */
  readonly packages: Readonly<Record<string, string>>;
}

/** A complete fetch found in a cache folder. */
export interface FetchedQemu extends FetchRecord {
  readonly dir: string;
  /** Absolute path of the binary. */
  readonly binary: string;
}

/** `$XDG_CACHE_HOME/vmemct/qemu-<series>`, else `~/.cache/vmemct/qemu-<series>`. */
export function defaultQemuCacheDir(
  series: string,
  env: NodeJS.ProcessEnv = process.env,
  home: string = os.homedir(),
): string {
  const cache = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : path.join(home, '.cache');
  return path.resolve(cache, 'vmemct', `qemu-${series}`);
}

/** The complete fetch of `series` in `dir`, or undefined (absent, partial, another series, or its binary gone). */
export function readFetchedQemu(dir: string, series: string): FetchedQemu | undefined {
  let record: Partial<FetchRecord>;
  try {
    record = JSON.parse(fs.readFileSync(path.join(dir, FETCH_RECORD), 'utf8')) as Partial<FetchRecord>;
  } catch {
    return undefined;
  }
  if (record.format !== FETCH_RECORD_FORMAT || record.series !== series) return undefined;
  if (typeof record.qemuVersion !== 'string' || typeof record.suite !== 'string') return undefined;
  const binary = path.join(path.resolve(dir), BINARY_IN_CACHE);
  if (!fs.existsSync(binary)) return undefined;
  return { ...(record as FetchRecord), dir: path.resolve(dir), binary };
}

/** Writes the record that marks `dir` complete. */
export function writeFetchRecord(dir: string, record: FetchRecord): void {
  fs.writeFileSync(path.join(dir, FETCH_RECORD), `${JSON.stringify(record, null, 2)}\n`);
}

/** Whether `dir` may be replaced by a fetch: it does not exist, or it holds nothing but a fetch's entries. */
export function replaceableCache(dir: string): boolean {
  let entries: string[];
  try {
    if (!fs.statSync(dir).isDirectory()) return false;
    entries = fs.readdirSync(dir);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
  return entries.every((e) => (CACHE_ENTRIES as readonly string[]).includes(e));
}

/** The working folder of a fetch into `dir` by process `pid`. */
export function partialDir(dir: string, pid: number = process.pid): string {
  return `${path.resolve(dir)}.partial-${pid}`;
}

/** Removes working folders of fetches into `dir` whose process is gone (killed mid-way). */
export function removeStalePartials(dir: string): void {
  const parent = path.dirname(path.resolve(dir));
  const prefix = `${path.basename(path.resolve(dir))}.partial-`;
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length));
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    fs.rmSync(path.join(parent, entry), { recursive: true, force: true });
  }
}
