import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe('vhost-user commands: usage (exit 3, before anything native is loaded)', () => {
  test('run --adapter vhost-user needs --socket; --socket needs that adapter', async () => {
    const missing = await cli('run', '--adapter', 'vhost-user');
    expect(missing.code).toBe(3);
    expect(missing.err).toMatch(/--adapter vhost-user needs --socket PATH/);
    const stray = await cli('run', '--socket', '/tmp/x.sock');
    expect(stray.code).toBe(3);
    expect(stray.err).toMatch(/--socket PATH applies to --adapter vhost-user and --adapter exec only/);
  });

  test('serve-vhost-user checks its options', async () => {
    expect((await cli('serve-vhost-user')).err).toMatch(/--socket PATH is required/);
    const size = await cli('serve-vhost-user', '--socket', '/tmp/x.sock', '--block-size', 'big');
    expect(size.code).toBe(3);
    expect(size.err).toMatch(/--block-size must be a size/);
    const over = await cli(
      'serve-vhost-user',
      '--socket',
      '/tmp/x.sock',
      '--region-size',
      '1GiB',
      '--requested-size',
      '2GiB',
    );
    expect(over.code).toBe(3);
    expect(over.err).toMatch(/--requested-size 2GiB exceeds --region-size 1GiB/);
    const profile = await cli('serve-vhost-user', '--socket', '/tmp/x.sock', '--profile', 'nope');
    expect(profile.err).toMatch(/unknown profile 'nope'/);
    const long = await cli('serve-vhost-user', '--socket', `/tmp/${'x'.repeat(120)}.sock`);
    expect(long.err).toMatch(/longer than the 107 bytes/);
  });

  test('vhost-user-ctl takes resize SIZE or status', async () => {
    expect((await cli('vhost-user-ctl', '--socket', '/tmp/x.sock')).err).toMatch(/'resize SIZE' or 'status'/);
    expect((await cli('vhost-user-ctl', '--socket', '/tmp/x.sock', 'resize')).err).toMatch(/resize needs a size/);
    const bad = await cli('vhost-user-ctl', '--socket', '/tmp/x.sock', 'resize', 'lots');
    expect(bad.code).toBe(3);
    expect(bad.err).toMatch(/must be a size/);
  });

  test('vhost-user-check checks its run options before connecting', async () => {
    const reporter = await cli('vhost-user-check', '--socket', '/tmp/x.sock', '--reporter', 'xml');
    expect(reporter.code).toBe(3);
    expect(reporter.err).toMatch(/--reporter must be human or tap/);
    const none = await cli('vhost-user-check', '--socket', '/tmp/x.sock', '--filter', 'vmem.*');
    expect(none.code).toBe(3);
    expect(none.err).toMatch(/the filters select no check \(checks: vu\.handshake, /);
    const missing = await cli('vhost-user-check', '--socket', '/tmp/x.sock', '--expectations', '/nonexistent/e.yaml');
    expect(missing.code).toBe(3);
    expect(missing.err).toMatch(/\/nonexistent\/e\.yaml/);
    const timeout = await cli('vhost-user-check', '--socket', '/tmp/x.sock', '--json', '--timeout', '0');
    expect(timeout.code).toBe(3);
    expect(timeout.err).toMatch(/--timeout must be a positive integer/);
  });

  test('an unreachable socket is a harness error (exit 2) naming the path', async () => {
    const r = await cli('run', '--adapter', 'vhost-user', '--socket', '/nonexistent/vmemct.sock', '--target', 'device');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/\/nonexistent\/vmemct\.sock|npm run build:native/);
  });
});

describe('vhost-user-check --backend-pid names the process that serves the socket', () => {
  let dir: string;
  let server: net.Server;
  let socketPath: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-pid-'));
    socketPath = path.join(dir, 'backend.sock');
    server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a process that does not exist is bad usage (exit 3), not a finding about the back-end', async () => {
    const r = await cli('vhost-user-check', '--socket', socketPath, '--backend-pid', '4194301');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/--backend-pid: no process 4194301/);
  });

  test('a live process that does not hold the socket is bad usage (exit 3)', async () => {
    const other = process.ppid;
    const r = await cli('vhost-user-check', '--socket', socketPath, '--backend-pid', String(other));
    expect(r.code).toBe(3);
    expect(r.err).toMatch(new RegExp(`process ${other} does not hold the socket`));
  });
});
