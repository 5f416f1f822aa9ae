import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';
import { perImplementationFile } from './merge-command';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-merge-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const at = (name: string): string => path.join(dir, name);
const FIRECRACKER_EXPECTATIONS = path.join(__dirname, '../../expectations/model-firecracker.yaml');

/** A results document without what differs between any two runs (times). */
function timeless(file: string): Record<string, unknown> {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { results: { durationMs: number }[] };
  return {
    ...doc,
    startedAt: null,
    durationMs: null,
    results: doc.results.map((r) => ({ ...r, durationMs: null })),
  };
}

/** Report text without what differs between any two runs: durations, JUnit's time and timestamp attributes. */
const withoutTimes = (text: string): string =>
  text.replace(/\d+(\.\d+)? m?s\b/g, 'T').replace(/\b(time|timestamp)="[^"]*"/g, '$1="T"');

async function shardedRun(prefix: string, ...options: string[]): Promise<{ files: string[]; codes: number[] }> {
  const files: string[] = [];
  const codes: number[] = [];
  for (let i = 1; i <= 4; i++) {
    const file = at(`${prefix}-${i}.json`);
    codes.push((await cli('run', ...options, '--shard', `${i}/4`, '--json', file, '--quiet')).code);
    files.push(file);
  }
  return { files, codes };
}

