/**
 * `npm run bench:guest`: the live guest's timings against DESIGN targets — build the guest
 * (< 30 s, kernel download included), boot to SSH (< 15 s), the whole driver corpus (< 2 min).
 * Reports; never fails on a slow figure.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildGuest } from '../src/guest-build';
import { GuestVm, runArguments } from '../src/guest-vm';

const ROOT = path.resolve(__dirname, '..', '..', '..', '..');

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-guest-bench-'));
  const rows: [string, number, number][] = [];
  let vm: GuestVm | undefined;
  try {
    let t = Date.now();
    await buildGuest({ dir });
    rows.push(['build the guest (download included)', (Date.now() - t) / 1000, 30]);
    t = Date.now();
    vm = await GuestVm.boot({ dir, detached: false });
    rows.push(['boot to SSH', (Date.now() - t) / 1000, 15]);
    t = Date.now();
    const run = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'conformance', 'bin', 'vmemct.js'),
        'run',
        '--target',
        'driver',
        ...runArguments(vm.state),
        '--quiet',
      ],
      { encoding: 'utf8' },
    );
    rows.push(['driver corpus', (Date.now() - t) / 1000, 120]);
    const summary = run.stdout.trim().split('\n').pop() ?? run.stderr.trim();
    process.stdout.write(`driver corpus: ${summary}\n`);
  } finally {
    await vm?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  for (const [what, seconds, target] of rows) {
    process.stdout.write(
      `${what.padEnd(40)} ${seconds.toFixed(1).padStart(6)} s   target < ${target} s ${seconds < target ? 'ok' : 'SLOW'}\n`,
    );
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`guest bench: ${(e as Error).message}\n`);
  process.exit(2);
});
