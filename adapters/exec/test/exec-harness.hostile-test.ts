/**
 * A hostile harness against the built CLI (`node conformance/bin/vmemct.js run --adapter exec`):
 * garbage and bytes that are not UTF-8, JSON nested 100,000 deep, 100 MB lines with and without
 * a newline, out-of-range numbers, wrong `written`/`length`, wrong ids, duplicate and stray
 * replies, calls when none is allowed, floods of calls and of stderr, a hello that changes,
 * closed output, partial lines, SIGTERM ignored, grandchildren, signals, no hello, and a seeded
 * mix of well-formed and mutated replies; then SIGINT and SIGTERM to vmemct itself.
 *
 * Each case asserts the contract: vmemct's documented exit code, the victim's verdict with a
 * reason naming what was wrong (in the --json results), the other vectors ran, no stack trace,
 * a bounded time and peak memory, and no process it started (harness, grandchild) left.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const FIXTURES = path.join(ROOT, 'adapters', 'exec', 'test-fixtures');
const HOSTILE = path.join(FIXTURES, 'hostile-harness.js');
const VECTORS = path.join(FIXTURES, 'hostile-vectors.yaml');
const DEVICE = 'vmem.dev.hostile.*';
const DRIVER = 'vmem.drv.hostile.*';
const ALL = 'vmem.*.hostile.*';
/** vmemct's per-message timeout and per-vector timeout in these runs, in ms. */
const HARNESS_TIMEOUT_MS = 2_000;
const VECTOR_TIMEOUT_MS = 3_000;

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** vmemct's peak resident memory (VmHWM), in MiB, as last seen while it ran. */
  readonly peakMiB: number;
}

/**
 * Runs the built CLI, watching its peak memory; killed after `limitMs`. `during` is called once
 * it runs, with its pid (to signal it).
 */
function vmemct(args: readonly string[], limitMs: number, during?: (pid: number) => void): Promise<CliRun> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peakKiB = 0;
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const watch = setInterval(() => {
      try {
        const hwm = /^VmHWM:\s+([0-9]+) kB/m.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
      } catch {
        /* it has exited */
      }
    }, 20);
    const killer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    if (during) during(child.pid!);
    child.once('close', (code) => {
      clearInterval(watch);
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - started, peakMiB: peakKiB / 1024 });
    });
  });
}

let dir: string;
let runs = 0;
beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'conformance', 'src', 'cli', 'main.js')))
    throw new Error('build first: npm run build');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-hostile-harness-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** One result of the --json file. */
interface Result {
  readonly id: string;
  readonly verdict: string;
  readonly findings?: readonly { readonly verdict: string; readonly message: string }[];
  readonly diagnostics?: string;
}

interface HostileRun extends CliRun {
  readonly results: ReadonlyMap<string, Result>;
  /** The harness's record: `start PID`, `grandchild PID`, `trigger MODE`, `mutate NODE KIND`. */
  readonly record: readonly string[];
}

/** Runs vmemct against the hostile harness in `mode` on the vectors `filter` selects. */
async function hostile(
  mode: string,
  filter: string,
  options: { limitMs?: number; extra?: readonly string[]; during?: (pid: number, record: string) => void } = {},
): Promise<HostileRun> {
  const n = ++runs;
  const record = path.join(dir, `record-${n}`);
  const json = path.join(dir, `results-${n}.json`);
  const harness = ['--arg', HOSTILE, '--arg', mode, '--arg=--record', '--arg', record, ...(options.extra ?? [])];
  const r = await vmemct(
    [
      'run',
      '--vectors',
      VECTORS,
      '--filter',
      filter,
      '--adapter',
      'exec',
      '--command',
      process.execPath,
      ...harness,
      '--json',
      json,
      '--harness-timeout',
      String(HARNESS_TIMEOUT_MS),
      '--timeout',
      String(VECTOR_TIMEOUT_MS),
    ],
    options.limitMs ?? 20_000,
    options.during && ((pid) => options.during!(pid, record)),
  );
  const results = new Map<string, Result>();
  if (fs.existsSync(json))
    for (const result of JSON.parse(fs.readFileSync(json, 'utf8')).results as Result[]) results.set(result.id, result);
  const lines = fs.existsSync(record) ? fs.readFileSync(record, 'utf8').trim().split('\n') : [];
  return { ...r, results, record: lines };
}

