import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEVICE_PROFILES } from '../../../model/src/device/profiles';
import { loadExpectations } from '../runner/expectations';
import { main } from './main';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-write-exp-cli-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('vmemct run --write-expectations', () => {
  test.each(Object.keys(DEVICE_PROFILES).filter((p) => p !== 'spec'))(
    'round trip on the %s profile: the written file makes the rerun exit 0',
    async (profile) => {
      const file = path.join(dir, `${profile}.yaml`);
      const written = await cli('run', '--profile', profile, '--write-expectations', file, '--quiet');
      // The profile deviates somewhere: the file lists it.
      expect(loadExpectations(file).set!.entries.length).toBeGreaterThan(0);
      expect(written.err).toMatch(
        new RegExp(`wrote ${file.replace(/[.]/g, '\\.')}: \\d+ entries; \\d+ added, 0 changed, 0 removed, 0 kept`),
      );
      const again = await cli('run', '--profile', profile, '--expectations', file, '--quiet');
      expect(again.err).toBe('');
      expect(again.code).toBe(0);
      // Rewriting from a green run changes nothing, byte for byte.
      const text = fs.readFileSync(file, 'utf8');
      const rewrite = await cli('run', '--profile', profile, '--expectations', file, '--write-expectations', file);
      expect(rewrite.code).toBe(0);
      expect(rewrite.err).toContain('0 added, 0 changed, 0 removed');
      expect(fs.readFileSync(file, 'utf8')).toBe(text);
    },
  );

  test('the shipped firecracker file is updated: reasons kept, the results it lacked added, the run green after', async () => {
    const file = path.join(dir, 'shipped-firecracker.yaml');
    fs.copyFileSync(path.join(__dirname, '../../expectations/model-firecracker.yaml'), file);
    const before = loadExpectations(file).set!;
    const r = await cli('run', '--profile', 'firecracker', '--write-expectations', file, '--quiet');
    expect(r.err).toMatch(/\d+ added, 0 changed, 0 removed, \d+ kept/);
    const after = loadExpectations(file).set!;
    for (const e of before.entries) {
      const same = after.entries.find((a) => a.pattern === e.pattern)!;
      expect([same.verdict, same.reason, same.link]).toEqual([e.verdict, e.reason, e.link]);
    }
    expect((await cli('run', '--profile', 'firecracker', '--expectations', file, '--quiet')).code).toBe(0);
  });

  test('a fixed deviation is removed and a new one marked, with the summary naming both', async () => {
    const file = path.join(dir, 'moved.yaml');
    fs.writeFileSync(
      file,
      `format: vmemct-expectations/1
implementation: model:spec
entries:
  - id: vmem.dev.plug.over-budget
    verdict: acceptable
    reason: a verdict that moved since
  - id: vmem.dev.plug.ack-first-block
    verdict: fail
    reason: the old bug, since fixed
`,
    );
    const filters = ['--filter', 'vmem.dev.plug.over-budget', '--filter', 'vmem.dev.plug.ack-first-block'];
    // The firecracker profile answers the first differently, and passes the second.
    const r = await cli('run', '--profile', 'firecracker', ...filters, '--write-expectations', file, '--quiet');
    expect(r.err).toMatch(/1 entries; 0 added, 1 changed, 1 removed, 0 kept/);
    expect(r.err).toMatch(/~ vmem\.dev\.plug\.over-budget: acceptable -> [a-z-]+ \(reason marked for review\)/);
    expect(r.err).toContain('  - vmem.dev.plug.ack-first-block');
    expect(fs.readFileSync(file, 'utf8')).toMatch(/reason: "TODO: review, was acceptable: a verdict that moved since"/);
    expect((await cli('run', '--profile', 'firecracker', ...filters, '--expectations', file)).code).toBe(0);
  });

  test('a bad existing file is refused before anything runs (exit 3, file and line)', async () => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(
      file,
      'format: vmemct-expectations/1\nimplementation: x\nentries:\n  - id: a\n    verdict: nope\n',
    );
    const r = await cli('run', '--write-expectations', file);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`bad.yaml:5`);
  });
});
