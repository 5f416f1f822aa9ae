/**
 * `vmemct guest build`: a small Linux guest to test the virtio_mem driver with, made only from
 * Debian packages: the kernel and nine modules of the current `linux-image-amd64`,
 * `busybox-static`, `dropbear-bin` for SSH, and vmemct's own agent (compiled here with gcc,
 * static) at /sbin/vmemct-agent, packed into an initramfs.
 *
 * The kernel ABI is resolved at build time (`apt-cache depends linux-image-amd64`), never pinned:
 * security updates bump it and old ABIs leave the mirror.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { findOnPath } from '../../qemu-platform/src/index';
import { agentSourceDir, agentSourceHash, compileAgent } from './agent-build';
import { GUEST_AGENT_PATH } from './agent-link';
import { CpioEntry, cpioArchive } from './cpio';
import {
  DEFAULT_GUEST_KERNEL,
  GuestKernel,
  PackagedModule,
  findKernelFiles,
  findModuleFiles,
  guestKernelSource,
  parseKernelConfig,
  planModules,
} from './guest-kernel';
import { fetchKernelPackage } from './guest-kernel-package';

/** The build could not be done (a missing tool, no network, an unexpected package layout). */
export class GuestBuildError extends Error {
  override readonly name = 'GuestBuildError';
}

export { GUEST_MODULES } from './guest-kernel';
export { kernelPackageOf } from './guest-kernel-package';

/** The manifest format `build` writes and `readManifest` accepts (2: the guest has the agent). */
export const GUEST_MANIFEST_FORMAT = 'vmemct-guest/2';

/** What `build` produced; stored as `guest.json` next to the files. */
export interface GuestManifest {
  readonly format: typeof GUEST_MANIFEST_FORMAT;
  /**
   * The kernel series asked for (`guest build --kernel`); absent in guests built before the
   * choice existed, which hold {@link DEFAULT_GUEST_KERNEL}.
   */
  readonly kernelSeries?: GuestKernel;
  /** The kernel package, e.g. `linux-image-6.1.0-56-amd64`. */
  readonly kernelPackage: string;
  /** Its version, e.g. `6.1.192-2`. */
  readonly kernelPackageVersion: string;
  /** `uname -r` inside the guest. */
  readonly kernelRelease: string;
  readonly kernel: string;
  readonly initrd: string;
  /** The private key that logs in as root (OpenSSH format). */
  readonly sshKey: string;
  /** The guest's SSH host key, public half, as `ssh-ed25519 AAAA…`. */
  readonly hostKey: string;
  /** Module load order used by /init: the guest's modules the kernel does not have built in. */
  readonly modules: readonly string[];
  /** The guest's modules this kernel has built in (`=y`), so not packed. */
  readonly builtInModules?: readonly string[];
  /** The in-guest agent: where it is in the guest, and which sources it was compiled from. */
  readonly agent: { readonly guestPath: string; readonly sourceSha256: string };
}

/** Tools `build` runs, and the Debian package each comes from. */
const TOOLS: readonly (readonly [string, string])[] = [
  ['apt-get', 'apt'],
  ['apt-cache', 'apt'],
  ['dpkg-deb', 'dpkg'],
  ['tar', 'tar'],
  ['busybox', 'busybox-static'],
  ['dropbear', 'dropbear-bin'],
  ['dropbearkey', 'dropbear-bin'],
  ['ssh-keygen', 'openssh-client'],
  ['ldd', 'libc-bin'],
];

/** Finds `name` on PATH, then in the sbin folders (where dropbear lives). */
export function findTool(name: string): string | undefined {
  return findOnPath(name, ['/usr/local/sbin', '/usr/sbin', '/sbin']);
}

function requireTools(): Map<string, string> {
  const found = new Map<string, string>();
  const missing: string[] = [];
  for (const [tool, pkg] of TOOLS) {
    const at = findTool(tool);
    if (at) found.set(tool, at);
    else missing.push(`${tool} (package ${pkg})`);
  }
  if (missing.length > 0) {
    const packages = [...new Set(TOOLS.filter(([t]) => !found.has(t)).map(([, p]) => p))];
    throw new GuestBuildError(
      `guest build needs ${missing.join(', ')}; install with \`apt-get install --no-install-recommends ${packages.join(' ')}\``,
    );
  }
  return found;
}

