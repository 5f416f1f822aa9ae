/**
 * The two example harnesses (examples/device-c, examples/driver-python) through the real built
 * CLI, `vmemct run --adapter exec`, as CI runs them: each is green under its own expectation file,
 * its seeded deviation is what the expectation entries catch (without the file the run fails on
 * exactly those vectors), and with the deviation switched off every entry passes (reported as an
 * unexpected pass) while nothing else fails. `--harness-log` records both directions.
 *
 * Needs a C compiler (gcc), make and python3; run by `npm run test:exec` after `npm run build`.
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
const DRIVER_DIR = path.join(ROOT, 'examples', 'driver-python');
const DRIVER_EXPECTATIONS = path.join(DRIVER_DIR, 'expectations.yaml');
/** The switch of the C example's deviation (virtio_mem_dev.c), and its off position for make. */
const DEVICE_DEVIATION_OFF = 'CPPFLAGS=-DVMEM_DEVIATION_UNPLUG_PARTLY_PLUGGED_ACK=0';
/** The Python example's seeded constant (virtio_mem_driver.py), as shipped. */
const DRIVER_DEVIATION_ON = 'RETRY_BUSY_WITHOUT_BACKOFF = True';

/** The parts of a `vmemct run --json` document these tests read. */
interface ResultsDocument {
  readonly adapter: { readonly name: string; readonly implementation: string };
  readonly summary: { readonly total: number; readonly unexpected: number };
  readonly results: readonly {
    readonly id: string;
    readonly verdict: string;
    readonly status: 'expected' | 'unexpected';
    readonly findings: readonly { readonly check: string; readonly observed?: string }[];
  }[];
}

/** One CLI run: its exit code, its results document, its output for failure messages. */
interface CliRun {
  readonly status: number | null;
  readonly results: ResultsDocument;
  readonly output: string;
}

let scratch = '';

/** Fails with a clear message when a tool the examples need is missing. */
function requireTool(program: string, args: readonly string[], why: string): void {
  const probe = spawnSync(program, args, { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(`npm run test:exec needs ${program} (${why}); install it (Debian: gcc, make, python3)`);
  }
}

/** `make -C examples/device-c` with extra arguments; throws with make's output on failure. */
function make(args: readonly string[]): void {
  const built = spawnSync('make', ['-C', DEVICE_DIR, ...args], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`make -C examples/device-c failed:\n${built.stdout}${built.stderr}`);
}

/** Runs `vmemct run --adapter exec` with a results file. */
function runExec(args: readonly string[]): CliRun {
  const json = path.join(scratch, `results-${Date.now()}-${Math.random().toString(16).slice(2)}.json`);
  const run = spawnSync(process.execPath, [CLI, 'run', '--adapter', 'exec', ...args, '--json', json], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  const output = `${run.stdout}${run.stderr}`;
  if (!fs.existsSync(json)) throw new Error(`vmemct wrote no results (exit ${run.status}):\n${output}`);
  return { status: run.status, results: JSON.parse(fs.readFileSync(json, 'utf8')) as ResultsDocument, output };
}

/** The ids an expectation file lists, each with verdict fail. */
function expectedFailures(file: string): string[] {
  const doc = parse(fs.readFileSync(file, 'utf8')) as { entries: { id: string; verdict: string }[] };
  for (const entry of doc.entries) expect(entry.verdict).toBe('fail');
  return doc.entries.map((e) => e.id).sort();
}

const idsWhere = (run: CliRun, keep: (r: ResultsDocument['results'][number]) => boolean): string[] =>
  run.results.results
    .filter(keep)
    .map((r) => r.id)
    .sort();

/** The run is green under its expectations: exit 0, nothing unexpected, and exactly the entries fail. */
function expectGreenWithSeededFailures(run: CliRun, entries: readonly string[]): void {
  expect({ status: run.status, unexpected: run.results.summary.unexpected }).toEqual({ status: 0, unexpected: 0 });
  expect(idsWhere(run, (r) => r.verdict === 'fail')).toEqual(entries);
  expect(idsWhere(run, (r) => r.verdict === 'error' || r.verdict === 'timeout')).toEqual([]);
}

/** The deviation is off: every entry passes (an unexpected pass), nothing else is unexpected or fails. */
function expectEntriesPassNothingFails(run: CliRun, entries: readonly string[]): void {
  expect(run.status).toBe(1);
  expect(idsWhere(run, (r) => r.status === 'unexpected')).toEqual(entries);
  for (const id of entries) expect(run.results.results.find((r) => r.id === id)?.verdict).toBe('pass');
  expect(idsWhere(run, (r) => ['fail', 'error', 'timeout'].includes(r.verdict))).toEqual([]);
}

beforeAll(() => {
  requireTool('gcc', ['--version'], 'the C compiler the device example is built with');
  requireTool('make', ['--version'], 'builds the device example');
  requireTool('python3', ['--version'], 'runs the driver example');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'conformance', 'src', 'cli', 'main.js'))) {
    throw new Error('the CLI is not built: run npm run build first (npm run test:exec does)');
  }
  make([]);
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-exec-test-'));
});

