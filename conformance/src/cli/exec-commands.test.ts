import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';

const FAKE = path.join(__dirname, '..', '..', '..', 'adapters', 'exec', 'test-fixtures', 'fake-harness.js');

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-exec-cli-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('vmemct run --adapter exec: options', () => {
  test.each([
    [['--adapter', 'exec'], /--adapter exec needs --command PROGRAM \[--arg A\]… .* or --socket PATH/],
    [['--adapter', 'exec', '--command', 'x', '--socket', '/tmp/s'], /--command and --socket are two ways .*; give one/],
    [['--adapter', 'exec', '--socket', '/tmp/s', '--arg', 'a'], /--arg goes with --command PROGRAM, not --socket/],
    [['--adapter', 'exec', '--command', 'x', '--harness-timeout', '0'], /--harness-timeout must be a positive integer/],
    [['--command', 'x'], /--command applies to --adapter exec only/],
    [['--adapter', 'qemu', '--harness-log', 'f'], /--harness-log applies to --adapter exec only/],
    [['--arg', 'x'], /--arg applies to --adapter exec only/],
    [['--adapter', 'exec', '--command', 'x', '--profile', 'spec'], /--profile .* does not apply to --adapter exec/],
  ])('%j → usage error (exit 3)', async (args, message) => {
    const r = await cli('run', ...args);
    expect(r.err).toMatch(message);
    expect(r.code).toBe(3);
  });

  test('a program that cannot start → exit 2 naming it', async () => {
    const r = await cli('run', '--adapter', 'exec', '--command', path.join(dir, 'no-such-harness'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/run: the harness .*no-such-harness did not start: cannot start .*ENOENT/);
  });

  // The hello bound runs from the spawn: it must outlast Node starting the harness on a loaded
  // machine, or the harness has not written its stderr line yet.
  test('a harness that never says hello → exit 2 with the reason and its stderr', async () => {
    const r = await cli(
      'run',
      '--adapter',
      'exec',
      '--command',
      process.execPath,
      '--arg',
      FAKE,
      '--arg=--no-hello',
      '--harness-timeout',
      '5000',
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/sent nothing for 5000 ms while vmemct awaited its hello/);
    expect(r.err).toMatch(/the harness's stderr ends with:\nfake harness [0-9]+ starting/);
  }, 30_000);

  test('a run through a harness: its verdicts are reported, the log holds the exchange', async () => {
    const log = path.join(dir, 'log.jsonl');
    const r = await cli(
      'run',
      '--adapter',
      'exec',
      '--command',
      process.execPath,
      '--arg',
      FAKE,
      '--arg=--targets',
      '--arg=device',
      '--harness-log',
      log,
      '--filter',
      'vmem.dev.cfg.*',
      '--json',
      path.join(dir, 'out.json'),
    );
    expect(r.err).not.toMatch(/internal error/);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'out.json'), 'utf8'));
    expect(results.adapter).toMatchObject({ name: 'exec', implementation: 'fake-harness 1.0' });
    expect(results.results.length).toBeGreaterThan(0);
    // The toy device is no virtio-mem device: the run finds that, and never passes a vector it cannot run.
    expect([1, 2]).toContain(r.code);
    const lines = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.direction === 'to-harness').length).toBeGreaterThan(0);
    expect(lines.some((l) => l.direction === 'to-harness' && JSON.parse(l.line).op === 'shutdown')).toBe(true);
  });

  test('a misbehaving harness: each vector gets its verdict (error, timeout) and the run goes on with a fresh harness', async () => {
    const vector = (name: string, count: number): string => `  - id: vmem.dev.test.${name}
    title: A harness that misbehaves on inject_busy ${count}
    requirements: [dev.plug.5]
    target: device
    steps:
      - inject_busy: ${count}
      - request: {type: PLUG, addr: addr, nb_blocks: 1}
        expect: {response: BUSY}
`;
    const file = path.join(dir, 'misbehave.yaml');
    fs.writeFileSync(
      file,
      `format: vmemct-vectors/1\nvectors:\n${vector('a-malformed', 1)}${vector('b-silent', 7)}${vector('c-jammed', 8)}${vector('d-exits', 6)}${vector('e-fine', 11)}`,
    );
    const pidFile = path.join(dir, 'misbehave-pids');
    const json = path.join(dir, 'misbehave.json');
    const r = await cli(
      'run',
      '--adapter',
      'exec',
      '--command',
      process.execPath,
      '--arg',
      FAKE,
      '--arg=--targets',
      '--arg=device',
      '--arg=--pid-file',
      `--arg=${pidFile}`,
      // Each fresh harness must say hello within the bound on a loaded machine too.
      '--harness-timeout',
      '5000',
      '--vectors',
      file,
      '--json',
      json,
    );
    expect(r.err).not.toMatch(/internal error/);
    expect(r.code).toBe(2);
    const results = JSON.parse(fs.readFileSync(json, 'utf8')).results as {
      id: string;
      verdict: string;
      diagnostics?: string;
      findings: { message: string }[];
    }[];
    // The reason and the harness's stderr reach the results.
    expect(results[0]!.findings.map((f) => f.message).join('\n')).toMatch(/protocol violation: malformed JSON/);
    expect(results[0]!.diagnostics).toMatch(/fake harness [0-9]+ starting/);
    expect(results.map((x) => [x.id.replace('vmem.dev.test.', ''), x.verdict])).toEqual([
      ['a-malformed', 'error'],
      ['b-silent', 'timeout'],
      ['c-jammed', 'error'],
      ['d-exits', 'error'],
      ['e-fine', 'fail'],
    ]);
    // A fresh harness after the malformed line, the silence and the exit; the harness error kept its process.
    const pids = fs.readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
    expect(pids).toHaveLength(4);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);
});