function run(tool: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): string {
  const result = spawnSync(tool, args, {
    cwd: options.cwd,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 << 20,
  });
  if (result.error) throw new GuestBuildError(`${path.basename(tool)} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    const detail = (result.stderr || result.stdout || '').trim().split('\n').slice(-3).join(' / ');
    throw new GuestBuildError(
      `${path.basename(tool)} ${args.join(' ')} exited with status ${result.status}: ${detail}`,
    );
  }
  return result.stdout;
}

/** The `depends=` list of a module's `.modinfo` section (empty when it has none). */
export function moduleDepends(moduleBytes: Uint8Array): string[] {
  const text = Buffer.from(moduleBytes).toString('latin1');
  const m = /(?:^|\0)depends=([^\0]*)\0/.exec(text);
  if (!m || m[1]!.length === 0) return [];
  return m[1]!.split(',').filter((d) => d.length > 0);
}

/** Checks that every module's dependencies come before it in `order`; returns the first violation. */
export function loadOrderProblem(
  order: readonly string[],
  depends: ReadonlyMap<string, readonly string[]>,
): string | undefined {
  const loaded = new Set<string>();
  for (const name of order) {
    for (const dep of depends.get(name) ?? []) {
      if (!loaded.has(dep))
        return `${name} needs ${dep}, which ${order.includes(dep) ? 'comes later' : 'is not in the guest'}`;
    }
    loaded.add(name);
  }
  return undefined;
}

/** The guest's /init. Nothing in it comes from a vector; it is fixed text plus the module list. */
export function initScript(kernelRelease: string, modules: readonly string[]): string {
  return `#!/bin/sh
# vmemct guest: mount, load the virtio modules, bring up the NIC, start dropbear.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
hostname vmemct-guest
# Without udev, hot-plugged memory stays offline unless the kernel onlines it itself; movable
# memory keeps unplugging reliable. This must happen before virtio_mem probes.
echo online_movable > /sys/devices/system/memory/auto_online_blocks
for m in ${modules.join(' ')}; do
  insmod /lib/modules/${kernelRelease}/vmemct/$m.ko || echo "vmemct-guest: insmod $m failed" > /dev/console
done
ip link set lo up
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
dropbear -E -s -p 22 -r /etc/dropbear/dropbear_ed25519_host_key -P /run/dropbear.pid
echo GUEST-READY > /dev/console
while true; do setsid -c sh </dev/console >/dev/console 2>&1 || sleep 5; done
`;
}

/** `modules.dep` for busybox modprobe, so `modprobe virtio_mem` / `modprobe -r virtio_mem` work. */
export function modulesDep(modules: readonly string[], depends: ReadonlyMap<string, readonly string[]>): string {
  const closure = (name: string, into: string[]): string[] => {
    for (const dep of depends.get(name) ?? []) {
      if (!into.includes(dep)) {
        into.push(dep);
        closure(dep, into);
      }
    }
    return into;
  };
  return modules
    .map(
      (m) =>
        `vmemct/${m}.ko:${closure(m, [])
          .map((d) => ` vmemct/${d}.ko`)
          .join('')}\n`,
    )
    .join('');
}

/** Libraries a dynamic executable needs, from `ldd` output (absolute paths). */
export function lddLibraries(lddOutput: string): string[] {
  const libs: string[] = [];
  for (const line of lddOutput.split('\n')) {
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(/.exec(line);
    const lib = arrow?.[1] ?? bare?.[1];
    if (lib && !libs.includes(lib)) libs.push(lib);
  }
  return libs;
}

/** Progress lines with timings. */
export type BuildLog = (line: string) => void;

/** Options of {@link buildGuest}. */
export interface BuildOptions {
  /** Where the guest is built (and the kernel package cached). */
  readonly dir: string;
  /** The kernel series (default {@link DEFAULT_GUEST_KERNEL}). */
  readonly kernel?: GuestKernel;
  readonly log?: BuildLog;
}

function pipeToFile(
  producer: string,
  producerArgs: readonly string[],
  consumer: string,
  consumerArgs: readonly string[],
  cwd: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const a = spawn(producer, producerArgs, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const b = spawn(consumer, consumerArgs, { cwd, stdio: ['pipe', 'ignore', 'pipe'] });
    let errors = '';
    a.stderr!.on('data', (c: Buffer) => (errors += c.toString()));
    b.stderr!.on('data', (c: Buffer) => (errors += c.toString()));
    a.stdout!.pipe(b.stdin!);
    b.stdin!.on('error', () => undefined);
    let pending = 2;
    let failed = false;
    const done = (name: string) => (code: number | null) => {
      if (code !== 0 && !failed) {
        failed = true;
        reject(
          new GuestBuildError(`${name} exited with status ${code}: ${errors.trim().split('\n').slice(-2).join(' / ')}`),
        );
      }
      if (--pending === 0 && !failed) resolve();
    };
    a.on('error', (e) => reject(new GuestBuildError(`${producer}: ${e.message}`)));
    b.on('error', (e) => reject(new GuestBuildError(`${consumer}: ${e.message}`)));
    a.on('exit', done(path.basename(producer)));
    b.on('exit', done(path.basename(consumer)));
  });
}

/**
 * A module file as busybox insmod loads it: plain `.ko` as extracted, `.ko.xz` decompressed on
 * the host with `xz` (package xz-utils).
 */
function readModule(file: string, packaged: PackagedModule): Uint8Array {
  if (packaged.compression === 'none') return fs.readFileSync(file);
  const xz = findTool('xz');
  if (!xz)
    throw new GuestBuildError(
      `${path.basename(file)}: this kernel's modules are xz-compressed and decompressing them needs xz; install with \`apt-get install --no-install-recommends xz-utils\``,
    );
  const result = spawnSync(xz, ['--decompress', '--stdout', file], { maxBuffer: 256 << 20, timeout: 120_000 });
  if (result.error || result.status !== 0)
    throw new GuestBuildError(
      `xz --decompress ${path.basename(file)} failed: ${result.error?.message ?? result.stderr.toString().trim()}`,
    );
  return result.stdout;
}

