/**
 * Answers injected into the real Linux virtio_mem driver through QEMU's gdbstub: a live guest
 * booted with a gdbstub socket, the hook resolved from its kallsyms and the module's BTF, then
 * NACK, BUSY, ACK with a trailer and ERROR delivered to the driver, each checked by what the
 * driver did next (QEMU's device state, its trace, the guest's kernel log).
 *
 * The guest's kernel is 6.1 unless `VMEMCT_GUEST_KERNEL` names another one `guest build --kernel`
 * takes (`VMEMCT_GUEST_KERNEL=6.12`); each kernel has its own guest and output folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildGuest } from '../src/guest-build';
import { spawnSync } from 'node:child_process';
import { GuestVm, runArguments } from '../src/guest-vm';
import { DEFAULT_GUEST_KERNEL, GUEST_KERNELS, guestKernelSource } from '../src/guest-kernel';
import { GuestShell } from '../src/ssh-shell';
import { DriverHook, resolveDriverHook } from '../src/driver-hook';
import { GdbResponseInjector, InterceptedRequest } from '../src/gdb-injection';
import { reconcileTrace } from '../src/injected-trace';
import { TraceParser } from '../src/qemu-trace';
import { QmpClient, listVirtioMemDevices } from '../../qemu-platform/src/index';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const KERNEL = guestKernelSource(process.env.VMEMCT_GUEST_KERNEL ?? DEFAULT_GUEST_KERNEL);
if (!KERNEL)
  throw new Error(
    `VMEMCT_GUEST_KERNEL must be one of ${GUEST_KERNELS.map((k) => k.kernel).join(', ')} (got '${process.env.VMEMCT_GUEST_KERNEL}')`,
  );
const OUT = path.join(
  ROOT,
  'test-output',
  KERNEL.kernel === DEFAULT_GUEST_KERNEL ? 'guest-gdb' : `guest-gdb-${KERNEL.kernel}`,
);
const GUEST_DIR = path.join(OUT, 'image');
const MiB = 1n << 20n;
const PLUG = 0;
const UNPLUG = 1;
const NACK = 1;
const BUSY = 2;
const ERROR = 3;

let vm: GuestVm;
let shell: GuestShell;
let qmp: QmpClient;
let hook: DriverHook;
let injector: GdbResponseInjector | undefined;
const timings: string[] = [];

async function plugged(): Promise<bigint> {
  const [device] = await listVirtioMemDevices(qmp);
  return BigInt(device!.size as number);
}

async function resize(bytes: bigint): Promise<void> {
  await qmp.execute('qom-set', { path: 'vm0', property: 'requested-size', value: bytes });
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

function traceFrom(offset: number): string {
  return fs.readFileSync(vm.state.traceLog).subarray(offset).toString();
}

/** Request and answer pairs of QEMU's trace (`plug:ACK`, `state:ERROR`, ...). */
function tracedAnswers(text: string): string[] {
  const names = ['ACK', 'NACK', 'BUSY', 'ERROR'];
  const out: string[] = [];
  let request: string | undefined;
  for (const line of text.split('\n')) {
    const r = /virtio_mem_(plug|unplug|unplug_all|state)_request/.exec(line);
    if (r) request = r[1];
    const a = /virtio_mem_send_response type=([0-9]+)/.exec(line);
    if (a && request) {
      out.push(`${request}:${names[Number(a[1])]}`);
      request = undefined;
    }
  }
  return out;
}

async function attach(): Promise<GdbResponseInjector> {
  const started = Date.now();
  const r = await GdbResponseInjector.attach(vm.state.gdbSocket!, hook);
  if (!r.ok) throw new Error(r.failure.message);
  timings.push(`attach: ${Date.now() - started} ms`);
  injector = r.value;
  return r.value;
}

async function detach(): Promise<void> {
  const i = injector;
  injector = undefined;
  if (!i) return;
  const started = Date.now();
  await i.detach();
  timings.push(`detach: ${Date.now() - started} ms`);
}

function recordTimes(what: string, requests: readonly InterceptedRequest[]): void {
  const injected = requests.filter((r) => r.injected).map((r) => r.hostMs);
  timings.push(`${what}: ${injected.length} injected answers, ${injected.join(', ')} ms each`);
}

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  let t = Date.now();
  await buildGuest({ dir: GUEST_DIR, kernel: KERNEL.kernel, log: () => undefined });
  timings.push(`build: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  t = Date.now();
  vm = await GuestVm.boot({ dir: GUEST_DIR, runDir: path.join(OUT, 'run-attached'), detached: false, gdbstub: true });
  timings.push(`boot to SSH: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  shell = await GuestShell.connect(vm.ssh, 10_000);
  qmp = await QmpClient.connect(vm.state.qmpSocket, Date.now() + 5000, 10_000);
}, 600_000);

