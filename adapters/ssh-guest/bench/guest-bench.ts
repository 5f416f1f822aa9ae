/**
 * `npm run bench:guest`: the live guest's timings against their targets — build the guest
 * (< 30 s, kernel download included), boot to SSH (< 15 s), the whole driver corpus (< 2 min);
 * the device corpus through the in-guest agent (< 2 min, its boot included) and requests per
 * second through the agent (≥ 2000) — each corpus beside a baseline measured in the same run: the
 * model adapter on the same vectors (and, for the device corpus, QEMU's device over qtest), so a
 * slow figure can be told from a slow machine. Reports; never fails on a slow figure.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRequest } from '../../../model/src/codec/codec';
import { VIRTIO_MEM_REQ_STATE, VirtioMemResponseLayout } from '../../../spec/src/index';
import { buildGuest } from '../src/guest-build';
import { connectGuestDeviceAdapter } from '../src/guest-device-connect';
import { GuestVm, runArguments } from '../src/guest-vm';

const ROOT = path.resolve(__dirname, '..', '..', '..', '..');

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-guest-bench-'));
  const rows: [string, number, number, string][] = [];
  const baseline = (what: string, args: readonly string[]): string => {
    const t = Date.now();
    const r = spawnSync(
      process.execPath,
      [path.join(ROOT, 'conformance', 'bin', 'vmemct.js'), 'run', ...args, '--quiet'],
      {
        encoding: 'utf8',
      },
    );
    return `${what} ${((Date.now() - t) / 1000).toFixed(1)} s${r.status === 0 ? '' : ` (exit ${r.status})`}`;
  };
  let vm: GuestVm | undefined;
  try {
    let t = Date.now();
    await buildGuest({ dir });
    rows.push(['build the guest (download included)', (Date.now() - t) / 1000, 30, '—']);
    t = Date.now();
    vm = await GuestVm.boot({ dir, detached: false });
    rows.push(['boot to SSH', (Date.now() - t) / 1000, 15, '—']);
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
    rows.push(['driver corpus', (Date.now() - t) / 1000, 120, baseline('model', ['--target', 'driver'])]);
    const summary = run.stdout.trim().split('\n').pop() ?? run.stderr.trim();
    process.stdout.write(`driver corpus: ${summary}\n`);
    // The device corpus through the agent, in a guest of its own (boot included).
    await vm.stop();
    vm = undefined;
    t = Date.now();
    vm = await GuestVm.boot({ dir, detached: false });
    const s = vm.state;
    const deviceArgs = [
      '--target',
      'device',
      '--adapter',
      'ssh-guest',
      '--ssh',
      `${s.sshUser}@${s.sshHost}:${s.sshPort}`,
    ];
    const keys = ['--ssh-key', s.sshKey, '--ssh-known-hosts', s.knownHosts, '--qmp', s.qmpSocket];
    const device = spawnSync(
      process.execPath,
      [path.join(ROOT, 'conformance', 'bin', 'vmemct.js'), 'run', ...deviceArgs, ...keys, '--quiet'],
      { encoding: 'utf8' },
    );
    rows.push([
      'device corpus through the agent (+ boot)',
      (Date.now() - t) / 1000,
      120,
      `${baseline('model', ['--target', 'device'])}, ${baseline('qtest', ['--adapter', 'qemu', '--target', 'device'])}`,
    ]);
    process.stdout.write(`device corpus: ${device.stdout.trim().split('\n').pop() ?? device.stderr.trim()}\n`);
    process.stdout.write(
      `requests through the agent: ${(await agentRequestsPerSecond(vm)).toFixed(0)}/s (target ≥ 2000)\n`,
    );
  } finally {
    await vm?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  for (const [what, seconds, target, sameRun] of rows) {
    process.stdout.write(
      `${what.padEnd(40)} ${seconds.toFixed(1).padStart(6)} s   target < ${target} s ${seconds < target ? 'ok  ' : 'SLOW'}   same run: ${sameRun}\n`,
    );
  }
}

/** STATE requests per second through the agent: one agent message per request. */
async function agentRequestsPerSecond(vm: GuestVm): Promise<number> {
  const s = vm.state;
  const adapter = await connectGuestDeviceAdapter({
    ssh: { user: s.sshUser, host: s.sshHost, port: s.sshPort, key: s.sshKey, knownHosts: s.knownHosts },
    qmp: s.qmpSocket,
  });
  try {
    const MiB = 1n << 20n;
    const setup = {
      block_size: 2n * MiB,
      region_size: 1024n * MiB,
      addr: 4n << 30n,
      requested_size: 0n,
      node_id: 0,
      plugged: [],
    };
    const session = await adapter.openDevice(setup);
    await session.initialise((offered) => offered);
    const chain = {
      readable: [encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: setup.addr, nb_blocks: 1 })],
      writableSizes: [VirtioMemResponseLayout.size],
    };
    const REQUESTS = 2000;
    const started = performance.now();
    for (let i = 0; i < REQUESTS; i++) await session.submit(chain);
    const perSecond = REQUESTS / ((performance.now() - started) / 1000);
    await session.close();
    return perSecond;
  } finally {
    await adapter.dispose();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`guest bench: ${(e as Error).message}\n`);
  process.exit(2);
});
