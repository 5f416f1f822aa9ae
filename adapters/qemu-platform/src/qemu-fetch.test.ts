import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FETCH_RECORD, defaultQemuCacheDir, readFetchedQemu } from './qemu-cache';
import { FetchHost, FetchOutcome, ToolResult, fetchQemu, runTool } from './qemu-fetch';

const OK = (stdout = ''): ToolResult => ({ status: 0, stdout, stderr: '' });

/** What the fake archive serves and how the fake tools behave. */
interface FakeArchive {
  qemuVersion?: string;
  binaryVersion?: string;
  binaryRuns?: boolean;
  updateFails?: boolean;
  downloadFails?: 'network' | 'missing';
  noApt?: boolean;
}

/**
 * A machine with apt-get and dpkg-deb played in-process: `update` writes a package list,
 * `download` writes one small file per package into its working folder, `dpkg-deb --field`
 * reads it back, `dpkg-deb -x` unpacks a tree with a shell-script QEMU. Everything else (the
 * binary's `--version`) really runs.
 */
class FakeMachine implements FetchHost {
  readonly aptDir: string;
  readonly osReleaseFile: string;
  readonly asRoot = true;
  readonly calls: { argv: readonly string[]; cwd: string }[] = [];

  constructor(
    readonly base: string,
    readonly archive: FakeArchive = {},
  ) {
    this.aptDir = path.join(base, 'etc-apt');
    this.osReleaseFile = path.join(base, 'os-release');
    fs.mkdirSync(path.join(this.aptDir, 'sources.list.d'), { recursive: true });
    fs.writeFileSync(this.osReleaseFile, 'ID=debian\nVERSION_CODENAME=bookworm\n');
    fs.writeFileSync(
      path.join(this.aptDir, 'sources.list.d', 'debian.sources'),
      'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n' +
        'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n',
    );
  }

  findTool(name: string): string | undefined {
    return this.archive.noApt && name === 'apt-get' ? undefined : `/usr/bin/${name}`;
  }

  /** The `-o` value of `key` in an apt argument vector. */
  private option(argv: readonly string[], key: string): string {
    const o = argv.find((a) => a.startsWith(`${key}=`));
    if (!o) throw new Error(`no ${key} in ${argv.join(' ')}`);
    return o.slice(key.length + 1);
  }