afterAll(async () => {
  await detach().catch(() => undefined);
  qmp?.close();
  shell?.close();
  await vm?.stop();
  fs.writeFileSync(path.join(OUT, 'timings.txt'), `${timings.join('\n')}\n`);
  // eslint-disable-next-line no-console
  console.log(timings.join('\n'));
});

describe("answers injected into the Linux driver through QEMU's gdbstub", () => {
  // A test that fails half-way must not leave the gdbstub held (QEMU serves one client).
  afterEach(async () => {
    await detach();
  });

  it('resolves the hook after each load of the driver, and is unsupported with the reason while it is unloaded', async () => {
    await shell.check('rmmod virtio_mem', 30_000, 'unloading virtio_mem');
    const absent = await resolveDriverHook(shell);
    expect(absent).toEqual({
      kind: 'unsupported',
      reason: expect.stringMatching(/has no virtio_mem_send_request in \[virtio_mem\]/),
    });
    await shell.check('modprobe virtio_mem', 30_000, 'loading virtio_mem');
    const started = Date.now();
    const resolved = await resolveDriverHook(shell);
    timings.push(`resolve the hook: ${Date.now() - started} ms`);
    if (resolved.kind !== 'supported') throw new Error(resolved.reason);
    hook = resolved.hook;
    const kallsyms = await shell.check('grep -w virtio_mem_send_request /proc/kallsyms', 10_000, 'kallsyms');
    expect(kallsyms).toContain(hook.sendRequest.toString(16));
    // Module addresses on x86-64 lie in the top 2 GiB; req is 24 bytes before resp or further.
    expect(hook.sendRequest >= 0xffffffff80000000n).toBe(true);
    expect(hook.responseOffset - hook.requestOffset).toBeGreaterThanOrEqual(24);
  });

  it('NACK: three PLUGs are answered NACK, the driver sends each again at once, and QEMU plugs the fourth', async () => {
    expect(await plugged()).toBe(0n);
    const from = fs.statSync(vm.state.traceLog).size;
    const i = await attach();
    i.inject({ response: 'NACK', count: 3, types: ['PLUG'] });
    const started = Date.now();
    await resize(128n * MiB);
    await until('three NACKs delivered', () => i.remaining === 0 || i.failure !== undefined);
    const converged = await until('128 MiB plugged', async () => (await plugged()) === 128n * MiB);
    // QEMU plugs before the injector's stop at the return records the request: wait for the record too.
    await until('the fourth PLUG recorded', () => i.requests.length >= 4);
    timings.push(
      `NACK x3: delivered and converged ${Date.now() - started} ms after the resize (${converged} ms after the last)`,
    );
    expect(i.failure).toBeUndefined();
    const nacked = i.requests.filter((r) => r.injected);
    expect(nacked).toHaveLength(3);
    for (const r of nacked)
      expect(r).toMatchObject({ type: PLUG, deviceAnswer: ERROR, delivered: NACK, addr: nacked[0]!.addr });
    // After each NACK the driver sent the same PLUG again; the fourth went through to QEMU.
    expect(i.requests[3]).toMatchObject({ type: PLUG, injected: false, deviceAnswer: 0, delivered: 0 });
    expect(tracedAnswers(traceFrom(from))).toEqual(['state:ERROR', 'state:ERROR', 'state:ERROR', 'plug:ACK']);
    // Put back as the driver saw it: three PLUGs answered NACK, then one answered ACK.
    const parser = new TraceParser();
    for (const line of traceFrom(from).split('\n')) parser.feed(line);
    const reconciled = reconcileTrace(parser.take(), i.requests);
    expect(reconciled.ok && reconciled.requests.map((r) => `${r.type}:${r.responseType}`)).toEqual([
      `${PLUG}:${NACK}`,
      `${PLUG}:${NACK}`,
      `${PLUG}:${NACK}`,
      `${PLUG}:0`,
    ]);
    recordTimes('NACK', i.requests);
    await detach();
  });

  it('BUSY: an UNPLUG answered BUSY leaves the memory plugged until the host asks again', async () => {
    const from = fs.statSync(vm.state.traceLog).size;
    const i = await attach();
    i.inject({ response: 'BUSY', count: 1, types: ['UNPLUG'] });
    await resize(0n);
    await until('BUSY delivered', () => i.remaining === 0 || i.failure !== undefined);
    expect(i.failure).toBeUndefined();
    expect(i.requests[0]).toMatchObject({ type: UNPLUG, deviceAnswer: ERROR, delivered: BUSY, injected: true });
    // The driver backs off (tens of seconds in Linux 6.1): nothing moves for a while.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await plugged()).toBe(128n * MiB);
    expect(i.requests).toHaveLength(1);
    // Asking again wakes the driver; its UNPLUG now reaches QEMU.
    await resize(0n);
    await until('unplugged', async () => (await plugged()) === 0n);
    expect(tracedAnswers(traceFrom(from))).toEqual(['state:ERROR', 'unplug:ACK']);
    recordTimes('BUSY', i.requests);
    await detach();
  });

  it('ACK with a trailer: QEMU plugs, the driver reads garbage after the type and still takes it as ACK', async () => {
    const trailer = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x5a, 0xa5, 0x02, 0x00]);
    const i = await attach();
    i.inject({ response: 'ACK', count: 1, types: ['PLUG'], trailer });
    await resize(64n * MiB);
    await until('ACK delivered', () => i.remaining === 0 || i.failure !== undefined);
    expect(i.failure).toBeUndefined();
    expect(i.requests[0]).toMatchObject({ type: PLUG, deviceAnswer: 0, delivered: 0, injected: true, trailer });
    await until('64 MiB plugged', async () => (await plugged()) === 64n * MiB);
    const dmesg = await shell.check('dmesg | tail -20', 10_000, 'dmesg');
    expect(dmesg).not.toMatch(/marking device broken/);
    recordTimes('ACK+trailer', i.requests);
    await detach();
  });

  it('ERROR: a PLUG answered ERROR makes the driver mark the device broken and send nothing more', async () => {
    const from = fs.statSync(vm.state.traceLog).size;
    const i = await attach();
    i.inject({ response: 'ERROR', count: 1, types: ['PLUG'] });
    await resize(128n * MiB);
    await until('ERROR delivered', () => i.remaining === 0 || i.failure !== undefined);
    expect(i.failure).toBeUndefined();
    expect(i.requests[0]).toMatchObject({ type: PLUG, deviceAnswer: ERROR, delivered: ERROR, injected: true });
    recordTimes('ERROR', i.requests);
    await detach();
    await until('the driver gives up', async () =>
      /unknown error, marking device broken/.test(await shell.check('dmesg | tail -5', 10_000, 'dmesg')),
    );
    // A kick finds no driver listening: the device keeps 64 MiB and QEMU sees no request.
    await resize(128n * MiB);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await plugged()).toBe(64n * MiB);
    expect(tracedAnswers(traceFrom(from))).toEqual(['state:ERROR']);
  });
});