/** Builds the guest into `options.dir`; returns its manifest. */
export async function buildGuest(options: BuildOptions): Promise<GuestManifest> {
  const log = options.log ?? (() => undefined);
  const tools = requireTools();
  const dir = path.resolve(options.dir);
  fs.mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  const lap = (what: string, since: number): void => log(`${what} (${((Date.now() - since) / 1000).toFixed(1)} s)`);

  // 1. Resolve and fetch the kernel package.
  let since = Date.now();
  const kernelSeries = options.kernel ?? DEFAULT_GUEST_KERNEL;
  const source = guestKernelSource(kernelSeries);
  if (!source) throw new GuestBuildError(`unknown kernel '${kernelSeries}'`);
  const fetched = fetchKernelPackage(source, dir, path.join(dir, 'packages'), {
    aptGet: tools.get('apt-get')!,
    aptCache: tools.get('apt-cache')!,
    dpkgDeb: tools.get('dpkg-deb')!,
  });
  if (!fetched.ok) throw new GuestBuildError(fetched.problem);
  const { kernelPackage } = fetched;
  const mainDeb = fetched.debs[0]!;
  const deb = path.basename(mainDeb);
  const debNames = fetched.debs.map((d) => path.basename(d)).join(', ');
  if (fetched.downloaded) lap(`downloaded ${debNames}`, since);
  else log(`using the cached ${debNames}`);
  const kernelPackageVersion = run(tools.get('dpkg-deb')!, ['-f', mainDeb, 'Version']).trim();

  // 2. Extract the kernel, its config and the module files it has (only those files).
  since = Date.now();
  // Each file is taken from the package that holds it (7.x kernels split image, modules and config).
  const holder = new Map<string, string>();
  for (const file of fetched.debs)
    for (const line of run(tools.get('dpkg-deb')!, ['--contents', file]).split('\n')) {
      const p = /\s(\.\/\S+)$/.exec(line)?.[1];
      if (p !== undefined && !holder.has(p)) holder.set(p, file);
    }
  const listing = [...holder.keys()];
  const kernelFiles = findKernelFiles(listing);
  if (!kernelFiles) throw new GuestBuildError(`${debNames}: no boot/vmlinuz-* or usr/lib/modules/*/vmlinuz`);
  const { kernelRelease, vmlinuz: vmlinuzPath, config: configPath } = kernelFiles;
  if (!source.release.test(kernelRelease))
    throw new GuestBuildError(
      `${deb} is Linux ${kernelRelease}, not ${kernelSeries} (${source.suite === 'system' ? "the machine's apt sources" : source.suite} carries another series)`,
    );
  if (!configPath) throw new GuestBuildError(`${debNames}: no kernel config for ${kernelRelease}`);
  const found = findModuleFiles(listing, kernelRelease);
  if (found.problem) throw new GuestBuildError(`${deb}: ${found.problem}`);
  const extractDir = path.join(dir, 'extract');
  fs.rmSync(extractDir, { recursive: true, force: true });
  fs.mkdirSync(extractDir, { recursive: true });
  const wanted = [vmlinuzPath, configPath, ...[...found.files.values()].map((f) => f.archivePath)];
  for (const file of fetched.debs) {
    const members = wanted.filter((p) => holder.get(p) === file);
    if (members.length > 0)
      await pipeToFile(
        tools.get('dpkg-deb')!,
        ['--fsys-tarfile', file],
        tools.get('tar')!,
        ['-x', ...members],
        extractDir,
      );
  }
  const plan = planModules(
    parseKernelConfig(fs.readFileSync(path.join(extractDir, configPath), 'utf8')),
    found.files,
    kernelPackage,
  );
  if (!plan.ok) throw new GuestBuildError(plan.problem);
  const modules = plan.packed.map((p) => p.name);
  const moduleBytes = new Map<string, Uint8Array>();
  const depends = new Map<string, readonly string[]>();
  for (const { name, file } of plan.packed) {
    const bytes = readModule(path.join(extractDir, file.archivePath), file);
    moduleBytes.set(name, bytes);
    depends.set(name, moduleDepends(bytes));
  }
  const orderProblem = loadOrderProblem(modules, depends);
  if (orderProblem) throw new GuestBuildError(`module load order: ${orderProblem}`);
  lap(
    `extracted vmlinuz-${kernelRelease} and ${modules.length} modules${plan.builtIn.length > 0 ? ` (built in: ${plan.builtIn.join(', ')})` : ''}`,
    since,
  );

  // 3. The agent, compiled here (static: the initramfs has no C library of its own).
  since = Date.now();
  const agent = compileAgent(path.join(dir, 'vmemct-agent'));
  if (!agent.ok)
    throw new GuestBuildError(
      agent.packages.length > 0
        ? `${agent.problem}; install with \`apt-get install --no-install-recommends ${agent.packages.join(' ')}\``
        : agent.problem,
    );
  lap('compiled the guest agent', since);

  // 4. Keys: a client key that logs in as root, and the guest's host key.
  since = Date.now();
  const sshKey = path.join(dir, 'id_ed25519');
  if (!fs.existsSync(sshKey))
    run(tools.get('ssh-keygen')!, ['-q', '-t', 'ed25519', '-N', '', '-C', 'vmemct-guest', '-f', sshKey]);
  const hostKeyFile = path.join(dir, 'dropbear_ed25519_host_key');
  if (!fs.existsSync(hostKeyFile)) run(tools.get('dropbearkey')!, ['-t', 'ed25519', '-f', hostKeyFile]);
  const hostKeyLine = run(tools.get('dropbearkey')!, ['-y', '-f', hostKeyFile])
    .split('\n')
    .find((l) => l.startsWith('ssh-ed25519 '));
  if (!hostKeyLine) throw new GuestBuildError('dropbearkey -y printed no ssh-ed25519 key');
  const hostKey = hostKeyLine.split(' ').slice(0, 2).join(' ');

  // 5. The initramfs.
  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  const addDir = (p: string, mode = 0o755): void => {
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (!dirs.has(sub)) {
        dirs.add(sub);
        entries.push({ kind: 'dir', path: sub, mode: sub === p ? mode : 0o755 });
      }
    }
  };
  const addFile = (p: string, data: Uint8Array, mode: number): void => {
    addDir(path.posix.dirname(p));
    entries.push({ kind: 'file', path: p, mode, data });
  };
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'run', 'etc/dropbear', 'var/log', 'lib64']) addDir(d);
  addDir('root', 0o700);
  addDir('root/.ssh', 0o700);
  entries.push({ kind: 'symlink', path: 'sbin', target: 'bin' }, { kind: 'dir', path: 'usr', mode: 0o755 });
  dirs.add('usr');
  entries.push(
    { kind: 'symlink', path: 'usr/bin', target: '../bin' },
    { kind: 'symlink', path: 'usr/sbin', target: '../bin' },
  );
  const busybox = tools.get('busybox')!;
  addFile('bin/busybox', fs.readFileSync(busybox), 0o755);
  // busybox-static needs nothing else; a dynamic busybox gets its libraries like dropbear.
  const busyboxLibs = spawnSync(tools.get('ldd')!, [busybox], { encoding: 'utf8' });
  const libraries = new Set(lddLibraries(busyboxLibs.status === 0 ? busyboxLibs.stdout : ''));
  const applets = run(busybox, ['--list'])
    .split('\n')
    .map((a) => a.trim())
    .filter((a) => /^[a-z0-9_.[-]+$/i.test(a) && a !== 'busybox');
  for (const applet of applets) entries.push({ kind: 'symlink', path: `bin/${applet}`, target: 'busybox' });
  const dropbear = tools.get('dropbear')!;
  addFile('bin/dropbear', fs.readFileSync(dropbear), 0o755);
  addFile(`bin/${path.posix.basename(GUEST_AGENT_PATH)}`, fs.readFileSync(agent.path), 0o755);
  for (const lib of lddLibraries(run(tools.get('ldd')!, [dropbear]))) libraries.add(lib);
  for (const lib of libraries) {
    const rel = lib.replace(/^\/+/, '');
    if (entries.some((e) => e.path === rel)) continue;
    addFile(rel, fs.readFileSync(fs.realpathSync(lib)), 0o755);
  }
  for (const m of modules) addFile(`lib/modules/${kernelRelease}/vmemct/${m}.ko`, moduleBytes.get(m)!, 0o644);
  addFile(`lib/modules/${kernelRelease}/modules.dep`, Buffer.from(modulesDep(modules, depends)), 0o644);
  addFile('etc/dropbear/dropbear_ed25519_host_key', fs.readFileSync(hostKeyFile), 0o600);
  addFile('root/.ssh/authorized_keys', fs.readFileSync(`${sshKey}.pub`), 0o600);
  addFile('etc/passwd', Buffer.from('root:x:0:0:root:/root:/bin/sh\n'), 0o644);
  addFile('etc/shadow', Buffer.from('root:*:19000:0:99999:7:::\n'), 0o600);
  addFile('etc/group', Buffer.from('root:x:0:\n'), 0o644);
  addFile('etc/shells', Buffer.from('/bin/sh\n'), 0o644);
  addFile('init', Buffer.from(initScript(kernelRelease, modules)), 0o755);
  const initrd = path.join(dir, 'initrd.gz');
  fs.writeFileSync(initrd, zlib.gzipSync(cpioArchive(entries), { level: 6 }));
  const kernel = path.join(dir, 'vmlinuz');
  fs.copyFileSync(path.join(extractDir, vmlinuzPath), kernel);
  fs.rmSync(extractDir, { recursive: true, force: true });
  lap(`packed initrd.gz (${(fs.statSync(initrd).size / 1048576).toFixed(1)} MiB, ${entries.length} entries)`, since);

  const manifest: GuestManifest = {
    format: GUEST_MANIFEST_FORMAT,
    kernelSeries,
    kernelPackage,
    kernelPackageVersion,
    kernelRelease,
    kernel,
    initrd,
    sshKey,
    hostKey,
    modules,
    builtInModules: plan.builtIn,
    agent: { guestPath: GUEST_AGENT_PATH, sourceSha256: agent.sourceSha256 },
  };
  fs.writeFileSync(path.join(dir, 'guest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  lap(`guest built in ${dir}`, t0);
  return manifest;
}

/** Reads the manifest `build` wrote; explains how to build when there is none. */
export function readManifest(dir: string): GuestManifest {
  const file = path.join(path.resolve(dir), 'guest.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new GuestBuildError(`no guest in ${dir} (${file} is missing); run \`vmemct guest build --dir ${dir}\` first`);
  }
  try {
    const m = JSON.parse(text) as GuestManifest;
    if (m.format !== GUEST_MANIFEST_FORMAT)
      throw new Error(
        `format is '${String(m.format)}', not '${GUEST_MANIFEST_FORMAT}' (a guest built by an older vmemct, without the agent)`,
      );
    for (const f of [m.kernel, m.initrd, m.sshKey]) if (!fs.existsSync(f)) throw new Error(`${f} is missing`);
    const sources = agentSourceDir();
    if (sources && m.agent.sourceSha256 !== agentSourceHash(sources))
      throw new Error(`its agent was compiled from other sources than ${sources} (this vmemct's)`);
    return m;
  } catch (e) {
    throw new GuestBuildError(`${file}: ${(e as Error).message}; run \`vmemct guest build --dir ${dir}\` again`);
  }
}
