import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { ALL_SCHEMAS, REQUIREMENTS } from '../../../spec/src/index';
import { main } from './main';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-cli-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const GOOD = `format: vmemct-vectors/1
vectors:
  - id: vmem.dev.test.plug-one
    title: PLUG of one block is acknowledged
    requirements: [dev.plug.6]
    target: device
    setup: {requested_size: 8MiB}
    steps:
      - request: {type: PLUG, addr: addr, nb_blocks: 1}
        expect: {response: ACK, config: {plugged_size: block_size}}
`;

describe('vmemct run (model adapter)', () => {
  test('the shipped corpus passes against the spec profile: exit 0, summary line last', async () => {
    const r = await cli('run');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^vmemct: \d+ vectors: .*; 0 unexpected; \d+ ms; exit 0$/);
  });

  test('the shipped corpus passes against the qemu profile', async () => {
    const r = await cli('run', '--profile', 'qemu');
    expect(r.code).toBe(0);
  });

  test.each(['cloud-hypervisor', 'firecracker'])(
    'the %s profile deviates, and its expectation file (strict both ways) makes the run green',
    async (profile) => {
      expect((await cli('run', '--profile', profile)).code).toBe(1);
      const r = await cli(
        'run',
        '--profile',
        profile,
        '--expectations',
        `conformance/expectations/model-${profile}.yaml`,
      );
      expect(r.out).toMatch(/; 0 unexpected; \d+ ms; exit 0\n$/);
      expect(r.code).toBe(0);
    },
  );

  test('a vector with a wrong expectation makes the run exit 1 and shows expected vs observed with the requirement text', async () => {
    const file = write('wrong.yaml', GOOD.replace('plugged_size: block_size', 'plugged_size: 2 * block_size'));
    const r = await cli('run', '--vectors', file);
    expect(r.code).toBe(1);
    expect(r.out).toContain('vmem.dev.test.plug-one');
    expect(r.out).toMatch(/expected: 2 \* block_size = 0x400000/);
    expect(r.out).toMatch(/observed: 0x200000/);
    expect(r.out).toContain('dev.plug.6: Once all covered blocks are plugged');
    expect(r.out).toContain(`${file}:3`);
  });

  test('a broken vector file exits 3 naming file and line, without a stack trace', async () => {
    const file = write('broken.yaml', GOOD.replace('expect: {response: ACK', 'expect: {reponse: ACK'));
    const r = await cli('run', '--vectors', file);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`broken.yaml:10: vectors[0].steps[0].expect.reponse: unknown field 'reponse'`);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  test('malformed YAML exits 3 with the line', async () => {
    const file = write('syntax.yaml', 'format: vmemct-vectors/1\nvectors:\n  - id: [unclosed\n');
    const r = await cli('run', '--vectors', file);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/syntax\.yaml:\d+: YAML:/);
  });

  test('unknown requirement IDs and bad expressions exit 3 with file:line', async () => {
    const file = write(
      'meaning.yaml',
      GOOD.replace('[dev.plug.6]', '[dev.plug.99]').replace('addr: addr,', 'addr: addr + bogus,'),
    );
    const r = await cli('run', '--vectors', file);
    expect(r.code).toBe(3);
    expect(r.err).toContain("meaning.yaml:5: vectors[0].requirements[0]: unknown requirement 'dev.plug.99'");
    expect(r.err).toMatch(/meaning\.yaml:9: vectors\[0\]\.steps\[0\]\.request\.addr: unknown name 'bogus'/);
  });

  test('--junit writes JUnit XML with one testcase per vector and --json writes a document valid against the results schema', async () => {
    const junit = path.join(dir, 'out', 'junit.xml');
    const json = path.join(dir, 'out', 'results.json');
    const file = write(
      'two.yaml',
      GOOD +
        GOOD.split('vectors:\n')[1]
          .replace('plug-one', 'plug-two')
          .replace('addr: addr,', 'addr: addr + block_size,')
          .replace('plugged_size: block_size', 'plugged_size: 0'),
    );
    const r = await cli('run', '--vectors', file, '--junit', junit, '--json', json);
    expect(r.code).toBe(1);
    const xml = fs.readFileSync(junit, 'utf8');
    expect(xml).toMatch(/^<\?xml/);
    expect(xml).toMatch(/<testsuites [^>]*tests="2"[^>]*failures="1"/);
    expect(xml).toContain('<testcase name="vmem.dev.test.plug-one"');
    expect(xml).toMatch(/<testcase name="vmem.dev.test.plug-two"[^>]*>\s*<failure/);
    const doc = JSON.parse(fs.readFileSync(json, 'utf8'));
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
    for (const s of ALL_SCHEMAS) ajv.addSchema(s);
    const validate = ajv.getSchema('https://vmemct.dev/schemas/results.json')!;
    expect(validate(doc)).toBe(true);
    expect(doc.exitCode).toBe(1);
    expect(doc.results.map((x: { id: string; status: string }) => `${x.id}:${x.status}`)).toEqual([
      'vmem.dev.test.plug-one:expected',
      'vmem.dev.test.plug-two:unexpected',
    ]);
  });

  test('--reporter tap prints TAP 13 with a plan and one point per vector', async () => {
    const file = write('tap.yaml', GOOD);
    const r = await cli('run', '--vectors', file, '--reporter', 'tap');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').slice(0, 3)).toEqual(['TAP version 13', '1..1', 'ok 1 - vmem.dev.test.plug-one']);
  });

  test('an expectation file turns a known failure into an expected result; a stale entry fails the run', async () => {
    const vectors = write('known.yaml', GOOD.replace('plugged_size: block_size', 'plugged_size: 0'));
    const known = write(
      'known-exp.yaml',
      'format: vmemct-expectations/1\nimplementation: test\nentries:\n  - id: vmem.dev.test.plug-one\n    verdict: fail\n    reason: the vector is deliberately wrong in this test\n',
    );
    expect((await cli('run', '--vectors', vectors, '--expectations', known)).code).toBe(0);
    const stale = write(
      'stale-exp.yaml',
      'format: vmemct-expectations/1\nimplementation: test\nentries:\n  - id: vmem.dev.test.nothing-here\n    verdict: fail\n    reason: refers to a vector that does not exist\n',
    );
    const r = await cli('run', '--vectors', vectors.replace('known', 'known'), '--expectations', stale);
    expect(r.code).toBe(1);
    expect(r.out).toContain('Stale expectations:');
  });

  test('run lints your own vectors: an expectation no conforming device could produce exits 3, not 1', async () => {
    const file = write('impossible.yaml', GOOD.replace('response: ACK', 'response: NACK'));
    const r = await cli('run', '--vectors', file);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(
      /impossible\.yaml:\d+: steps\[0\]\.expect\.response: NACK is not something a conforming device answers here/,
    );
  });

  test('an expectation no handler reads is refused by lint and run with exit 3, naming file:line and the key (issue 14)', async () => {
    const file = write(
      'silent.yaml',
      [
        'format: vmemct-vectors/1',
        'vectors:',
        '  - {id: vmem.dev.probe.a, title: impossible suspend expectation, requirements: [dev.op.8], target: device,',
        '     steps: [{suspend: true, expect: {suspend: refused}}]}',
        '  - {id: vmem.drv.probe.b, title: impossible read_config expectation, requirements: [drv.op.8], target: driver,',
        '     steps: [{start: true}, {read_config: true, expect: {notification: sent, needs_reset: true}}]}',
        '  - {id: vmem.drv.probe.c, title: impossible resize expectation, requirements: [drv.op.8], target: driver,',
        '     steps: [{start: true}, {resize: 64MiB, expect: {resize: refused, notification: none}}]}',
        '',
      ].join('\n'),
    );
    for (const argv of [
      ['lint', file],
      ['run', '--vectors', file],
    ]) {
      const r = await cli(...argv);
      expect(r.code).toBe(3);
      expect(r.err).toMatch(
        /silent\.yaml:4: vectors\[0\]\.steps\[0\]\.expect\.suspend: 'suspend' cannot be expected of a 'suspend' step/,
      );
      expect(r.err).toMatch(
        /silent\.yaml:6: vectors\[1\]\.steps\[1\]\.expect\.notification: 'notification' cannot be expected of a 'read_config' step/,
      );
      expect(r.err).toMatch(
        /silent\.yaml:6: vectors\[1\]\.steps\[1\]\.expect\.needs_reset: 'needs_reset' cannot be expected/,
      );
      expect(r.err).toMatch(
        /silent\.yaml:8: vectors\[2\]\.steps\[1\]\.expect\.resize: 'resize' cannot be expected of a 'resize' step/,
      );
      expect(r.err).toMatch(
        /silent\.yaml:8: vectors\[2\]\.steps\[1\]\.expect\.notification: 'notification' cannot be expected/,
      );
    }
  });

  test('an expectation file whose glob matches too many vectors, or whose entries overlap, exits 3 naming the line', async () => {
    const wide = write(
      'wide-exp.yaml',
      'format: vmemct-expectations/1\nimplementation: test\nentries:\n  - id: vmem.dev.**\n    verdict: fail\n    reason: far too broad a pattern for one entry\n',
    );
    const r = await cli('run', '--expectations', wide);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/wide-exp\.yaml:4: id: 'vmem\.dev\.\*\*' matches \d+ vectors, more than max_matches 20/);
    const overlap = write(
      'overlap-exp.yaml',
      'format: vmemct-expectations/1\nimplementation: test\nentries:\n  - id: vmem.dev.test.plug-one\n    verdict: fail\n    reason: first claim on this vector\n  - id: vmem.dev.test.*\n    verdict: pass\n    reason: second claim on the same vector\n',
    );
    const r2 = await cli('run', '--vectors', write('ov.yaml', GOOD), '--expectations', overlap);
    expect(r2.code).toBe(3);
    expect(r2.err).toContain(
      "overlap-exp.yaml:7: id: 'vmem.dev.test.*' matches vmem.dev.test.plug-one, already claimed by the entry at line 4",
    );
  });

  test('bad options are usage errors (exit 3)', async () => {
    expect((await cli('run', '--profile', 'nope')).code).toBe(3);
    expect((await cli('run', '--adapter', 'nope')).code).toBe(3);
    expect((await cli('run', '--shard', '3/2')).code).toBe(3);
    expect((await cli('run', '--bogus')).code).toBe(3);
    expect((await cli('run', '--filter', 'vmem.nothing.*')).code).toBe(3);
  });

  test('QEMU options: --profile is refused with --adapter qemu, --qemu without it; a missing QEMU exits 2 naming the package', async () => {
    const withProfile = await cli('run', '--adapter', 'qemu', '--profile', 'qemu');
    expect(withProfile.code).toBe(3);
    expect(withProfile.err).toMatch(/--profile selects a model profile/);
    expect((await cli('run', '--qemu', '/usr/bin/qemu-system-x86_64')).code).toBe(3);
    const missing = await cli('run', '--adapter', 'qemu', '--qemu', '/nonexistent/qemu-system-x86_64');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(
      /^vmemct: run: \/nonexistent\/qemu-system-x86_64 does not exist; install it with `apt-get install --no-install-recommends qemu-system-x86`/,
    );
    expect(missing.err).not.toMatch(/internal error/);
  });
});

