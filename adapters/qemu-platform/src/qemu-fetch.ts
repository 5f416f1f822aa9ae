/**
 * Fetching a QEMU release from Debian's backports suite into a cache folder (`vmemct qemu fetch`),
 * beside the QEMU the machine has installed. The mirrors are the ones the machine's own apt
 * sources use for the Debian archive; the suite is added in a private apt configuration
 * (debian-archive.ts), so the machine's sources and apt state stay untouched. The packages are
 * unpacked with `dpkg-deb -x`, never installed, and the binary is checked to run and to be the
 * release asked for. Every program runs from an argument vector, without a shell.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AptSourceEntry,
  debianArchiveMirrors,
  parseDeb822Sources,
  parseOneLineSources,
  parseOsRelease,
  renderSuiteSources,
} from './apt-sources';
import {
  QEMU_PACKAGES,
  aptDownloadArgv,
  aptUpdateArgv,
  inSeries,
  privateAptFolders,
  privateAptLayout,
  upstreamVersion,
} from './debian-archive';
import { findOnPath } from './host-processes';
import {
  BINARY_IN_CACHE,
  FETCH_RECORD_FORMAT,
  FetchRecord,
  FetchedQemu,
  partialDir,
  readFetchedQemu,
  removeStalePartials,
  replaceableCache,
  writeFetchRecord,
} from './qemu-cache';

/** What a program run printed and how it ended. */
export interface ToolResult {
  /** Exit status (null when it was killed or did not start). */
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Why it did not start or was killed, if so. */
  readonly error?: string;
}

/** The machine as a fetch sees it (injected, so the whole fetch runs in tests on a fake one). */
export interface FetchHost {
  /** The apt configuration folder (`/etc/apt`). */
  readonly aptDir: string;
  /** The os-release file (`/etc/os-release`). */
  readonly osReleaseFile: string;
  /** Whether the fetch runs as root (apt's download sandbox). */
  readonly asRoot: boolean;
  /** The path of an executable, or undefined. */
  findTool(name: string): string | undefined;
  /** Runs `argv` (no shell) in `cwd`. */
  run(argv: readonly string[], cwd: string): Promise<ToolResult>;
}

/** Longest any one program may run (a slow mirror, 15 MB of packages). */
const TOOL_TIMEOUT_MS = 15 * 60_000;
const SBIN_DIRS = ['/usr/sbin', '/sbin'];

/** The real machine. */
export const SYSTEM_HOST: FetchHost = {
  aptDir: '/etc/apt',
  osReleaseFile: '/etc/os-release',
  asRoot: process.getuid?.() === 0,
  findTool: (name) => findOnPath(name, SBIN_DIRS),
  run: runTool,
};

/** Runs a program without a shell, in the C locale (its messages are matched), with a time bound. */
export function runTool(argv: readonly string[], cwd: string): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd,
      shell: false,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
      timeout: TOOL_TIMEOUT_MS,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-65536)));
    child.once('error', (e) => resolve({ status: null, stdout, stderr, error: e.message }));
    child.once('close', (status, signal) =>
      resolve({ status, stdout, stderr, ...(signal ? { error: `killed by ${signal}` } : {}) }),
    );
  });
}

/** Why a fetch failed; each kind comes with the reason and what to do. */
export const FETCH_FAILURE_KINDS = [
  'no-apt',
  'no-sources',
  'network',
  'missing-package',
  'version',
  'not-runnable',
  'unpack',
  'cache',
] as const;

/** One of {@link FETCH_FAILURE_KINDS}. */
export type FetchFailureKind = (typeof FETCH_FAILURE_KINDS)[number];

/** A fetch's result. */
export type FetchOutcome =
  | { readonly ok: true; readonly fetched: FetchedQemu; readonly reused: boolean }
  | { readonly ok: false; readonly kind: FetchFailureKind; readonly reason: string; readonly fix: string };

/** What to fetch and where. */
export interface FetchOptions {
  /** Release series, e.g. `10.0`. */
  readonly series: string;
  /** The cache folder. */
  readonly dir: string;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  readonly host?: FetchHost;
}

type Failure = Extract<FetchOutcome, { ok: false }>;

const fail = (kind: FetchFailureKind, reason: string, fix: string): Failure => ({ ok: false, kind, reason, fix });

/**
 * Fetches QEMU `series` into `dir`, or reuses a complete earlier fetch there (after checking its
 * binary still runs and is that series). A partial folder is replaced; a folder holding anything
 * else is refused.
 */
