import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './main';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(...argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('vmemct spec', () => {
  test('--json should list the 71 statements and the three layouts', async () => {
    const { code, stdout } = await run('spec', '--json');
    expect(code).toBe(0);
    const document = JSON.parse(stdout);
    expect(document.requirements).toHaveLength(71);
    expect(document.layouts.map((l: { structName: string; size: number }) => [l.structName, l.size])).toEqual([
      ['virtio_mem_config', 56],
      ['virtio_mem_req', 24],
      ['virtio_mem_resp', 10],
    ]);
    expect(document.pci).toEqual({ vendorId: '0x1af4', deviceId: '0x1058' });
    // Statements beyond §5.15 are listed apart; `requirements` stays §5.15's.
    expect(document.beyond.map((r: { id: string }) => r.id)).toContain('dev.virtio.6');
    expect(document.requirements.some((r: { id: string }) => r.id.startsWith('dev.virtio.'))).toBe(false);
  });

  test('should print readable tables by default', async () => {
    const { code, stdout } = await run('spec');
    expect(code).toBe(0);
    expect(stdout).toMatch(/virtio_mem_config \(56 bytes/);
    expect(stdout).toMatch(/dev\.plug\.3 +§5\.15\.6\.3\.2 +MUST/);
    expect(stdout).toMatch(/requirements: 71 \(50 device, 21 driver\)/);
    expect(stdout).toMatch(/beyond §5\.15: \d+/);
    expect(stdout).toMatch(/dev\.virtio\.6 +§4\.1\.4\.3\.1 +MUST/);
  });
});

describe('vmemct spec arguments', () => {
  test('an unknown option or argument is a usage error (exit 3)', async () => {
    const option = await run('spec', '--bogus');
    expect(option.code).toBe(3);
    expect(option.stderr).toContain("spec: unknown option '--bogus'");
    const argument = await run('spec', 'bogus');
    expect(argument.code).toBe(3);
    expect(argument.stderr).toContain("spec: unexpected argument 'bogus'");
  });
});

describe('vmemct encode / decode', () => {
  test('should round-trip a PLUG request given with units and names', async () => {
    const encoded = await run('encode', 'request', 'type=PLUG', 'addr=4GiB', 'nb_blocks=0x10');
    expect(encoded).toEqual({
      code: 0,
      stdout: '0000' + '000000000000' + '0000000001000000' + '1000' + '000000000000\n',
      stderr: '',
    });
    const decoded = await run('decode', 'request', encoded.stdout.trim());
    expect(JSON.parse(decoded.stdout)).toMatchObject({
      fields: { type: 0, addr: '0x100000000', nb_blocks: 16 },
      names: { type: 'PLUG' },
    });
  });

  test('should round-trip a configuration: decode output feeds encode', async () => {
    const bytes = (
      await run(
        'encode',
        'config',
        'block_size=2MiB',
        'addr=0x100000000',
        'region_size=16GiB',
        'usable_region_size=1280MiB',
        'requested_size=1GiB',
        'node_id=1',
      )
    ).stdout.trim();
    expect(bytes).toHaveLength(112);
    const { fields } = JSON.parse((await run('decode', 'config', bytes)).stdout);
    const again = await run('encode', 'config', ...Object.entries(fields).map(([k, v]) => `${k}=${v}`));
    expect(again.stdout.trim()).toBe(bytes);
  });

  test('should decode an ACK(MIXED) response with spaced hex and report nonzero padding', async () => {
    const { code, stdout } = await run('decode', 'response', '0000 0100 0000 0000 0200');
    expect(code).toBe(0);
    const document = JSON.parse(stdout);
    expect(document.names).toEqual({ type: 'ACK', state: 'MIXED' });
    expect(document.nonzero_padding).toEqual([{ field: 'padding', offset: 2, bytes: '0x010000000000' }]);
  });

  test.each([
    [['decode', 'request', '00'], /too short for virtio_mem_req: 1 bytes, need 24/],
    [['decode', 'response', '000'], /odd number of hex digits/],
    [['decode', 'response', 'zz00000000000000000000'], /not hex: unexpected 'z'/],
    [['decode', 'request'], /missing hex input/],
    [['decode', 'bogus', '00'], /unknown structure 'bogus'/],
    [['encode', 'request', 'flavour=3'], /request has no field 'flavour'; fields: type, padding/],
    [['encode', 'request', 'nb_blocks=65536'], /request\.nb_blocks = 65536 is out of range; allowed 0\.\.65535/],
    [['encode', 'config', 'block_size=-1'], /config\.block_size: '-1' is not a number/],
    [['encode', 'config', 'block_size=3XB'], /unknown unit 'XB'/],
    [['encode', 'config', 'addr=0x10000000000000000'], /out of range/],
    [['encode', 'request', 'padding=0x01'], /must be 6 bytes of hex/],
    [['encode', 'request', 'type=1', 'type=2'], /given twice/],
    [['encode', 'request', 'nonsense'], /is not FIELD=VALUE/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('%j should exit 3 with one line naming the problem', async (argv, message) => {
    const result = await run(...argv);
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  test('no arguments should print help and exit 3; --help exits 0', async () => {
    expect((await run()).code).toBe(3);
    const help = await run('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/exit codes: 0 ok/);
  });
});

describe('the vmemct executable', () => {
  const root = path.resolve(__dirname, '../../..');
  // Compiled into a scratch tree, not the repository's dist/: the slow suites run beside this one
  // read (and rebuild) dist/, and a compile under their feet would tear it.
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-bin-'));
  const bin = path.join(scratch, 'conformance/bin/vmemct.js');

  beforeAll(() => {
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    fs.copyFileSync(path.join(root, 'conformance/bin/vmemct.js'), bin);
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(scratch, 'node_modules'));
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', path.join(scratch, 'dist')], {
      cwd: root,
      stdio: 'ignore',
    });
  }, 120_000);

  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  test('should run the compiled CLI and pass the exit code through', () => {
    const ok = spawnSync(process.execPath, [bin, 'encode', 'response', 'type=ERROR'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe('03000000000000000000\n');
    const bad = spawnSync(process.execPath, [bin, 'decode', 'request', '0'], { encoding: 'utf8' });
    expect(bad.status).toBe(3);
    expect(bad.stderr).toBe('vmemct: input has an odd number of hex digits (1); each byte needs two\n');
  });

  test('a reader that goes away early ends the output quietly (no EPIPE stack trace)', () => {
    // `vmemct spec | true`: the reader has exited before vmemct writes, so the write fails with EPIPE.
    const piped = spawnSync('bash', ['-c', `"${process.execPath}" "${bin}" spec | true; echo \${PIPESTATUS[0]}`], {
      encoding: 'utf8',
    });
    expect(piped.stderr).toBe('');
    expect(piped.stdout.trim()).toBe('0');
  });
});
