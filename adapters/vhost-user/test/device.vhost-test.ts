/**
 * The vhost-user adapter against `vmemct serve-vhost-user`, both real: the back-end runs as its
 * own process and every vector goes through the socket, the shared memfds and the vring.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRequest } from '../../../model/src/codec/codec';
import { SPEC_PROFILE } from '../../../model/src/index';
import {
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_STATE,
  featureMask,
} from '../../../spec/src/index';
import type { Adapter, DeviceSession, DeviceSetup } from '../../core/src/contract';
import { createModelAdapter } from '../../model/src/model-adapter';
import {
  RecordingAdapter,
  compareSessions,
  compareTranscripts,
  formatMismatch,
  generateOperations,
} from '../../../conformance/src/differential/differential';
import { loadVectors } from '../../../conformance/src/loader/load';
import { formatProblem } from '../../../conformance/src/loader/types';
import { runVectors } from '../../../conformance/src/runner/run';
import { openFdCount } from '../src/native';
import { connectVhostUserAdapter } from '../src/vhost-user-adapter';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const MiB = 1n << 20n;
const SETUP: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 256n * MiB,
  addr: 4n << 30n,
  requested_size: 64n * MiB,
  node_id: 0,
  plugged: [],
};
const SEED = Number(process.env.VMEMCT_DIFF_SEED ?? 20261124);
/** The reply bound of the adapter facing the back-end that stops answering (the default bound is 2 s). */
const FROZEN_REPLY_TIMEOUT_MS = 5000;

let dir: string;
let socketPath: string;
let server: ChildProcess;
let serverLog = '';