describe('driver vectors with scripted answers, run by the ssh-guest adapter through the gdbstub', () => {
  it('ACK trailers and a resync after ERROR pass; a scripted NACK is sent again at once (Linux re-sends after NACK)', async () => {
    // A fresh driver: the ERROR above left the device broken; a reset empties the device and /init loads virtio_mem.
    await qmp.execute('system_reset');
    qmp.close();
    shell.close();
    await vm.waitForSsh(120_000);
    const json = path.join(OUT, 'inject-vectors.json');
    const started = Date.now();
    const ids = [
      'vmem.drv.plug.ack-garbage-trailer',
      'vmem.drv.unplug.ack-garbage-trailer',
      'vmem.drv.op.error-on-unplug-resync',
      'vmem.drv.op.nack-every-plug',
    ];
    const r = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'conformance', 'bin', 'vmemct.js'),
        'run',
        '--target',
        'driver',
        ...runArguments(vm.state),
        ...ids.flatMap((id) => ['--filter', id]),
        '--quiet',
        '--json',
        json,
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 400_000 },
    );
    timings.push(`four inject vectors through the adapter: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(r.stderr).not.toMatch(/internal error/);
    const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as {
      adapter: { capabilities: string[] };
      results: { id: string; verdict: string; findings: { check: string; message: string }[] }[];
    };
    expect(doc.adapter.capabilities).toContain('inject-responses');
    const verdicts = Object.fromEntries(doc.results.map((x) => [x.id, x.verdict]));
    expect(verdicts).toEqual({
      'vmem.drv.plug.ack-garbage-trailer': 'pass',
      'vmem.drv.unplug.ack-garbage-trailer': 'pass',
      'vmem.drv.op.error-on-unplug-resync': 'pass',
      'vmem.drv.op.nack-every-plug': 'fail',
    });
    // The NACKs reached the driver: it sent the PLUG again at once, over and over.
    const nack = doc.results.find((x) => x.id === 'vmem.drv.op.nack-every-plug')!;
    expect(nack.findings.map((f) => f.message).join('\n')).toMatch(/answered NACK without pause/);
  }, 600_000);
});
