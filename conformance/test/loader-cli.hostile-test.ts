/**
 * Hostile input to the loader and the CLI, through the built command (`node conformance/bin/vmemct.js`):
 * pathological globs, files that are not regular files or too large, folder loops, YAML alias
 * bombs, oversized files, heavy-but-valid vectors, expressions that can never be evaluated,
 * out-of-range options and bytes that are not UTF-8. Each asserts the contract: exit 3 with
 * `file:line: field: reason` naming the path (or the option), no stack trace, bounded time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs the built CLI; a run still going after `limitMs` is killed (and fails the time assertion). */
function vmemct(args: readonly string[], limitMs = 20_000): CliRun {
  const started = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: limitMs });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms: Date.now() - started };
}

/** Exit 3, a `file:line:` message naming `file` (and matching `reason`), no stack trace, within `limitMs`. */
function expectBadInput(r: CliRun, file: string, reason: RegExp, limitMs = 20_000): void {
  expect(r.ms).toBeLessThan(limitMs);
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 3 });
  const line = r.stderr.split('\n').find((l) => l.includes(`${file}:`) && reason.test(l));
  expect(line ?? r.stderr).toMatch(new RegExp(`${escape(file)}:[0-9]+: `));
  expect(line ?? r.stderr).toMatch(reason);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

let dir: string;
beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'conformance', 'src', 'cli', 'main.js')))
    throw new Error('build first: npm run build');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-hostile-loader-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string | Buffer): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

function vector(id: string, steps: string[], setup = '', target = 'device'): string {
  return [
    `  - id: vmem.${target === 'device' ? 'dev' : 'drv'}.hostile.${id}`,
    `    title: hostile vector ${id}`,
    `    requirements: [${target === 'device' ? 'dev.cfg.3' : 'drv.op.8'}]`,
    `    target: ${target}`,
    ...(setup ? [`    setup: ${setup}`] : []),
    '    steps:',
    ...steps.map((s) => `      ${s}`),
  ].join('\n');
}

function vectorFile(...vectors: string[]): string {
  return ['format: vmemct-vectors/1', 'vectors:', ...vectors, ''].join('\n');
}

const PLUG = ['- request: {type: PLUG, addr: addr, nb_blocks: 1}', '  expect: {response: ACK}'];
const GOOD = vectorFile(vector('good', PLUG, '{requested_size: 8MiB}'));

describe('globs are matched in linear time', () => {
  test('a --filter with many ** and * answers at once (exit 3: it selects nothing)', () => {
    const r = vmemct(['list', '--filter', `vmem.${'**'.repeat(12)}z`], 10_000);
    expect(r.ms).toBeLessThan(10_000);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/list: the filters select no vector/);
  });

  test('an expectation id with many wildcards is matched at once', () => {
    const longId = `long-${'ab-'.repeat(20)}end`;
    const vectors = write('glob/v.yaml', vectorFile(vector(longId, PLUG, '{requested_size: 8MiB}')));
    const expectations = write(
      'glob/e.yaml',
      [
        'format: vmemct-expectations/1',
        'implementation: model',
        'entries:',
        `  - id: "vmem.${'**'.repeat(12)}q"`,
        '    verdict: fail',
        '    reason: never matches',
        '',
      ].join('\n'),
    );
    const r = vmemct(['run', '--vectors', vectors, '--expectations', expectations], 15_000);
    expect(r.ms).toBeLessThan(15_000);
    expect(r.code).toBe(1); // the entry matches nothing: stale
    expect(r.stdout + r.stderr).toMatch(/matches no vector/);
  });
});