describe('vmemct list, lint, coverage', () => {
  test('list prints id, target, requirements and tags', async () => {
    const r = await cli('list', '--vectors', write('list.yaml', GOOD));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^vmem\.dev\.test\.plug-one\s+device\s+dev\.plug\.6\s+\[\]$/m);
  });

  test('lint accepts the shipped corpus', async () => {
    const r = await cli('lint');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  test('lint rejects an expectation no conforming device could produce (NACK for UNPLUG)', async () => {
    const file = write(
      'lint.yaml',
      GOOD.replace('steps:', 'setup: {requested_size: 8MiB, plugged: [{first: 0, count: 1}]}\n    steps:')
        .replace('    setup: {requested_size: 8MiB}\n', '')
        .replace('type: PLUG', 'type: UNPLUG')
        .replace('response: ACK, config: {plugged_size: block_size}', 'response: NACK'),
    );
    const r = await cli('lint', file);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(
      /lint\.yaml:\d+: steps\[0\]\.expect\.response: NACK is not something a conforming device answers here/,
    );
  });

  test('coverage lists every requirement and exits 0 when every testable one is covered', async () => {
    const r = await cli('coverage');
    for (const req of REQUIREMENTS) expect(r.out).toContain(req.id);
    expect(r.out).not.toContain('NOT COVERED');
    expect(r.code).toBe(0);
  });

  test('coverage exits 1 and names what is missing when a testable requirement has no vector', async () => {
    const r = await cli('coverage', '--vectors', write('cov.yaml', GOOD));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/not covered: .*dev\.plug\.3/);
  });
});

