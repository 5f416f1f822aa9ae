/**
 * `vmemct run` against devices that make no progress (dev.suite.1): the whole command — option
 * parsing, the run, the reports and the exit code — with the adapter swapped for a model device
 * with a deliberate bug (the CLI cannot name such a device, so `runCommand` is handed it).
 */
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { PROGRESS_DEVICE_MUTANTS } from '../../test/teeth/device-mutants-progress';
import type { CliIo } from './main';
import { main } from './main';
import { runCommand } from './run-commands';

async function runAgainst(
  mutant: (typeof PROGRESS_DEVICE_MUTANTS)[number] | undefined,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t) };
  const code = await runCommand(['--target', 'device', ...args], io, async () =>
    createModelAdapter(mutant?.adapter ?? {}),
  );
  return { code, out, err };
}

describe('vmemct run against a device that answers only BUSY', () => {
  test.each(PROGRESS_DEVICE_MUTANTS.map((m) => [m.name, m] as const))(
    '%s: exit 1, progress failures',
    async (_n, m) => {
      const r = await runAgainst(m);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/progress: the device made no progress: it answered BUSY 4 times in a row/);
      expect(r.out).toMatch(/dev\.suite\.1: A device that answers BUSY stops doing so/);
      expect(r.out).toMatch(/; exit 1\n$/);
    },
  );

  test('the same corpus on the unmodified model: exit 0', async () => {
    expect((await runAgainst(undefined)).code).toBe(0);
  });

  test('--busy-retries sets the bound the report states', async () => {
    const r = await runAgainst(PROGRESS_DEVICE_MUTANTS[0], '--busy-retries', '7', '--filter', 'vmem.dev.plug.*');
    expect(r.code).toBe(1);
    expect(r.out).toContain('it answered BUSY 8 times in a row (an unlisted BUSY is retried 7 times)');
  });

  test('--busy-retries 0 on the unmodified model fails the vectors whose injected BUSY must clear', async () => {
    const r = await runAgainst(undefined, '--busy-retries', '0', '--filter', 'vmem.dev.progress.*');
    expect(r.code).toBe(1);
    expect(r.out).toContain('it answered BUSY once in a row (an unlisted BUSY is retried 0 times)');
  });
});

describe('--busy-retries is validated', () => {
  test.each(['-1', '1001', 'x', '2.5', ''])("'%s' is a usage error (exit 3) naming the option", async (value) => {
    let err = '';
    const code = await main(['run', `--busy-retries=${value}`], { stdout: () => undefined, stderr: (t) => (err += t) });
    expect(code).toBe(3);
    expect(err).toContain(`--busy-retries must be an integer from 0 to 1000 (got '${value}')`);
  });
});