describe('only regular files are read, up to a size limit', () => {
  test.each(['vector', 'expectation'])('a FIFO given as the %s file is refused naming it', (role) => {
    const fifo = path.join(dir, `fifo-${role}.yaml`);
    execFileSync('mkfifo', [fifo]);
    const args =
      role === 'vector' ? ['lint', fifo] : ['run', '--vectors', write('fifo/v.yaml', GOOD), '--expectations', fifo];
    expectBadInput(vmemct(args, 10_000), fifo, /is a FIFO \(named pipe\), not a regular file/, 10_000);
  });

  test('a FIFO named *.yaml inside a --vectors folder is refused naming it', () => {
    write('fifo-folder/good.yaml', GOOD);
    const fifo = path.join(dir, 'fifo-folder', 'pipe.yaml');
    execFileSync('mkfifo', [fifo]);
    expectBadInput(vmemct(['lint', '--vectors', path.join(dir, 'fifo-folder')], 10_000), fifo, /FIFO/, 10_000);
  });

  test('a device (/dev/zero) is refused without reading it', () => {
    expectBadInput(vmemct(['lint', '/dev/zero'], 10_000), '/dev/zero', /is a character device/, 10_000);
  });

  test('a file over 16 MiB is refused without parsing it', () => {
    const big = write('big.yaml', '');
    fs.truncateSync(big, 16 * 1024 * 1024 + 1);
    expectBadInput(vmemct(['lint', big], 10_000), big, /larger than the limit of 16 MiB/, 10_000);
  });
});

