/**
 * `vmemct help`, `vmemct COMMAND --help`, did-you-mean for unknown commands and options, and
 * `vmemct --version`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { asksForHelp, COMMAND_HELP, CommandName, optionHelp } from './command-help';
import { editDistance, nearest } from './args';
import { COMMAND_NAMES, HELP, main } from './main';
import { corpusDigest, CORPUS_VERSION } from './version-command';

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

const COMMANDS = Object.keys(COMMAND_HELP) as CommandName[];

/** Arguments a command needs before its options (a subcommand). */
const LEAD: Partial<Record<CommandName, string[]>> = { guest: ['status'], qemu: ['fetch'] };

describe('vmemct help', () => {
  test('every command the CLI runs has help, and help describes no command the CLI lacks', () => {
    expect([...COMMANDS].sort()).toEqual([...COMMAND_NAMES].sort());
  });

  test.each(COMMANDS)('%s: help COMMAND, COMMAND --help and COMMAND -h print the same text, exit 0', async (name) => {
    const viaHelp = await run('help', name);
    expect(viaHelp).toMatchObject({ code: 0, stderr: '' });
    expect(viaHelp.stdout).toMatch(new RegExp(`^usage: vmemct ${name} `));
    expect(viaHelp.stdout).toContain(COMMAND_HELP[name].summary);
    for (const flag of ['--help', '-h']) {
      const direct = await run(name, ...(LEAD[name] ?? []), flag);
      expect(direct).toEqual(viaHelp);
    }
  });

  test.each(COMMANDS)('%s: every option the command parses is listed with a description', async (name) => {
    const specs = await COMMAND_HELP[name].options();
    const text = (await run('help', name)).stdout;
    for (const [option, spec] of Object.entries(specs)) {
      const described = optionHelp(name, option);
      expect(described?.text).toBeTruthy();
      expect(Boolean(described?.placeholder)).toBe(spec.kind !== 'flag');
      const line = text.split('\n').findIndex((l) => l.startsWith(`  --${option}`) && /^ {2}--\S+( |$)/.test(l));
      expect(line).toBeGreaterThanOrEqual(0);
      expect(
        text
          .split('\n')
          .slice(line, line + 2)
          .join('\n'),
      ).toContain(described!.text);
    }
  });

  test.each(COMMANDS)('%s: the overview (vmemct --help) names the command and each of its options', async (name) => {
    expect(HELP).toContain(`vmemct ${name}`);
    for (const option of Object.keys(await COMMAND_HELP[name].options())) expect(HELP).toContain(`--${option}`);
  });

  test('run --help lists the run options (and no option of another command)', async () => {
    const text = (await run('run', '--help')).stdout;
    expect(text).toMatch(/^ {2}--expectations FILE +known results of the implementation/m);
    expect(text).toMatch(/^ {2}--filter GLOB … +vector ids matching GLOB/m);
    expect(text).toMatch(/^ {2}--strict +SHOULD-level/m);
    expect(text).not.toContain('--ops-per-vector');
  });

  test('help with no command prints the overview, exit 0; an unknown one is exit 3 with a suggestion', async () => {
    expect(await run('help')).toEqual({ code: 0, stdout: HELP, stderr: '' });
    const wrong = await run('help', 'fuz');
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain("unknown command 'fuz'; did you mean fuzz?");
  });

  test('-h as the value of an option is not a request for help', () => {
    const specs = { arg: { kind: 'list' }, strict: { kind: 'flag' } } as const;
    expect(asksForHelp(['--arg', '-h'], specs)).toBe(false);
    expect(asksForHelp(['--arg=-h'], specs)).toBe(false);
    expect(asksForHelp(['--strict', '-h'], specs)).toBe(true);
    expect(asksForHelp(['-h'], specs)).toBe(true);
    expect(asksForHelp(['--arg', 'x', '--help'], specs)).toBe(true);
  });
});

