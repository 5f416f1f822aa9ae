/**
 * `npm run bench:guest-drivers`: the driver corpus on real Linux drivers, timed per vector, beside
 * the model adapter's time for the same vectors measured in the same run. For each kernel of
 * `VMEMCT_GUEST_KERNELS` (default 6.1,6.12) it builds the guest (`vmemct guest build [--kernel
 * K]`), boots it with `guest up` (gdbstub included), runs the whole driver corpus with `--gdb`,
 * runs the model on the same vectors, prints the per-vector table and per-set-up-group totals, and
 * ends the guest with `guest down`. Everything goes through the CLI, as a user would run it. It
 * reports; a kernel that cannot be built or booted is reported and skipped, never a failure.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadVectors } from '../loader/load';
import {
  GUEST_KERNELS_VARIABLE,
  TimedResult,
  formatTimingTable,
  guestBuildKernelArguments,
  parseGuestKernels,
  setupGroupOf,
  timingRows,
} from './guest-matrix';

const ROOT = path.resolve(__dirname, '..', '..', '..', '..');
const BIN = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');

interface Timed {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

function vmemct(args: readonly string[]): Timed {
  const started = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - started) / 1000 };
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

/** The run options `guest up` printed (its line `vmemct run …`), or undefined. */
function runOptionsOf(upOutput: string): string[] | undefined {
  const line = upOutput.split('\n').find((l) => l.trim().startsWith('vmemct run '));
  return line?.trim().slice('vmemct run '.length).split(/\s+/);
}

function benchKernel(kernel: string, groupOf: (id: string) => string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vmemct-guest-drivers-${kernel}-`));
  try {
    const build = vmemct(['guest', 'build', '--dir', dir, ...guestBuildKernelArguments(kernel)]);
    if (build.status !== 0) {
      process.stdout.write(`Linux ${kernel}: cannot be built (exit ${build.status}): ${lastLine(build.stderr)}\n`);
      return;
    }
    const up = vmemct(['guest', 'up', '--dir', dir]);
    const options = runOptionsOf(up.stdout);
    if (up.status !== 0 || !options) {
      process.stdout.write(`Linux ${kernel}: guest up failed (exit ${up.status}): ${lastLine(up.stderr)}\n`);
      return;
    }
    try {
      const guestJson = path.join(dir, 'guest.json-report');
      const modelJson = path.join(dir, 'model.json-report');
      const guest = vmemct(['run', ...options, '--json', guestJson, '--quiet']);
      const model = vmemct(['run', '--target', 'driver', '--json', modelJson, '--quiet']);
      const read = (file: string): { adapter: { implementation: string }; results: TimedResult[] } =>
        JSON.parse(fs.readFileSync(file, 'utf8')) as { adapter: { implementation: string }; results: TimedResult[] };
      if (!fs.existsSync(guestJson)) {
        process.stdout.write(
          `Linux ${kernel}: the run wrote no report (exit ${guest.status}): ${lastLine(guest.stderr)}\n`,
        );
        return;
      }
      const g = read(guestJson);
      process.stdout.write(
        formatTimingTable(
          [
            `${g.adapter.implementation}: driver corpus with --gdb (build ${build.seconds.toFixed(1)} s, boot ${up.seconds.toFixed(1)} s,`,
            `corpus ${guest.seconds.toFixed(1)} s wall, exit ${guest.status}; the model on the same vectors, same run: ${model.seconds.toFixed(1)} s wall)`,
            `${lastLine(guest.stdout)}`,
          ].join('\n'),
          'model',
          timingRows(g.results, read(modelJson).results, groupOf),
        ),
      );
    } finally {
      vmemct(['guest', 'down', '--dir', dir]);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function main(): void {
  const kernels = parseGuestKernels(process.env[GUEST_KERNELS_VARIABLE]);
  if (!kernels.ok) {
    process.stderr.write(`guest driver bench: ${kernels.reason}\n`);
    process.exit(3);
  }
  const corpus = loadVectors([path.join(ROOT, 'conformance', 'vectors')]).vectors;
  const groups = new Map(corpus.map((v) => [v.id, setupGroupOf(v)]));
  process.stdout.write(
    `guest driver bench: node ${process.version}, ${os.cpus().length} cpus, load ${os.loadavg()[0]!.toFixed(2)}, kernels ${kernels.value.join(', ')}\n`,
  );
  for (const kernel of kernels.value) benchKernel(kernel, (id) => groups.get(id) ?? 'not in the corpus');
}

main();