describe('vmemct run with an expectation file of another implementation', () => {
  test('warns on stderr and still runs', async () => {
    const fc = path.join(__dirname, '..', '..', 'expectations', 'model-firecracker.yaml');
    const other = await cli('run', '--profile', 'firecracker', '--expectations', fc);
    expect(other.code).toBe(0);
    expect(other.err).not.toMatch(/warning/);
    const mixed = await cli('run', '--profile', 'spec', '--filter', 'vmem.dev.plug.*', '--expectations', fc);
    expect(mixed.err).toContain("describes 'model:firecracker', but the target is 'model:spec'");
  });
});

describe('vmemct docs', () => {
  test('writes the site for the corpus and a results file; needs --out; a bad results file is exit 3 naming it', async () => {
    const results = path.join(dir, 'model.json');
    expect((await cli('run', '--json', results)).code).toBe(0);
    const out = path.join(dir, 'site');
    const r = await cli('docs', '--out', out, '--results', results);
    expect(r.code).toBe(0);
    // The count is the site's own (one page per vector file, so it grows with the corpus).
    const written = fs
      .readdirSync(out, { recursive: true })
      .map(String)
      // The site's own marker file (.vmemct-docs) is not a page.
      .filter((f) => !path.basename(f).startsWith('.') && fs.statSync(path.join(out, f)).isFile());
    expect(r.out).toMatch(new RegExp(`^docs: ${written.length} files written to .*site; open .*index\\.html`));
    expect(fs.readFileSync(path.join(out, 'results.html'), 'utf8')).toContain(
      '<th data-col="model-spec">model:spec</th>',
    );
    expect(fs.existsSync(path.join(out, 'vectors', 'device-plug.html'))).toBe(true);
    // A page per requirement, with the results file's verdicts.
    expect(fs.readFileSync(path.join(out, 'requirements', 'dev.plug.3.html'), 'utf8')).toContain(
      '<a href="../results.html#impl=model-spec">model:spec</a>',
    );

    const noOut = await cli('docs');
    expect(noOut.code).toBe(3);
    expect(noOut.err).toMatch(/--out DIR is required/);
    const bad = write('bad-results.json', '[]');
    const badRun = await cli('docs', '--out', out, '--results', bad);
    expect(badRun.code).toBe(3);
    expect(badRun.err).toContain(`${bad}:1: not a vmemct results file`);
    const file = write('not-a-folder', 'x');
    const onFile = await cli('docs', '--out', path.join(file, 'site'));
    expect(onFile.code).toBe(3);
    expect(onFile.err).toContain(`${file} exists and is not a folder`);
  });
});
