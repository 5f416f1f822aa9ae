import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';
import { parseSize } from './guest-commands';
import { parseQmpAddress, parseSshTarget } from './adapter-options';
import { GuestState, runArguments } from '../../../adapters/ssh-guest/src/guest-vm';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe('ssh-guest options', () => {
  it('parses --ssh with default user and port', () => {
    expect(parseSshTarget('guest')).toEqual({ user: 'root', host: 'guest', port: 22 });
    expect(parseSshTarget('me@10.0.0.2:2222')).toEqual({ user: 'me', host: '10.0.0.2', port: 2222 });
    expect(() => parseSshTarget('root@host:99999')).toThrow(/\[user@\]host\[:port\]/);
    expect(() => parseSshTarget('-oProxyCommand=x')).toThrow(/\[user@\]host\[:port\]/);
  });

  it('parses --qmp as a socket path or a TCP address', () => {
    expect(parseQmpAddress('/run/qmp.sock')).toBe('/run/qmp.sock');
    expect(parseQmpAddress('unix:/run/qmp.sock')).toBe('/run/qmp.sock');
    expect(parseQmpAddress('tcp:127.0.0.1:4444')).toEqual({ host: '127.0.0.1', port: 4444 });
    expect(() => parseQmpAddress('tcp:host')).toThrow(/tcp:HOST:PORT/);
  });

  it('asks for what the adapter needs, and refuses guest options with other adapters (exit 3)', async () => {
    const missing = await cli('run', '--adapter', 'ssh-guest', '--ssh', 'root@127.0.0.1:1');
    expect(missing.code).toBe(3);
    expect(missing.err).toMatch(/needs --qmp, --qemu-trace/);
    const stray = await cli('run', '--ssh', 'root@127.0.0.1');
    expect(stray.code).toBe(3);
    expect(stray.err).toMatch(/--ssh applies to --adapter ssh-guest only/);
    const strayGdb = await cli('run', '--gdb', '/run/gdb.sock');
    expect(strayGdb.code).toBe(3);
    expect(strayGdb.err).toMatch(/--gdb applies to --adapter ssh-guest only/);
    const strayIcount = await cli('run', '--icount');
    expect(strayIcount.code).toBe(3);
    expect(strayIcount.err).toMatch(/--icount applies to --adapter ssh-guest --target driver/);
    const upOnly = await cli('guest', 'down', '--icount');
    expect(upOnly.code).toBe(3);
    expect(upOnly.err).toMatch(/--icount applies to guest up only/);
  });

  it('points the adapter at the gdbstub of a guest booted with one, and only then', () => {
    const state = {
      sshUser: 'root',
      sshHost: '127.0.0.1',
      sshPort: 2222,
      sshKey: '/g/id_ed25519',
      knownHosts: '/g/run/known_hosts',
      qmpSocket: '/g/run/qmp.sock',
      traceLog: '/g/run/trace.log',
    } as GuestState;
    expect(runArguments({ ...state, gdbSocket: '/g/run/gdb.sock' }).join(' ')).toMatch(/ --gdb \/g\/run\/gdb\.sock$/);
    expect(runArguments(state)).not.toContain('--gdb');
    // A guest booted with icount tells the adapter so.
    expect(runArguments({ ...state, icount: true }).join(' ')).toMatch(/ --icount$/);
    expect(runArguments(state)).not.toContain('--icount');
  });

  it('--boot-guest goes with --adapter ssh-guest and no guest address; a guest not built is exit 2', async () => {
    const other = await cli('run', '--adapter', 'qemu', '--boot-guest');
    expect(other.code).toBe(3);
    expect(other.err).toMatch(/--boot-guest applies to --adapter ssh-guest only/);
    const driver = await cli('run', '--adapter', 'ssh-guest', '--target', 'driver', '--boot-guest', '--gdb', '/g.sock');
    expect(driver.code).toBe(3);
    expect(driver.err).toMatch(/--boot-guest boots the guest itself; --gdb is for a guest already running/);
    const both = await cli('run', '--adapter', 'ssh-guest', '--target', 'device', '--boot-guest', '--qmp', '/q.sock');
    expect(both.code).toBe(3);
    expect(both.err).toMatch(/--boot-guest boots the guest itself; --qmp is for a guest already running/);
    const saved = process.env.VMEMCT_GUEST_DIR;
    process.env.VMEMCT_GUEST_DIR = path.join(os.tmpdir(), 'vmemct-no-guest-here');
    try {
      const unbuilt = await cli('run', '--adapter', 'ssh-guest', '--target', 'device', '--boot-guest');
      expect(unbuilt.code).toBe(2);
      expect(unbuilt.err).toMatch(/no guest in .*vmemct-no-guest-here.*vmemct guest build/);
      const unbuiltDriver = await cli('run', '--adapter', 'ssh-guest', '--target', 'driver', '--boot-guest');
      expect(unbuiltDriver.code).toBe(2);
      expect(unbuiltDriver.err).toMatch(/no guest in .*vmemct-no-guest-here.*vmemct guest build/);
    } finally {
      if (saved === undefined) delete process.env.VMEMCT_GUEST_DIR;
      else process.env.VMEMCT_GUEST_DIR = saved;
    }
  });

  it('reports an unreachable QMP as a harness error (exit 2) naming the socket and the QEMU option', async () => {
    const r = await cli(
      'run',
      '--target',
      'driver',
      '--adapter',
      'ssh-guest',
      '--ssh',
      'root@127.0.0.1:1',
      '--qmp',
      '/nonexistent/qmp.sock',
      '--qemu-trace',
      '/nonexistent/trace.log',
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/QMP unreachable at \/nonexistent\/qmp\.sock.*-qmp unix:PATH,server=on,wait=off/);
  });
});

describe('vmemct guest', () => {
  it('parses sizes with binary units', () => {
    expect(parseSize('guest up', 'block-size', '2MiB')).toBe(2n << 20n);
    expect(parseSize('guest up', 'region-size', '1G')).toBe(1n << 30n);
    expect(parseSize('guest up', 'region-size', '0x1000')).toBe(4096n);
    expect(() => parseSize('guest up', 'region-size', 'lots')).toThrow(/--region-size must be a size/);
  });

  it('rejects unknown subcommands and up-only options elsewhere (exit 3)', async () => {
    expect((await cli('guest')).code).toBe(3);
    expect((await cli('guest', 'reboot')).err).toMatch(/expected build, up, down or status/);
    expect((await cli('guest', 'down', '--block-size', '2MiB')).err).toMatch(/--block-size applies to guest up only/);
  });

  it('says so when there is no guest to end, report or boot', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-guest-cli-'));
    try {
      const down = await cli('guest', 'down', '--dir', dir);
      expect(down.code).toBe(0);
      expect(down.out).toMatch(/no guest was running/);
      const status = await cli('guest', 'status', '--dir', dir);
      expect(status.code).toBe(1);
      expect(status.out).toMatch(/no guest running/);
      const up = await cli('guest', 'up', '--dir', dir);
      expect(up.code).toBe(2);
      expect(up.err).toMatch(/no guest in .*guest build/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
