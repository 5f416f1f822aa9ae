import { ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRequest } from '../../../model/src/index';
import { VIRTIO_MEM_REQ_PLUG, encodeHex } from '../../../spec/src/index';
import { SuiteClient } from '../test/suite-client';
import { transpiledCli } from '../test/transpiled-cli';

const WIRE_SETUP = {
  block_size: '0x200000',
  region_size: '0x8000000',
  addr: '0x100000000',
  requested_size: '0x1000000',
  node_id: 0,
  plugged: [],
};
const PLUG_4_BLOCKS = encodeHex(encodeRequest({ type: VIRTIO_MEM_REQ_PLUG, addr: 1n << 32n, nb_blocks: 4 }));

let cli: ReturnType<typeof transpiledCli>;
let dir: string;
beforeAll(() => {
  cli = transpiledCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-harness-'));
}, 60_000);
afterAll(() => {
  cli.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Children and sockets a test leaves behind when it fails half-way are ended after it. */
const leftovers: { destroy(): void }[] = [];
afterEach(() => {
  for (const l of leftovers.splice(0)) l.destroy();
});

function start(...args: string[]): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [cli.bin, 'serve-harness', ...args], { stdio: 'pipe' });
  leftovers.push({ destroy: () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL') });
  return child;
}

function exited(
  child: ChildProcessWithoutNullStreams,
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (t: string) => (stderr += t));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
}

/** Resolves with the first line the child prints on stdout. */
function firstLine(child: ChildProcessWithoutNullStreams): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    const onData = (t: string): void => {
      out += t;
      if (out.includes('\n')) {
        child.stdout.off('data', onData);
        resolve(out.slice(0, out.indexOf('\n')));
      }
    };
    child.stdout.on('data', onData);
  });
}

/** A device session: open, handshake, one PLUG; returns the PLUG's reply. */
async function deviceSession(client: SuiteClient): Promise<Record<string, unknown>> {
  expect(await client.read()).toMatchObject({ hello: 'vmemct-harness/1', implementation: 'model:spec' });
  expect((await client.send('open_device', { setup: WIRE_SETUP })).reply).toEqual({ id: 1, ok: true });
  const init = await client.send('initialise', {}, (call) => ({ features: call.offered }));
  expect(init.reply).toMatchObject({ ok: true, features_ok: true, status: 15 });
  const { reply } = await client.send('submit', { readable: [PLUG_4_BLOCKS], writable: ['ab'.repeat(10)] });
  return reply;
}

describe('serve-harness as a child process over pipes', () => {
  test('hello, a device session, malformed input, shutdown; exits 0 when its input ends', async () => {
    const child = start();
    const done = exited(child);
    const client = new SuiteClient(child.stdout, child.stdin);
    expect(await deviceSession(client)).toEqual({ id: 3, ok: true, used: true, length: 10, written: '0'.repeat(20) });
    client.writeLine('{"id":5,"op":"resize","requested_size":true}');
    expect(await client.read()).toMatchObject({ id: 5, ok: false, error: expect.stringMatching(/requested_size/) });
    expect((await client.send('shutdown')).reply).toMatchObject({ ok: true });
    child.stdin.end();
    const end = await done;
    expect(end.code).toBe(0);
    expect(end.stderr).toMatch(/serve-harness: refused a command: .*requested_size/);
  });

  test('--quiet keeps stderr empty; a driver session; an unknown profile is bad usage (exit 3)', async () => {
    const child = start('--quiet', '--profile', 'qemu-7.2');
    const done = exited(child);
    const client = new SuiteClient(child.stdout, child.stdin);
    expect(await client.read()).toMatchObject({ implementation: 'model:qemu-7.2' });
    client.writeLine('not json');
    expect(await client.read()).toMatchObject({ id: null, ok: false });
    await client.send('open_driver', { setup: WIRE_SETUP });
    expect((await client.send('start', { offered: '0x1' })).reply).toMatchObject({ ok: true, accepted: '0x1' });
    const calls: string[] = [];
    const settle = await client.send('settle', { max_requests: 1, timeout_ms: 1000, config_changed: false }, (call) => {
      calls.push(call.call as string);
      return call.call === 'read_config'
        ? { config: '00'.repeat(56), config_changed: false }
        : { response: null, config_changed: false };
    });
    // An all-zero configuration (block_size 0) is not one the driver can use: it stops at once.
    expect(settle.reply).toMatchObject({ ok: true, settled: true, stop: expect.stringMatching(/^broken: /) });
    expect(calls).toEqual(['read_config']);
    child.stdin.end();
    expect(await done).toEqual({ code: 0, signal: null, stderr: '' });
    const bad = spawnSync(process.execPath, [cli.bin, 'serve-harness', '--profile', 'nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(3);
    expect(bad.stderr).toMatch(/serve-harness: unknown profile 'nope'/);
  });
});

describe('serve-harness --socket', () => {
  const connect = (socketPath: string): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const socket = net.connect(socketPath, () => resolve(socket));
      leftovers.push(socket);
      socket.once('error', reject);
    });

  test('replaces a stale socket file, says when it listens, one session per connection, removes the socket on SIGTERM', async () => {
    const socketPath = path.join(dir, 'h.sock');
    // A stale socket file: its server exited without removing it.
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.exit(0))`,
    ]);
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    const child = start('--socket', socketPath);
    const done = exited(child);
    expect(await firstLine(child)).toBe(`serving the model (model:spec) over vmemct-harness/1 on ${socketPath}`);
    const [a, b] = await Promise.all([connect(socketPath), connect(socketPath)]);
    const ca = new SuiteClient(a, a);
    const cb = new SuiteClient(b, b);
    const [ra, rb] = await Promise.all([deviceSession(ca), deviceSession(cb)]);
    // Two devices: each connection has its own.
    expect(ra).toMatchObject({ used: true, written: '0'.repeat(20) });
    expect(rb).toEqual(ra);
    // A second server on a live socket is refused (exit 2) and leaves it alone.
    const second = spawnSync(process.execPath, [cli.bin, 'serve-harness', '--socket', socketPath], {
      encoding: 'utf8',
    });
    expect(second.status).toBe(2);
    expect(second.stderr).toMatch(/another server answers on/);
    b.end();
    await ca.send('shutdown');
    child.kill('SIGTERM');
    const end = await done;
    expect(end).toMatchObject({ code: 0, signal: null });
    expect(fs.existsSync(socketPath)).toBe(false);
    a.destroy();
  });

  test('SIGINT with no connection: exits 0 and removes the socket; a path that is not a socket is refused', async () => {
    const socketPath = path.join(dir, 'i.sock');
    const child = start('--socket', socketPath, '--quiet');
    const done = exited(child);
    await firstLine(child);
    child.kill('SIGINT');
    expect(await done).toEqual({ code: 0, signal: null, stderr: '' });
    expect(fs.existsSync(socketPath)).toBe(false);
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, 'keep me');
    const refused = spawnSync(process.execPath, [cli.bin, 'serve-harness', '--socket', file], { encoding: 'utf8' });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/exists and is not a socket/);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
  });
});
