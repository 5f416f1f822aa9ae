import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';

async function cli(env: NodeJS.ProcessEnv | undefined, ...argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const saved = process.env.XDG_CACHE_HOME;
  if (env?.XDG_CACHE_HOME !== undefined) process.env.XDG_CACHE_HOME = env.XDG_CACHE_HOME;
  try {
    const code = await main(argv, { stdout: () => undefined, stderr: (t) => (err += t) });
    return { code, err };
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
  }
}

describe('guest up --qemu-version (the guest under a fetched QEMU, e.g. 10.0 for PERSISTENT_SUSPEND)', () => {
  it('is for guest up only, and not together with --qemu', async () => {
    const down = await cli(undefined, 'guest', 'down', '--qemu-version', '10.0');
    expect(down).toMatchObject({ code: 3, err: expect.stringMatching(/--qemu-version applies to guest up only/) });
    const both = await cli(undefined, 'guest', 'up', '--qemu', '/usr/bin/qemu-system-x86_64', '--qemu-version', '10.0');
    expect(both).toMatchObject({
      code: 3,
      err: expect.stringMatching(/--qemu PATH or --qemu-version SERIES, not both/),
    });
  });

  it('names `vmemct qemu fetch` when that QEMU was not fetched, before booting anything', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-cache-'));
    try {
      const r = await cli({ XDG_CACHE_HOME: empty }, 'guest', 'up', '--dir', empty, '--qemu-version', '10.0');
      expect(r).toMatchObject({
        code: 2,
        err: expect.stringMatching(/QEMU 10\.0 has not been fetched.*vmemct qemu fetch/),
      });
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
