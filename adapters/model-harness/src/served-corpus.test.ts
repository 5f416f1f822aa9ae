/**
 * The served model is the model: every vector of the corpus, device and driver, run through the
 * exec adapter against `vmemct serve-harness` (a real child process over real pipes, and over a
 * unix socket) leaves the same transcript — every call the runner made and every byte that came
 * back — and the same verdict and findings as the in-process model adapter.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Adapter, Target } from '../../core/src/contract';
import { createModelAdapter } from '../../model/src/model-adapter';
import { openExecAdapter } from '../../exec/src/exec-adapter';
import type { HarnessTransport } from '../../exec/src/exec-adapter';
import { findDeviceProfile } from '../../../model/src/index';
import { loadVectors } from '../../../conformance/src/loader/load';
import { runVectors, selectVectors } from '../../../conformance/src/runner/run';
import type { VectorResult } from '../../../conformance/src/runner/run';
import type { Vector } from '../../../conformance/src/loader/types';
import {
  DEVICE_CALLS,
  DRIVER_CALLS,
  RecordingAdapter,
  compareTranscripts,
} from '../../../conformance/src/differential/transcript';
import { transpiledCli } from '../test/transpiled-cli';

const loaded = loadVectors([path.resolve(__dirname, '../../../conformance/vectors')]);
const corpus: readonly Vector[] = loaded.vectors;
const ofTarget = (target: Target): Vector[] => selectVectors(corpus, { target });

let cli: ReturnType<typeof transpiledCli>;
let dir: string;
beforeAll(() => {
  cli = transpiledCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'served-corpus-'));
}, 60_000);
afterAll(() => {
  cli.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** What a vector's result says, without its duration: the verdict, what was expected, every finding. */
function judged(r: VectorResult): string {
  return JSON.stringify({
    verdict: r.verdict,
    severity: r.severity,
    expected: r.expected,
    unexpected: r.unexpected,
    findings: r.findings,
    diagnostics: r.diagnostics,
  });
}

/** What a comparison found: how many vectors, their verdicts, every difference, and what was recorded. */
interface Comparison {
  readonly compared: number;
  readonly verdicts: Readonly<Record<string, number>>;
  readonly differences: readonly string[];
  /** Transcript entries recorded over the protocol, by call (a settle's events as `  event`). */
  readonly calls: Readonly<Record<string, number>>;
  /** Entries recorded over the protocol in all. */
  readonly entries: number;
}

/**
 * Runs every vector on both adapters (served first, then in-process) and lists each vector
 * whose transcript, verdict or findings differ: the first differing transcript entry, or both
 * results.
 */
async function compareOverCorpus(served: Adapter, inProcess: Adapter, vectors: readonly Vector[]): Promise<Comparison> {
  const left = new RecordingAdapter(served);
  const right = new RecordingAdapter(inProcess);
  const differences: string[] = [];
  const verdicts: Record<string, number> = {};
  const calls: Record<string, number> = {};
  let entries = 0;
  try {
    for (const vector of vectors) {
      left.beginVector(vector.id);
      right.beginVector(vector.id);
      const overProtocol = (await runVectors(left, [vector], corpus)).results[0]!;
      const direct = (await runVectors(right, [vector], corpus)).results[0]!;
      verdicts[direct.verdict] = (verdicts[direct.verdict] ?? 0) + 1;
      const recorded = left.transcripts.get(vector.id)!;
      entries += recorded.length;
      for (const { call } of recorded) {
        const name = call.startsWith('  event') ? '  event' : call.split(' ')[0]!;
        calls[name] = (calls[name] ?? 0) + 1;
      }
      const diff = compareTranscripts(recorded, right.transcripts.get(vector.id)!);
      if (diff)
        differences.push(
          `${vector.id} entry ${diff.index}: served ${JSON.stringify(diff.left)} / in-process ${JSON.stringify(diff.right)}`,
        );
      if (judged(overProtocol) !== judged(direct))
        differences.push(`${vector.id}: served ${judged(overProtocol)} / in-process ${judged(direct)}`);
    }
  } finally {
    await served.dispose();
  }
  return { compared: vectors.length, verdicts, differences, calls, entries };
}