describe('vmemct merge', () => {
  test.each([
    ['without expectations (exit 1)', [] as string[], 1],
    ['with the shipped expectation file (exit 0)', ['--expectations', FIRECRACKER_EXPECTATIONS], 0],
  ])('a 4-way shard of the corpus merged equals the unsharded run, %s', async (_label, extra, code) => {
    const prefix = `fc${code}`;
    const options = ['--profile', 'firecracker', ...extra];
    const whole = await cli(
      'run',
      ...options,
      '--json',
      at(`${prefix}-all.json`),
      '--junit',
      at(`${prefix}-all.xml`),
      '--quiet',
    );
    expect(whole.code).toBe(code);
    const { files } = await shardedRun(prefix, ...options);
    const merged = await cli(
      'merge',
      ...files,
      '--json',
      at(`${prefix}-merged.json`),
      '--junit',
      at(`${prefix}-merged.xml`),
    );
    expect(merged.code).toBe(code);
    expect(timeless(at(`${prefix}-merged.json`))).toEqual(timeless(at(`${prefix}-all.json`)));
    // The same summary as the unsharded run, after the line naming the implementation.
    expect(merged.out.split('\n')[0]).toBe('Implementation: model:firecracker (4 results files)');
    expect(withoutTimes(merged.out.split('\n').slice(1).join('\n'))).toBe(withoutTimes(whole.out));
    expect(withoutTimes(fs.readFileSync(at(`${prefix}-merged.xml`), 'utf8'))).toBe(
      withoutTimes(fs.readFileSync(at(`${prefix}-all.xml`), 'utf8')),
    );
  });

  test('shards run without expectations, merged with --expectations, are judged against the file', async () => {
    const files = [1, 2, 3, 4].map((i) => at(`fc1-${i}.json`));
    const merged = await cli(
      'merge',
      ...files,
      '--expectations',
      FIRECRACKER_EXPECTATIONS,
      '--json',
      at('rejudged.json'),
    );
    expect(merged.code).toBe(0);
    expect(timeless(at('rejudged.json'))).toEqual(timeless(at('fc0-all.json')));
  });

  test("a retried vector's attempts and its flaky verdict survive the merge", async () => {
    const { files } = await shardedRun('flaky', '--profile', 'firecracker', '--expectations', FIRECRACKER_EXPECTATIONS);
    const doc = JSON.parse(fs.readFileSync(files[0]!, 'utf8')) as {
      results: { verdict: string; status: string; findings: unknown[]; durationMs: number; attempts?: unknown }[];
    };
    const first = doc.results[0]!;
    const failed = { verdict: 'fail', durationMs: 1, findings: [] };
    Object.assign(first, {
      verdict: 'flaky',
      status: 'unexpected',
      attempts: [failed, { verdict: 'pass', durationMs: 1, findings: [] }],
    });
    fs.writeFileSync(files[0]!, JSON.stringify(doc));
    const merged = await cli('merge', ...files, '--json', at('flaky-merged.json'));
    expect(merged.code).toBe(1);
    const out = JSON.parse(fs.readFileSync(at('flaky-merged.json'), 'utf8')) as {
      results: { id: string; verdict: string; attempts?: { verdict: string }[] }[];
    };
    const again = out.results.find((r) => r.verdict === 'flaky')!;
    expect(again.attempts?.map((a) => a.verdict)).toEqual(['fail', 'pass']);
  });

  test('a missing shard is bad input (exit 3) naming it', async () => {
    const r = await cli('merge', at('fc1-1.json'), at('fc1-2.json'), at('fc1-4.json'));
    expect(r.code).toBe(3);
    expect(r.err).toContain('missing shard 3/4 of model:firecracker');
  });

  test('one vector with two different results is bad input (exit 3) naming both files', async () => {
    const doc = JSON.parse(fs.readFileSync(at('fc1-1.json'), 'utf8')) as {
      results: { id: string; verdict: string; status: string }[];
    };
    const changed = doc.results.findIndex((r) => r.verdict === 'fail');
    doc.results[changed] = { ...doc.results[changed], verdict: 'pass', status: 'expected' };
    fs.writeFileSync(at('conflict.json'), JSON.stringify(doc));
    const r = await cli(
      'merge',
      at('fc1-1.json'),
      at('conflict.json'),
      at('fc1-2.json'),
      at('fc1-3.json'),
      at('fc1-4.json'),
    );
    expect(r.code).toBe(3);
    expect(r.err).toContain(
      `${doc.results[changed].id} is pass (expected) here but fail (unexpected) in ${at('fc1-1.json')}`,
    );
    // The same results twice are no conflict.
    expect(
      (await cli('merge', at('fc1-1.json'), at('fc1-1.json'), ...[2, 3, 4].map((i) => at(`fc1-${i}.json`)))).code,
    ).toBe(1);
  });

  test('a harness error in one shard makes the merge exit 2, as the run would', async () => {
    const doc = JSON.parse(fs.readFileSync(at('fc0-2.json'), 'utf8')) as {
      results: { verdict: string; status: string; expected: string }[];
    };
    doc.results[0] = { ...doc.results[0], verdict: 'error', status: 'unexpected', expected: 'pass' };
    fs.writeFileSync(at('error-2.json'), JSON.stringify(doc));
    const r = await cli('merge', at('fc0-1.json'), at('error-2.json'), at('fc0-3.json'), at('fc0-4.json'));
    expect(r.code).toBe(2);
    expect((await cli('merge', ...[1, 2, 3, 4].map((i) => at(`fc0-${i}.json`)))).code).toBe(0);
  });

  test('shards of different options or of another file type are refused (exit 3)', async () => {
    await cli(
      'run',
      '--profile',
      'firecracker',
      '--strict',
      '--shard',
      '2/4',
      '--json',
      at('strict-2.json'),
      '--quiet',
    );
    const r = await cli('merge', at('fc1-1.json'), at('strict-2.json'), at('fc1-3.json'), at('fc1-4.json'));
    expect(r.code).toBe(3);
    expect(r.err).toContain('run with other options than');
    fs.writeFileSync(at('not-results.json'), '{"format": "something"}\n');
    const bad = await cli('merge', at('not-results.json'));
    expect(bad.code).toBe(3);
    expect(bad.err).toContain('not-results.json:1');
  });

  test('results of several implementations are kept apart: one report and one file each, the worst exit code', async () => {
    await cli('run', '--json', at('spec.json'), '--quiet');
    const r = await cli(
      'merge',
      at('spec.json'),
      ...[1, 2, 3, 4].map((i) => at(`fc1-${i}.json`)),
      '--json',
      at('both.json'),
    );
    expect(r.code).toBe(1);
    expect(r.out).toContain('Implementation: model:spec (1 results file)');
    expect(r.out).toContain('Implementation: model:firecracker (4 results files)');
    expect(timeless(at('both.model-spec.json'))).toEqual(timeless(at('spec.json')));
    expect(timeless(at('both.model-firecracker.json'))).toEqual(timeless(at('fc1-all.json')));
    const tap = await cli(
      'merge',
      at('spec.json'),
      ...[1, 2, 3, 4].map((i) => at(`fc1-${i}.json`)),
      '--reporter',
      'tap',
    );
    expect(tap.code).toBe(3);
    expect(tap.err).toContain('--reporter tap takes the results of one implementation');
  });

  test('file names per implementation', () => {
    expect(perImplementationFile('out/results.json', 'QEMU 7.2 (Debian)')).toBe('out/results.qemu-7-2-debian.json');
  });
});