export async function fetchQemu(options: FetchOptions): Promise<FetchOutcome> {
  const host = options.host ?? SYSTEM_HOST;
  const log = options.log ?? (() => undefined);
  const dir = path.resolve(options.dir);
  const earlier = readFetchedQemu(dir, options.series);
  if (earlier && inSeries((await probeQemuVersion(host, earlier.binary)) ?? '', options.series)) {
    return { ok: true, fetched: earlier, reused: true };
  }
  if (!replaceableCache(dir)) {
    const what = fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()
      ? 'exists and holds files that are not a QEMU fetch'
      : 'exists and is not a folder';
    return fail('cache', `${dir} ${what}`, 'choose an empty or new folder with --cache');
  }
  const work = partialDir(dir);
  try {
    removeStalePartials(dir);
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    const outcome = await fetchInto(work, options.series, host, log);
    if (!outcome.ok) return outcome;
    return install(work, dir, options.series);
  } catch (e) {
    return fail(
      'cache',
      `cannot write the cache folder: ${(e as Error).message}`,
      'choose a writable folder with --cache',
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Moves a complete working folder into place (or keeps a complete one another fetch put there meanwhile). */
function install(work: string, dir: string, series: string): FetchOutcome {
  fs.rmSync(path.join(work, 'apt'), { recursive: true, force: true });
  fs.rmSync(path.join(work, 'debs'), { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    fs.renameSync(work, dir);
  } catch (e) {
    const other = readFetchedQemu(dir, series);
    if (other) return { ok: true, fetched: other, reused: true };
    throw e;
  }
  const fetched = readFetchedQemu(dir, series);
  if (!fetched) throw new Error(`${dir} is incomplete after the fetch`);
  return { ok: true, fetched, reused: false };
}

/** Downloads, unpacks and checks QEMU `series` in the working folder `work`. */
async function fetchInto(
  work: string,
  series: string,
  host: FetchHost,
  log: (line: string) => void,
): Promise<FetchOutcome | { readonly ok: true }> {
  const aptGet = host.findTool('apt-get');
  const dpkgDeb = host.findTool('dpkg-deb');
  if (!aptGet || !dpkgDeb)
    return fail(
      'no-apt',
      `${!aptGet ? 'apt-get' : 'dpkg-deb'} was not found: QEMU is fetched from Debian's packages with apt-get and dpkg-deb`,
      'run the fetch on Debian (or a Debian-based system with apt), or give --qemu a QEMU binary you have',
    );
  const codename = readCodename(host.osReleaseFile);
  if (!codename)
    return fail(
      'no-sources',
      `${host.osReleaseFile} names no VERSION_CODENAME, so the Debian release (and its backports suite) is unknown`,
      'run the fetch on Debian, or give --qemu a QEMU binary you have',
    );
  const suite = `${codename}-backports`;
  const mirrors = debianArchiveMirrors(readAptSources(host.aptDir), codename);
  if (mirrors.length === 0)
    return fail(
      'no-sources',
      `no apt source in ${host.aptDir} serves the Debian archive suites ${codename} or ${codename}-updates (the fetch takes ${suite} from the same mirrors)`,
      `add the Debian archive to the apt sources (e.g. a stanza with Suites: ${codename} ${codename}-updates in ${path.join(host.aptDir, 'sources.list.d', 'debian.sources')}), then run the fetch again`,
    );
  const layout = privateAptLayout(path.join(work, 'apt'));
  for (const folder of privateAptFolders(layout)) fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(layout.sourceList, '');
  fs.writeFileSync(layout.sourcesFile, renderSuiteSources(mirrors, suite));
  log(
    `reading ${suite} from the ${mirrors.length} Debian mirror(s) of ${host.aptDir} (private apt configuration in ${layout.dir})`,
  );
  const update = await host.run(aptUpdateArgv(aptGet, layout, host.asRoot), work);
  if (update.status !== 0 || !hasPackageLists(layout.lists))
    return fail(
      'network',
      `apt-get update of ${suite} failed: ${aptProblem(update)}`,
      'check that this machine reaches its Debian mirror (apt-get update works), then run the fetch again',
    );
  const debs = path.join(work, 'debs');
  fs.mkdirSync(debs);
  const names = QEMU_PACKAGES.map((p) => p.name);
  log(`downloading ${names.join(', ')} from ${suite}`);
  const download = await host.run(aptDownloadArgv(aptGet, layout, host.asRoot, names), debs);
  if (download.status !== 0) {
    const missing = /Unable to locate package|has no installation candidate|Can't select|No packages found/.test(
      download.stderr,
    );
    return missing
      ? fail(
          'missing-package',
          `${suite} does not carry the QEMU packages: ${aptProblem(download)}`,
          `QEMU ${series} is fetched from Debian 12 (bookworm)'s backports; elsewhere give --qemu a QEMU ${series} binary`,
        )
      : fail(
          'network',
          `downloading the QEMU packages failed: ${aptProblem(download)}`,
          'check that this machine reaches its Debian mirror, then run the fetch again',
        );
  }
  const unpacked = await unpackAll(dpkgDeb, debs, path.join(work, 'root'), series, suite, host);
  if (!unpacked.ok) return unpacked;
  const binary = path.join(work, BINARY_IN_CACHE);
  const qemuVersion = await probeQemuVersion(host, binary);
  if (qemuVersion === undefined)
    return fail(
      'not-runnable',
      `the unpacked ${binary} does not run: ${lastLines((await host.run([binary, '--version'], work)).stderr) || 'no version printed'}`,
      `it is built for Debian ${codename}: run it there, or install the libraries it names`,
    );
  if (!inSeries(qemuVersion, series))
    return fail(
      'version',
      `the unpacked binary is QEMU ${qemuVersion}, not ${series}.x`,
      `fetch the series ${suite} carries (--version ${qemuVersion.split('.').slice(0, 2).join('.')}) or give --qemu a QEMU ${series} binary`,
    );
  const record: FetchRecord = {
    format: FETCH_RECORD_FORMAT,
    series,
    qemuVersion,
    suite,
    packages: unpacked.packages,
  };
  writeFetchRecord(work, record);
  log(`QEMU ${qemuVersion} unpacked`);
  return { ok: true };
}

/** Unpacks every downloaded package into `root` after checking the QEMU packages are of `series`. */
async function unpackAll(
  dpkgDeb: string,
  debs: string,
  root: string,
  series: string,
  suite: string,
  host: FetchHost,
): Promise<Failure | { readonly ok: true; readonly packages: Record<string, string> }> {
  const packages: Record<string, string> = {};
  const files = fs.readdirSync(debs).filter((f) => f.endsWith('.deb'));
  for (const file of files) {
    const fields = await host.run([dpkgDeb, '--field', path.join(debs, file), 'Package', 'Version'], debs);
    const name = /^Package:\s*(\S+)/m.exec(fields.stdout)?.[1];
    const version = /^Version:\s*(\S+)/m.exec(fields.stdout)?.[1];
    if (fields.status !== 0 || !name || !version)
      return fail('unpack', `${file} is not a readable package: ${aptProblem(fields)}`, 'run the fetch again');
    packages[name] = version;
  }
  for (const p of QEMU_PACKAGES) {
    const version = packages[p.name];
    if (version === undefined)
      return fail('missing-package', `apt-get download did not leave ${p.name}`, 'run the fetch again');
    if (p.sameVersionAsQemu && !inSeries(upstreamVersion(version), series))
      return fail(
        'version',
        `${suite} carries ${p.name} ${version}, not QEMU ${series}.x`,
        `fetch the series ${suite} carries (--version ${upstreamVersion(version).split('.').slice(0, 2).join('.')}) or give --qemu a QEMU ${series} binary`,
      );
  }
  fs.mkdirSync(root, { recursive: true });
  for (const file of files) {
    const result = await host.run([dpkgDeb, '-x', path.join(debs, file), root], debs);
    if (result.status !== 0)
      return fail(
        'unpack',
        `dpkg-deb -x ${file} failed: ${aptProblem(result)}`,
        'check the free space of the cache folder, then run the fetch again',
      );
  }
  return { ok: true, packages };
}

/** The version a QEMU binary reports (`10.0.2`), or undefined when it does not run or is not QEMU. */
export async function probeQemuVersion(host: FetchHost, binary: string): Promise<string | undefined> {
  const result = await host.run([binary, '--version'], path.dirname(binary));
  if (result.status !== 0) return undefined;
  return /QEMU emulator version ([0-9]+\.[0-9]+(?:\.[0-9]+)?)/.exec(result.stdout)?.[1];
}

/** The release codename of the machine (`VERSION_CODENAME`), or undefined. */
function readCodename(osReleaseFile: string): string | undefined {
  try {
    const codename = parseOsRelease(fs.readFileSync(osReleaseFile, 'utf8')).get('VERSION_CODENAME');
    return codename && /^[a-z0-9][a-z0-9.-]*$/.test(codename) ? codename : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every source entry apt would read from `aptDir`: `sources.list`, then `sources.list.d/*.list`
 * and `*.sources` in name order. Other files there (`*.disabled`, `*.save`, …) are not read,
 * as apt does not read them.
 */
export function readAptSources(aptDir: string): AptSourceEntry[] {
  const entries: AptSourceEntry[] = [];
  const read = (file: string): string | undefined => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  };
  const main = path.join(aptDir, 'sources.list');
  const mainText = read(main);
  if (mainText !== undefined) entries.push(...parseOneLineSources(mainText, main));
  let parts: string[] = [];
  try {
    parts = fs.readdirSync(path.join(aptDir, 'sources.list.d')).sort();
  } catch {
    /* no parts folder */
  }
  for (const name of parts) {
    const file = path.join(aptDir, 'sources.list.d', name);
    if (!/^[A-Za-z0-9_.-]+\.(list|sources)$/.test(name)) continue;
    const text = read(file);
    if (text === undefined) continue;
    entries.push(...(name.endsWith('.sources') ? parseDeb822Sources(text, file) : parseOneLineSources(text, file)));
  }
  return entries;
}

/** Whether `apt-get update` left a package index in the lists folder. */
function hasPackageLists(lists: string): boolean {
  try {
    return fs.readdirSync(lists).some((f) => f.includes('_Packages'));
  } catch {
    return false;
  }
}

/** The lines of apt's output that say what went wrong (`E:`/`W:`/`Err:`), else its last lines. */
function aptProblem(result: ToolResult): string {
  const text = `${result.stdout}\n${result.stderr}`;
  const problems = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(E:|W:|Err:)/.test(l));
  return (
    (problems.length > 0 ? problems.slice(0, 4).join(' | ') : lastLines(text)) ||
    result.error ||
    `exit ${result.status}`
  );
}

function lastLines(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(-2)
    .join(' | ');
}
