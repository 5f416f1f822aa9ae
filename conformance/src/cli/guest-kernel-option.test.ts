import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';
import { defaultGuestDir } from './guest-commands';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe('vmemct guest --kernel', () => {
  const saved = { dir: process.env.VMEMCT_GUEST_DIR, cache: process.env.XDG_CACHE_HOME };
  afterEach(() => {
    for (const [key, value] of [
      ['VMEMCT_GUEST_DIR', saved.dir],
      ['XDG_CACHE_HOME', saved.cache],
    ] as const)
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
  });

  it('gives each kernel its own default folder, 6.1 keeping the one it had', () => {
    delete process.env.VMEMCT_GUEST_DIR;
    process.env.XDG_CACHE_HOME = '/cache';
    expect(defaultGuestDir()).toBe(path.join('/cache', 'vmemct', 'guest'));
    expect(defaultGuestDir('6.1')).toBe(path.join('/cache', 'vmemct', 'guest'));
    expect(defaultGuestDir('6.12')).toBe(path.join('/cache', 'vmemct', 'guest-6.12'));
    expect(defaultGuestDir('7.x')).toBe(path.join('/cache', 'vmemct', 'guest-7.x'));
    process.env.VMEMCT_GUEST_DIR = '/guests/g';
    expect(defaultGuestDir('6.1')).toBe('/guests/g');
    expect(defaultGuestDir('6.12')).toBe('/guests/g-6.12');
  });

  it('refuses an unknown kernel with the choices (exit 3)', async () => {
    const r = await cli('guest', 'build', '--kernel', '5.10');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/guest build: --kernel must be one of 6\.1, 6\.12, 7\.x \(got '5\.10'\)/);
  });

  it("looks for a 6.12 guest in 6.12's folder, not in 6.1's", async () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-kernel-cli-'));
    try {
      delete process.env.VMEMCT_GUEST_DIR;
      process.env.XDG_CACHE_HOME = cache;
      const r = await cli('guest', 'up', '--kernel', '6.12');
      expect(r.code).not.toBe(0);
      expect(r.err).toContain(`no guest in ${path.join(cache, 'vmemct', 'guest-6.12')}`);
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });
});
