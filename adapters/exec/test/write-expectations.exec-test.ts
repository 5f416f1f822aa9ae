/**
 * `vmemct run --write-expectations` against the C device example (examples/device-c) through the
 * built CLI: the file written from a run lists exactly the vectors the seeded deviation fails, a
 * rerun with it exits 0, and updating the shipped file keeps its entries and reasons.
 *
 * Needs gcc and make; run by `npm run test:exec` after `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const DEVICE_DIR = path.join(ROOT, 'examples', 'device-c');
const DEVICE_BIN = path.join(DEVICE_DIR, 'vmemct-example-device');
const DEVICE_EXPECTATIONS = path.join(DEVICE_DIR, 'expectations.yaml');

/** The entries of an expectation file, as written. */
interface ExpectationDoc {
  readonly implementation: string;
  readonly entries: readonly { readonly id: string; readonly verdict: string; readonly reason: string }[];
}

let scratch = '';

/** `vmemct run --adapter exec` against the C device with extra options: exit code and stderr. */
function runDevice(args: readonly string[]): { status: number | null; stderr: string; stdout: string } {
  const run = spawnSync(
    process.execPath,
    [CLI, 'run', '--adapter', 'exec', '--command', DEVICE_BIN, '--target', 'device', '--quiet', ...args],
    { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  return { status: run.status, stderr: run.stderr, stdout: run.stdout };
}

const read = (file: string): ExpectationDoc => parse(fs.readFileSync(file, 'utf8')) as ExpectationDoc;

beforeAll(() => {
  const built = spawnSync('make', ['-C', DEVICE_DIR], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`make -C examples/device-c failed:\n${built.stdout}${built.stderr}`);
  if (!fs.existsSync(path.join(ROOT, 'dist', 'conformance', 'src', 'cli', 'main.js')))
    throw new Error('the CLI is not built: run npm run build first (npm run test:exec does)');
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-exec-write-'));
});

afterAll(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe('--write-expectations with the C device example', () => {
  test('the written file lists exactly the seeded failures, and the rerun with it exits 0', () => {
    const file = path.join(scratch, 'device.yaml');
    const written = runDevice(['--write-expectations', file]);
    expect(written.status).toBe(1); // the seeded deviation, without a file
    const shipped = read(DEVICE_EXPECTATIONS);
    const doc = read(file);
    expect(doc.implementation).toBe('vmemct-example-device-c 1.0.0');
    // The failures are the shipped file's entries; the rest are the results the device does not
    // plainly pass although they are acceptable (unsupported, informational), listed too.
    expect(doc.entries.filter((e) => e.verdict === 'fail').map((e) => e.id)).toEqual(
      shipped.entries.map((e) => e.id).sort(),
    );
    expect(doc.entries.filter((e) => ['error', 'timeout', 'non-strict', 'pass'].includes(e.verdict))).toEqual([]);
    expect(doc.entries.map((e) => e.id)).toEqual(doc.entries.map((e) => e.id).sort());
    expect(written.stderr).toContain(`${doc.entries.length} added, 0 changed, 0 removed, 0 kept`);
    const rerun = runDevice(['--expectations', file]);
    expect(rerun.status).toBe(0);
  });

  test("updating the example's own file keeps every entry and reason, adding the other non-pass results", () => {
    const file = path.join(scratch, 'shipped.yaml');
    fs.copyFileSync(DEVICE_EXPECTATIONS, file);
    const updated = runDevice(['--expectations', file, '--write-expectations', file]);
    expect(updated.status).toBe(0);
    const before = read(DEVICE_EXPECTATIONS);
    const after = read(file);
    const added = after.entries.length - before.entries.length;
    expect(updated.stderr).toContain(`${added} added, 0 changed, 0 removed, ${before.entries.length} kept`);
    for (const e of before.entries) expect(after.entries).toContainEqual(e);
    expect(runDevice(['--expectations', file]).status).toBe(0);
  });
});
