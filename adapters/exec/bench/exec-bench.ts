/**
 * `npm run bench:exec`: speed of the harness protocol (issue targets: ≥ 20,000 requests/s
 * through the protocol against the C example; harness start to first verdict < 100 ms). Each
 * figure is printed next to its target and next to a baseline measured in the same run: the same
 * work on the in-process model adapter, and a bare JSON-Lines round trip through a pipe to a
 * trivial echo program (built here), the pipe's own ceiling. Reports; never fails.
 *
 * Needs the C example built (`make -C examples/device-c`, which `npm run bench:exec` runs) and a
 * C compiler for the echo program (without one that baseline is skipped).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRequest } from '../../../model/src/codec/codec';
import { VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_UNPLUG, VirtioMemResponseLayout } from '../../../spec/src/index';
import type { Adapter, DeviceSetup } from '../../core/src/contract';
import { createModelAdapter } from '../../model/src/model-adapter';
import { loadVectors } from '../../../conformance/src/loader/load';
import { runVectors, selectVectors } from '../../../conformance/src/runner/run';
import type { Vector } from '../../../conformance/src/loader/types';
import { openExecAdapter } from '../src/exec-adapter';
import type { HarnessTransport } from '../src/exec-adapter';

const MiB = 1n << 20n;
const TiB = 1n << 40n;
/** A 1 TiB region of 2 MiB blocks, all of it requestable: single-block PLUG/UNPLUG pairs never run out. */
const SETUP: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: TiB,
  addr: 4n << 40n,
  requested_size: TiB,
  node_id: 0,
  plugged: [],
};
const REQUESTS = 10_000;
const MODEL_REQUESTS = 50_000;
const STARTS = 15;
const CORPUS_RUNS = 3;
const repoRoot = path.resolve(__dirname, '..', '..', '..', '..');
const cli = path.join(repoRoot, 'conformance', 'bin', 'vmemct.js');
const exampleDevice = path.join(repoRoot, 'examples', 'device-c', 'vmemct-example-device');
const exampleTransport: HarnessTransport = { kind: 'command', program: exampleDevice, args: [] };
const servedModelTransport: HarnessTransport = {
  kind: 'command',
  program: process.execPath,
  args: [cli, 'serve-harness', '--quiet'],
};

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Rounds each rate is measured in; the median round is reported (the machine is shared). */
const ROUNDS = 5;

/** A rate's rounds as `median/s (best …)`. */
function formatRate(rounds: readonly number[]): string {
  return `${median(rounds).toFixed(0).padStart(8)}/s (best ${Math.max(...rounds).toFixed(0)})`;
}

/** Lock-step single-block PLUG then UNPLUG of block i, `count` requests in each of {@link ROUNDS} rounds; returns requests/s per round. */
async function submitRate(adapter: Adapter, count: number): Promise<number[]> {
  const session = await adapter.openDevice(SETUP);
  await session.initialise((offered) => offered);
  const blocks = 4096;
  const plugs: Uint8Array[] = [];
  const unplugs: Uint8Array[] = [];
  for (let i = 0; i < blocks; i++) {
    const addr = SETUP.addr + BigInt(i * 7) * SETUP.block_size;
    plugs.push(encodeRequest({ type: VIRTIO_MEM_REQ_PLUG, addr, nb_blocks: 1 }));
    unplugs.push(encodeRequest({ type: VIRTIO_MEM_REQ_UNPLUG, addr, nb_blocks: 1 }));
  }
  const writableSizes = [VirtioMemResponseLayout.size];
  const pairs = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const j = i % blocks;
      for (const request of [plugs[j]!, unplugs[j]!]) {
        const done = await session.submit({ readable: [request], writableSizes });
        if (done.kind !== 'used' || done.written[0] !== 0) throw new Error(`request ${i}: not acknowledged`);
      }
    }
  };
  await pairs(1000); // warm-up
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    await pairs(count / 2);
    rates.push((count / (performance.now() - t0)) * 1000);
  }
  await session.close();
  return rates;
}

/** Builds a line-echo program (read a line, write it back, flush) with the C compiler; undefined without one. */
function buildEcho(dir: string): string | undefined {
  const source = path.join(dir, 'echo.c');
  const bin = path.join(dir, 'echo');
  fs.writeFileSync(
    source,
    [
      '#include <stdio.h>',
      'int main(void) {',
      '  static char line[1 << 20];',
      '  while (fgets(line, sizeof line, stdin)) { fputs(line, stdout); fflush(stdout); }',
      '  return 0;',
      '}',
      '',
    ].join('\n'),
  );
  const built = spawnSync('gcc', ['-O2', '-o', bin, source], { encoding: 'utf8' });
  return built.status === 0 ? bin : undefined;
}

/** Bare JSON-Lines round trips to `program`: stringify, write, read one line, parse; returns round trips/s per round. */
async function echoRate(program: string, message: object, count: number): Promise<number[]> {
  const child: ChildProcess = spawn(program, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = `${JSON.stringify(message)}\n`;
  let pending: ((text: string) => void) | undefined;
  let buffered = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffered += chunk;
    const end = buffered.indexOf('\n');
    if (end >= 0 && pending) {
      const text = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      const resolve = pending;
      pending = undefined;
      resolve(text);
    }
  });
  const roundTrip = () =>
    new Promise<unknown>((resolve) => {
      pending = (text) => resolve(JSON.parse(text));
      child.stdin!.write(line);
    });
  for (let i = 0; i < 1000; i++) await roundTrip();
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) await roundTrip();
    rates.push((count / (performance.now() - t0)) * 1000);
  }
  child.stdin!.end();
  await new Promise((resolve) => child.once('exit', resolve));
  return rates;
}