/** Runs the CLI without blocking this process's event loop (it may be a front-end that must answer). */
function cliAsync(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

function cli(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Starts `vmemct serve-vhost-user` and resolves once it prints its listening line. */
function serve(socket: string, ...extra: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'serve-vhost-user', '--socket', socket, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => (serverLog += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve-vhost-user exited with ${code}: ${serverLog}`)));
    child.stdout!.once('data', () => resolve(child));
  });
}

/** Resolves once `child` logs (on stderr) a line matching `pattern`; rejects if it exits first or the time is up. */
function logged(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => done(new Error(`no log line matching ${pattern} within ${timeoutMs} ms; the log:\n${log}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer): void => {
      log += chunk.toString();
      if (pattern.test(log)) done();
    };
    const onExit = (code: number | null): void =>
      done(new Error(`the back-end exited (${code}) before logging ${pattern}; the log:\n${log}`));
    function done(error?: Error): void {
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve();
    }
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Waits until every connection the main back-end logged as opened is logged as ended (it closes a connection's fds just before). */
async function allConnectionsEnded(timeoutMs = 30_000): Promise<void> {
  const count = (what: string): number =>
    serverLog.match(new RegExp(`^serve-vhost-user: connection \\d+: ${what}`, 'gm'))?.length ?? 0;
  const deadline = Date.now() + timeoutMs;
  while (count('ended') < count('opened')) {
    if (Date.now() > deadline)
      throw new Error(
        `the back-end still has ${count('opened') - count('ended')} connection(s) open after ${timeoutMs} ms; the end of its log:\n${serverLog.slice(-3000)}`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

function deviceVectors() {
  const loaded = loadVectors([path.join(ROOT, 'conformance', 'vectors')]);
  if (loaded.problems.length) throw new Error(loaded.problems.map((p) => formatProblem(p)).join('\n'));
  return loaded.vectors.filter((v) => v.target === 'device');
}

async function withSession<T>(
  adapter: Adapter,
  setup: DeviceSetup,
  work: (s: DeviceSession) => Promise<T>,
): Promise<T> {
  const session = await adapter.openDevice(setup);
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}

const request = (type: number, block: number, nb_blocks = 1): Uint8Array =>
  encodeRequest({ type, addr: SETUP.addr + BigInt(block) * SETUP.block_size, nb_blocks });
const responseType = (c: Awaited<ReturnType<DeviceSession['submit']>>): number =>
  c.kind === 'used' ? c.written[0]! | (c.written[1]! << 8) : -1;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-vhost-'));
  socketPath = path.join(dir, 'backend.sock');
  server = await serve(socketPath);
});

afterAll(async () => {
  expect(await stop(server)).toBe(0);
  expect(fs.existsSync(socketPath)).toBe(false);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the whole device corpus passes through vmemct run --adapter vhost-user', () => {
  const json = path.join(dir, 'results.json');
  // --quiet: on a loaded machine the run outlasts the progress interval (5 s) and a progress line
  // would reach stderr, which must otherwise stay empty.
  const r = cli(
    'run',
    '--adapter',
    'vhost-user',
    '--socket',
    socketPath,
    '--target',
    'device',
    '--json',
    json,
    '--quiet',
  );
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as {
    adapter: { name: string; implementation: string; capabilities: string[] };
    summary: { total: number; unexpected: number; byVerdict: Record<string, number> };
  };
  expect(doc.adapter).toMatchObject({ name: 'vhost-user', implementation: 'vmemct serve-vhost-user (model:spec)' });
  expect(doc.adapter.capabilities).toEqual(
    expect.arrayContaining([
      'host-resize',
      'device-reset',
      'system-reset',
      'feature-negotiation',
      'initial-plugged',
      'memory-access',
      'inject-busy',
      'host-busy',
      'suspend',
    ]),
  );
  expect(doc.summary.total).toBe(deviceVectors().length);
  expect(doc.summary.unexpected).toBe(0);
  // Exactly the model's own results, the same informational ones, but for the vectors that read
  // config_generation: vhost-user carries no generation, so those are unsupported.
  const withoutGeneration = deviceVectors().filter((v) => v.needs.includes('config-generation')).length;
  expect(withoutGeneration).toBeGreaterThan(0);
  expect(doc.adapter.capabilities).not.toContain('config-generation');
  expect(doc.summary.byVerdict.unsupported ?? 0).toBe(withoutGeneration);
  expect(doc.summary.byVerdict.pass).toBe(
    doc.summary.total - (doc.summary.byVerdict.informational ?? 0) - withoutGeneration,
  );
});

test('every device vector leaves the same transcript over vhost-user as on the in-process model', async () => {
  const vectors = deviceVectors();
  const remote = new RecordingAdapter(await connectVhostUserAdapter({ socketPath }));
  // The back-end has no config_generation: the model's side does without it too.
  const model = new RecordingAdapter(createModelAdapter({ profile: SPEC_PROFILE }), { omit: ['readConfigGeneration'] });
  const differences: string[] = [];
  try {
    // Vectors that read config_generation are unsupported over vhost-user (no transcript to compare).
    for (const vector of vectors.filter((v) => !v.needs.includes('config-generation'))) {
      remote.beginVector(vector.id);
      model.beginVector(vector.id);
      const overSocket = (await runVectors(remote, [vector], vectors, {})).results[0]!;
      const inProcess = (await runVectors(model, [vector], vectors, {})).results[0]!;
      const diff = compareTranscripts(remote.transcripts.get(vector.id)!, model.transcripts.get(vector.id)!);
      if (diff)
        differences.push(
          `${vector.id} call ${diff.index}: vhost-user ${JSON.stringify(diff.left)} / model ${JSON.stringify(diff.right)}`,
        );
      else if (overSocket.verdict !== inProcess.verdict)
        differences.push(`${vector.id}: ${overSocket.verdict} over vhost-user, ${inProcess.verdict} on the model`);
    }
  } finally {
    await remote.dispose();
  }
  expect(differences).toEqual([]);
});

test(`a seeded sequence of 12,500 operations gives identical responses and configurations (seed ${SEED})`, async () => {
  const ops = generateOperations(SEED, 12_500, SETUP);
  expect(ops.filter((op) => op.kind === 'request').length).toBeGreaterThanOrEqual(10_000);
  const adapter = await connectVhostUserAdapter({ socketPath });
  try {
    const mismatch = await compareSessions(
      await adapter.openDevice(SETUP),
      await createModelAdapter().openDevice(SETUP),
      ops,
    );
    if (mismatch) throw new Error(formatMismatch(mismatch, 'vhost-user', 'model:spec', SEED));
  } finally {
    await adapter.dispose();
  }
});

test('vhost-user-ctl resize reaches a connected front-end as CONFIG_CHANGE_MSG; a refused size exits 1', async () => {
  const adapter = await connectVhostUserAdapter({ socketPath });
  await withSession(adapter, SETUP, async (session) => {
    await session.initialise((offered) => offered);
    expect(await session.notificationCount()).toBe(0);
    const r = await cliAsync('vhost-user-ctl', '--socket', socketPath, 'resize', '128MiB');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/requested_size 128MiB for new connections; connection \d+: applied/);
    // The back-end waits for the front-end's ack before answering the control client.
    expect(await session.notificationCount()).toBe(1);
    const config = Buffer.from(await session.readConfig());
    expect(config.readBigUInt64LE(48)).toBe(128n * MiB);
    const refused = await cliAsync('vhost-user-ctl', '--socket', socketPath, 'resize', '3MiB');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/not a multiple of block_size/);
    const status = JSON.parse((await cliAsync('vhost-user-ctl', '--socket', socketPath, 'status')).out) as {
      setup: { requested_size: string };
      connections: unknown[];
    };
    expect(status.setup.requested_size).toBe(String(128n * MiB));
    expect(status.connections.length).toBe(1);
  });
  await adapter.dispose();
  // Put the default back for the other tests.
  expect(cli('vhost-user-ctl', '--socket', socketPath, 'resize', '0').code).toBe(0);
});

test('UNPLUG discards the block in the shared region: plugged again, it reads zeros', async () => {
  const adapter = await connectVhostUserAdapter({ socketPath });
  await withSession(adapter, SETUP, async (s) => {
    await s.initialise((offered) => offered);
    expect(responseType(await s.submit({ readable: [request(VIRTIO_MEM_REQ_PLUG, 3)], writableSizes: [10] }))).toBe(0);
    const data = Uint8Array.from([0xde, 0xad, 0xbe, 0xef]);
    const blockStart = SETUP.addr + 3n * SETUP.block_size;
    expect(await s.writeMemory!(blockStart + 4096n, data)).toEqual({ ok: true, data: new Uint8Array(0) });
    expect(await s.readMemory!(blockStart + 4096n, 4)).toEqual({ ok: true, data });
    expect(responseType(await s.submit({ readable: [request(VIRTIO_MEM_REQ_UNPLUG, 3)], writableSizes: [10] }))).toBe(
      0,
    );
    expect(responseType(await s.submit({ readable: [request(VIRTIO_MEM_REQ_PLUG, 3)], writableSizes: [10] }))).toBe(0);
    expect(await s.readMemory!(blockStart + 4096n, 4)).toEqual({ ok: true, data: new Uint8Array(4) });
  });
  await adapter.dispose();
});

test('with UNPLUGGED_INACCESSIBLE the back-end refuses CPU access to unplugged blocks', async () => {
  const features = featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
  const adapter = await connectVhostUserAdapter({ socketPath });
  await withSession(adapter, { ...SETUP, features }, async (s) => {
    const init = await s.initialise((offered) => offered);
    expect(init.accepted & featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE)).not.toBe(0n);
    const access = await s.readMemory!(SETUP.addr, 8);
    expect(access).toMatchObject({ ok: false, reason: expect.stringMatching(/^inaccessible/) });
    const state = await s.submit({ readable: [request(VIRTIO_MEM_REQ_STATE, 0, 8)], writableSizes: [10] });
    expect(responseType(state)).toBe(0);
  });
  await adapter.dispose();
});

test('sessions leave no fds behind on either side', async () => {
  const adapter = await connectVhostUserAdapter({ socketPath });
  await withSession(adapter, SETUP, async (s) => s.initialise((o) => o));
  // The baseline is taken once the back-end has closed the warm-up session (and its count is steady).
  await allConnectionsEnded();
  let theirsBefore = openFdCount(server.pid!);
  for (let steady = 0, i = 0; steady < 5 && i < 150; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const now = openFdCount(server.pid!);
    steady = now === theirsBefore ? steady + 1 : 0;
    theirsBefore = now;
  }
  const oursBefore = openFdCount();
  for (let i = 0; i < 20; i++)
    await withSession(adapter, SETUP, async (s) => {
      await s.initialise((o) => o);
      await s.submit({ readable: [request(VIRTIO_MEM_REQ_PLUG, i)], writableSizes: [10] });
    });
  await adapter.dispose();
  // Both sides notice hang-ups on their event loops (and a loaded machine is slow): poll a while.
  await allConnectionsEnded();
  for (let i = 0; i < 500 && (openFdCount() !== oursBefore || openFdCount(server.pid!) !== theirsBefore); i++)
    await new Promise((r) => setTimeout(r, 20));
  expect({ ours: openFdCount(), theirs: openFdCount(server.pid!) }).toEqual({ ours: oursBefore, theirs: theirsBefore });
});

test('a second server on a live socket is refused (exit 2); a stale socket file is replaced', async () => {
  const again = cli('serve-vhost-user', '--socket', socketPath);
  expect(again.code).toBe(2);
  expect(again.err).toMatch(/another back-end is already serving this socket/);
  const stale = path.join(dir, 'stale.sock');
  const first = await serve(stale);
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  expect(fs.existsSync(stale)).toBe(true);
  const second = await serve(stale);
  expect(await stop(second)).toBe(0);
});

test('a back-end that dies mid-run gives error verdicts, and the run ends (exit 2 or 1)', async () => {
  const doomed = path.join(dir, 'doomed.sock');
  const child = await serve(doomed);
  // Connection 1 is the adapter's probe; connection 2 is the first vector's session, so the run is under way.
  const underWay = logged(child, /^serve-vhost-user: connection 2: opened$/m);
  const run = spawn(
    process.execPath,
    [
      CLI,
      'run',
      '--adapter',
      'vhost-user',
      '--socket',
      doomed,
      '--target',
      'device',
      '--json',
      path.join(dir, 'doomed.json'),
    ],
    { stdio: 'ignore' },
  );
  try {
    await underWay;
  } finally {
    child.kill('SIGKILL');
  }
  const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
  expect([1, 2]).toContain(code);
  const doc = JSON.parse(fs.readFileSync(path.join(dir, 'doomed.json'), 'utf8')) as { results: { verdict: string }[] };
  expect(doc.results.some((r) => r.verdict === 'error')).toBe(true);
  expect(doc.results.length).toBe(deviceVectors().length);
});

test('a back-end that stops answering gives timeout verdicts and the run goes on', async () => {
  const frozen = path.join(dir, 'frozen.sock');
  const child = await serve(frozen);
  // The probe at connect is answered by a running back-end, so the bound must hold on a loaded
  // machine too; once stopped, each vector waits it out once.
  const adapter = await connectVhostUserAdapter({ socketPath: frozen, replyTimeoutMs: FROZEN_REPLY_TIMEOUT_MS });
  child.kill('SIGSTOP');
  try {
    const vectors = deviceVectors()
      .filter((v) => v.id.startsWith('vmem.dev.plug.'))
      .slice(0, 2);
    const run = await runVectors(adapter, vectors, vectors, {});
    expect(run.results.map((r) => r.verdict)).toEqual(['timeout', 'timeout']);
  } finally {
    child.kill('SIGCONT');
    await adapter.dispose();
    await stop(child);
  }
});
