/**
 * The README's CI jobs, run here as pasted (`npm run test:ci`, after the Debian packages): each
 * marked job runs in a fresh, container-like directory — an empty HOME (npm starts with an empty
 * cache), a temporary workspace, CI=true — with a fresh clone of this repository in place of the
 * GitHub one (the job's tag made to point at the commit under test). GitHub `run:` steps run with
 * `bash -e`, a GitLab `script:` as one `bash -eo pipefail` script. The job must exit 0 and leave
 * the JUnit and JSON files it uploads. Stand-ins, printed as they happen: an apt step is skipped
 * when its packages are installed; the fork's `Build QEMU` step is a link to the installed QEMU,
 * and the fork's expectation file is written beforehand with `--write-expectations`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fetchJunitSchema, withoutExtensions, xmllint } from './junit-schema';
import { JobStep, ReadmeJob, aptPackages, readmeJobsOf, reportFiles } from './readme-jobs';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const jobs = readmeJobsOf(path.join(ROOT, 'README.md'));
const GITHUB_URL = 'https://github.com/vmemct/vmemct';

let scratch: string;
let origin: string;
let schema: string;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-ci-job-'));
  schema = fetchJunitSchema(scratch);
  // The repository as the job's clone source: a bare clone whose tags of every ref the jobs pin
  // point at the commit under test.
  origin = path.join(scratch, 'origin.git');
  sh(`git clone --quiet --bare ${q(ROOT)} ${q(origin)}`, scratch);
  const head = sh('git rev-parse HEAD', ROOT).trim();
  for (const ref of pinnedRefs()) sh(`git tag -f ${q(ref)} ${head}`, origin);
  log(`vmemct under test: commit ${head} (${sh('git log -1 --format=%s', ROOT).trim()})`);
  if (sh('git status --porcelain --untracked-files=no', ROOT).trim() !== '')
    log('note: the working tree has uncommitted changes; the jobs run the committed HEAD');
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function log(line: string): void {
  process.stderr.write(`ci-job: ${line}\n`);
}

/** Runs a helper command (not a job step); throws with its output when it fails. */
function sh(command: string, cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync('bash', ['-eo', 'pipefail', '-c', command], { cwd, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The refs (tags) the jobs check vmemct out at. */
function pinnedRefs(): string[] {
  const refs = new Set<string>();
  for (const j of jobs)
    for (const s of j.steps) {
      if (s.kind === 'checkout' && s.ref) refs.add(s.ref);
      if (s.kind === 'run') for (const m of s.command.matchAll(/--branch (\S+)/g)) refs.add(m[1]!);
    }
  return [...refs];
}

/** Whether every Debian package is installed. */
function installed(packages: readonly string[]): boolean {
  return packages.every((p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status === 0);
}

/** A job step's command with the GitHub URL of vmemct replaced by the local clone source. */
function localised(command: string): string {
  return command.split(GITHUB_URL).join(`file://${origin}`);
}

interface StepRun {
  readonly what: string;
  readonly status: number;
  readonly seconds: number;
}

/** Runs one job in its own workspace; returns each step's exit status, stopping at the first failure. */
function runJob(job: ReadmeJob, workspace: string, home: string): StepRun[] {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    CI: 'true',
    LANG: 'C.UTF-8',
    TMPDIR: os.tmpdir(),
  };
  const done: StepRun[] = [];
  const timed = (what: string, run: () => number): boolean => {
    const start = Date.now();
    const status = run();
    const seconds = (Date.now() - start) / 1000;
    done.push({ what, status, seconds });
    log(`${job.marker}: ${status === 0 ? 'ok  ' : `FAIL exit ${status}`} ${seconds.toFixed(1)}s  ${what}`);
    return status === 0;
  };
  const bash = (command: string, flags: readonly string[]): number => {
    const r = spawnSync('bash', [...flags, '-c', command], { cwd: workspace, env, encoding: 'utf8' });
    if (r.status !== 0) process.stderr.write(`${r.stdout.slice(-4000)}${r.stderr.slice(-4000)}`);
    return r.status ?? 1;
  };
  const step = (s: JobStep): boolean => {
    switch (s.kind) {
      case 'checkout-self':
        return timed('checkout of the fork (stand-in: its build and expectation file, below)', () => 0);
      case 'checkout':
        return timed(
          `checkout ${s.repository}@${s.ref ?? 'default'} → ${s.path} (a fresh clone of this repository)`,
          () =>
            bash(
              `git clone --quiet file://${origin} ${q(s.path)} && git -C ${q(s.path)} checkout --quiet ${q(s.ref ?? 'HEAD')}`,
              ['-e'],
            ),
        );
      case 'upload':
        return timed(`upload ${s.path} (checked below)`, () => 0);
      case 'run': {
        const apt = aptPackages(s.command);
        if (apt.length > 0 && installed(apt)) return timed(`skipped, already installed: ${s.command}`, () => 0);
        if (s.name === 'Build QEMU')
          return timed('Build QEMU (stand-in: build/qemu-system-x86_64 → the installed QEMU)', () =>
            standInBuild(workspace),
          );
        return timed(s.command.trim().replace(/\s*\n\s*/g, ' ⏎ '), () => bash(localised(s.command), ['-e']));
      }
    }
  };
  if (job.system === 'gitlab-ci') {
    // One shell for the whole script, as GitLab runs it: `cd` and variables carry over.
    const lines = job.steps.flatMap((s) => (s.kind === 'run' ? [s] : []));
    const apt = lines.filter((s) => aptPackages(s.command).length > 0 && installed(aptPackages(s.command)));
    for (const s of apt) timed(`skipped, already installed: ${s.command}`, () => 0);
    const script = lines.filter((s) => !apt.includes(s)).map((s) => localised(s.command));
    timed(`script (${script.length} lines as one bash -eo pipefail script):\n    ${script.join('\n    ')}`, () =>
      bash(script.join('\n'), ['-e', '-o', 'pipefail']),
    );
    return done;
  }
  for (const s of job.steps) if (!step(s)) break;
  return done;
}

/** The fork's build, stood in for: its binary is the installed QEMU 7.2. */
function standInBuild(workspace: string): number {
  const qemu = sh('command -v qemu-system-x86_64', workspace).trim();
  fs.mkdirSync(path.join(workspace, 'build'), { recursive: true });
  fs.symlinkSync(qemu, path.join(workspace, 'build', 'qemu-system-x86_64'));
  return 0;
}

/** The fork's own expectation file, written by the documented round trip with this checkout's CLI. */
function writeForkExpectations(workspace: string): void {
  const qemu = sh('command -v qemu-system-x86_64', workspace).trim();
  const file = path.join(workspace, 'ci', 'virtio-mem-expectations.yaml');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const start = Date.now();
  const r = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'conformance', 'bin', 'vmemct.js'),
      'run',
      '--adapter',
      'qemu',
      '--target',
      'device',
      '--qemu',
      qemu,
      '--write-expectations',
      file,
      '--quiet',
    ],
    { cwd: workspace, encoding: 'utf8' },
  );
  log(
    `github-actions-fork: the fork's ci/virtio-mem-expectations.yaml written by vmemct run --adapter qemu --target device --qemu ${qemu} --write-expectations (exit ${r.status}, ${((Date.now() - start) / 1000).toFixed(1)}s)`,
  );
  if (!fs.existsSync(file)) throw new Error(`no expectation file written\n${r.stdout}${r.stderr}`);
}

