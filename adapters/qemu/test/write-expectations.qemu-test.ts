/**
 * `vmemct run --write-expectations` against QEMU 7.2's real device through the built CLI (npm run
 * test:qemu builds it): the written file makes the rerun exit 0, on a small selection and on the
 * whole device corpus, and updating the shipped qemu-7.2.yaml leaves its entries as they are; `vmemct
 * merge` of a 4-way shard of the device corpus gives the unsharded run's results.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { QEMU, ROOT } from './qemu-test-support';

const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const SHIPPED = path.join(ROOT, 'conformance', 'expectations', 'qemu-7.2.yaml');

/** The parts of an expectation file these tests read. */
interface ExpectationDoc {
  readonly implementation: string;
  readonly known_deviations?: readonly { readonly check: string }[];
  readonly entries: readonly { readonly id: string; readonly verdict: string; readonly reason: string }[];
}

let scratch = '';
/** The results of the whole device corpus under the shipped file (written by the round-trip test). */
const WHOLE_RESULTS = (): string => path.join(scratch, 'whole.json');

/**
 * What a merged and an unsharded run must agree on: per vector its verdict, status and which checks
 * found what at which step; the summary; the exit code. Not the finding texts: one QEMU serves many
 * vectors, and the config_generation it reports carries over from the vectors run before.
 */
function verdicts(file: string): Record<string, unknown> {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    summary: unknown;
    exitCode: number;
    results: {
      id: string;
      verdict: string;
      status: string;
      findings: { step: number; check: string; verdict: string }[];
    }[];
  };
  return {
    summary: doc.summary,
    exitCode: doc.exitCode,
    results: doc.results.map((r) => ({
      id: r.id,
      verdict: r.verdict,
      status: r.status,
      findings: r.findings.map((f) => `${f.step} ${f.check} ${f.verdict}`),
    })),
  };
}

/** `vmemct run --adapter qemu --target device` with extra options. */
function runQemu(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(
    process.execPath,
    [CLI, 'run', '--adapter', 'qemu', '--qemu', QEMU.path, '--target', 'device', '--quiet', ...args],
    { cwd: ROOT, encoding: 'utf8', timeout: 110_000 },
  );
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const read = (file: string): ExpectationDoc => parse(fs.readFileSync(file, 'utf8')) as ExpectationDoc;

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'conformance', 'src', 'cli', 'main.js')))
    throw new Error('the CLI is not built: run npm run build first (npm run test:qemu does)');
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-qemu-write-'));
});

afterAll(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe('--write-expectations against QEMU 7.2', () => {
  const selection = ['--filter', 'vmem.dev.malformed.*', '--filter', 'vmem.dev.features.*'];

  test('a small selection: written without a file (config_generation failures listed as fail), the rerun exits 0', () => {
    const file = path.join(scratch, 'small.yaml');
    const written = runQemu([...selection, '--write-expectations', file]);
    expect(written.status).toBe(1); // QEMU 7.2 breaks config_generation: red without a file
    const doc = read(file);
    expect(doc.implementation).toMatch(/^QEMU 7\.2/);
    expect(doc.known_deviations).toBeUndefined();
    expect(doc.entries.some((e) => e.verdict === 'fail')).toBe(true);
    const rerun = runQemu([...selection, '--expectations', file]);
    expect(rerun.stderr).toBe('');
    expect(rerun.status).toBe(0);
  });

  test('the whole device corpus: written under the shipped file, the known deviation is carried and the rerun exits 0', () => {
    const file = path.join(scratch, 'full.yaml');
    const written = runQemu(['--expectations', SHIPPED, '--write-expectations', file, '--json', WHOLE_RESULTS()]);
    expect(written.status).toBe(0);
    const doc = read(file);
    expect(doc.known_deviations?.map((d) => d.check)).toEqual(['config_generation']);
    // Vectors whose only deviation is the known one need no entry; none expects a harness error.
    expect(doc.entries.length).toBeLessThan(80);
    expect(doc.entries.filter((e) => e.verdict === 'error' || e.verdict === 'timeout')).toEqual([]);
    const rerun = runQemu(['--expectations', file]);
    expect(rerun.status).toBe(0);
    expect(rerun.stdout).toMatch(/0 unexpected; .*exit 0/);
  });

  test('updating the shipped file changes no entry: every verdict and reason kept, nothing added or removed', () => {
    const file = path.join(scratch, 'qemu-7.2.yaml');
    fs.copyFileSync(SHIPPED, file);
    const updated = runQemu([...selection, '--expectations', file, '--write-expectations', file]);
    expect(updated.status).toBe(0);
    expect(updated.stderr).toMatch(/: \d+ entries; 0 added, 0 changed, 0 removed, \d+ kept/);
    const before = read(SHIPPED);
    const after = read(file);
    const byId = (d: ExpectationDoc) => [...d.entries].sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(byId(after)).toEqual(byId(before));
    expect(after.known_deviations).toEqual(before.known_deviations);
  });

  test('vmemct merge of a 4-way shard of the device corpus equals the unsharded run', () => {
    const shards = [1, 2, 3, 4].map((i) => path.join(scratch, `shard-${i}.json`));
    shards.forEach((json, i) =>
      expect(runQemu(['--expectations', SHIPPED, '--shard', `${i + 1}/4`, '--json', json]).status).toBe(0),
    );
    const merged = path.join(scratch, 'merged.json');
    const r = spawnSync(process.execPath, [CLI, 'merge', ...shards, '--json', merged], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(verdicts(merged)).toEqual(verdicts(WHOLE_RESULTS()));
  });
});