/** Whether a process runs (a zombie awaiting its reaper counts as gone). */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** The processes of the record still running after `withinMs` (the reaper may take a moment). */
async function leftBehind(record: readonly string[], withinMs = 2_000): Promise<string[]> {
  const pids = record.filter((l) => /^(start|grandchild) /.test(l));
  const until = Date.now() + withinMs;
  const alive = (): string[] => pids.filter((l) => running(Number(l.split(' ')[1])));
  while (alive().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
  return alive();
}

/** What every run must show: the exit code, no stack trace, a bounded time, nothing left running. */
async function expectContract(r: HostileRun, code: number, limitMs = 10_000): Promise<void> {
  expect({ code: r.code, stderr: r.stderr.slice(-2_000) }).toMatchObject({ code });
  expect(r.stderr).not.toMatch(/internal error|\n\s+at |TimeoutOverflowWarning/);
  expect(r.ms).toBeLessThan(limitMs);
  expect(await leftBehind(r.record)).toEqual([]);
}

/** The text of a result's findings that did not pass. */
function reason(result: Result | undefined): string {
  return (result?.findings ?? [])
    .filter((f) => f.verdict !== 'pass')
    .map((f) => f.message)
    .join(' | ');
}

function expectVerdict(r: HostileRun, id: string, verdict: string, why?: RegExp): void {
  const result = r.results.get(id);
  expect({ id, verdict: result?.verdict, reason: reason(result) }).toMatchObject({ id, verdict });
  if (why) expect(reason(result)).toMatch(why);
}

/** The peak memory of a well-served run, the yardstick for the runs with huge messages. */
let baselineMiB = 0;

describe('a well-behaved run is the control', () => {
  test('every vector passes; exit 0', async () => {
    const r = await hostile('good', ALL);
    await expectContract(r, 0);
    expect([...r.results.values()].map((x) => x.verdict)).toEqual(['pass', 'pass', 'pass', 'pass', 'pass']);
    baselineMiB = r.peakMiB;
    expect(baselineMiB).toBeGreaterThan(0);
  });
});

/** Device cases: the victim (b) gets `verdict` with `why`; a (before) and c (after) pass. */
const DEVICE_CASES: readonly [string, string, RegExp, number][] = [
  ['garbage', 'error', /harness protocol violation: a line that is not UTF-8: \\xff\\x00\{\\x80\\xfe"/, 2],
  ['invalid-utf8', 'error', /a line that is not UTF-8: \{"id":[0-9]+,"ok":true,"config":"/, 2],
  ['deep-array', 'error', /harness protocol violation: expected a JSON object, got an array/, 2],
  ['deep-field', 'error', /reply to read_config: field 'config': expected bytes as a hex string, got an array/, 2],
  ['status-infinite', 'error', /field 'status': expected a non-negative integer number, got number Infinity/, 2],
  ['status-negative', 'error', /field 'status': expected a non-negative integer number, got number -1/, 2],
  [
    'status-2-to-64',
    'error',
    /field 'status': expected a non-negative integer number, got number 18446744073709552000/,
    2,
  ],
  ['accepted-40-hex-digits', 'error', /field 'accepted': 0xf{40} does not fit in 64 bits/, 2],
  ['written-too-long', 'error', /the harness reported 12 written bytes for used length 10 and 10 writable bytes/, 2],
  ['wrong-id', 'error', /a reply with id [0-9]+ while awaiting id [0-9]+ \(read_config\)/, 2],
  // The second reply comes with the first (no command pending) or after the next command was sent.
  [
    'duplicate-reply',
    'error',
    /harness protocol violation: (a reply with id [0-9]+ while awaiting id [0-9]+|the harness wrote a reply while no command was pending)/,
    2,
  ],
  ['call-not-allowed', 'error', /call read_config while read_config is pending \(allowed: none\)/, 2],
  ['killed-by-signal', 'error', /the harness was killed by SIGKILL while read_config \(id [0-9]+\) was pending/, 2],
  ['closes-output', 'error', /the harness closed its output but is still running while read_config/, 2],
  [
    'partial-line',
    'timeout',
    /sent nothing for 2000 ms .*read_config .*\(it wrote [0-9]+ bytes of a line and no newline\)/,
    2,
  ],
];

describe('a harness breaking the protocol in one vector: that vector gets its reason, the others run', () => {
  test.each(DEVICE_CASES)('%s → %s', async (mode, verdict, why, code) => {
    const r = await hostile(mode, DEVICE);
    await expectContract(r, code);
    expect(r.record).toContain(`trigger ${mode}`);
    expectVerdict(r, 'vmem.dev.hostile.b-victim', verdict, why);
    expectVerdict(r, 'vmem.dev.hostile.a-before', 'pass');
    expectVerdict(r, 'vmem.dev.hostile.c-after', 'pass');
  });

  test('JSON nested 100,000 deep in an unknown field is ignored, as unknown fields are: all pass', async () => {
    const r = await hostile('deep-unknown-field', DEVICE);
    await expectContract(r, 0);
    expect(r.record).toContain('trigger deep-unknown-field');
    expectVerdict(r, 'vmem.dev.hostile.b-victim', 'pass');
  });

  test('a used length beyond the writable bytes is the device’s fault: a finding, not a protocol error', async () => {
    const r = await hostile('length-beyond-writable', DEVICE);
    await expectContract(r, 1);
    expectVerdict(
      r,
      'vmem.dev.hostile.b-victim',
      'fail',
      /the used length 4096 is more than the 10 device-writable bytes/,
    );
    expectVerdict(r, 'vmem.dev.hostile.c-after', 'pass');
  });
});

describe('huge messages are cut at 1 MiB without being held', () => {
  test.each([['huge-line'], ['huge-line-no-newline']])('%s: 100 MB → error; peak memory bounded', async (mode) => {
    const r = await hostile(mode, DEVICE);
    await expectContract(r, 2);
    expectVerdict(r, 'vmem.dev.hostile.b-victim', 'error', /a line longer than the limit of 1048576 bytes/);
    expectVerdict(r, 'vmem.dev.hostile.c-after', 'pass');
    // Holding the line would add 100 MiB at least (twice that as a string); reading 100 MB leaves some garbage.
    expect(r.peakMiB).toBeLessThan(baselineMiB + 64);
  });

  test('100 MB on stderr: the error carries the last 64 KiB; peak memory bounded', async () => {
    const r = await hostile('stderr-flood', DEVICE);
    await expectContract(r, 2);
    expectVerdict(r, 'vmem.dev.hostile.b-victim', 'error', /the harness failed read_config: the toy device jammed/);
    const tail = r.results.get('vmem.dev.hostile.b-victim')?.diagnostics ?? '';
    expect(tail.length).toBeLessThanOrEqual(64 * 1024);
    expect(tail.length).toBeGreaterThan(60 * 1024);
    expect(tail).toMatch(/the last words on stderr\n$/);
    expect(r.peakMiB).toBeLessThan(baselineMiB + 64);
  });
});

describe('processes: exits, restarts, SIGTERM ignored, grandchildren', () => {
  test('a hello that changes after a restart: the vectors after the restart get error naming both hellos', async () => {
    const r = await hostile('hello-changes', DEVICE);
    await expectContract(r, 2);
    expectVerdict(r, 'vmem.dev.hostile.a-before', 'pass');
    expectVerdict(r, 'vmem.dev.hostile.b-victim', 'error', /the harness exited with code 3 while read_config/);
    expectVerdict(
      r,
      'vmem.dev.hostile.c-after',
      'error',
      /the restarted harness said a different hello: .*"version":"2".* \(first: .*"version":"1"/,
    );
  });

  test('a reply before any command: the first vector reports it and does not start; the rest run', async () => {
    const r = await hostile('reply-before-command', DEVICE);
    await expectContract(r, 2);
    expectVerdict(
      r,
      'vmem.dev.hostile.a-before',
      'error',
      /the harness wrote a reply while no command was pending \(while no vector was running; this vector did not start\)$/,
    );
    expectVerdict(r, 'vmem.dev.hostile.b-victim', 'pass');
    expectVerdict(r, 'vmem.dev.hostile.c-after', 'pass');
  });

  test('a harness ignoring the end of its input and SIGTERM is SIGKILLed after the grace periods', async () => {
    const r = await hostile('ignores-sigterm', DEVICE);
    // The timeout, then 2 s for the end of input and 2 s after SIGTERM.
    await expectContract(r, 2, HARNESS_TIMEOUT_MS + 4_000 + 4_000);
    expect(r.record).toContain('ignored SIGTERM');
    expectVerdict(
      r,
      'vmem.dev.hostile.b-victim',
      'timeout',
      /sent nothing for 2000 ms while vmemct awaited the reply to read_config/,
    );
    expectVerdict(r, 'vmem.dev.hostile.c-after', 'pass');
  });

  test('a grandchild holding the output open: the exit is seen at once and the grandchild is killed', async () => {
    const r = await hostile('grandchild-holds-output', DEVICE);
    await expectContract(r, 2);
    expect(r.record.filter((l) => l.startsWith('grandchild '))).toHaveLength(2);
    expectVerdict(r, 'vmem.dev.hostile.b-victim', 'error', /the harness exited with code 0 while read_config/);
    expectVerdict(r, 'vmem.dev.hostile.c-after', 'pass');
  });

  test('a grandchild that stays quiet is ended with the harness', async () => {
    const r = await hostile('grandchild-quiet', DEVICE);
    await expectContract(r, 0);
    expect(r.record.filter((l) => l.startsWith('grandchild '))).toHaveLength(1);
  });
});

describe('calls during settle', () => {
  test('an endless stream of request calls ends at max_requests as a violation', async () => {
    const r = await hostile('request-flood', DRIVER);
    await expectContract(r, 2);
    expectVerdict(
      r,
      'vmem.drv.hostile.d-victim',
      'error',
      /harness protocol violation: call request during settle: more than max_requests \(20\) request calls/,
    );
    expectVerdict(r, 'vmem.drv.hostile.e-after', 'pass');
  });

  test('an endless stream of read_config calls ends at the vector timeout', async () => {
    const r = await hostile('call-flood', DRIVER);
    await expectContract(r, 2, VECTOR_TIMEOUT_MS + 6_000);
    expectVerdict(r, 'vmem.drv.hostile.d-victim', 'timeout', /the vector did not finish within 3000 ms/);
    expectVerdict(r, 'vmem.drv.hostile.e-after', 'pass');
  });
});

describe('a harness that never gets going ends the run with exit 2', () => {
  test.each([
    ['no-hello', /did not start: the harness sent nothing for 2000 ms while vmemct awaited its hello/],
    [
      'exits-before-hello',
      /did not start: the harness exited with code 1 before its hello\n(.|\n)*cannot open \/dev\/toy-mem/,
    ],
  ])('%s', async (mode, why) => {
    const r = await hostile(mode, DEVICE);
    await expectContract(r, 2);
    expect(r.stderr).toMatch(why);
    expect(r.results.size).toBe(0);
  });
});

describe('a seeded mix of well-formed and mutated replies', () => {
  const KINDS = [
    'malformed',
    'non-object',
    'unknown-shape',
    'wrong-id',
    'ok-as-text',
    'id-negative',
    'invalid-utf8',
    'exit',
  ];
  const ORDER = [
    'vmem.dev.hostile.a-before',
    'vmem.dev.hostile.b-victim',
    'vmem.dev.hostile.c-after',
    'vmem.drv.hostile.d-victim',
    'vmem.drv.hostile.e-after',
  ];
  /** The node_id of each vector's set-up, as the harness records it. */
  const NODE: Record<string, number> = {
    'vmem.dev.hostile.a-before': 2,
    'vmem.dev.hostile.b-victim': 1,
    'vmem.dev.hostile.c-after': 3,
    'vmem.drv.hostile.d-victim': 1,
    'vmem.drv.hostile.e-after': 4,
  };

  test('each mutation is an error of its vector (or, after the vector ended, of the next); the rest pass', async () => {
    const plan = fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant('none') }, fc.constantFrom(...KINDS)), {
      minLength: 4,
      maxLength: 12,
    });
    await fc.assert(
      fc.asyncProperty(plan, async (steps) => {
        const file = path.join(dir, `plan-${runs + 1}.json`);
        fs.writeFileSync(file, JSON.stringify(steps));
        const r = await hostile('mix', ALL, { extra: ['--arg=--plan', '--arg', file] });
        expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
        expect([0, 2]).toContain(r.code);
        expect(r.ms).toBeLessThan(15_000);
        expect(await leftBehind(r.record)).toEqual([]);
        expect(r.results.size).toBe(ORDER.length);
        // Which vectors had a reply mutated; the record does not tell the two victims (node 1) apart.
        const mutatedNodes = new Set(
          r.record.filter((l) => l.startsWith('mutate ')).map((l) => Number(l.split(' ')[1])),
        );
        const mutated = (index: number): boolean => index >= 0 && mutatedNodes.has(NODE[ORDER[index]!]!);
        ORDER.forEach((id, index) => {
          const result = r.results.get(id)!;
          if (result.verdict === 'error') {
            expect(reason(result)).toMatch(/harness protocol violation|the harness is unusable/);
            expect(mutated(index) || mutated(index - 1)).toBe(true);
          } else expect(result.verdict).toBe('pass');
        });
      }),
      { seed: 1616, numRuns: 3, endOnFailure: true },
    );
  });
});

describe('vmemct interrupted while a harness works on a command', () => {
  test.each([
    ['SIGINT', 'silent', 130, 5_000],
    // A harness ignoring the end of its input and SIGTERM costs the two grace periods.
    ['SIGTERM', 'ignores-sigterm', 143, 10_000],
  ] as const)('%s with a %s harness → exit %d, no harness left', async (signal, mode, code, limitMs) => {
    let signalledAt = 0;
    const r = await hostile(mode, DEVICE, {
      extra: [],
      limitMs: 30_000,
      during: (pid, record) => {
        const poll = setInterval(() => {
          if (fs.existsSync(record) && fs.readFileSync(record, 'utf8').includes(`trigger ${mode}`)) {
            clearInterval(poll);
            signalledAt = Date.now();
            process.kill(pid, signal);
          }
        }, 20);
      },
    });
    expect(signalledAt).toBeGreaterThan(0);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code });
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(Date.now() - signalledAt).toBeLessThan(limitMs);
    expect(await leftBehind(r.record)).toEqual([]);
  });
});
