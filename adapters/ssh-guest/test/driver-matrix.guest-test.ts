/**
 * The driver corpus on real Linux drivers, as a kernel matrix: for each kernel of
 * `VMEMCT_GUEST_KERNELS` (default 6.1,6.12) the guest is built with `vmemct guest build [--kernel
 * K]` and the driver vectors run through the CLI with `--boot-guest` (a guest per device set-up,
 * each with QEMU's gdbstub and its region in a shared file; icount and QEMU 10.0 where a vector
 * needs them) under `conformance/expectations/linux-K.yaml`, strict: the whole corpus on the first kernel, the subset
 * of `adapters/ssh-guest/guest-kernel-subset.txt` on the others (`VMEMCT_GUEST_MATRIX=full`, as
 * `npm run test:guest-matrix` sets it: the whole corpus on every kernel). A kernel the build cannot
 * pack, or without an expectation file, fails the suite. Each kernel's per-vector timing table
 * (beside the model adapter's time for the same vectors, measured in the same run) is printed and
 * written to `test-output/guest-matrix/<kernel>/timings.txt`.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  GUEST_KERNELS_VARIABLE,
  GUEST_MATRIX_VARIABLE,
  KERNEL_SUBSET_FILE,
  MatrixKernel,
  TimedResult,
  formatTimingTable,
  guestBuildKernelArguments,
  kernelExpectationsFile,
  matrixPlan,
  parseGuestKernels,
  parseVectorList,
  setupGroupOf,
  timingRows,
} from '../../../conformance/src/bench/guest-matrix';
import { loadVectors } from '../../../conformance/src/loader/load';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const OUT = path.join(ROOT, 'test-output', 'guest-matrix');
const MINUTE = 60_000;
/**
 * Bounds for a loaded 2-core machine running the guest under TCG: the whole corpus with the
 * gdbstub took 12.7 min there with other TCG guests beside it, and 24 min at a load average of 14;
 * the subset is about a third of the corpus.
 */
const RUN_BOUND_MS: Record<MatrixKernel['selection'], number> = { corpus: 40 * MINUTE, subset: 15 * MINUTE };

/** The per-vector bound given to the run (`--timeout`). */
const PER_VECTOR_BOUND_MS = 10 * MINUTE;

interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function cli(args: readonly string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      // The run's progress lines go on to the test's log.
      const lines = (pending + c.toString()).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('vmemct: run: ')) process.stderr.write(`  ${line}\n`);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, ms: Date.now() - started });
    });
  });
}

interface RunReport {
  readonly adapter: { readonly implementation: string };
  readonly exitCode: number;
  readonly results: readonly (TimedResult & { readonly status: string })[];
}

const kernels = parseGuestKernels(process.env[GUEST_KERNELS_VARIABLE]);
const plan = kernels.ok ? matrixPlan(kernels.value, process.env[GUEST_MATRIX_VARIABLE] === 'full') : [];
const corpus = loadVectors([path.join(ROOT, 'conformance', 'vectors')]).vectors;
const groupOf = new Map(corpus.map((v) => [v.id, setupGroupOf(v)]));

/** The `--filter` options of a kernel's selection (none: the whole corpus). */
/**
 * Left out of `npm run test:guest` (not of `npm run test:guest-matrix`): emptying a 256 GiB region
 * of 70000 plugged blocks takes the guest's driver about 4 minutes under TCG, during which the
 * guest stopped answering SSH on a loaded machine (seen on Linux 6.12). Its 256 GiB set-up stays
 * covered by the other vectors of that group.
 */
const LEFT_OUT_OF_THE_QUICK_MATRIX: readonly string[] = ['vmem.drv.op.split-over-65535-blocks'];

function selectionFilters(selection: MatrixKernel['selection']): string[] {
  if (selection === 'corpus') {
    if (process.env[GUEST_MATRIX_VARIABLE] === 'full') return [];
    return corpus
      .filter((v) => v.target === 'driver' && !LEFT_OUT_OF_THE_QUICK_MATRIX.includes(v.id))
      .flatMap((v) => ['--filter', v.id]);
  }
  const list = parseVectorList(KERNEL_SUBSET_FILE, fs.readFileSync(path.join(ROOT, KERNEL_SUBSET_FILE), 'utf8'));
  if (!list.ok) throw new Error(list.reason);
  return list.value.flatMap((id) => ['--filter', id]);
}

it(`names the kernels to run (${GUEST_KERNELS_VARIABLE})`, () => {
  expect(kernels).toEqual({ ok: true, value: expect.any(Array) });
});

