/**
 * The CI jobs the README gives, read from the README itself: each YAML block after a
 * `<!-- ci-job: NAME -->` marker is a GitHub Actions workflow or a GitLab CI file, turned here
 * into the steps a runner would take (commands, checkouts, uploads), so a test can run them.
 */
import * as fs from 'node:fs';
import { parse } from 'yaml';

/** The CI systems whose job files the README gives. */
export const CI_SYSTEMS = ['github-actions', 'gitlab-ci'] as const;

/** A CI system. */
export type CiSystem = (typeof CI_SYSTEMS)[number];

/** One step of a job, as the runner would take it. */
export type JobStep =
  /** A shell command (a GitHub `run:` step, or one line of a GitLab `script:`). */
  | { readonly kind: 'run'; readonly name?: string; readonly command: string }
  /** `actions/checkout` of the workflow's own repository into the workspace. */
  | { readonly kind: 'checkout-self' }
  /** `actions/checkout` of another repository into `path`. */
  | { readonly kind: 'checkout'; readonly repository: string; readonly ref?: string; readonly path: string }
  /** `actions/upload-artifact` of `path`. */
  | { readonly kind: 'upload'; readonly path: string };

/** A job of the README. */
export interface ReadmeJob {
  /** The marker's name (`github-actions`, `gitlab-ci`, `github-actions-fork`). */
  readonly marker: string;
  /** The README line of the marker. */
  readonly line: number;
  readonly system: CiSystem;
  /** The container image the job runs in. */
  readonly image: string;
  readonly steps: readonly JobStep[];
  /** Paths the job keeps as artifacts (uploads, GitLab `artifacts.paths`). */
  readonly artifacts: readonly string[];
  /** The JUnit file a GitLab job hands to its test report, if any. */
  readonly junitReport?: string;
}

/** A README job block that cannot be read, with the line of its marker. */
export class ReadmeJobError extends Error {
  override readonly name = 'ReadmeJobError';
}

const MARKER = /^<!-- ci-job: ([a-z0-9-]+) -->$/;

/** Every marked job block of a README's text. */
export function readmeJobs(text: string): ReadmeJob[] {
  const lines = text.split('\n');
  const jobs: ReadmeJob[] = [];
  lines.forEach((line, i) => {
    const m = MARKER.exec(line.trim());
    if (!m) return;
    const marker = m[1]!;
    let at = i + 1;
    while (at < lines.length && lines[at]!.trim() === '') at++;
    if (lines[at]?.trim() !== '```yaml')
      throw new ReadmeJobError(`README:${i + 1}: ${marker}: no yaml block after the marker`);
    const end = lines.indexOf('```', at + 1);
    if (end < 0) throw new ReadmeJobError(`README:${i + 1}: ${marker}: the yaml block does not end`);
    const doc = parse(lines.slice(at + 1, end).join('\n')) as Record<string, unknown>;
    jobs.push(doc.jobs !== undefined ? githubJob(marker, i + 1, doc) : gitlabJob(marker, i + 1, doc));
  });
  return jobs;
}

/** The marked job blocks of the README file at `file`. */
export function readmeJobsOf(file: string): ReadmeJob[] {
  return readmeJobs(fs.readFileSync(file, 'utf8'));
}

type Yaml = Record<string, unknown>;

function only(marker: string, line: number, map: Yaml, what: string): Yaml {
  const values = Object.values(map);
  if (values.length !== 1)
    throw new ReadmeJobError(`README:${line}: ${marker}: expected one ${what}, found ${values.length}`);
  return values[0] as Yaml;
}

function githubJob(marker: string, line: number, doc: Yaml): ReadmeJob {
  const job = only(marker, line, doc.jobs as Yaml, 'job');
  const steps: JobStep[] = (job.steps as Yaml[]).map((s) => {
    if (typeof s.run === 'string')
      return { kind: 'run', command: s.run, ...(typeof s.name === 'string' ? { name: s.name } : {}) };
    const uses = String(s.uses);
    const w = (s.with ?? {}) as Yaml;
    if (uses.startsWith('actions/checkout@')) {
      if (w.repository === undefined) return { kind: 'checkout-self' };
      return {
        kind: 'checkout',
        repository: String(w.repository),
        path: String(w.path ?? '.'),
        ...(w.ref !== undefined ? { ref: String(w.ref) } : {}),
      };
    }
    if (uses.startsWith('actions/upload-artifact@')) return { kind: 'upload', path: String(w.path) };
    throw new ReadmeJobError(`README:${line}: ${marker}: a step this check cannot take: uses ${uses}`);
  });
  return {
    marker,
    line,
    system: 'github-actions',
    image: String(job.container ?? ''),
    steps,
    artifacts: steps.flatMap((s) => (s.kind === 'upload' ? [s.path] : [])),
  };
}

function gitlabJob(marker: string, line: number, doc: Yaml): ReadmeJob {
  const job = only(marker, line, doc, 'job');
  const artifacts = (job.artifacts ?? {}) as Yaml;
  const reports = (artifacts.reports ?? {}) as Yaml;
  return {
    marker,
    line,
    system: 'gitlab-ci',
    image: String(job.image ?? ''),
    steps: (job.script as string[]).map((command) => ({ kind: 'run', command })),
    artifacts: ((artifacts.paths ?? []) as string[]).map(String),
    ...(reports.junit !== undefined ? { junitReport: String(reports.junit) } : {}),
  };
}

/** The packages an `apt-get update && apt-get install -y … PKG…` command installs (none for another command). */
export function aptPackages(command: string): string[] {
  const m = /^apt-get update && apt-get install -y --no-install-recommends ([a-z0-9.+\- ]+)$/.exec(command.trim());
  return m ? m[1]!.trim().split(/\s+/) : [];
}

/** The `--junit` and `--json` files a command writes (relative to the folder it runs in). */
export function reportFiles(command: string): { junit: string[]; json: string[] } {
  const of = (option: string): string[] =>
    [...command.matchAll(new RegExp(`--${option}[ =](\\S+)`, 'g'))].map((m) => m[1]!);
  return { junit: of('junit'), json: of('json') };
}
