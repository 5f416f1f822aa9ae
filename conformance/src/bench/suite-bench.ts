/**
 * Benchmark: the whole corpus against the model, process start included (target, from
 * ARCHITECTURE.md "Performance targets": under 0.5 s on 2 cores). Spawns the built CLI several times and reports the median wall time.
 * It reports; it never fails.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

const RUNS = 7;

function main(): void {
  const root = path.resolve(__dirname, '..', '..', '..', '..');
  const bin = path.join(root, 'conformance', 'bin', 'vmemct.js');
  const profiles = ['spec', 'qemu'];
  console.log(
    `suite benchmark: node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load ${os.loadavg()[0].toFixed(2)}`,
  );
  for (const profile of profiles) {
    const times: number[] = [];
    let summary = '';
    for (let i = 0; i < RUNS; i++) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(process.execPath, [bin, 'run', '--profile', profile], { cwd: root, encoding: 'utf8' });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      summary = r.stdout.trimEnd().split('\n').pop() ?? `exit ${r.status}`;
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    console.log(
      `  vmemct run --profile ${profile}: median ${median.toFixed(0)} ms, best ${times[0].toFixed(0)} ms over ${RUNS} runs (target < 500 ms) — ${summary}`,
    );
  }
}

main();