/** The report files a job's run command writes, as workspace paths. */
function expectedReports(job: ReadmeJob): { junit: string; json: string } {
  let cwd = '.';
  for (const s of job.steps) {
    if (s.kind !== 'run') continue;
    const cd = /^\s*cd (\S+)/.exec(s.command)?.[1];
    if (cd && job.system === 'gitlab-ci') cwd = path.posix.join(cwd, cd);
    if (!s.command.includes('vmemct run')) continue;
    const base = job.system === 'gitlab-ci' ? cwd : path.posix.join('.', cd ?? '.');
    const files = reportFiles(s.command);
    return { junit: path.posix.join(base, files.junit[0]!), json: path.posix.join(base, files.json[0]!) };
  }
  throw new Error(`${job.marker}: no vmemct run step`);
}

describe.each(jobs.map((j) => [j.marker, j] as const))('README job %s', (marker, job) => {
  test(
    'runs as pasted: exit 0, the JUnit (valid by the published schema) and JSON files it uploads are there',
    () => {
      const workspace = fs.mkdtempSync(path.join(scratch, `${marker}-ws-`));
      const home = fs.mkdtempSync(path.join(scratch, `${marker}-home-`));
      log(
        `${marker} (README line ${job.line}, ${job.system}, image ${job.image}): workspace ${workspace}, HOME ${home} (empty)`,
      );
      if (job.steps.some((s) => s.kind === 'checkout-self')) writeForkExpectations(workspace);
      const steps = runJob(job, workspace, home);
      expect(steps.filter((s) => s.status !== 0)).toEqual([]);
      const reports = expectedReports(job);
      for (const f of [reports.junit, reports.json]) {
        const file = path.join(workspace, f);
        expect(fs.existsSync(file)).toBe(true);
        // Kept as an artifact by the job.
        expect(job.artifacts.some((a) => path.posix.normalize(f).startsWith(path.posix.normalize(a)))).toBe(true);
      }
      const junit = fs.readFileSync(path.join(workspace, reports.junit), 'utf8');
      expect(junit).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="vmemct /);
      const results = JSON.parse(fs.readFileSync(path.join(workspace, reports.json), 'utf8')) as {
        format: string;
        exitCode?: number;
        results: unknown[];
      };
      expect(results.format).toMatch(/^vmemct-results\//);
      expect(results.results.length).toBeGreaterThan(200);
      log(
        `${marker}: exit 0 in ${steps.reduce((t, s) => t + s.seconds, 0).toFixed(0)}s; ${reports.junit} (${junit.length} bytes, ${(junit.match(/<testcase /g) ?? []).length} testcases), ${reports.json} (${results.results.length} results)`,
      );
      if (job.junitReport) expect(path.posix.normalize(reports.junit)).toBe(job.junitReport);
      // The job's JUnit validates against the published schema too (see junit-schema.ci-test.ts).
      const valid = xmllint(schema, withoutExtensions(junit).xml, path.join(scratch, `${marker}-junit.xml`));
      expect(valid.output).toMatch(/ validates\n$/);
      expect(valid.status).toBe(0);
    },
    15 * 60_000,
  );
});