describe('folders: loops, dangling links and unreadable folders name the path', () => {
  test('a folder linking to its parent', () => {
    write('loop/good.yaml', GOOD);
    const link = path.join(dir, 'loop', 'again');
    fs.symlinkSync('..', link);
    // `..` of loop/ is dir itself, which is not on the walk: link to loop instead.
    fs.unlinkSync(link);
    fs.symlinkSync(path.join(dir, 'loop'), link);
    expectBadInput(vmemct(['lint', '--vectors', path.join(dir, 'loop')]), link, /symbolic link loop/);
  });

  test('two links pointing at each other', () => {
    write('mutual/good.yaml', GOOD);
    const a = path.join(dir, 'mutual', 'a.yaml');
    fs.symlinkSync(path.join(dir, 'mutual', 'b.yaml'), a);
    fs.symlinkSync(a, path.join(dir, 'mutual', 'b.yaml'));
    expectBadInput(vmemct(['lint', '--vectors', path.join(dir, 'mutual')]), a, /symbolic link loop/);
  });

  test('a dangling link', () => {
    write('dangling/good.yaml', GOOD);
    const link = path.join(dir, 'dangling', 'gone');
    fs.symlinkSync(path.join(dir, 'nowhere'), link);
    expectBadInput(vmemct(['lint', '--vectors', path.join(dir, 'dangling')]), link, /dangling symbolic link/);
  });

  // As root the CLI is run as `nobody`; that needs the checkout to be readable by that user.
  const rootAndNobodyCannotRun =
    process.getuid?.() === 0 &&
    spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(BIN)}, 4)`], {
      uid: 65534,
      gid: 65534,
    }).status !== 0;
  (rootAndNobodyCannotRun ? test.skip : test)('an unreadable sub-folder', () => {
    write('locked/open/good.yaml', GOOD);
    const locked = path.join(dir, 'locked', 'shut');
    fs.mkdirSync(locked);
    fs.chmodSync(locked, 0o000);
    // Root reads any folder, so as root the CLI runs as the unprivileged user `nobody` (65534),
    // for whom the folder is unreadable; the path down to it is made traversable for that user.
    const asNobody = process.getuid?.() === 0;
    if (asNobody)
      for (const d of [dir, path.join(dir, 'locked'), path.join(dir, 'locked', 'open')]) fs.chmodSync(d, 0o755);
    try {
      const args = ['lint', '--vectors', path.join(dir, 'locked')];
      const r = asNobody
        ? (() => {
            const started = Date.now();
            const run = spawnSync(process.execPath, [BIN, ...args], {
              cwd: ROOT,
              encoding: 'utf8',
              timeout: 20_000,
              uid: 65534,
              gid: 65534,
            });
            return { code: run.status, stdout: run.stdout ?? '', stderr: run.stderr ?? '', ms: Date.now() - started };
          })()
        : vmemct(args);
      expectBadInput(r, locked, /permission denied/);
    } finally {
      fs.chmodSync(locked, 0o755);
    }
  });
});

describe('YAML limits are file:line problems', () => {
  test('a billion-laughs alias bomb', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      levels.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${prev}`).join(',')}]`,
      );
    }
    const file = write('laughs.yaml', `format: vmemct-vectors/1\n${levels.join('\n')}\nvectors: []\n`);
    expectBadInput(vmemct(['lint', file]), file, /YAML: aliases are used more than the limit allows/);
  });

  test('150 ordinary aliases are accepted; the limit (1,000 uses) is exit 3 with a line', () => {
    const steps = (n: number): string[] => [
      '- request: &plug {type: PLUG, addr: addr, nb_blocks: 1}',
      '  expect: &ack {response: ACK}',
      ...Array.from({ length: n }, () => ['- request: {type: UNPLUG_ALL}', '  expect: *ack']).flat(),
    ];
    const ok = write('aliases-150.yaml', vectorFile(vector('aliases', steps(150), '{requested_size: 8MiB}')));
    const fine = vmemct(['lint', ok]);
    expect(fine.stderr).toBe('');
    expect(fine.code).toBe(0);
    const tooMany = write('aliases-1001.yaml', vectorFile(vector('aliases', steps(1001), '{requested_size: 8MiB}')));
    expectBadInput(vmemct(['lint', tooMany]), tooMany, /:1[0-9]: YAML: aliases are used more than the limit/);
  });

  test('aliases beyond the limit in an expectation file', () => {
    const entries = ['  - id: vmem.dev.hostile.good', '    verdict: pass', '    reason: &r fine'];
    for (let i = 0; i < 1001; i++) entries.push(`  - {id: vmem.dev.hostile.x${i}, verdict: pass, reason: *r}`);
    const file = write(
      'alias-expectations.yaml',
      ['format: vmemct-expectations/1', 'implementation: model', 'entries:', ...entries, ''].join('\n'),
    );
    const vectors = write('alias-expectations-v.yaml', GOOD);
    expectBadInput(vmemct(['run', '--vectors', vectors, '--expectations', file]), file, /YAML: aliases/);
  });

  test('nesting deeper than the parser follows', () => {
    const file = write('deep.yaml', `format: vmemct-vectors/1\nvectors: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`);
    const r = vmemct(['lint', file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`${escape(file)}:[0-9]+: YAML: nested too deeply to parse`));
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });
});

describe('no unbounded work per file', () => {
  test('more than 10,000 vectors in one file is exit 3 at the first one over', () => {
    const lines = ['format: vmemct-vectors/1', 'vectors:'];
    for (let i = 0; i < 10_001; i++)
      lines.push(
        `  - {id: vmem.dev.many.v${i}, title: vector number ${i}, requirements: [dev.cfg.3], target: device, steps: []}`,
      );
    const file = write('many.yaml', `${lines.join('\n')}\n`);
    expectBadInput(vmemct(['lint', file]), file, /:10003: vectors\[10000\]: more than 10000 vectors in one file/);
  });

  test('lint of 64 heavy vectors (2^30 blocks each) stops at its budget with a notice, exit 0', () => {
    const heavy = Array.from({ length: 64 }, (_, i) =>
      vector(
        `heavy${i}`,
        // Blocks plugged at both ends of the region, then unplugged all: every step touches the
        // whole 2^30-block bitmap, so each vector costs seconds.
        Array.from({ length: 20 }, () => [
          ...PLUG,
          '- request: {type: PLUG, addr: region_end - block_size, nb_blocks: 1}',
          '  expect: {response: ACK}',
          '- request: {type: UNPLUG_ALL}',
          '  expect: {response: ACK}',
        ]).flat(),
        '{region_size: 2048TiB, requested_size: 2048TiB}',
      ),
    );
    const file = write('heavy.yaml', vectorFile(...heavy));
    const r = vmemct(['lint', file], 60_000);
    expect(r.ms).toBeLessThan(40_000);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/lint: notice: [0-9]+ vectors were not dry-run to the end within lint's budget/);
    expect(r.stderr).toMatch(new RegExp(`${escape(file)}:[0-9]+: vmem\\.dev\\.hostile\\.heavy63: not dry-run`));
    expect(r.stdout).toMatch(/lint: 64 vectors in 1 files: no problems/);
  });
});

describe("expressions that can never be evaluated are bad input, not the target's fault", () => {
  test.each([
    [
      'an expected config value dividing by zero',
      vector(
        'cfg',
        [
          '- request: {type: PLUG, addr: addr, nb_blocks: 1}',
          '  expect: {response: ACK, config: {plugged_size: block_size / 0}}',
        ],
        '{requested_size: 8MiB}',
      ),
      /division by zero/,
    ],
    [
      'a write_memory address beyond 64 bits',
      vector('wm', ['- write_memory: {addr: 0xffffffffffffffff * 0x10, data: "01"}', '  expect: {access: ok}']),
      /overflows 64 bits/,
    ],
    [
      'a read_memory address dividing by zero',
      vector('rm', ['- read_memory: {addr: addr % 0, length: 1}', '  expect: {access: ok}']),
      /division by zero/,
    ],
    ['a driver resize dividing by zero', vector('rs', ['- resize: 64MiB / (2 - 2)'], '', 'driver'), /division by zero/],
  ])('%s', (_, text, reason) => {
    const file = write(`expr-${_.length}.yaml`, vectorFile(text));
    expectBadInput(vmemct(['lint', file]), file, reason);
    expectBadInput(vmemct(['run', '--vectors', file]), file, reason);
  });
});

describe('numeric options are range-checked', () => {
  test.each([
    [['run', '--timeout', '3000000000'], /run: --timeout must be at most 2147483647 \(got '3000000000'\)/],
    [
      ['vhost-user-check', '--socket', '/nonexistent', '--timeout', '99999999999'],
      /--timeout must be at most 2147483647/,
    ],
    [['list', '--shard', '1/99999999999999999999'], /list: --shard must be i\/n with n at most 1000000/],
    [
      ['serve-vhost-user', '--socket', '/tmp/x', '--region-size', '99999999999999PiB'],
      /--region-size must be at most 64 bits/,
    ],
    [
      ['vhost-user-check', '--socket', '/nonexistent', '--backend-pid', '99999999999'],
      /--backend-pid must be at most 4194304/,
    ],
  ])('%j', (args, message) => {
    const r = vmemct(args, 15_000);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });
});

describe('bytes that are not UTF-8 are refused with file and line', () => {
  test('in a vector file', () => {
    const file = write(
      'latin1.yaml',
      Buffer.concat([Buffer.from(GOOD.replace('hostile vector good', 'caf')), Buffer.from([0xe9, 0x0a])]),
    );
    expectBadInput(vmemct(['lint', file]), file, /:[0-9]+: vector file is not valid UTF-8/);
  });

  test('in an expectation file', () => {
    const file = write(
      'latin1-expectations.yaml',
      Buffer.concat([
        Buffer.from('format: vmemct-expectations/1\nimplementation: mod'),
        Buffer.from([0xe8, 0x6c]),
        Buffer.from('\nentries: []\n'),
      ]),
    );
    const vectors = write('latin1-v.yaml', GOOD);
    expectBadInput(
      vmemct(['run', '--vectors', vectors, '--expectations', file]),
      file,
      /:2: expectation file is not valid UTF-8/,
    );
  });
});
