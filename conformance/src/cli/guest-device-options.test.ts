import { main } from './main';

async function cli(...argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await main(argv, { stdout: () => undefined, stderr: (t) => (err += t) });
  return { code, err };
}

const DEVICE = ['run', '--adapter', 'ssh-guest', '--target', 'device'];

describe('vmemct run --adapter ssh-guest --target device: options (checked before any connection)', () => {
  test.each([
    [[], /--target device needs --ssh/],
    [['--ssh', 'root@127.0.0.1:1', '--qmp', '/tmp/q', '--host-control', 'h.yaml'], /two ways to reach the host/],
    [['--ssh', 'root@127.0.0.1:1', '--qemu-trace', 't.log'], /--qemu-trace is for driver vectors/],
    [['--ssh', 'root@127.0.0.1:1', '--gdb', '/tmp/gdb.sock'], /--gdb is for driver vectors/],
  ])('%j → usage error (exit 3)', async (args, message) => {
    const r = await cli(...DEVICE, ...args);
    expect(r.err).toMatch(message);
    expect(r.code).toBe(3);
  });

  test('--host-control on the driver target is a usage error', async () => {
    const r = await cli('run', '--adapter', 'ssh-guest', '--ssh', 'root@127.0.0.1:1', '--host-control', 'h.yaml');
    expect(r.err).toMatch(/--host-control FILE goes with --adapter ssh-guest --target device/);
    expect(r.code).toBe(3);
  });
});
