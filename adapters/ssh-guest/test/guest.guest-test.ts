/**
 * The live-guest suite: builds the guest from Debian's packages, boots it under QEMU (TCG) and
 * checks the faults the adapter must report (exit 2 with the reason), a guest that stops answering
 * mid-run, and `guest up` / `status` / `down`. The driver corpus itself runs in
 * driver-matrix.guest-test.ts (with the gdbstub, on every kernel of the matrix).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildGuest } from '../src/guest-build';
import { GuestVm, freePort, readState, runArguments } from '../src/guest-vm';
import { QmpClient } from '../../qemu-platform/src/index';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const OUT = path.join(ROOT, 'test-output', 'guest');
const GUEST_DIR = path.join(OUT, 'image');
const EXPECTATIONS = path.join(ROOT, 'conformance', 'expectations', 'linux-6.1.yaml');

interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function cli(args: readonly string[], timeoutMs = 300_000): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    let pending = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      // The run's progress lines (printed when stderr is not a terminal) go on to the test's log.
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

function sshProcessesFor(port: number): string[] {
  const r = spawnSync('pgrep', ['-a', '-f', `-p ${port} `], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes('ssh') && !l.includes('pgrep'));
}

/**
 * Waits until QEMU's trace shows, after byte `from`, the driver sending a PLUG request: a vector
 * is under way. Gives up when `ended()` says the run is over, or after `timeoutMs`.
 */
async function driverPlugs(traceLog: string, from: number, ended: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fs.readFileSync(traceLog).subarray(from).toString().includes('virtio_mem_plug_request')) {
    if (ended()) throw new Error('the run ended before the driver sent a PLUG request');
    if (Date.now() > deadline)
      throw new Error(`the driver sent no PLUG request within ${timeoutMs} ms of the run's start`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let vm: GuestVm;
const timings: string[] = [];

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  let t = Date.now();
  await buildGuest({ dir: GUEST_DIR, log: (l) => timings.push(`build: ${l}`) });
  timings.push(`build: ${((Date.now() - t) / 1000).toFixed(1)} s in all`);
  t = Date.now();
  vm = await GuestVm.boot({ dir: GUEST_DIR, runDir: path.join(OUT, 'run-attached'), detached: false });
  timings.push(`boot to SSH: ${((Date.now() - t) / 1000).toFixed(1)} s`);
}, 600_000);

afterAll(async () => {
  await vm?.stop();
  fs.writeFileSync(path.join(OUT, 'timings.txt'), `${timings.join('\n')}\n`);
  // eslint-disable-next-line no-console
  console.log(timings.join('\n'));
});

