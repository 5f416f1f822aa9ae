/**
 * Suspend to RAM around the real Linux virtio_mem driver, with QEMU 10.0 as the guest's VMM (it
 * offers PERSISTENT_SUSPEND on q35): ACPI S3 in the guest, QMP `system_wakeup` from the host.
 * Without the driver the guest sleeps and wakes; with it, Linux < 6.10 refuses every freeze and
 * Linux ≥ 6.10 (PERSISTENT_SUSPEND negotiated) sleeps with memory plugged and keeps it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QmpClient, listVirtioMemDevices } from '../../qemu-platform/src/index';
import { buildGuest } from '../src/guest-build';
import { SuspendPorts, attemptSuspend } from '../src/guest-suspend';
import { GuestVm } from '../src/guest-vm';
import { GuestShell } from '../src/ssh-shell';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const OUT = path.join(ROOT, 'test-output', 'guest-suspend');
const GUEST_DIR = path.join(OUT, 'image');
const MiB = 1n << 20n;

let vm: GuestVm;
let shell: GuestShell;
let qmp: QmpClient;
let kernel: [number, number];
const timings: string[] = [];

async function plugged(): Promise<bigint> {
  const [device] = await listVirtioMemDevices(qmp);
  return BigInt(device!.size as number);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const ports: SuspendPorts = {
  run: (command, _what, timeoutMs) => shell.run(command, timeoutMs),
  runState: async () => String(((await qmp.execute('query-status')) as { status: string }).status),
  wakeUp: async () => {
    await qmp.execute('system_wakeup');
  },
  plugged,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

async function timedSuspend(what: string): ReturnType<typeof attemptSuspend> {
  const started = Date.now();
  const r = await attemptSuspend(ports);
  timings.push(`${what}: ${r.kind} in ${Date.now() - started} ms`);
  return r;
}

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  // The fetched QEMU 10.0 (reused when present).
  const fetched = spawnSync(
    process.execPath,
    [path.join(ROOT, 'conformance', 'bin', 'vmemct.js'), 'qemu', 'fetch', '--quiet'],
    {
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  if (fetched.status !== 0) throw new Error(`vmemct qemu fetch: ${fetched.stderr}`);
  await buildGuest({ dir: GUEST_DIR, log: () => undefined });
  const t = Date.now();
  vm = await GuestVm.boot({
    dir: GUEST_DIR,
    runDir: path.join(OUT, 'run-attached'),
    detached: false,
    qemu: fetched.stdout.trim(),
    suspendToRam: true,
  });
  timings.push(`boot to SSH (QEMU 10.0): ${((Date.now() - t) / 1000).toFixed(1)} s`);
  shell = await GuestShell.connect(vm.ssh, 10_000);
  qmp = await QmpClient.connect(vm.state.qmpSocket, Date.now() + 5000, 10_000);
  const release = (await shell.check('uname -r', 10_000, 'uname')).trim();
  const m = /^(\d+)\.(\d+)/.exec(release)!;
  kernel = [Number(m[1]), Number(m[2])];
}, 900_000);

afterAll(async () => {
  qmp?.close();
  shell?.close();
  await vm?.stop();
  fs.writeFileSync(path.join(OUT, 'timings.txt'), `${timings.join('\n')}\n`);
  // eslint-disable-next-line no-console
  console.log(timings.join('\n'));
});

describe('suspend to RAM around the Linux driver (QEMU 10.0, ACPI S3, system_wakeup)', () => {
  it('QEMU 10.0 offers PERSISTENT_SUSPEND on q35', async () => {
    const status = (await qmp.execute('x-query-virtio-status', {
      path: '/machine/peripheral/vm0/virtio-backend',
    })) as { 'host-features': { 'dev-features': string[] } };
    expect(status['host-features']['dev-features'].join(' ')).toMatch(/PERSISTENT_SUSPE?ND/);
    expect(status['host-features']['dev-features'].join(' ')).not.toMatch(/UNPLUGGED_INACCESSIBLE/);
  });

  it('without the driver the guest sleeps in S3 and wakes on system_wakeup', async () => {
    await shell.check('rmmod virtio_mem', 30_000, 'unloading virtio_mem');
    const r = await timedSuspend('S3 without virtio_mem');
    expect(r).toMatchObject({ kind: 'allowed' });
    expect(await ports.runState()).toBe('running');
    expect(await shell.check('echo awake', 10_000, 'after the wake-up')).toBe('awake\n');
    expect(await shell.check('dmesg | tail -40', 10_000, 'kernel log')).toMatch(/Waking up from system sleep state S3/);
    await shell.check('modprobe virtio_mem', 30_000, 'loading virtio_mem');
  });

  it('with memory plugged: Linux < 6.10 refuses the freeze; Linux ≥ 6.10 sleeps and the device keeps the blocks', async () => {
    await qmp.execute('qom-set', { path: 'vm0', property: 'requested-size', value: 64n * MiB });
    await until('64 MiB plugged', async () => (await plugged()) === 64n * MiB);
    const r = await timedSuspend('S3 with 64 MiB plugged');
    if (kernel[0] < 6 || (kernel[0] === 6 && kernel[1] < 10)) {
      expect(r).toEqual({ kind: 'refused', detail: expect.stringMatching(/save\/restore not supported/) });
      expect(await ports.runState()).toBe('running');
    } else {
      expect(r).toMatchObject({ kind: 'allowed', detail: expect.stringMatching(/64MiB plugged before, 64MiB after/) });
    }
    expect(await plugged()).toBe(64n * MiB);
    // The driver still works after the attempt: it follows a shrink to 0.
    await qmp.execute('qom-set', { path: 'vm0', property: 'requested-size', value: 0n });
    await until('all unplugged', async () => (await plugged()) === 0n);
  });
});
