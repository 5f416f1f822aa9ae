/**
 * `vmemct merge FILE… [--json OUT] [--junit OUT] [--reporter human|tap] [--expectations FILE]
 * [--vectors PATH]`: the results files of `--shard i/n` runs (or of several implementations, kept
 * apart) merged into one results document, JUnit file and summary, with run's exit codes. Shards
 * of one implementation must come from the same corpus and options; a missing shard, or one
 * vector with two different results, is bad input (exit 3).
 */
import * as path from 'node:path';
import type { Finding, Verdict } from '../judge/verdicts';
import type { Severity } from '../judge/severity';
import { readResultsInput } from '../loader/results-file';
import type { LoadProblem, Vector } from '../loader/types';
import { expectationProblems } from '../runner/expectations';
import { Attempt, RunResult, VectorResult, finishRun, judgeAgainst } from '../runner/run';
import { humanReport, resultsDocument, tapReport } from '../report/reports';
import { junitReport } from '../report/junit';
import { OptionSpec, parseArgs } from './args';
import type { CliIo } from './main';
import {
  VectorFileError,
  expectationsOption,
  loadCorpus,
  reporterOption,
  warnOnOtherImplementation,
  writeOutput,
} from './run-commands';
import { UsageError, exitCodeOf } from './usage-error';

/** The options of `vmemct merge` (the files to merge are its arguments). */
export const MERGE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  json: { kind: 'value' },
  junit: { kind: 'value' },
  reporter: { kind: 'value' },
  expectations: { kind: 'value' },
  vectors: { kind: 'list' },
  verbose: { kind: 'flag' },
};

/** One result record of a results file (the schema has checked the types). */
interface ResultRecord {
  readonly id: string;
  readonly kind?: 'vector' | 'check';
  readonly verdict: Verdict;
  readonly severity?: Severity;
  readonly expected: Verdict;
  readonly expectationReason?: string;
  readonly status: 'expected' | 'unexpected';
  readonly durationMs: number;
  readonly findings: readonly Finding[];
  readonly diagnostics?: string;
  /** The runs of a retried vector (`--retries`), as the shard recorded them. */
  readonly attempts?: readonly Attempt[];
}

/** The parts of a results document merge reads. */
interface ResultsDoc {
  readonly suite: { readonly version: string; readonly vectorsDigest: string; readonly vectorCount: number };
  readonly adapter: { readonly name: string; readonly implementation: string; readonly capabilities: string[] };
  readonly expectations?: string | null;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly options: Record<string, unknown>;
  readonly results: readonly ResultRecord[];
  readonly staleExpectations: readonly { readonly id: string; readonly reason: string }[];
}

/** A results file read for merging. */
interface ReadResults {
  readonly file: string;
  readonly doc: ResultsDoc;
  readonly shard?: { readonly index: number; readonly count: number };
}

/** The options two shards of one run must share (everything but the shard). */
function sharedOptions(doc: ResultsDoc): string {
  const { shard: _shard, ...rest } = doc.options;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

function problem(file: string, reason: string, field = ''): LoadProblem {
  return { file, line: 1, field, reason };
}

/** The files of one implementation checked against each other: same corpus and options, every shard, no conflicts. */
function groupProblems(files: readonly ReadResults[]): LoadProblem[] {
  const problems: LoadProblem[] = [];
  const [first] = files;
  for (const f of files.slice(1)) {
    if (f.doc.suite.vectorsDigest !== first.doc.suite.vectorsDigest)
      problems.push(
        problem(f.file, `made from another corpus than ${first.file} (vectorsDigest differs)`, 'suite.vectorsDigest'),
      );
    if (sharedOptions(f.doc) !== sharedOptions(first.doc))
      problems.push(problem(f.file, `run with other options than ${first.file} (only --shard may differ)`, 'options'));
    if ((f.doc.expectations ?? null) !== (first.doc.expectations ?? null))
      problems.push(problem(f.file, `judged against other expectations than ${first.file}`, 'expectations'));
  }
  const sharded = files.filter((f) => f.shard);
  if (sharded.length > 0 && sharded.length === files.length) {
    const count = sharded[0].shard!.count;
    for (const f of sharded)
      if (f.shard!.count !== count)
        problems.push(
          problem(
            f.file,
            `shard ${f.shard!.index}/${f.shard!.count}, while ${sharded[0].file} is of ${count}`,
            'options.shard',
          ),
        );
    const have = new Set(sharded.map((f) => f.shard!.index));
    const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !have.has(i));
    if (missing.length > 0)
      problems.push(
        problem(
          first.file,
          `missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} of ${first.doc.adapter.implementation}`,
          'options.shard',
        ),
      );
  }
  const seen = new Map<string, { file: string; record: ResultRecord }>();
  for (const f of files)
    for (const r of f.doc.results) {
      const earlier = seen.get(r.id);
      if (!earlier) seen.set(r.id, { file: f.file, record: r });
      else if (earlier.record.verdict !== r.verdict || earlier.record.status !== r.status)
        problems.push(
          problem(
            f.file,
            `${r.id} is ${r.verdict} (${r.status}) here but ${earlier.record.verdict} (${earlier.record.status}) in ${earlier.file}`,
            'results',
          ),
        );
    }
  return problems;
}