afterAll(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe('the C device example (examples/device-c)', () => {
  const entries = () => expectedFailures(DEVICE_EXPECTATIONS);
  const deviceArgs = (bin: string) => ['--command', bin, '--target', 'device'];

  test('the device corpus is green under its expectation file, the seeded deviation failing exactly the listed vectors', () => {
    const run = runExec([...deviceArgs(DEVICE_BIN), '--expectations', DEVICE_EXPECTATIONS]);
    expect(run.results.adapter.implementation).toBe('vmemct-example-device-c 1.0.0');
    expect(run.results.summary.total).toBeGreaterThan(200);
    expectGreenWithSeededFailures(run, entries());
    // What catches it: an UNPLUG over an unplugged block answered ACK.
    for (const result of run.results.results.filter((r) => r.verdict === 'fail')) {
      expect(result.findings).toContainEqual(expect.objectContaining({ check: 'response', observed: 'ACK' }));
    }
  });

  test('without the expectation file the same run fails (exit 1) on exactly those vectors', () => {
    const run = runExec(deviceArgs(DEVICE_BIN));
    expect(run.status).toBe(1);
    expect(idsWhere(run, (r) => r.status === 'unexpected')).toEqual(entries());
    expect(run.results.summary.unexpected).toBe(entries().length);
  });

  test('built with the deviation switched off, every entry passes (unexpected passes) and nothing fails', () => {
    const bin = path.join(scratch, 'vmemct-example-device-conforming');
    make(['-B', `BIN=${bin}`, DEVICE_DEVIATION_OFF]);
    const run = runExec([...deviceArgs(bin), '--expectations', DEVICE_EXPECTATIONS]);
    expectEntriesPassNothingFails(run, entries());
  });
});

describe('the Python driver example (examples/driver-python)', () => {
  const entries = () => expectedFailures(DRIVER_EXPECTATIONS);
  const driverArgs = (dir: string) => ['--command', 'python3', '--arg', path.join(dir, 'vmem_driver.py')];

  test('the driver corpus is green under its expectation file, the seeded deviation failing exactly the listed vectors', () => {
    const run = runExec([...driverArgs(DRIVER_DIR), '--target', 'driver', '--expectations', DRIVER_EXPECTATIONS]);
    expect(run.results.adapter.implementation).toBe('pyvmem-driver 0.1.0');
    expect(run.results.summary.total).toBeGreaterThan(50);
    expectGreenWithSeededFailures(run, entries());
    // What catches it: the retry after a BUSY answer comes at once (drv.suite.2).
    for (const result of run.results.results.filter((r) => r.verdict === 'fail')) {
      expect(result.findings.map((f) => f.check)).toContain('retry_delay');
    }
  });

  test('without the expectation file the same run fails (exit 1) on exactly those vectors', () => {
    const run = runExec([...driverArgs(DRIVER_DIR), '--target', 'driver']);
    expect(run.status).toBe(1);
    expect(idsWhere(run, (r) => r.status === 'unexpected')).toEqual(entries());
  });

  test('with the seeded constant set to False (a copy), every entry passes (unexpected passes) and nothing fails', () => {
    const dir = path.join(scratch, 'driver-python-conforming');
    fs.mkdirSync(dir);
    for (const file of fs.readdirSync(DRIVER_DIR).filter((f) => f.endsWith('.py'))) {
      fs.copyFileSync(path.join(DRIVER_DIR, file), path.join(dir, file));
    }
    const driverFile = path.join(dir, 'virtio_mem_driver.py');
    const source = fs.readFileSync(driverFile, 'utf8');
    expect(source.split(DRIVER_DEVIATION_ON)).toHaveLength(2); // exactly one switch to flip
    fs.writeFileSync(driverFile, source.replace(DRIVER_DEVIATION_ON, 'RETRY_BUSY_WITHOUT_BACKOFF = False'));
    const run = runExec([...driverArgs(dir), '--target', 'driver', '--expectations', DRIVER_EXPECTATIONS]);
    expectEntriesPassNothingFails(run, entries());
  });
});

describe('--harness-log', () => {
  test('records the exchange as JSON Lines, both directions, starting with the hello', () => {
    const log = path.join(scratch, 'harness.jsonl');
    const run = runExec([
      '--command',
      DEVICE_BIN,
      '--target',
      'device',
      '--filter',
      'vmem.dev.plug.*',
      '--harness-log',
      log,
    ]);
    expect(run.status).toBe(0);
    expect(run.results.results.length).toBeGreaterThan(0);
    const entries = fs
      .readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { time: string; direction: string; line: string });
    for (const entry of entries) expect(Number.isNaN(Date.parse(entry.time))).toBe(false);
    const exchanged = entries.filter((e) => e.direction !== 'event');
    expect(new Set(exchanged.map((e) => e.direction))).toEqual(new Set(['to-harness', 'from-harness']));
    const messages = exchanged.map((e) => ({ direction: e.direction, message: JSON.parse(e.line) }));
    expect(messages[0]).toEqual({
      direction: 'from-harness',
      message: expect.objectContaining({ hello: 'vmemct-harness/1', implementation: 'vmemct-example-device-c' }),
    });
    // Every command the suite sent has its reply, same id, in the log.
    const commands = messages.filter((m) => m.direction === 'to-harness' && 'op' in m.message);
    const replies = new Set(messages.filter((m) => 'ok' in m.message).map((m) => m.message.id as number));
    expect(commands.length).toBeGreaterThan(run.results.results.length * 3);
    for (const command of commands) expect(replies.has(command.message.id as number)).toBe(true);
    // The harness's accept call (during initialise) and the suite's answer: at least one pair per vector.
    const calls = messages.filter((m) => m.direction === 'from-harness' && m.message.call === 'accept');
    const answers = messages.filter((m) => m.direction === 'to-harness' && m.message.answer === 'accept');
    expect(calls.length).toBeGreaterThanOrEqual(run.results.results.length);
    expect(answers).toHaveLength(calls.length);
  });
});
