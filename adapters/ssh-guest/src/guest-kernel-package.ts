/**
 * Fetching the kernel package of a guest (`guest build --kernel`): `linux-image-amd64` is resolved
 * to the versioned kernel package it depends on today and that package is downloaded, never
 * installed. For 6.1 the machine's own apt sources are used as they are; for a newer series the
 * suite it comes from is read from the same mirrors the machine's sources use for the Debian
 * archive, in a private apt configuration under the guest folder (no mirror address is written
 * anywhere, and the machine's sources and apt state stay untouched).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  aptDownloadArgv,
  aptUpdateArgv,
  debianArchiveMirrors,
  parseOsRelease,
  privateAptFolders,
  privateAptLayout,
  privateAptOptions,
  readAptSources,
  renderSuiteSources,
} from '../../qemu-platform/src/index';
import { GuestKernelSource } from './guest-kernel';

/** The kernel package `linux-image-amd64` depends on, from `apt-cache depends` output. */
export function kernelPackageOf(aptCacheDepends: string): string | undefined {
  const m = /^\s*Depends:\s*(linux-image-[0-9][^\s]*-amd64)\s*$/m.exec(aptCacheDepends);
  return m?.[1];
}

/**
 * The packages a kernel package of the same ABI depends on for its files: Debian's 7.x kernels
 * ship the image (`linux-binary-ABI`), the modules (`linux-modules-ABI`) and the rest
 * (`linux-base-ABI`) apart, and `linux-image-ABI` only depends on them; 6.x packages have none.
 */