/** The session methods the comparison never saw called (it must see every one). */
function uncalled(c: Comparison, table: object, ...more: string[]): string[] {
  return [...Object.keys(table), ...more].filter((name) => !c.calls[name]);
}

/** The served model as a child process over its stdin and stdout, through `--adapter exec`. */
function overPipes(...args: string[]): Promise<Adapter> {
  const transport: HarnessTransport = {
    kind: 'command',
    program: process.execPath,
    args: [cli.bin, 'serve-harness', ...args],
  };
  return openExecAdapter({ transport });
}

/** Prints a comparison's figures (vectors, verdicts, time) to the test log. */
function report(what: string, c: Comparison, startedMs: number): void {
  process.stdout.write(
    `served model / in-process ${what}: ${c.compared} vectors compared (${Object.entries(c.verdicts)
      .map(([v, n]) => `${n} ${v}`)
      .join(
        ', ',
      )}), ${c.entries} transcript entries, ${c.differences.length} differences, ${Date.now() - startedMs} ms\n`,
  );
}

describe('the corpus through `--adapter exec` against `vmemct serve-harness` over pipes', () => {
  test('every device vector (spec profile): identical transcripts, verdicts and findings', async () => {
    const started = Date.now();
    const vectors = ofTarget('device');
    const served = await overPipes();
    expect(served.info).toMatchObject({ name: 'exec', implementation: expect.stringMatching(/^model:spec /) });
    const c = await compareOverCorpus(served, createModelAdapter(), vectors);
    report('device, spec', c, started);
    expect(c.differences).toEqual([]);
    expect(c.compared).toBeGreaterThan(250);
    expect(c.verdicts.pass).toBeGreaterThan(250);
    expect(uncalled(c, DEVICE_CALLS, 'openDevice')).toEqual([]);
  }, 60_000);

  test('every driver vector: identical transcripts (every request, response, configuration and time), verdicts and findings', async () => {
    const started = Date.now();
    // The harness protocol gives a driver session one device: multi-device vectors are `unsupported` over it.
    const vectors = ofTarget('driver').filter((v) => !v.needs.includes('multi-device'));
    const c = await compareOverCorpus(await overPipes(), createModelAdapter(), vectors);
    report('driver', c, started);
    expect(c.differences).toEqual([]);
    expect(c.compared).toBeGreaterThan(60);
    expect(c.verdicts.pass).toBeGreaterThan(40);
    // nodeMemory belongs to multi-device vectors, which the protocol cannot carry (left out above).
    expect(uncalled(c, DRIVER_CALLS, 'openDriver', '  event')).toEqual(['nodeMemory']);
  }, 60_000);

  test('every device vector with --profile qemu-7.2: identical to the in-process qemu-7.2 profile', async () => {
    const started = Date.now();
    const vectors = ofTarget('device');
    const profile = findDeviceProfile('qemu-7.2')!;
    const c = await compareOverCorpus(
      await overPipes('--profile', 'qemu-7.2'),
      createModelAdapter({ profile }),
      vectors,
    );
    report('device, qemu-7.2', c, started);
    expect(c.differences).toEqual([]);
    expect(c.compared).toBeGreaterThan(250);
  }, 60_000);
});

describe('the device corpus over a unix socket against `vmemct serve-harness --socket`', () => {
  let server: ChildProcess | undefined;
  afterEach(() => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  });

  test('every device vector: identical transcripts, verdicts and findings', async () => {
    const started = Date.now();
    const socketPath = path.join(dir, 'served.sock');
    const child = spawn(process.execPath, [cli.bin, 'serve-harness', '--socket', socketPath], { stdio: 'pipe' });
    server = child;
    // It prints one line once it listens.
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`serve-harness --socket exited with ${code}`)));
    });
    const served = await openExecAdapter({ transport: { kind: 'socket', path: socketPath } });
    const c = await compareOverCorpus(served, createModelAdapter(), ofTarget('device'));
    report('device over a unix socket', c, started);
    expect(c.differences).toEqual([]);
    expect(c.compared).toBeGreaterThan(250);
    expect(uncalled(c, DEVICE_CALLS, 'openDevice')).toEqual([]);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(socketPath)).toBe(false);
  }, 60_000);
});