/** From opening the adapter (spawning the harness) to the first device vector's verdict; returns ms and the verdict. */
async function startToFirstVerdict(
  open: () => Promise<Adapter>,
  first: Vector,
  all: readonly Vector[],
): Promise<{ ms: number; verdict: string }> {
  const t0 = performance.now();
  const adapter = await open();
  let ms = 0;
  let verdict = '';
  try {
    await runVectors(adapter, [first], all, {
      onResult: (result) => {
        ms = performance.now() - t0;
        verdict = result.verdict;
      },
    });
  } finally {
    await adapter.dispose();
  }
  return { ms, verdict };
}

/** The whole device corpus on one adapter (opened once, outside the timing); returns ms and the summary. */
async function corpusRun(
  adapter: Adapter,
  vectors: readonly Vector[],
  all: readonly Vector[],
): Promise<{ ms: number; summary: string }> {
  const t0 = performance.now();
  const run = await runVectors(adapter, vectors, all);
  const ms = performance.now() - t0;
  const counts = new Map<string, number>();
  for (const r of run.results) counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
  return { ms, summary: [...counts].map(([verdict, n]) => `${n} ${verdict}`).join(', ') };
}

async function main(): Promise<void> {
  console.log(
    `exec benchmark: node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load ${os.loadavg()[0]!.toFixed(2)}`,
  );
  if (!fs.existsSync(exampleDevice)) {
    console.log(`  the C example is not built: run make -C examples/device-c (npm run bench:exec does)`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-exec-bench-'));
  try {
    // 1. Requests through the protocol, lock-step, against the C example; baselines alongside.
    const example = await openExecAdapter({ transport: exampleTransport });
    const viaExec = await submitRate(example, REQUESTS);
    await example.dispose();
    const inProcess = await submitRate(createModelAdapter(), MODEL_REQUESTS);
    console.log(
      `  single-block PLUG/UNPLUG submits, one in flight (median of ${ROUNDS} rounds of ${REQUESTS} through the protocol):`,
    );
    console.log(`    C example through --adapter exec ${formatRate(viaExec)}  (target ≥ 20,000/s)`);
    console.log(`    baseline: in-process model       ${formatRate(inProcess)}`);
    const echo = buildEcho(dir);
    // The line a submit command puts on the pipe, in size and shape.
    const submitLine = {
      id: 123456,
      op: 'submit',
      readable: ['000000000000000000000040000000000100000000000000'],
      writable: ['a5a5a5a5a5a5a5a5a5a5'],
    };
    if (echo) {
      const pipe = await echoRate(echo, submitLine, REQUESTS);
      console.log(`    baseline: bare JSON-Lines echo   ${formatRate(pipe)}  (a C line echo: the pipe's ceiling)`);
    } else {
      console.log(`    baseline: bare JSON-Lines echo   skipped (no gcc to build the echo program)`);
    }

    // 2. Harness start to first verdict: spawn, hello, open_device, initialise, the first vector judged.
    const loaded = loadVectors([path.join(repoRoot, 'conformance', 'vectors')]);
    if (loaded.problems.length > 0) throw new Error('the corpus has problems; run vmemct lint');
    const deviceVectors = selectVectors(loaded.vectors, { target: 'device' });
    const first = deviceVectors[0]!;
    console.log(`  harness start → first verdict (${first.id}, median of ${STARTS}; target < 100 ms):`);
    for (const [label, open] of [
      ['C example (spawn)', () => openExecAdapter({ transport: exampleTransport })],
      ['served model (node vmemct serve-harness)', () => openExecAdapter({ transport: servedModelTransport })],
      ['baseline: in-process model', async () => createModelAdapter()],
    ] as const) {
      const times: number[] = [];
      let verdict = '';
      for (let i = 0; i < STARTS; i++) {
        const one = await startToFirstVerdict(open, first, loaded.vectors);
        times.push(one.ms);
        verdict = one.verdict;
      }
      console.log(
        `    ${label.padEnd(42)} median ${median(times).toFixed(1).padStart(6)} ms, best ${Math.min(...times).toFixed(1)} ms, worst ${Math.max(...times).toFixed(1)} ms (${verdict})`,
      );
    }

    const nodeStarts: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      const t0 = performance.now();
      spawnSync(process.execPath, ['-e', '0']);
      nodeStarts.push(performance.now() - t0);
    }
    console.log(
      `    ${'baseline: a bare node process (node -e 0)'.padEnd(42)} median ${median(nodeStarts).toFixed(1).padStart(6)} ms (start to exit: the served model's floor)`,
    );

    // 3. The whole device corpus (one adapter for the run, as the CLI does; CLI start excluded).
    console.log(`  the device corpus (${deviceVectors.length} vectors, median of ${CORPUS_RUNS}; CLI start excluded):`);
    for (const [label, open] of [
      ['C example through --adapter exec', () => openExecAdapter({ transport: exampleTransport })],
      ['baseline: in-process model', async () => createModelAdapter()],
    ] as const) {
      const times: number[] = [];
      let summary = '';
      for (let i = 0; i < CORPUS_RUNS; i++) {
        const adapter = await open();
        try {
          const run = await corpusRun(adapter, deviceVectors, loaded.vectors);
          times.push(run.ms);
          summary = run.summary;
        } finally {
          await adapter.dispose();
        }
      }
      console.log(`    ${label.padEnd(42)} median ${median(times).toFixed(0).padStart(6)} ms (${summary})`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`exec benchmark failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