export function companionPackages(dependsField: string, kernelPackage: string): string[] {
  const abi = kernelPackage.replace(/^linux-image-/, '');
  const names = dependsField
    .split(',')
    .flatMap((alternatives) => alternatives.split('|'))
    .map((d) => d.trim().split(/[\s(]/)[0] ?? '')
    .filter((name) => name !== kernelPackage && name.startsWith('linux-') && name.endsWith(`-${abi}`));
  return [...new Set(names)];
}

/** Downloaded kernel packages (the image's first, then its companions), or why there are none. */
export type KernelPackageOutcome =
  | {
      readonly ok: true;
      readonly kernelPackage: string;
      /** Paths of the `.deb` files: the kernel package's, then its companions'. */
      readonly debs: readonly string[];
      readonly downloaded: boolean;
    }
  | { readonly ok: false; readonly problem: string };

/** The tools a fetch runs. */
export interface KernelPackageTools {
  readonly aptGet: string;
  readonly aptCache: string;
  readonly dpkgDeb: string;
}

/** Where the machine's apt configuration and release file are (a test points them elsewhere). */
export interface AptHost {
  readonly aptDir: string;
  readonly osReleaseFile: string;
}

const SYSTEM_APT: AptHost = { aptDir: '/etc/apt', osReleaseFile: '/etc/os-release' };

function runTool(tool: string, args: readonly string[], cwd: string, timeoutMs: number): { ok: boolean; text: string } {
  const result = spawnSync(tool, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 << 20,
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (result.error) return { ok: false, text: result.error.message };
  if (result.status !== 0)
    return {
      ok: false,
      text: `exit ${result.status}: ${(result.stderr || result.stdout || '').trim().split('\n').slice(-3).join(' / ')}`,
    };
  return { ok: true, text: result.stdout };
}

/**
 * The suite's sources for the private configuration: the machine's Debian archive mirrors
 * (those serving its own release), with the suite named by `source`.
 */
export function privateSuiteSources(
  host: AptHost,
  suite: string,
): { ok: true; text: string } | { ok: false; problem: string } {
  let codename: string | undefined;
  try {
    codename = parseOsRelease(fs.readFileSync(host.osReleaseFile, 'utf8')).get('VERSION_CODENAME');
  } catch {
    codename = undefined;
  }
  if (!codename)
    return { ok: false, problem: `${host.osReleaseFile} names no VERSION_CODENAME, so the Debian mirrors are unknown` };
  const mirrors = debianArchiveMirrors(readAptSources(host.aptDir), codename);
  if (mirrors.length === 0)
    return {
      ok: false,
      problem: `no apt source in ${host.aptDir} serves the Debian archive suites ${codename} or ${codename}-updates (${suite} is read from the same mirrors)`,
    };
  return { ok: true, text: renderSuiteSources(mirrors, suite) };
}

/** Resolves and downloads the kernel package of `source` into `debDir` (reusing one downloaded earlier). */
export function fetchKernelPackage(
  source: GuestKernelSource,
  guestDir: string,
  debDir: string,
  tools: KernelPackageTools,
  host: AptHost = SYSTEM_APT,
): KernelPackageOutcome {
  const asRoot = process.getuid?.() === 0;
  let aptOptions: string[] = [];
  let where = "the machine's apt sources";
  if (source.suite !== 'system') {
    const sources = privateSuiteSources(host, source.suite);
    if (!sources.ok) return { ok: false, problem: sources.problem };
    const layout = privateAptLayout(path.join(guestDir, 'apt'));
    for (const folder of privateAptFolders(layout)) fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(layout.sourceList, '');
    fs.writeFileSync(layout.sourcesFile, sources.text);
    const [aptGet, ...updateArgs] = aptUpdateArgv(tools.aptGet, layout, asRoot);
    const update = runTool(aptGet!, updateArgs, guestDir, 600_000);
    if (!update.ok)
      return {
        ok: false,
        problem: `apt-get update of ${source.suite} (private configuration in ${layout.dir}) failed: ${update.text}`,
      };
    aptOptions = privateAptOptions(layout, asRoot);
    where = `${source.suite} (private apt configuration in ${layout.dir})`;
  }
  const depends = runTool(tools.aptCache, [...aptOptions, 'depends', 'linux-image-amd64'], guestDir, 120_000);
  const kernelPackage = depends.ok ? kernelPackageOf(depends.text) : undefined;
  if (!kernelPackage)
    return {
      ok: false,
      problem: `linux-image-amd64 in ${where} names no kernel package${source.suite === 'system' ? '; run `apt-get update` first' : ''}${depends.ok ? '' : ` (${depends.text})`}`,
    };
  fs.mkdirSync(debDir, { recursive: true });
  const download = (names: readonly string[]): { ok: boolean; text: string } => {
    if (source.suite === 'system') return runTool(tools.aptGet, ['download', ...names], debDir, 600_000);
    const layout = privateAptLayout(path.join(guestDir, 'apt'));
    const [aptGet, ...args] = aptDownloadArgv(tools.aptGet, layout, asRoot, names);
    return runTool(aptGet!, args, debDir, 600_000);
  };
  const cached = (name: string): string | undefined =>
    fs.readdirSync(debDir).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  let downloaded = false;
  const fetchOne = (names: readonly string[]): string | undefined => {
    const missing = names.filter((n) => !cached(n));
    if (missing.length === 0) return undefined;
    const result = download(missing);
    downloaded = true;
    if (!result.ok)
      return `cannot download ${missing.join(', ')} from ${where}: ${result.text} (is the Debian mirror reachable?)`;
    const still = missing.find((n) => !cached(n));
    return still ? `apt-get download ${still} left no .deb in ${debDir}` : undefined;
  };
  const mainProblem = fetchOne([kernelPackage]);
  if (mainProblem) return { ok: false, problem: mainProblem };
  const mainDeb = path.join(debDir, cached(kernelPackage)!);
  const dependsField = runTool(tools.dpkgDeb, ['--field', mainDeb, 'Depends'], debDir, 60_000);
  if (!dependsField.ok) return { ok: false, problem: `${mainDeb} is not a readable package: ${dependsField.text}` };
  const companions = companionPackages(dependsField.text, kernelPackage);
  const companionProblem = fetchOne(companions);
  if (companionProblem) return { ok: false, problem: companionProblem };
  const debs = [kernelPackage, ...companions].map((n) => path.join(debDir, cached(n)!));
  for (const old of fs.readdirSync(debDir))
    if (old.endsWith('.deb') && !debs.includes(path.join(debDir, old)))
      fs.rmSync(path.join(debDir, old), { force: true });
  return { ok: true, kernelPackage, debs, downloaded };
}
