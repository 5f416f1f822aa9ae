import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';
import { parseDuration } from './fuzz-command';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-fuzz-cli-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('vmemct fuzz: usage', () => {
  test.each([
    [['--target', 'both'], /--target must be device or driver/],
    [['--seed', '-1'], /--seed must be an integer/],
    [['--budget', '0'], /--budget must be a positive integer/],
    [['--time', 'soon'], /--time must be a positive duration/],
    [['--adapter', 'nope'], /fuzz: unknown adapter 'nope'/],
    [['--profile', 'nope'], /fuzz: unknown profile 'nope'/],
    [['--adapter', 'exec'], /fuzz: --adapter exec needs --command PROGRAM/],
    [['--out', '/no/such/folder/f.yaml'], /the folder \/no\/such\/folder does not exist/],
    [['extra'], /unexpected argument 'extra'/],
  ])('%j → exit 3', async (args, message) => {
    const r = await cli('fuzz', ...args);
    expect(r.err).toMatch(message);
    expect(r.code).toBe(3);
  });

  test('durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('1.5s')).toBe(1_500);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h')).toBe(3_600_000);
  });
});

describe('vmemct fuzz: runs', () => {
  test('a conforming driver (--target driver): exit 0, a summary naming the driver target, no vector', async () => {
    const out = path.join(dir, 'driver-none.yaml');
    const r = await cli('fuzz', '--target', 'driver', '--seed', '3', '--budget', '200', '--strict', '--out', out);
    expect(r.err).not.toMatch(/not yet/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^fuzz: model:spec \(driver\), seed 3: [0-9,]+ operations in [0-9.]+ s/m);
    expect(r.out).toMatch(/no difference from the reference model found/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('a conforming device: exit 0, a summary with rate and coverage, no vector, the JSON report', async () => {
    const out = path.join(dir, 'none.yaml');
    const json = path.join(dir, 'none.json');
    const r = await cli('fuzz', '--seed', '5', '--budget', '1000', '--out', out, '--json', json);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /^fuzz: model:spec \(device\), seed 5: 1,000 operations in [0-9.]+ s \([0-9,]+ operations\/s\)$/m,
    );
    expect(r.out).toMatch(/^ {2}request: .*PLUG [0-9,]+/m);
    expect(r.out).toMatch(/^ {2}outcome: .*ACK [0-9,]+/m);
    expect(r.out).toMatch(/no difference from the reference model found/);
    expect(fs.existsSync(out)).toBe(false);
    const report = JSON.parse(fs.readFileSync(json, 'utf8')) as { operations: number; seed: number; target: string };
    expect(report).toMatchObject({ operations: 1000, seed: 5, target: 'device' });
  });

  test('a device with a known failure: exit 1, the vector written, the replay commands', async () => {
    const out = path.join(dir, 'found.yaml');
    const r = await cli('fuzz', '--profile', 'firecracker', '--seed', '2', '--budget', '3000', '--out', out);
    expect(r.code).toBe(1);
    // One of its known failures (model-firecracker.yaml): usable below requested, or no used entry for a split request.
    expect(r.out).toMatch(
      /^difference: step [0-9]+ \((invariant:usable-covers-requested\): .*\[dev\.cfg\.4\]|response\): the device answered no used entry.*)$/m,
    );
    expect(r.out).toContain(`written to ${out}`);
    expect(r.out).toContain(`replay the vector: vmemct run --profile firecracker --vectors ${out}`);
    expect(r.out).toContain('replay the run:    vmemct fuzz --profile firecracker --seed 2 --budget 3000');
    // The vector replays: it fails on that profile and passes on the reference model.
    const onProfile = await cli('run', '--profile', 'firecracker', '--vectors', out, '--quiet');
    expect(onProfile.code).toBe(1);
    const onSpec = await cli('run', '--vectors', out, '--quiet');
    expect(onSpec.code).toBe(0);
    const lint = await cli('lint', out);
    expect(lint.code).toBe(0);
  });
});
