import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FetchHost } from '../../../adapters/qemu-platform/src/index';
import { runTool } from '../../../adapters/qemu-platform/src/index';
import { main } from './main';
import { implementationLine } from './run-commands';
import { fetchedQemuBinary, qemuCommand } from './qemu-commands';
import { expectationsForVersion, shippedQemuExpectations } from './qemu-expectations';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

let base: string;
const savedCache = process.env.XDG_CACHE_HOME;
beforeEach(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-qemu-cli-'));
  process.env.XDG_CACHE_HOME = path.join(base, 'xdg');
});
afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
  if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedCache;
});

/** A complete fetch of QEMU 10.0 in `dir`, with a shell-script binary. */
function fakeFetch(dir: string, version = '10.0.2'): string {
  const binary = path.join(dir, 'root', 'usr', 'bin', 'qemu-system-x86_64');
  fs.mkdirSync(path.dirname(binary), { recursive: true });
  fs.writeFileSync(binary, `#!/bin/sh\necho "QEMU emulator version ${version} (Debian)"\n`, { mode: 0o755 });
  fs.writeFileSync(
    path.join(dir, 'vmemct-qemu.json'),
    JSON.stringify({
      format: 'vmemct-qemu-fetch/1',
      series: '10.0',
      qemuVersion: version,
      suite: 'bookworm-backports',
      packages: { 'qemu-system-x86': `1:${version}+ds-2` },
    }),
  );
  return binary;
}

/** A machine without apt (or with apt but no Debian source). */
function machine(withApt: boolean): FetchHost {
  const aptDir = path.join(base, 'etc-apt');
  fs.mkdirSync(path.join(aptDir, 'sources.list.d'), { recursive: true });
  fs.writeFileSync(path.join(base, 'os-release'), 'VERSION_CODENAME=bookworm\n');
  return {
    aptDir,
    osReleaseFile: path.join(base, 'os-release'),
    asRoot: false,
    findTool: (name) => (withApt ? `/usr/bin/${name}` : undefined),
    run: runTool,
  };
}

describe('vmemct qemu fetch', () => {
  test('bad usage is exit 3: unknown sub-command, stray argument, a version that is not a series', async () => {
    expect(await cli('qemu')).toMatchObject({ code: 3, err: expect.stringContaining('expected fetch') });
    expect(await cli('qemu', 'install')).toMatchObject({ code: 3, err: expect.stringContaining("got 'install'") });
    expect(await cli('qemu', 'fetch', 'now')).toMatchObject({ code: 3, err: expect.stringContaining("'now'") });
    for (const bad of ['10', '10.0.2', 'latest', '../10.0']) {
      const r = await cli('qemu', 'fetch', '--version', bad);
      expect(r.code).toBe(3);
      expect(r.err).toContain('--version must be a QEMU release series such as 10.0');
    }
  });

  test('a complete fetch in --cache is reused: exit 0, the binary on stdout, nothing else there', async () => {
    const dir = path.join(base, 'q');
    const binary = fakeFetch(dir);
    const r = await cli('qemu', 'fetch', '--cache', dir, '--quiet');
    expect(r).toEqual({ code: 0, out: `${binary}\n`, err: '' });
    const loud = await cli('qemu', 'fetch', '--cache', dir);
    expect(loud.err).toContain(`QEMU 10.0.2 already in ${dir} (bookworm-backports: qemu-system-x86 1:10.0.2+ds-2)`);
  });

  test('the default folder is under $XDG_CACHE_HOME/vmemct', async () => {
    const binary = fakeFetch(path.join(base, 'xdg', 'vmemct', 'qemu-10.0'));
    expect((await cli('qemu', 'fetch', '--quiet')).out).toBe(`${binary}\n`);
  });

  test('a folder holding other files is bad input (exit 3) and stays as it was', async () => {
    fs.writeFileSync(path.join(base, 'mine.txt'), 'x');
    const r = await cli('qemu', 'fetch', '--cache', base, '--quiet');
    expect(r.code).toBe(3);
    expect(r.err).toContain('holds files that are not a QEMU fetch');
    expect(r.err).toContain('fix: choose an empty or new folder with --cache');
    expect(fs.readFileSync(path.join(base, 'mine.txt'), 'utf8')).toBe('x');
  });

  test('no apt is exit 2 with the reason and the fix', async () => {
    let err = '';
    const code = await qemuCommand(
      ['fetch', '--cache', path.join(base, 'q'), '--quiet'],
      { stdout: () => undefined, stderr: (t) => (err += t) },
      machine(false),
    );
    expect(code).toBe(2);
    expect(err).toMatch(/^vmemct: qemu fetch: apt-get was not found.*\n {2}fix: .*--qemu/);
  });

  test('no Debian source is exit 2 naming the suites looked for', async () => {
    let err = '';
    const code = await qemuCommand(
      ['fetch', '--cache', path.join(base, 'q')],
      { stdout: () => undefined, stderr: (t) => (err += t) },
      machine(true),
    );
    expect(code).toBe(2);
    expect(err).toContain('serves the Debian archive suites bookworm or bookworm-updates');
    expect(err).toContain('fix: add the Debian archive to the apt sources');
  });
});

