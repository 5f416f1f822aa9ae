/**
 * The npm package as a user gets it: `npm pack` in the repository, the tarball installed into a
 * temporary empty project (`npm install --prefer-offline --no-audit --no-fund <tgz>`), and the
 * installed `vmemct` run there through `npx`: the whole corpus on the model, a listing of the
 * driver corpus, and a run through `--adapter exec` against its own `serve-harness`. The tarball
 * holds the compiled CLI, the corpus, the expectation files, the examples' sources and the
 * README, LICENSE and CHANGELOG, and nothing else of the development tree.
 *
 * Slow (the pack's `prepack` rebuilds this checkout's dist/ from scratch, the install unpacks the
 * dependencies): run by `npm run test:package`, never beside another run of the built CLI.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readVectorCache } from '../src/loader/load';

const ROOT = path.resolve(__dirname, '..', '..');

/** What `npm pack --json` reports of one tarball (the fields read here). */
interface PackReport {
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly entryCount: number;
  readonly files: readonly { readonly path: string }[];
}

/** A line on stderr, so a CI log shows where the slow test is. */
function progress(text: string): void {
  process.stderr.write(`package test: ${text}\n`);
}

/** Runs a command, failing with its output when it exits non-zero. */
function run(command: string, args: readonly string[], cwd: string): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} (in ${cwd}) exited ${result.status ?? result.signal}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result;
}

describe('the npm package', () => {
  let work: string;
  let project: string;
  let pack: PackReport;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-package-'));
    project = path.join(work, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'vmemct-package-test', version: '1.0.0', private: true }, null, 2),
    );
    progress('npm pack');
    let started = Date.now();
    const packed = run('npm', ['pack', '--json', '--pack-destination', work], ROOT);
    pack = (JSON.parse(packed.stdout) as PackReport[])[0]!;
    progress(`packed ${pack.filename}: ${pack.size} bytes, ${pack.entryCount} files in ${Date.now() - started} ms`);
    progress('npm install of the tarball into an empty project');
    started = Date.now();
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, pack.filename)], project);
    progress(`installed in ${Date.now() - started} ms`);
  });

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('the tarball holds the CLI, the corpus, the expectation files and the documents, and nothing of the development tree', () => {
    const files = pack.files.map((f) => f.path);
    for (const needed of [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'conformance/bin/vmemct.js',
      'dist/conformance/src/cli/main.js',
      'dist/vector-cache.json',
      'conformance/expectations/qemu-7.2.yaml',
      'examples/device-c/harness.c',
      'examples/driver-python/vmem_driver.py',
      'adapters/ssh-guest/agent/vmemct-agent.c',
    ])
      expect(files).toContain(needed);
    const corpus = fs
      .readdirSync(path.join(ROOT, 'conformance', 'vectors'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => `conformance/vectors/${f.split(path.sep).join('/')}`);
    expect(corpus.length).toBeGreaterThan(0);
    for (const file of corpus) expect(files).toContain(file);
    const devTree = files.filter(
      (f) =>
        f.endsWith('.ts') ||
        /(^|\/)(test|test-fixtures|bench|recordings|native)\//.test(f) ||
        f.startsWith('docs/') ||
        // The guest agent ships as C sources: `vmemct guest build` compiles it.
        (/^(spec|model|adapters|conformance\/src)\//.test(f) && !/^adapters\/ssh-guest\/agent\/[^/]+\.[ch]$/.test(f)) ||
        /\.(test|[a-z]+-test)\.js$/.test(f) ||
        f.startsWith('jest.') ||
        f.startsWith('tsconfig') ||
        f === 'examples/device-c/vmemct-example-device',
    );
    expect(devTree).toEqual([]);
  });

  test('the installed LICENSE is the Apache License 2.0 that package.json names', () => {
    const installed = path.join(project, 'node_modules', 'vmemct');
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as {
      license: string;
      private?: boolean;
    };
    expect(manifest.license).toBe('Apache-2.0');
    expect(manifest.private).toBeUndefined();
    expect(fs.readFileSync(path.join(installed, 'LICENSE'), 'utf8')).toMatch(
      /Apache License\s+Version 2\.0, January 2004/,
    );
  });

  test('the corpus cache built at pack time matches the installed corpus files', () => {
    const installed = path.join(project, 'node_modules', 'vmemct');
    const cache = readVectorCache(path.join(installed, 'dist', 'vector-cache.json'), installed);
    expect(cache).toBeDefined();
    const cached = Object.keys(cache!.files).sort();
    const corpus = fs
      .readdirSync(path.join(installed, 'conformance', 'vectors'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => path.join(installed, 'conformance', 'vectors', f))
      .sort();
    expect(cached).toEqual(corpus);
  });

  test('`npx vmemct run` runs the whole corpus on the model, writes its JSON and JUnit reports and exits 0', () => {
    progress('npx vmemct run');
    run('npx', ['vmemct', 'run', '--json', 'results.json', '--junit', 'results.xml'], project);
    const doc = JSON.parse(fs.readFileSync(path.join(project, 'results.json'), 'utf8')) as {
      summary: { total: number; unexpected: number };
    };
    expect(doc.summary.total).toBeGreaterThan(100);
    expect(doc.summary.unexpected).toBe(0);
    // The JUnit report is written by vmemct itself (report/junit.ts) from the installed package.
    expect(fs.readFileSync(path.join(project, 'results.xml'), 'utf8')).toMatch(/<testsuite[\s>]/);
  });

  test('`npx vmemct list --target driver` lists the driver corpus', () => {
    const result = run('npx', ['vmemct', 'list', '--target', 'driver'], project);
    const ids = result.stdout.split('\n').filter((line) => line.startsWith('vmem.'));
    expect(ids.length).toBeGreaterThan(10);
    expect(ids.every((line) => line.startsWith('vmem.drv.'))).toBe(true);
  });

  test('`npx vmemct run --adapter exec` against the installed `serve-harness` exits 0', () => {
    progress('npx vmemct run --adapter exec … serve-harness');
    const result = spawnSync(
      'npx',
      [
        'vmemct',
        'run',
        '--adapter',
        'exec',
        '--command',
        'node',
        '--arg',
        'node_modules/vmemct/conformance/bin/vmemct.js',
        '--arg',
        'serve-harness',
      ],
      { cwd: project, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
    expect(result.stdout).toMatch(/0 unexpected; .* exit 0/);
  });
});