describe('did you mean', () => {
  test.each([
    [['run', '--expectation', 'x.yaml'], 'run', 'expectations'],
    [['run', '--expecations=x.yaml'], 'run', 'expectations'],
    [['run', '--filtr', 'x'], 'run', 'filter'],
    [['run', '--stirct'], 'run', 'strict'],
    [['list', '--tga', 'x'], 'list', 'tag'],
    [['fuzz', '--budgte', '3'], 'fuzz', 'budget'],
    [['record', '--ops-per-vectors', '3'], 'record', 'ops-per-vector'],
    [['guest', 'status', '--dri', 'x'], 'guest status', 'dir'],
    [['docs', '--force-write'], 'docs', 'force'],
  ])('%j: exit 3, names the command (%s) and suggests --%s', async (argv, command, option) => {
    const r = await run(...argv);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    const name = argv.find((a) => a.startsWith('--'))!.split('=')[0];
    expect(r.stderr).toBe(
      `vmemct: ${command}: unknown option '${name}'; did you mean --${option}? (vmemct ${command.split(' ')[0]} --help lists the options)\n`,
    );
  });

  test.each(COMMANDS)('%s: a one-letter slip in its first option suggests that option', async (name) => {
    const options = Object.keys(await COMMAND_HELP[name].options());
    const first = options[0];
    if (first === undefined) {
      const r = await run(name, '--frob');
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`unknown option '--frob' (vmemct ${name} --help lists the options)`);
      return;
    }
    const slip = `${first}x`;
    const r = await run(name, ...(LEAD[name] ?? []), `--${slip}`);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`unknown option '--${slip}'; did you mean --${first}?`);
  });

  test('a mistyped subcommand of guest or qemu gets a suggestion, exit 3', async () => {
    expect(await run('guest', 'stauts')).toEqual({
      code: 3,
      stdout: '',
      stderr: "vmemct: guest: expected build, up, down or status (got 'stauts'); did you mean status?\n",
    });
    expect((await run('qemu', 'fetc')).stderr).toBe(
      "vmemct: qemu: expected fetch or expectations (got 'fetc'); did you mean fetch?\n",
    );
    expect((await run('guest', 'zzzzzz')).stderr).not.toContain('did you mean');
  });

  test('an option far from every valid one gets no suggestion', async () => {
    const r = await run('run', '--frobnicate');
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(`vmemct: run: unknown option '--frobnicate' (vmemct run --help lists the options)\n`);
  });

  test('unknown commands and top-level options', async () => {
    expect(await run('rnu')).toMatchObject({ code: 3, stdout: '' });
    expect((await run('rnu')).stderr).toMatch(/^vmemct: unknown command 'rnu'; did you mean run\? \(commands: run, /);
    expect((await run('vhost-user-chek')).stderr).toContain('did you mean vhost-user-check?');
    expect((await run('zzzzzz')).stderr).not.toContain('did you mean');
    expect(await run('--verison')).toEqual({
      code: 3,
      stdout: '',
      stderr: "vmemct: unknown option '--verison'; did you mean --version? (vmemct --help lists the options)\n",
    });
  });

  test('edit distance counts insertions, deletions, substitutions and swaps', () => {
    expect(editDistance('strict', 'strict')).toBe(0);
    expect(editDistance('stirct', 'strict')).toBe(1);
    expect(editDistance('filtr', 'filter')).toBe(1);
    expect(editDistance('tag', 'tga')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  test('nearest: only a close, unambiguous candidate', () => {
    expect(nearest('expectation', ['expectations', 'strict'])).toBe('expectations');
    expect(nearest('jsn', ['json', 'junit'])).toBe('json');
    expect(nearest('x', ['json', 'tag'])).toBeUndefined();
    expect(nearest('tap', ['tag', 'tab'])).toBeUndefined();
    expect(nearest('harness', ['harness-log', 'harness-timeout'])).toBeUndefined();
    expect(nearest('busy', ['busy-retries', 'strict'])).toBe('busy-retries');
    expect(nearest('frobnicate', ['filter', 'force'])).toBeUndefined();
    expect(nearest('force-write', ['filter', 'force'])).toBe('force');
    expect(nearest('ssh-keys-file', ['ssh', 'ssh-key'])).toBeUndefined();
  });
});

describe('vmemct --version', () => {
  test('names the package, corpus, spec and harness protocol versions; version --json holds the same', async () => {
    const text = await run('--version');
    expect(text.code).toBe(0);
    const json = await run('version', '--json');
    expect(json.code).toBe(0);
    const info = JSON.parse(json.stdout);
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
    expect(info.package).toBe(pkg.version);
    expect(info.corpus.version).toBe(CORPUS_VERSION);
    expect(info.corpus.digest).toMatch(/^[0-9a-f]{16}$/);
    expect(info.spec).toEqual({ virtio: '1.4', section: '5.15', requirements: 71, beyond: expect.any(Number) });
    expect(info.harnessProtocol).toBe('vmemct-harness/1');
    const listed = JSON.parse((await run('list', '--json')).stdout) as { file: string }[];
    expect(info.corpus.vectors).toBe(listed.length);
    expect(info.corpus.files).toBe(new Set(listed.map((v) => v.file)).size);
    expect(text.stdout).toBe(
      [
        `vmemct ${pkg.version}`,
        `corpus ${CORPUS_VERSION}: ${info.corpus.vectors} vectors in ${info.corpus.files} files, digest ${info.corpus.digest}`,
        `spec VIRTIO 1.4 §5.15: 71 requirements (+${info.spec.beyond} beyond the chapter)`,
        'harness protocol vmemct-harness/1',
        '',
      ].join('\n'),
    );
    expect(await run('version')).toEqual(text);
  });

  test('the corpus digest follows the files’ names and contents, not where the folder lies', () => {
    const make = (files: Record<string, string>): { dir: string; paths: string[] } => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-digest-'));
      const paths = Object.entries(files).map(([name, content]) => {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), content);
        return path.join(dir, name);
      });
      return { dir, paths };
    };
    const a = make({ 'device/a.yaml': 'x: 1\n', 'driver/b.yaml': 'y: 2\n' });
    const b = make({ 'driver/b.yaml': 'y: 2\n', 'device/a.yaml': 'x: 1\n' });
    const changed = make({ 'device/a.yaml': 'x: 2\n', 'driver/b.yaml': 'y: 2\n' });
    const renamed = make({ 'device/c.yaml': 'x: 1\n', 'driver/b.yaml': 'y: 2\n' });
    const digest = (m: { dir: string; paths: string[] }): string => corpusDigest(m.dir, m.paths);
    expect(digest(a)).toBe(digest({ dir: b.dir, paths: [...b.paths].reverse() }));
    expect(digest(changed)).not.toBe(digest(a));
    expect(digest(renamed)).not.toBe(digest(a));
    for (const m of [a, b, changed, renamed]) fs.rmSync(m.dir, { recursive: true });
  });

  test('version takes only --json', async () => {
    const r = await run('version', '--jsno');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('did you mean --json?');
  });
});
