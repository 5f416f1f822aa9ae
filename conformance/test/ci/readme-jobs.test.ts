/**
 * The README's CI jobs, as `npm run test:ci` reads them to run them: the marked blocks are found
 * and say what the README promises (a bookworm container with Node 20, QEMU from apt without sudo,
 * the expectation file chosen by the QEMU version, JUnit and JSON uploaded).
 */
import * as path from 'node:path';
import { ReadmeJob, ReadmeJobError, aptPackages, readmeJobs, readmeJobsOf, reportFiles } from './readme-jobs';

const README = path.resolve(__dirname, '..', '..', '..', 'README.md');
const jobs = readmeJobsOf(README);
const job = (marker: string): ReadmeJob => jobs.find((j) => j.marker === marker)!;
const commands = (j: ReadmeJob): string[] => j.steps.flatMap((s) => (s.kind === 'run' ? [s.command] : []));

describe('the README CI jobs', () => {
  test('three marked jobs: GitHub Actions, GitLab CI, and a QEMU fork on GitHub Actions', () => {
    expect(jobs.map((j) => [j.marker, j.system])).toEqual([
      ['github-actions', 'github-actions'],
      ['gitlab-ci', 'gitlab-ci'],
      ['github-actions-fork', 'github-actions'],
    ]);
  });

  test.each(['github-actions', 'gitlab-ci', 'github-actions-fork'])(
    '%s: Node 20 on Debian bookworm, no sudo, vmemct pinned to a tag, JUnit and JSON kept as artifacts',
    (marker) => {
      const j = job(marker);
      expect(j.image).toBe('node:20-bookworm');
      for (const c of commands(j)) expect(c).not.toMatch(/\bsudo\b/);
      const checkout = j.steps.find((s) => s.kind === 'checkout');
      const clone = commands(j).find((c) => c.startsWith('git clone'));
      expect(checkout ?? clone).toBeDefined();
      if (checkout?.kind === 'checkout')
        expect([checkout.repository, checkout.ref]).toEqual(['vmemct/vmemct', 'v0.1.0']);
      if (clone) expect(clone).toContain('--branch v0.1.0 https://github.com/vmemct/vmemct vmemct');
      const run = commands(j).find((c) => c.includes('vmemct run'))!;
      const files = reportFiles(run);
      expect(files.junit).toHaveLength(1);
      expect(files.json).toHaveLength(1);
      for (const f of [...files.junit, ...files.json]) {
        // Written from inside the vmemct checkout, kept from the workspace.
        const kept = path.posix.normalize(path.posix.join('vmemct', f));
        expect(j.artifacts.some((a) => kept.startsWith(a))).toBe(true);
      }
      if (j.junitReport) expect(path.posix.normalize(path.posix.join('vmemct', files.junit[0]!))).toBe(j.junitReport);
    },
  );

  test.each(['github-actions', 'gitlab-ci'])(
    '%s: QEMU from apt, the expectation file picked by its version',
    (marker) => {
      const j = job(marker);
      expect(aptPackages(commands(j)[0]!)).toEqual(['qemu-system-x86']);
      const script = commands(j).join('\n');
      expect(script).toMatch(/expectations="\$\(npx vmemct qemu expectations\)"/);
      expect(script).toMatch(/vmemct run --adapter qemu --target device --expectations "\$expectations"/);
      expect(script).not.toContain('--qemu ');
    },
  );

  test("the fork's job: its own QEMU build, its own expectation file", () => {
    const j = job('github-actions-fork');
    expect(j.steps[0]).toEqual({ kind: 'checkout-self' });
    expect(j.steps.find((s) => s.kind === 'run' && s.name === 'Build QEMU')).toBeDefined();
    const run = commands(j).find((c) => c.includes('vmemct run'))!;
    expect(run).toContain('--qemu ../build/qemu-system-x86_64');
    expect(run).toContain('--expectations ../ci/virtio-mem-expectations.yaml');
  });
});

describe('reading job blocks', () => {
  test('a marker without a yaml block, or a step the check cannot take, is an error naming the line', () => {
    expect(() => readmeJobs('text\n<!-- ci-job: x -->\n\nmore text\n')).toThrow(ReadmeJobError);
    expect(() => readmeJobs('text\n<!-- ci-job: x -->\n\nmore text\n')).toThrow('README:2: x: no yaml block');
    const odd = '<!-- ci-job: y -->\n```yaml\njobs:\n  a:\n    steps:\n      - uses: actions/cache@v4\n```\n';
    expect(() => readmeJobs(odd)).toThrow('README:1: y: a step this check cannot take: uses actions/cache@v4');
  });

  test('apt packages and report files are read from the commands', () => {
    expect(aptPackages('apt-get update && apt-get install -y --no-install-recommends a b-c')).toEqual(['a', 'b-c']);
    expect(aptPackages('apt-get install -y a')).toEqual([]);
    expect(reportFiles('vmemct run --junit ../o/j.xml --json=../o/r.json')).toEqual({
      junit: ['../o/j.xml'],
      json: ['../o/r.json'],
    });
  });
});