describe.each(plan.map((p) => [p.kernel, p.selection, p] as const))(
  'Linux %s: the %s of the driver vectors with injected answers',
  (kernel, selection) => {
    const out = path.join(OUT, kernel);
    // The guests are built and booted from the suite's own folders (`guest build` and `run
    // --boot-guest` both take their default folder from VMEMCT_GUEST_DIR, with `-K` for other kernels).
    const env = { ...process.env, VMEMCT_GUEST_DIR: path.join(OUT, 'image') };
    const timings: string[] = [];

    beforeAll(async () => {
      fs.mkdirSync(out, { recursive: true });
      const build = await cli(['guest', 'build', ...guestBuildKernelArguments(kernel)], 10 * MINUTE, env);
      if (build.status !== 0)
        throw new Error(
          `vmemct guest build cannot pack Linux ${kernel} (exit ${build.status}): ${build.stderr.trim().split('\n').slice(-3).join(' / ')}`,
        );
      const expectations = path.join(ROOT, kernelExpectationsFile(kernel));
      if (!fs.existsSync(expectations))
        throw new Error(`Linux ${kernel} has no expectation file ${kernelExpectationsFile(kernel)}`);
      timings.push(`build: ${(build.ms / 1000).toFixed(1)} s`);
    }, 15 * MINUTE);

    afterAll(() => {
      fs.writeFileSync(path.join(out, 'run-timings.txt'), `${timings.join('\n')}\n`);
      // eslint-disable-next-line no-console
      console.log(`Linux ${kernel}:\n${timings.join('\n')}`);
    });

    it(
      `runs under linux-${kernel}.yaml, strict, with exit 0, and prints the timing table`,
      async () => {
        const filters = selectionFilters(selection);
        const json = path.join(out, 'driver-vectors.json');
        fs.rmSync(json, { force: true });
        const r = await cli(
          [
            'run',
            '--target',
            'driver',
            '--adapter',
            'ssh-guest',
            '--boot-guest',
            ...guestBuildKernelArguments(kernel),
            ...filters,
            '--expectations',
            path.join(ROOT, kernelExpectationsFile(kernel)),
            '--strict',
            // Per vector: at a load average of 20 (six TCG guests on 2 cores) a reboot vector and an
            // ACK-trailer vector each ran past the adapter's default 120 s, and on an idle machine
            // growing a 256 GiB region by 70000 blocks and emptying it again takes about 4 min.
            '--timeout',
            String(PER_VECTOR_BOUND_MS),
            '--json',
            json,
          ],
          RUN_BOUND_MS[selection] + 5 * MINUTE,
          env,
        );
        timings.push(`driver vectors (${selection}): ${(r.ms / 1000).toFixed(1)} s`);
        // The baseline: the model adapter on the same vectors, in the same run of the suite.
        const modelJson = path.join(out, 'model-baseline.json');
        const model = await cli(['run', '--target', 'driver', ...filters, '--json', modelJson], 5 * MINUTE);
        expect(model.status).toBe(0);
        const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as RunReport;
        const baseline = JSON.parse(fs.readFileSync(modelJson, 'utf8')) as RunReport;
        const table = formatTimingTable(
          `${doc.adapter.implementation}, the ${selection} of the driver vectors with --boot-guest (wall ${(r.ms / 1000).toFixed(0)} s; model ${(model.ms / 1000).toFixed(1)} s)`,
          'model',
          timingRows(doc.results, baseline.results, (id) => groupOf.get(id) ?? 'not in the corpus'),
        );
        fs.writeFileSync(path.join(out, 'timings.txt'), table);
        // eslint-disable-next-line no-console
        console.log(table);

        expect(r.stderr).not.toMatch(/internal error/);
        const unexpected = doc.results.filter((x) => x.status !== 'expected');
        expect(unexpected.map((x) => `${x.id}: ${x.verdict}`)).toEqual([]);
        expect(r.status).toBe(0);
        expect(doc.adapter.implementation.startsWith(`Linux ${kernel}.`)).toBe(true);
        expect(doc.results.map((x) => x.id).sort()).toEqual(baseline.results.map((x) => x.id).sort());
        // Grow, shrink, UNPLUG ALL at probe, the reboots and an injected ERROR the driver recovers from run for real.
        const mustPass = [
          'vmem.drv.op.grow-to-requested',
          'vmem.drv.op.shrink-to-requested',
          'vmem.drv.op.resize-to-zero',
          'vmem.drv.init.unplug-all-at-start',
          'vmem.drv.init.reboot-replugs',
          'vmem.drv.bug.reboot-with-plugged-memory',
          'vmem.drv.op.error-on-unplug-resync',
          'vmem.drv.plug.ack-garbage-trailer',
        ].filter((id) => doc.results.some((x) => x.id === id));
        expect(mustPass.length).toBeGreaterThanOrEqual(4);
        const passed = doc.results.filter((x) => x.verdict === 'pass').map((x) => x.id);
        expect(passed).toEqual(expect.arrayContaining(mustPass));
        expect(r.ms).toBeLessThan(RUN_BOUND_MS[selection]);
      },
      RUN_BOUND_MS[selection] + 12 * MINUTE,
    );
  },
);