/** A results file's name for one of several implementations: `results.json` → `results.qemu-7-2.json`. */
export function perImplementationFile(file: string, implementation: string): string {
  const slug = implementation
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}.${slug}${ext}`;
}

/** `vmemct merge`. */
export async function mergeCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs('merge', args, MERGE_OPTIONS);
  if (parsed.positional.length === 0)
    throw new UsageError('merge: name the results files to merge (written by vmemct run --json FILE)');
  const reporter = reporterOption('merge', parsed);
  const corpus = loadCorpus('merge', parsed);
  const byId = new Map(corpus.map((v) => [v.id, v]));
  const expectations = expectationsOption('merge', parsed, (set) => expectationProblems(set, corpus));
  const problems: LoadProblem[] = [];
  const read: ReadResults[] = [];
  for (const file of parsed.positional) {
    const r = readResultsInput(file);
    if (r.kind === 'problems') {
      problems.push(...r.problems);
      continue;
    }
    const doc = r.value as ResultsDoc;
    if (doc.results.some((x) => x.kind === 'check')) {
      problems.push(problem(file, 'holds results of suite checks; merge takes the results of vmemct run', 'results'));
      continue;
    }
    const unknown = doc.results.filter((x) => !byId.has(x.id)).map((x) => x.id);
    if (unknown.length > 0)
      problems.push(
        problem(
          file,
          `names vector${unknown.length > 1 ? 's' : ''} not in the corpus: ${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? ', …' : ''} (give the --vectors the run used)`,
          'results',
        ),
      );
    const shardText = doc.options.shard;
    const m = typeof shardText === 'string' ? /^([0-9]+)\/([0-9]+)$/.exec(shardText) : null;
    read.push({ file, doc, ...(m ? { shard: { index: Number(m[1]), count: Number(m[2]) } } : {}) });
  }
  const groups = new Map<string, ReadResults[]>();
  for (const f of read)
    groups.set(f.doc.adapter.implementation, [...(groups.get(f.doc.adapter.implementation) ?? []), f]);
  for (const files of groups.values()) problems.push(...groupProblems(files));
  if (problems.length > 0) throw new VectorFileError('merge', problems);
  if (groups.size > 1 && reporter === 'tap')
    throw new UsageError(
      `merge: --reporter tap takes the results of one implementation (got ${groups.size}: ${[...groups.keys()].join(', ')})`,
    );
  let exitCode = 0;
  for (const [implementation, files] of groups) {
    if (expectations) warnOnOtherImplementation(io, expectations, implementation);
    const run = mergedRun(files, corpus, expectations);
    const [first] = files;
    const name = (file: string): string => (groups.size > 1 ? perImplementationFile(file, implementation) : file);
    if (parsed.values.has('json')) {
      const doc = resultsDocument(run, {
        adapter: first.doc.adapter,
        version: first.doc.suite.version,
        vectors: corpus,
        expectations: expectations?.file ?? first.doc.expectations ?? undefined,
        startedAt: new Date(Math.min(...files.map((f) => Date.parse(f.doc.startedAt)))),
        options: { ...first.doc.options, shard: null },
      });
      // The runs' own corpus digest: the merge may read the corpus from another checkout path.
      const merged = { ...doc, suite: { ...(doc as { suite: object }).suite, ...first.doc.suite } };
      writeOutput('merge', 'json', name(parsed.values.get('json')!), `${JSON.stringify(merged, null, 2)}\n`);
    }
    if (parsed.values.has('junit'))
      writeOutput('merge', 'junit', name(parsed.values.get('junit')!), junitReport(run, `vmemct ${implementation}`));
    if (reporter === 'tap') io.stdout(tapReport(run));
    else
      io.stdout(
        `Implementation: ${implementation} (${files.length} results file${files.length > 1 ? 's' : ''})\n${humanReport(run, parsed.flags.has('verbose'))}`,
      );
    exitCode = Math.max(exitCode, run.exitCode);
  }
  return exitCodeOf(exitCode as 0 | 1 | 2 | 3);
}

/** The merged run of one implementation's files, in corpus order; re-judged when `--expectations` is given. */
function mergedRun(
  files: readonly ReadResults[],
  corpus: readonly Vector[],
  expectations: Parameters<typeof judgeAgainst>[1]['expectations'],
): RunResult<VectorResult> {
  const records = new Map<string, ResultRecord>();
  for (const f of files) for (const r of f.doc.results) if (!records.has(r.id)) records.set(r.id, r);
  const strict = files[0].doc.options.strict === true;
  const judging = expectations ? judgeAgainst(corpus, { strict, expectations }) : undefined;
  const results: VectorResult[] = [];
  for (const vector of corpus) {
    const r = records.get(vector.id);
    if (!r) continue;
    const judged = judging
      ? judging.judge(r.id, { verdict: r.verdict, findings: [...r.findings], diagnostics: r.diagnostics })
      : {
          verdict: r.verdict,
          ...(r.severity ? { severity: r.severity } : {}),
          expected: r.expected,
          ...(r.expectationReason === undefined
            ? {}
            : {
                expectation: {
                  pattern: r.id,
                  verdict: r.expected,
                  reason: r.expectationReason,
                  maxMatches: 1,
                  line: 0,
                },
              }),
          unexpected: r.status === 'unexpected',
          findings: r.findings,
          diagnostics: r.diagnostics,
        };
    results.push({
      kind: 'vector',
      vector,
      ...judged,
      durationMs: r.durationMs,
      ...(r.attempts ? { attempts: r.attempts } : {}),
    });
  }
  const stale = judging
    ? judging.stale
    : [...new Map(files.flatMap((f) => f.doc.staleExpectations).map((s) => [s.id, s])).values()];
  const finished = finishRun(results, stale, Date.now());
  return { ...finished, durationMs: files.reduce((sum, f) => sum + f.doc.durationMs, 0) };
}
