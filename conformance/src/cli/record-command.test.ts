import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';
import { implementationSlug } from './record-command';

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('vmemct record', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-record-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('records a model profile, writes a file that lints and passes on that profile (exit 0)', async () => {
    const out = path.join(dir, 'qemu-profile.yaml');
    const recorded = await run(
      'record',
      '--profile',
      'qemu',
      '--ops',
      '250',
      '--seed',
      '9',
      '--ops-per-vector',
      '50',
      '--out',
      out,
    );
    expect(recorded.stderr).toBe('');
    expect(recorded.code).toBe(0);
    // The alias `qemu` names the profile it stands for.
    expect(recorded.stdout).toBe(`record: 250 operations of seed 9 from model:qemu-7.2 in 5 vectors: ${out}\n`);
    expect((await run('lint', out)).code).toBe(0);
    const replay = await run('run', '--profile', 'qemu', '--vectors', out);
    expect(replay.stdout).toMatch(/5 vectors: 5 pass; 0 unexpected/);
    expect(replay.code).toBe(0);
  });

  test('a device that answers as no conforming device does: the file is written, its answers listed, exit 1', async () => {
    const out = path.join(dir, 'ch.yaml');
    const recorded = await run('record', '--profile', 'cloud-hypervisor', '--ops', '400', '--seed', '11', '--out', out);
    expect(recorded.code).toBe(1);
    expect(fs.existsSync(out)).toBe(true);
    expect(recorded.stderr).toMatch(/no conforming device gives/);
    expect(recorded.stderr).toMatch(
      /ch\.yaml:\d+: steps\[\d+\]\.expect\.response: NACK is not something a conforming device answers here/,
    );
  });

  test.each([
    [['--ops', '10'], /--out FILE is required/],
    [['--out', 'x.yaml'], /--ops N is required/],
    [['--ops', '0', '--out', 'x.yaml'], /--ops must be a positive integer/],
    [['--ops', 'ten', '--out', 'x.yaml'], /--ops must be a positive integer/],
    [['--ops', '10', '--seed', '-1', '--out', 'x.yaml'], /--seed must be an integer from 0 to 4294967295/],
    [['--ops', '10', '--ops-per-vector', '0', '--out', 'x.yaml'], /--ops-per-vector must be a positive integer/],
    [
      ['--ops', '10', '--adapter', 'ssh-guest', '--out', 'x.yaml'],
      /unknown adapter 'ssh-guest' \(record from: model, qemu\)/,
    ],
    [['--ops', '10', '--adapter', 'qemu', '--profile', 'qemu', '--out', 'x.yaml'], /--profile selects a model profile/],
    [['--ops', '10', '--qemu', '/usr/bin/qemu', '--out', 'x.yaml'], /--qemu PATH applies to --adapter qemu only/],
    [['--ops', '10', '--profile', 'nope', '--out', 'x.yaml'], /unknown profile 'nope'/],
    [['--ops', '10', '--block-size', '3MiB', '--out', 'x.yaml'], /--block-size must be a power of two/],
    [
      ['--ops', '10', '--requested-size', '2GiB', '--out', 'x.yaml'],
      /--requested-size must be a multiple of --block-size up to --region-size/,
    ],
    [['--ops', '10', '--out', '/nonexistent-folder/x.yaml'], /the folder \/nonexistent-folder does not exist/],
    [['--ops', '10', '--out', 'x.yaml', 'extra'], /unexpected argument 'extra'/],
    [['--ops', '10', '--out', 'x.yaml', '--frobnicate'], /unknown option '--frobnicate'/],
  ])('%j is a usage error (exit 3)', async (args, message) => {
    const result = await run('record', ...args);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(message);
  });

  test('vector ids take a lower-case name from the implementation', () => {
    expect(implementationSlug('QEMU 7.2.22')).toBe('qemu-7-2-22');
    expect(implementationSlug('model:cloud-hypervisor')).toBe('model-cloud-hypervisor');
    expect(implementationSlug('***')).toBe('device');
  });
});