  async run(argv: readonly string[], cwd: string): Promise<ToolResult> {
    this.calls.push({ argv, cwd });
    const command = argv[argv.length - 1]!;
    if (argv[0] === '/usr/bin/apt-get' && command === 'update') {
      if (this.archive.updateFails)
        return { status: 100, stdout: '', stderr: 'E: Failed to fetch http://mirror.example/debian Could not resolve' };
      const lists = this.option(argv, 'Dir::State::Lists');
      fs.writeFileSync(
        path.join(lists, 'mirror.example_debian_dists_bookworm-backports_main_binary-amd64_Packages'),
        '',
      );
      return OK('Get:1 bookworm-backports InRelease');
    }
    if (argv[0] === '/usr/bin/apt-get' && argv.includes('download')) {
      if (this.archive.downloadFails === 'missing')
        return { status: 100, stdout: '', stderr: 'E: Unable to locate package qemu-system-x86' };
      if (this.archive.downloadFails === 'network')
        return { status: 100, stdout: '', stderr: 'E: Failed to fetch http://mirror.example/debian/pool/x.deb' };
      const version = this.archive.qemuVersion ?? '1:10.0.2+ds-2+deb13u1~bpo12+1';
      for (const name of argv.slice(argv.indexOf('download') + 1)) {
        const v = name === 'seabios' ? '1.16.3-2~bpo12+1' : version;
        fs.writeFileSync(path.join(cwd, `${name}_${v.replace(':', '%3a')}_amd64.deb`), `${name}\n${v}\n`);
      }
      return OK();
    }
    if (argv[0] === '/usr/bin/dpkg-deb' && argv[1] === '--field') {
      const [name, version] = fs.readFileSync(argv[2]!, 'utf8').split('\n');
      return OK(`Package: ${name}\nVersion: ${version}\n`);
    }
    if (argv[0] === '/usr/bin/dpkg-deb' && argv[1] === '-x') {
      const [name] = fs.readFileSync(argv[2]!, 'utf8').split('\n');
      const root = argv[3]!;
      if (name === 'qemu-system-x86') {
        fs.mkdirSync(path.join(root, 'usr', 'bin'), { recursive: true });
        const version = this.archive.binaryVersion ?? '10.0.2';
        const body =
          this.archive.binaryRuns === false
            ? 'echo "error while loading shared libraries" >&2; exit 127'
            : `echo "QEMU emulator version ${version} (Debian)"`;
        fs.writeFileSync(path.join(root, 'usr', 'bin', 'qemu-system-x86_64'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      } else {
        fs.mkdirSync(path.join(root, 'usr', 'share', name === 'seabios' ? 'seabios' : 'qemu'), { recursive: true });
      }
      return OK();
    }
    return runTool(argv, cwd);
  }

  /** The commands run, by tool and sub-command (`apt-get update`, `dpkg-deb -x`, `--version`). */
  commands(): string[] {
    return this.calls.map(({ argv }) =>
      argv[0] === '/usr/bin/apt-get'
        ? `apt-get ${argv.includes('download') ? 'download' : argv[argv.length - 1]}`
        : argv[0] === '/usr/bin/dpkg-deb'
          ? `dpkg-deb ${argv[1]}`
          : argv[1]!,
    );
  }
}

/** Every file under `dir` with its content. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const file = path.join(entry.parentPath, entry.name);
      out[path.relative(dir, file)] = fs.readFileSync(file, 'utf8');
    }
  }
  return out;
}

describe('fetching QEMU into a cache folder', () => {
  let base: string;
  let cache: string;
  beforeEach(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-fetch-'));
    cache = path.join(base, 'cache', 'qemu-10.0');
  });
  afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

  const fetch = (machine: FakeMachine): Promise<FetchOutcome> =>
    fetchQemu({ series: '10.0', dir: cache, host: machine });
  const failure = (o: FetchOutcome): { kind: string; reason: string; fix: string } => {
    if (o.ok) throw new Error('expected a failure');
    return o;
  };

  test('a fetch updates, downloads, unpacks and checks the binary, then leaves only the tree and its record', async () => {
    const machine = new FakeMachine(base);
    const before = snapshot(machine.aptDir);
    const outcome = await fetch(machine);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.reused).toBe(false);
    expect(outcome.fetched.binary).toBe(path.join(cache, 'root', 'usr', 'bin', 'qemu-system-x86_64'));
    expect(outcome.fetched.qemuVersion).toBe('10.0.2');
    expect(outcome.fetched.suite).toBe('bookworm-backports');
    expect(outcome.fetched.packages).toEqual({
      'qemu-system-x86': '1:10.0.2+ds-2+deb13u1~bpo12+1',
      'qemu-system-common': '1:10.0.2+ds-2+deb13u1~bpo12+1',
      'qemu-system-data': '1:10.0.2+ds-2+deb13u1~bpo12+1',
      seabios: '1.16.3-2~bpo12+1',
    });
    expect(machine.commands()).toEqual([
      'apt-get update',
      'apt-get download',
      ...Array(4).fill('dpkg-deb --field'),
      ...Array(4).fill('dpkg-deb -x'),
      '--version',
    ]);
    expect(fs.readdirSync(cache).sort()).toEqual(['root', FETCH_RECORD]);
    expect(fs.readdirSync(path.dirname(cache))).toEqual(['qemu-10.0']);
    // The machine's apt sources are as they were.
    expect(snapshot(machine.aptDir)).toEqual(before);
  });

  test('apt runs in the private configuration: its sources name the archive mirror and the backports suite', async () => {
    const machine = new FakeMachine(base);
    let sources = '';
    const spy: FetchHost = {
      ...machine,
      findTool: (n) => machine.findTool(n),
      run: async (argv, cwd) => {
        if (argv.includes('update')) {
          const parts = argv.find((a) => a.startsWith('Dir::Etc::sourceparts='))!.split('=')[1]!;
          sources = fs.readFileSync(path.join(parts, 'vmemct.sources'), 'utf8');
        }
        return machine.run(argv, cwd);
      },
    };
    expect((await fetchQemu({ series: '10.0', dir: cache, host: spy })).ok).toBe(true);
    expect(sources).toBe(
      'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    );
    const [update, download] = machine.calls;
    const partial = `${cache}.partial-${process.pid}`;
    for (const call of [update!, download!]) {
      const dirs = call.argv.filter((a) => a.startsWith('Dir::')).map((a) => a.split('=')[1]!);
      expect(dirs.filter((d) => d !== '/dev/null').every((d) => d.startsWith(`${partial}/apt/`))).toBe(true);
      expect(call.argv).toContain('APT::Sandbox::User=root');
    }
    expect(download!.cwd).toBe(path.join(partial, 'debs'));
  });

  test('a complete earlier fetch is reused: only its binary is asked its version', async () => {
    expect((await fetch(new FakeMachine(base))).ok).toBe(true);
    const again = new FakeMachine(base);
    const outcome = await fetch(again);
    expect(outcome.ok && outcome.reused).toBe(true);
    expect(again.commands()).toEqual(['--version']);
  });

  test('a partial earlier fetch (no record) is replaced', async () => {
    fs.mkdirSync(path.join(cache, 'root', 'usr', 'bin'), { recursive: true });
    fs.writeFileSync(path.join(cache, 'root', 'leftover'), 'x');
    const outcome = await fetch(new FakeMachine(base));
    expect(outcome.ok && !outcome.reused).toBe(true);
    expect(fs.existsSync(path.join(cache, 'root', 'leftover'))).toBe(false);
    expect(readFetchedQemu(cache, '10.0')?.qemuVersion).toBe('10.0.2');
  });

  test("working folders of fetches whose process is gone are removed; a live process's is kept", async () => {
    const dead = `${cache}.partial-2147483646`;
    const live = `${cache}.partial-${process.ppid}`;
    for (const d of [dead, live]) fs.mkdirSync(path.join(d, 'root'), { recursive: true });
    expect((await fetch(new FakeMachine(base))).ok).toBe(true);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
  });

  test('an earlier fetch whose binary no longer runs is fetched again', async () => {
    expect((await fetch(new FakeMachine(base))).ok).toBe(true);
    fs.writeFileSync(path.join(cache, 'root', 'usr', 'bin', 'qemu-system-x86_64'), '#!/bin/sh\nexit 1\n');
    const again = new FakeMachine(base);
    const outcome = await fetch(again);
    expect(outcome.ok && !outcome.reused).toBe(true);
    expect(again.commands()).toContain('apt-get update');
  });

  test('a folder holding other files is not replaced', async () => {
    fs.mkdirSync(cache, { recursive: true });
    fs.writeFileSync(path.join(cache, 'notes.txt'), 'mine');
    const f = failure(await fetch(new FakeMachine(base)));
    expect(f.kind).toBe('cache');
    expect(f.reason).toContain('not a QEMU fetch');
    expect(fs.readFileSync(path.join(cache, 'notes.txt'), 'utf8')).toBe('mine');
  });

  test('a file (or a FIFO) where the folder should be is refused as not a folder, and left alone', async () => {
    fs.mkdirSync(path.dirname(cache), { recursive: true });
    fs.writeFileSync(cache, 'mine');
    const f = failure(await fetch(new FakeMachine(base)));
    expect(f.kind).toBe('cache');
    expect(f.reason).toContain('exists and is not a folder');
    expect(fs.readFileSync(cache, 'utf8')).toBe('mine');
  });

  test('no apt-get: the reason and the fix', async () => {
    const f = failure(await fetch(new FakeMachine(base, { noApt: true })));
    expect(f.kind).toBe('no-apt');
    expect(f.reason).toContain('apt-get was not found');
    expect(f.fix).toContain('--qemu');
    expect(fs.existsSync(cache)).toBe(false);
  });

  test('no Debian archive among the sources (only security, or another release)', async () => {
    const machine = new FakeMachine(base);
    fs.writeFileSync(
      path.join(machine.aptDir, 'sources.list.d', 'debian.sources'),
      'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n',
    );
    fs.writeFileSync(path.join(machine.aptDir, 'sources.list'), 'deb http://mirror.example/debian trixie main\n');
    const f = failure(await fetch(machine));
    expect(f.kind).toBe('no-sources');
    expect(f.reason).toContain('bookworm or bookworm-updates');
    expect(machine.calls).toEqual([]);
  });

  test('no release codename in os-release', async () => {
    const machine = new FakeMachine(base);
    fs.writeFileSync(machine.osReleaseFile, 'ID=debian\n');
    const f = failure(await fetch(machine));
    expect(f.kind).toBe('no-sources');
    expect(f.reason).toContain('VERSION_CODENAME');
  });

  test("a failed update is a network failure quoting apt's error; nothing is left behind", async () => {
    const f = failure(await fetch(new FakeMachine(base, { updateFails: true })));
    expect(f.kind).toBe('network');
    expect(f.reason).toContain('E: Failed to fetch');
    expect(f.fix).toContain('reaches its Debian mirror');
    expect(fs.readdirSync(path.dirname(cache))).toEqual([]);
  });

  test('a failed download: network, or the suite lacks the package', async () => {
    expect(failure(await fetch(new FakeMachine(base, { downloadFails: 'network' }))).kind).toBe('network');
    const f = failure(await fetch(new FakeMachine(base, { downloadFails: 'missing' })));
    expect(f.kind).toBe('missing-package');
    expect(f.reason).toContain('Unable to locate package');
  });

  test('packages of another series are refused before unpacking', async () => {
    const machine = new FakeMachine(base, { qemuVersion: '1:10.1.0+ds-1~bpo12+1' });
    const f = failure(await fetch(machine));
    expect(f.kind).toBe('version');
    expect(f.reason).toContain('qemu-system-x86 1:10.1.0+ds-1~bpo12+1, not QEMU 10.0.x');
    expect(f.fix).toContain('--version 10.1');
    expect(machine.commands()).not.toContain('dpkg-deb -x');
  });

  test('a binary reporting another version is refused', async () => {
    const f = failure(await fetch(new FakeMachine(base, { binaryVersion: '9.2.0' })));
    expect(f.kind).toBe('version');
    expect(f.reason).toContain('QEMU 9.2.0, not 10.0.x');
  });

  test('a binary that does not run says why', async () => {
    const f = failure(await fetch(new FakeMachine(base, { binaryRuns: false })));
    expect(f.kind).toBe('not-runnable');
    expect(f.reason).toContain('error while loading shared libraries');
    expect(f.fix).toContain('bookworm');
    expect(fs.existsSync(cache)).toBe(false);
  });
});

describe('the default cache folder', () => {
  test('$XDG_CACHE_HOME/vmemct/qemu-<series>, else ~/.cache/vmemct/qemu-<series>', () => {
    expect(defaultQemuCacheDir('10.0', { XDG_CACHE_HOME: '/x/cache' }, '/home/u')).toBe('/x/cache/vmemct/qemu-10.0');
    expect(defaultQemuCacheDir('10.0', { XDG_CACHE_HOME: '' }, '/home/u')).toBe('/home/u/.cache/vmemct/qemu-10.0');
    expect(defaultQemuCacheDir('9.2', {}, '/home/u')).toBe('/home/u/.cache/vmemct/qemu-9.2');
  });
});