describe('the Linux virtio_mem driver in a live guest', () => {
  it('reports an unreachable guest, a wrong key, an untrusted host key and an unreachable QMP as exit 2 with the reason', async () => {
    const base = runArguments(vm.state);
    const withOption = (name: string, value: string): string[] => {
      const args = [...base];
      args[args.indexOf(name) + 1] = value;
      return ['run', '--target', 'driver', ...args];
    };
    const closedPort = await freePort();
    const unreachable = await cli(withOption('--ssh', `root@127.0.0.1:${closedPort}`));
    expect(unreachable.status).toBe(2);
    expect(unreachable.stderr).toMatch(/cannot reach the guest's SSH server/);

    const otherKey = path.join(OUT, 'other_key');
    fs.rmSync(otherKey, { force: true });
    fs.rmSync(`${otherKey}.pub`, { force: true });
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const wrongKey = await cli(withOption('--ssh-key', otherKey));
    expect(wrongKey.status).toBe(2);
    expect(wrongKey.stderr).toMatch(/login refused/);

    const strangers = path.join(OUT, 'known_hosts_other');
    fs.writeFileSync(
      strangers,
      `[127.0.0.1]:${vm.state.sshPort} ${fs.readFileSync(`${otherKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`,
    );
    const hostKey = await cli(withOption('--ssh-known-hosts', strangers));
    expect(hostKey.status).toBe(2);
    expect(hostKey.stderr).toMatch(/host key is not trusted/);

    const noQmp = await cli(withOption('--qmp', path.join(OUT, 'no-such.sock')));
    expect(noQmp.status).toBe(2);
    expect(noQmp.stderr).toMatch(/QMP unreachable/);
    expect(sshProcessesFor(vm.state.sshPort)).toEqual([]);
  });

  it('reports a guest without the virtio_mem driver as exit 2', async () => {
    const ssh = [
      '-i',
      vm.state.sshKey,
      '-p',
      String(vm.state.sshPort),
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${vm.state.knownHosts}`,
      'root@127.0.0.1',
    ];
    const hide = spawnSync(
      'ssh',
      [...ssh, 'rmmod virtio_mem; mv /lib/modules/$(uname -r)/vmemct/virtio_mem.ko /tmp/'],
      { encoding: 'utf8' },
    );
    expect(hide.status).toBe(0);
    try {
      const r = await cli(['run', '--target', 'driver', ...runArguments(vm.state)]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/has no virtio_mem driver/);
    } finally {
      spawnSync('ssh', [...ssh, 'mv /tmp/virtio_mem.ko /lib/modules/$(uname -r)/vmemct/ && modprobe virtio_mem'], {
        encoding: 'utf8',
      });
    }
  });

  it('gives timeout verdicts when the guest stops answering mid-run, and leaves no ssh behind', async () => {
    const control = await QmpClient.connect(vm.state.controlSocket, Date.now() + 2000, 5000);
    try {
      const started = Date.now();
      const traceFrom = fs.statSync(vm.state.traceLog).size;
      let ended = false;
      const run = cli([
        'run',
        '--target',
        'driver',
        ...runArguments(vm.state),
        '--timeout',
        '1500',
        '--filter',
        'vmem.drv.op.grow-to-requested',
        '--filter',
        'vmem.drv.op.shrink-to-requested',
        '--json',
        path.join(OUT, 'stopped.json'),
      ]).finally(() => (ended = true));
      // Stop the guest once the driver works on the first vector (not after a fixed time: on a loaded machine the run may not have reached the guest yet).
      await driverPlugs(vm.state.traceLog, traceFrom, () => ended);
      await control.execute('stop');
      timings.push(`stopped guest: stopped ${((Date.now() - started) / 1000).toFixed(1)} s after the run started`);
      const r = await run;
      timings.push(`stopped guest: the run ended ${(r.ms / 1000).toFixed(1)} s after it started`);
      expect(r.status).toBe(2);
      const doc = JSON.parse(fs.readFileSync(path.join(OUT, 'stopped.json'), 'utf8')) as {
        results: { verdict: string }[];
      };
      expect(doc.results.some((x) => x.verdict === 'timeout')).toBe(true);
      expect(doc.results.every((x) => x.verdict === 'timeout' || x.verdict === 'pass')).toBe(true);
      expect(sshProcessesFor(vm.state.sshPort)).toEqual([]);
    } finally {
      await control.execute('cont').catch(() => undefined);
      control.close();
    }
    const continued = Date.now();
    await vm.waitForSsh(120_000);
    timings.push(
      `stopped guest: SSH answered ${((Date.now() - continued) / 1000).toFixed(1)} s after the guest continued`,
    );
  });

  it('boots, reports and ends a detached guest with guest up / status / down', async () => {
    const up = await cli(['guest', 'up', '--dir', GUEST_DIR, '--region-size', '256MiB']);
    expect(up.status).toBe(0);
    expect(up.stdout).toMatch(/--adapter ssh-guest --ssh root@127\.0\.0\.1:[0-9]+ /);
    const state = readState(path.join(GUEST_DIR, 'run'))!;
    try {
      const status = await cli(['guest', 'status', '--dir', GUEST_DIR]);
      expect(status.status).toBe(0);
      expect(status.stdout).toMatch(/answering/);
      expect(status.stdout).toMatch(/region 268435456/);
      // The whole-region vector needs this 256 MiB region.
      const r = await cli([
        'run',
        '--target',
        'driver',
        ...runArguments(state),
        '--filter',
        'vmem.drv.op.whole-region',
        '--expectations',
        EXPECTATIONS,
      ]);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/1 pass/);
    } finally {
      const down = await cli(['guest', 'down', '--dir', GUEST_DIR]);
      expect(down.status).toBe(0);
    }
    expect(
      fs.existsSync(`/proc/${state.pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${state.pid}/stat`, 'utf8')),
    ).toBe(false);
    const after = await cli(['guest', 'status', '--dir', GUEST_DIR]);
    expect(after.status).toBe(1);
  });
});