describe('--qemu-version', () => {
  test('names the fetched binary', () => {
    const binary = fakeFetch(path.join(base, 'xdg', 'vmemct', 'qemu-10.0'));
    expect(fetchedQemuBinary('run', '10.0')).toBe(binary);
  });

  test('a series not fetched is exit 2 naming vmemct qemu fetch', async () => {
    const r = await cli('run', '--adapter', 'qemu', '--qemu-version', '10.0', '--target', 'device');
    expect(r.code).toBe(2);
    expect(r.err).toContain('QEMU 10.0 has not been fetched');
    expect(r.err).toContain('run `vmemct qemu fetch --version 10.0` first');
  });

  test('with --qemu, with another adapter, or not a series: exit 3', async () => {
    const both = await cli('run', '--adapter', 'qemu', '--qemu', '/usr/bin/qemu', '--qemu-version', '10.0');
    expect(both).toMatchObject({ code: 3, err: expect.stringContaining('not both') });
    const model = await cli('run', '--qemu-version', '10.0');
    expect(model).toMatchObject({
      code: 3,
      err: expect.stringContaining('--qemu-version SERIES applies to --adapter qemu only'),
    });
    const bad = await cli('record', '--adapter', 'qemu', '--qemu-version', 'ten', '--ops', '1', '--out', 'x.yaml');
    expect(bad).toMatchObject({
      code: 3,
      err: expect.stringContaining('--qemu-version must be a QEMU release series'),
    });
  });
});

describe('the human report names the target', () => {
  test('a target found at a location (a QEMU binary) gets a first line with its version and path', () => {
    const info = { name: 'qemu', implementation: 'QEMU 10.0.2', targets: [], capabilities: [], timeoutMultiplier: 2 };
    expect(implementationLine({ ...info, location: '/c/root/usr/bin/qemu-system-x86_64' })).toBe(
      'Target: QEMU 10.0.2 (/c/root/usr/bin/qemu-system-x86_64)\n',
    );
    expect(implementationLine(info)).toBe('');
  });
});

describe('vmemct qemu expectations', () => {
  const shipped = path.resolve(__dirname, '..', '..', 'expectations');

  /** A shell script that says it is QEMU `version`. */
  function fakeQemu(version: string): string {
    const binary = path.join(base, `qemu-${version}`, 'qemu-system-x86_64');
    fs.mkdirSync(path.dirname(binary), { recursive: true });
    fs.writeFileSync(binary, `#!/bin/sh\necho "QEMU emulator version ${version} (Debian 1:${version}+dfsg-1)"\n`, {
      mode: 0o755,
    });
    return binary;
  }

  test('the shipped files are found by series, oldest first, and each says it is of that QEMU', () => {
    const files = shippedQemuExpectations(shipped);
    expect(files.map((f) => f.series)).toEqual(['7.2', '10.0']);
    for (const f of files)
      expect(fs.readFileSync(f.file, 'utf8')).toMatch(
        new RegExp(`^implementation: QEMU ${f.series.replace('.', '\\.')}$`, 'm'),
      );
    expect(expectationsForVersion('10.0.2', files)).toEqual({
      ok: true,
      series: '10.0',
      file: path.join(shipped, 'qemu-10.0.yaml'),
    });
    expect(expectationsForVersion('9.2.0', files)).toEqual({ ok: false, series: '9.2', known: ['7.2', '10.0'] });
  });

  test('--qemu PATH: the file of that QEMU major.minor on stdout, what was run on stderr, exit 0', async () => {
    for (const [version, file] of [
      ['7.2.22', 'qemu-7.2.yaml'],
      ['10.0.2', 'qemu-10.0.yaml'],
    ]) {
      const binary = fakeQemu(version);
      const r = await cli('qemu', 'expectations', '--qemu', binary);
      expect(r).toEqual({
        code: 0,
        out: `${path.join(shipped, file)}\n`,
        err: `vmemct: QEMU ${version} (${binary}): expectations of QEMU ${version.split('.').slice(0, 2).join('.')}\n`,
      });
      expect(await cli('qemu', 'expectations', '--qemu', binary, '--quiet')).toEqual({ ...r, err: '' });
    }
  });

  test('--qemu-version SERIES names a fetched QEMU, as in run', async () => {
    fakeFetch(path.join(base, 'xdg', 'vmemct', 'qemu-10.0'));
    const r = await cli('qemu', 'expectations', '--qemu-version', '10.0', '--quiet');
    expect(r).toEqual({ code: 0, out: `${path.join(shipped, 'qemu-10.0.yaml')}\n`, err: '' });
  });

  test('a version without a shipped file is exit 2 naming the known versions and --write-expectations', async () => {
    const binary = fakeQemu('9.2.3');
    const r = await cli('qemu', 'expectations', '--qemu', binary);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain(`no expectation file is shipped for QEMU 9.2 (${binary} is QEMU 9.2.3)`);
    expect(r.err).toContain('known versions: 7.2, 10.0');
    expect(r.err).toContain(`vmemct run --adapter qemu --qemu ${binary} --target device --write-expectations FILE`);
  });

  test('a QEMU that is missing or is not QEMU is exit 2; bad usage is exit 3', async () => {
    const missing = await cli('qemu', 'expectations', '--qemu', path.join(base, 'nothing'));
    expect(missing).toMatchObject({ code: 2, err: expect.stringContaining('does not exist') });
    const notQemu = path.join(base, 'true');
    fs.writeFileSync(notQemu, '#!/bin/sh\necho hello\n', { mode: 0o755 });
    expect(await cli('qemu', 'expectations', '--qemu', notQemu)).toMatchObject({
      code: 2,
      err: expect.stringContaining('is not QEMU'),
    });
    expect(await cli('qemu', 'expectations', '--version', '10.0')).toMatchObject({
      code: 3,
      err: expect.stringContaining("unknown option '--version'"),
    });
    expect(await cli('qemu', 'expectations', 'now')).toMatchObject({ code: 3, err: expect.stringContaining("'now'") });
    expect(await cli('qemu', 'expectation')).toMatchObject({
      code: 3,
      err: expect.stringContaining('did you mean expectations?'),
    });
  });
});
