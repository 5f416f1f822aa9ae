/**
 * Scattered blocks plugged at start reaching a fresh load of the real Linux driver: one guest
 * booted attached with a gdbstub and its device region in a file shared with the host. The
 * ssh-guest adapter builds the state (the set-up driver's PLUGs redirected through the hook),
 * and the test checks it independently before the driver under test is loaded: QEMU's plugged
 * size, the PLUGs QEMU traced, the driver not loaded; then the fresh driver's first request is
 * UNPLUG ALL and the guest wrote nothing into unplugged blocks. Measured 2.7 minutes under TCG on
 * a 2-core machine at load average ~20 (boot 72 s, set-up 17.5 s, start and settle 16.6 s).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlockRange, DeviceSetup } from '../../../spec/src/index';
import { decodeRequest } from '../../../model/src/codec/codec';
import { Adapter } from '../../core/src/contract';
import { QmpClient, listVirtioMemDevices } from '../../qemu-platform/src/index';
import { buildGuest } from '../src/guest-build';
import { GuestVm } from '../src/guest-vm';
import { TraceParser } from '../src/qemu-trace';
import { connectSshGuestAdapter } from '../src/ssh-guest-adapter';
import { GuestShell } from '../src/ssh-shell';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const OUT = path.join(ROOT, 'test-output', 'guest-scatter');
const GUEST_DIR = path.join(OUT, 'image');
const MiB = 1n << 20n;
const BLOCK = 2n * MiB;
const MEMADDR = 4n << 30n;
const RUNS: BlockRange[] = [
  { first: 1, count: 1 },
  { first: 4, count: 2 },
  { first: 20, count: 5 },
  { first: 63, count: 1 },
];

let vm: GuestVm;
let adapter: Adapter | undefined;
let qmp: QmpClient;
let shell: GuestShell;
const timings: string[] = [];

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  await buildGuest({ dir: GUEST_DIR, log: () => undefined });
  const t = Date.now();
  vm = await GuestVm.boot({
    dir: GUEST_DIR,
    runDir: path.join(OUT, 'run-attached'),
    detached: false,
    gdbstub: true,
    sharedMemory: true,
  });
  timings.push(`boot to SSH: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  // The adapter holds the QMP socket; the test reads the device over the control socket.
  qmp = await QmpClient.connect(vm.state.controlSocket, Date.now() + 5000, 10_000);
  shell = await GuestShell.connect(vm.ssh, 10_000);
}, 600_000);

afterAll(async () => {
  await adapter?.dispose();
  qmp?.close();
  shell?.close();
  await vm?.stop();
  // eslint-disable-next-line no-console
  console.log(timings.join('\n'));
  expect(fs.existsSync(path.dirname(vm.state.memoryFile!))).toBe(false);
});

test('a scattered plugged state is built through the hook and met by a fresh driver load', async () => {
  adapter = await connectSshGuestAdapter({
    ssh: vm.ssh,
    qmp: vm.state.qmpSocket,
    traceLog: vm.state.traceLog,
    gdbSocket: vm.state.gdbSocket,
  });
  expect(adapter.info.capabilities).toEqual(expect.arrayContaining(['initial-plugged', 'memory-access']));
  const setup: DeviceSetup = {
    block_size: BLOCK,
    region_size: 1n << 30n,
    addr: MEMADDR,
    requested_size: 128n * MiB,
    node_id: 0,
    plugged: RUNS,
  };
  const traceStart = fs.statSync(vm.state.traceLog).size;
  let t = Date.now();
  const session = await adapter.openDriver!(setup, {});
  timings.push(`scattered set-up: ${((Date.now() - t) / 1000).toFixed(1)} s`);

  // The state before the driver under test loads, read here without the adapter.
  const [device] = await listVirtioMemDevices(qmp);
  expect(BigInt(device!.size as number)).toBe(9n * BLOCK);
  const parser = new TraceParser();
  for (const line of fs.readFileSync(vm.state.traceLog).subarray(traceStart).toString().split('\n')) parser.feed(line);
  const plugs = parser
    .take()
    .filter((r) => r.type === 0 && r.responseType === 0)
    .map((r) => ({ first: Number((r.addr - MEMADDR) / BLOCK), count: r.nbBlocks }));
  expect(plugs).toEqual(RUNS);
  const module = await shell.run('[ -d /sys/module/virtio_mem ] && echo loaded || echo unloaded', 10_000);
  expect(module.output.trim()).toBe('unloaded');

  t = Date.now();
  await session.start();
  const activity = await session.settle({ maxRequests: 100, timeoutMs: 60_000 });
  timings.push(`start and settle: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const requests = activity.events.flatMap((e) => (e.kind === 'request' ? [e.exchange] : []));
  const first = decodeRequest(requests[0]!.request);
  expect(first.ok && first.value.type).toBe(2);
  expect(activity.events.filter((e) => e.kind === 'memory-write')).toEqual([]);
  expect(activity.settled).toBe(true);
  const [after] = await listVirtioMemDevices(qmp);
  expect(BigInt(after!.size as number)).toBe(128n * MiB);
  await session.close();
}, 600_000);
