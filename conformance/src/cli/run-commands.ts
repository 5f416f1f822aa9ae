/**
 * `vmemct run`, `list`, `lint` and `coverage`: the commands that work on the vector corpus.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ALL_REQUIREMENTS, REQUIREMENTS } from '../../../spec/src/index';
import type { Adapter, AdapterInfo, DeviceSession, DeviceSetup } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { DeviceSteering } from '../../../model/src/index';
import { loadVectors, readVectorCache } from '../loader/load';
import { ResultsInput, buildSite } from '../docs/site';
import { readResultsFile } from '../docs/results-file';
import { SiteWriteError, checkOutputFolder, writeSite } from '../docs/output';
import { UnfinishedDryRun, lintReport } from '../runner/lint';
import { formatProblem, LoadProblem, Vector } from '../loader/types';
import { ExpectationSet, expectationProblems, loadExpectations } from '../runner/expectations';
import { writeExpectations, writeExpectationsOption } from './write-expectations-option';
import { RETRIES, runVectors, selectVectors, Selection, DEFAULT_TIMEOUT_MS } from '../runner/run';
import { BUSY_RETRIES } from '../steps/request';
import { humanReport, resultsDocument, tapReport } from '../report/reports';
import { junitReport } from '../report/junit';
import {
  MAX_TIMER_MS,
  OptionSpec,
  ParsedArgs,
  defaultVectorsDir,
  packageRoot,
  parseArgs,
  positiveInt,
  suiteVersion,
} from './args';
import { EXIT_OK, EXIT_UNEXPECTED, UsageError, exitCodeOf } from './usage-error';
import { ADAPTER_OPTIONS, createAdapter } from './adapter-options';
import { progressIntervalMs, progressMode, startProgress } from './progress';
import type { CliIo } from './main';

/** The options of a run's judging and reports, shared by `run` and `vhost-user-check`. */
export const REPORT_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  expectations: { kind: 'value' },
  strict: { kind: 'flag' },
  reporter: { kind: 'value' },
  junit: { kind: 'value' },
  json: { kind: 'value' },
  timeout: { kind: 'value' },
};

/** The options that select vectors, shared by `run` and `list`. */
export const SELECTION_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  vectors: { kind: 'list' },
  filter: { kind: 'list' },
  tag: { kind: 'list' },
  target: { kind: 'value' },
  requirement: { kind: 'list' },
  shard: { kind: 'value' },
};

/** The options of `vmemct run`. */
export const RUN_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  ...SELECTION_OPTIONS,
  ...ADAPTER_OPTIONS,
  'busy-retries': { kind: 'value' },
  retries: { kind: 'value' },
  ...REPORT_OPTIONS,
  'write-expectations': { kind: 'value' },
  verbose: { kind: 'flag' },
  quiet: { kind: 'flag' },
};

/** The options of `vmemct list`. */
export const LIST_OPTIONS: Readonly<Record<string, OptionSpec>> = { ...SELECTION_OPTIONS, json: { kind: 'flag' } };

/** The options of `vmemct lint` (paths may also be given as arguments). */
export const LINT_OPTIONS: Readonly<Record<string, OptionSpec>> = { vectors: { kind: 'list' } };

/** The options of `vmemct coverage`. */
export const COVERAGE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  vectors: { kind: 'list' },
  json: { kind: 'flag' },
};

/** The options of `vmemct docs`. */
export const DOCS_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  out: { kind: 'value' },
  force: { kind: 'flag' },
  results: { kind: 'list' },
  vectors: { kind: 'list' },
};

/** Loads the corpus (or `--vectors` paths); bad files are a usage error (exit 3) listing every problem. */
export function loadCorpus(command: string, parsed: ParsedArgs, extraPaths: readonly string[] = []): Vector[] {
  const paths = [...(parsed.lists.get('vectors') ?? []), ...extraPaths];
  const loaded = loadVectors(
    paths.length > 0 ? paths : [defaultVectorsDir()],
    readVectorCache(path.join(packageRoot(), 'dist', 'vector-cache.json'), packageRoot()),
  );
  if (loaded.problems.length > 0) throw new VectorFileError(command, loaded.problems);
  if (loaded.vectors.length === 0)
    throw new UsageError(`${command}: no vectors found in ${paths.join(', ') || defaultVectorsDir()}`);
  return loaded.vectors;
}

/** Bad vector or expectation files: every problem, one per line. */
export class VectorFileError extends UsageError {
  constructor(
    command: string,
    readonly problems: readonly LoadProblem[],
  ) {
    super(
      `${command}: ${problems.length} problem${problems.length > 1 ? 's' : ''} in the input files:\n${problems.map((p) => `  ${formatProblem(relative(p))}`).join('\n')}`,
    );
  }
}

/** `--reporter`: `human` (the default) or `tap`. */
export function reporterOption(command: string, parsed: ParsedArgs): 'human' | 'tap' {
  const reporter = parsed.values.get('reporter') ?? 'human';
  if (reporter !== 'human' && reporter !== 'tap')
    throw new UsageError(`${command}: --reporter must be human or tap (got '${reporter}')`);
  return reporter;
}

/** `--timeout` in milliseconds (at most {@link MAX_TIMER_MS}), or `defaultMs` without it. */
export function timeoutOption(command: string, parsed: ParsedArgs, defaultMs: number): number {
  const timeoutText = parsed.values.get('timeout');
  return timeoutText === undefined ? defaultMs : positiveInt(command, 'timeout', timeoutText, MAX_TIMER_MS);
}

/** `--busy-retries N`: how often an unlisted BUSY is retried (0 to {@link BUSY_RETRIES}`.max`; dev.suite.1). */
export function busyRetriesOption(command: string, parsed: ParsedArgs): number {
  const text = parsed.values.get('busy-retries');
  if (text === undefined) return BUSY_RETRIES.default;
  if (!/^[0-9]+$/.test(text) || Number(text) > BUSY_RETRIES.max)
    throw new UsageError(`${command}: --busy-retries must be an integer from 0 to ${BUSY_RETRIES.max} (got '${text}')`);
  return Number(text);
}

/** `--retries N`: how often a vector that failed, errored or timed out unexpectedly is run again (0 to {@link RETRIES}`.max`). */
export function retriesOption(command: string, parsed: ParsedArgs): number {
  const text = parsed.values.get('retries');
  if (text === undefined) return RETRIES.default;
  if (!/^[0-9]+$/.test(text) || Number(text) > RETRIES.max)
    throw new UsageError(`${command}: --retries must be an integer from 0 to ${RETRIES.max} (got '${text}')`);
  return Number(text);
}

/**
 * `--expectations`: the file, loaded and checked by `problemsOf` against what the command runs;
 * a file that cannot be used is a usage error (exit 3) listing every problem.
 */
export function expectationsOption(
  command: string,
  parsed: ParsedArgs,
  problemsOf: (set: ExpectationSet) => LoadProblem[],
): ExpectationSet | undefined {
  const expectationsFile = parsed.values.get('expectations');
  if (expectationsFile === undefined) return undefined;
  const loaded = loadExpectations(expectationsFile);
  if (!loaded.set) throw new VectorFileError(command, loaded.problems);
  const problems = problemsOf(loaded.set);
  if (problems.length > 0) throw new VectorFileError(command, problems);
  return loaded.set;
}

/** Expectations written for another implementation than the target: not an error (a file may be shared between close versions), but a likely mix-up worth a line. */
export function warnOnOtherImplementation(
  io: CliIo,
  expectations: ExpectationSet | undefined,
  implementation: string,
): void {
  if (expectations && !implementation.startsWith(expectations.implementation)) {
    io.stderr(
      `vmemct: warning: ${expectations.file} describes '${expectations.implementation}', but the target is '${implementation}'\n`,
    );
  }
}

function relative(p: LoadProblem): LoadProblem {
  const rel = path.relative(process.cwd(), p.file);
  return { ...p, file: rel.startsWith('..') ? p.file : rel };
}

/** The most shards a run may be split into (more than any corpus has vectors; keeps i and n exact integers). */
const MAX_SHARDS = 1_000_000;

function selection(command: string, parsed: ParsedArgs): Selection {
  const target = parsed.values.get('target');
  if (target !== undefined && target !== 'device' && target !== 'driver')
    throw new UsageError(`${command}: --target must be device or driver (got '${target}')`);
  const shardText = parsed.values.get('shard');
  let shard: Selection['shard'];
  if (shardText !== undefined) {
    const m = /^([0-9]+)\/([0-9]+)$/.exec(shardText);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2]))
      throw new UsageError(`${command}: --shard must be i/n with 1 ≤ i ≤ n (got '${shardText}')`);
    if (Number(m[2]) > MAX_SHARDS)
      throw new UsageError(`${command}: --shard must be i/n with n at most ${MAX_SHARDS} (got '${shardText}')`);
    shard = { index: Number(m[1]), count: Number(m[2]) };
  }
  const known = new Set(ALL_REQUIREMENTS.map((r) => r.id));
  for (const r of parsed.lists.get('requirement') ?? []) {
    if (!known.has(r) && !ALL_REQUIREMENTS.some((q) => q.id.startsWith(`${r}.`)))
      throw new UsageError(`${command}: --requirement '${r}' matches no requirement (see vmemct spec)`);
  }
  return {
    filters: parsed.lists.get('filter'),
    tags: parsed.lists.get('tag'),
    target,
    requirements: parsed.lists.get('requirement'),
    shard,
  };
}

/** Lint's dry runs go to a device of the reference model (`spec` profile), steered by the vector it replays. */
function referenceDevice(setup: DeviceSetup, steering: DeviceSteering): Promise<DeviceSession> {
  return createModelAdapter({ steering }).openDevice(setup);
}

/**
 * `vmemct run`. `openAdapter` makes the adapter the options name; tests pass their own (a model
 * device with a deliberate bug) to run the whole command against it.
 */
export async function runCommand(
  args: readonly string[],
  io: CliIo,
  openAdapter: (parsed: ParsedArgs) => Promise<Adapter> = createAdapter,
): Promise<number> {
  const parsed = parseArgs('run', args, RUN_OPTIONS);
  if (parsed.positional.length > 0)
    throw new UsageError(
      `run: unexpected argument '${parsed.positional[0]}' (use --vectors PATH for your own vectors)`,
    );
  const reporter = reporterOption('run', parsed);
  const timeoutMs = timeoutOption('run', parsed, DEFAULT_TIMEOUT_MS);
  const busyRetries = busyRetriesOption('run', parsed);
  const retries = retriesOption('run', parsed);
  const intervalMs = progressIntervalMs();
  const sel = selection('run', parsed);
  const all = loadCorpus('run', parsed);
  const expectations = expectationsOption('run', parsed, (set) => expectationProblems(set, all));
  const writeTarget = writeExpectationsOption('run', parsed, all);
  // Without --expectations, the known deviations of the file being rewritten still grade the findings.
  const judging = expectations ?? (writeTarget?.previous ? { ...writeTarget.previous, entries: [] } : undefined);
  // Vectors of the user's own are linted too: an expectation no conforming device could meet is a bad file, not a failure.
  if (parsed.lists.has('vectors')) {
    const report = await lintReport(all, referenceDevice);
    if (report.problems.length > 0) throw new VectorFileError('run', report.problems);
    reportUnfinished(io, 'run', report.unfinished);
  }
  const selected = selectVectors(all, sel);
  if (selected.length === 0) throw new UsageError('run: the filters select no vector');
  // An interrupted run still releases what the adapter holds (processes, sockets) before exiting.
  // The handlers are in place before the adapter opens: opening may already start a process (QEMU
  // is asked its version), and a signal then must wait for the adapter and dispose of it.
  const opening = openAdapter(parsed);
  const onSignal = (signal: NodeJS.Signals): void => {
    void opening
      .then((opened) => opened.dispose())
      .catch(() => undefined)
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let adapter: Adapter;
  try {
    adapter = await opening;
  } catch (e) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    throw e;
  }
  warnOnOtherImplementation(io, expectations, adapter.info.implementation);
  const startedAt = new Date();
  const mode = progressMode(io, parsed.flags.has('quiet'));
  // On a terminal the rewritten line goes with the human report only (as before); lines go with any reporter.
  const progress = startProgress({
    mode: mode === 'terminal' && reporter !== 'human' ? 'none' : mode,
    label: 'run',
    noun: 'vectors',
    total: selected.length,
    write: io.stderr,
    intervalMs,
  });
  let unexpected = 0;
  let run;
  try {
    run = await runVectors(adapter, selected, all, {
      strict: parsed.flags.has('strict'),
      timeoutMs,
      busyRetries,
      retries,
      expectations: judging,
      onResult: (r, done, total) => {
        if (r.unexpected) unexpected++;
        progress.update({ done, total, unexpected, last: r.vector.id });
      },
    });
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await adapter.dispose();
  }
  const options = {
    adapter: adapter.info.name,
    profile: adapter.info.name === 'model' ? (parsed.values.get('profile') ?? 'spec') : null,
    strict: parsed.flags.has('strict'),
    filters: sel.filters ?? [],
    tags: sel.tags ?? [],
    target: sel.target ?? null,
    requirements: sel.requirements ?? [],
    shard: parsed.values.get('shard') ?? null,
    timeoutMs,
    busyRetries,
    retries,
  };
  if (parsed.values.has('json')) {
    const doc = resultsDocument(run, {
      adapter: adapter.info,
      version: suiteVersion(),
      vectors: all,
      expectations: expectations?.file,
      startedAt,
      options,
    });
    writeOutput('run', 'json', parsed.values.get('json')!, `${JSON.stringify(doc, null, 2)}\n`);
  }
  if (parsed.values.has('junit')) {
    writeOutput(
      'run',
      'junit',
      parsed.values.get('junit')!,
      junitReport(run, `vmemct ${adapter.info.implementation}`, startedAt),
    );
  }
  if (reporter === 'tap') io.stdout(tapReport(run));
  else io.stdout(`${implementationLine(adapter.info)}${humanReport(run, parsed.flags.has('verbose'))}`);
  if (writeTarget) writeExpectations('run', writeTarget, judging, adapter.info.implementation, run.results, all, io);
  if (run.testedNothing) {
    io.stderr(
      `vmemct: none of the ${run.results.length} selected vectors could run against ${adapter.info.implementation} (all unsupported): nothing was tested\n`,
    );
  }
  return exitCodeOf(run.exitCode);
}

/** The human report's first line naming what ran, for targets found at a location (e.g. which QEMU binary); empty otherwise. */
export function implementationLine(info: AdapterInfo): string {
  return info.location === undefined ? '' : `Target: ${info.implementation} (${info.location})\n`;
}

/** Writes a report file (its folder is created); a file that cannot be written is a usage error. */
export function writeOutput(command: string, option: string, file: string, text: string): void {
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, text);
  } catch (e) {
    throw new UsageError(`${command}: cannot write --${option} ${file}: ${(e as Error).message}`);
  }
}

/** `vmemct list`: id, target, requirements, tags. */
export async function listCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs('list', args, LIST_OPTIONS);
  const vectors = selectVectors(loadCorpus('list', parsed), selection('list', parsed));
  if (vectors.length === 0) throw new UsageError('list: the filters select no vector');
  if (parsed.flags.has('json')) {
    io.stdout(
      `${JSON.stringify(
        vectors.map((v) => ({
          id: v.id,
          title: v.title,
          target: v.target,
          requirements: v.requirements,
          tags: v.tags,
          needs: v.needs,
          file: v.source.file,
          line: v.source.line,
        })),
        null,
        2,
      )}\n`,
    );
    return EXIT_OK;
  }
  const width = vectors.reduce((w, v) => Math.max(w, v.id.length), 0);
  for (const v of vectors)
    io.stdout(`${v.id.padEnd(width)}  ${v.target.padEnd(6)}  ${v.requirements.join(',')}  [${v.tags.join(',')}]\n`);
  io.stdout(`${vectors.length} vectors\n`);
  return EXIT_OK;
}

/** A notice (stderr, not an error) naming the vectors whose dry run lint's budget cut short. */
function reportUnfinished(io: CliIo, command: string, unfinished: readonly UnfinishedDryRun[]): void {
  if (unfinished.length === 0) return;
  const lines = unfinished.map((u) => `  ${formatProblem(relative({ ...u, field: u.id }))}\n`).join('');
  io.stderr(
    `vmemct: ${command}: notice: ${unfinished.length} vector${unfinished.length > 1 ? 's were' : ' was'} not dry-run to the end within lint's budget (checked up to where it stopped):\n${lines}`,
  );
}

/** `vmemct lint [paths]`: schema and meaning checks; exit 3 on any problem. */
export async function lintCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs('lint', args, LINT_OPTIONS);
  const vectors = loadCorpus('lint', parsed, parsed.positional);
  const report = await lintReport(vectors, referenceDevice);
  if (report.problems.length > 0) throw new VectorFileError('lint', report.problems);
  reportUnfinished(io, 'lint', report.unfinished);
  io.stdout(
    `lint: ${vectors.length} vectors in ${new Set(vectors.map((v) => v.source.file)).size} files: no problems\n`,
  );
  return EXIT_OK;
}

/** `vmemct coverage`: requirement → vectors; exit 1 when a testable requirement has none. */
export async function coverageCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs('coverage', args, COVERAGE_OPTIONS);
  const vectors = loadCorpus('coverage', parsed).filter((v) => !v.retired);
  const byRequirement = new Map<string, string[]>();
  for (const v of vectors)
    for (const r of v.requirements) byRequirement.set(r, [...(byRequirement.get(r) ?? []), v.id]);
  const uncovered = REQUIREMENTS.filter((r) => r.testable && !byRequirement.has(r.id));
  if (parsed.flags.has('json')) {
    io.stdout(
      `${JSON.stringify(
        REQUIREMENTS.map((r) => ({
          id: r.id,
          level: r.level,
          testable: r.testable,
          vectors: byRequirement.get(r.id) ?? [],
        })),
        null,
        2,
      )}\n`,
    );
  } else {
    for (const r of REQUIREMENTS) {
      const ids = byRequirement.get(r.id) ?? [];
      const status = !r.testable
        ? `untestable: ${r.untestableReason}`
        : ids.length === 0
          ? 'NOT COVERED'
          : `${ids.length} vector${ids.length > 1 ? 's' : ''}: ${ids.slice(0, 4).join(', ')}${ids.length > 4 ? ', …' : ''}`;
      io.stdout(`${r.id.padEnd(16)} ${r.level.padEnd(10)} ${status}\n`);
    }
    const testable = REQUIREMENTS.filter((r) => r.testable).length;
    io.stdout(
      `coverage: ${testable - uncovered.length} of ${testable} testable requirements covered by ${vectors.length} vectors; ${REQUIREMENTS.length - testable} untestable${uncovered.length ? `; not covered: ${uncovered.map((r) => r.id).join(', ')}` : ''}\n`,
    );
  }
  return uncovered.length === 0 ? EXIT_OK : EXIT_UNEXPECTED;
}

/** `vmemct docs --out DIR [--force] [--results FILE …] [--vectors PATH …]`: the static documentation site. */
export async function docsCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs('docs', args, DOCS_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`docs: unexpected argument '${parsed.positional[0]}'`);
  const out = parsed.values.get('out');
  if (!out) throw new UsageError('docs: --out DIR is required (the folder to write the site into)');
  const force = parsed.flags.has('force');
  const outCheck = checkOutputFolder(out, force);
  if (outCheck.kind === 'refused') throw new UsageError(`docs: ${outCheck.reason}`);
  const vectors = loadCorpus('docs', parsed);
  const results: ResultsInput[] = [];
  const problems: LoadProblem[] = [];
  for (const file of parsed.lists.get('results') ?? []) {
    const read = readResultsFile(file);
    if (read.kind === 'problems') problems.push(...read.problems);
    else results.push(read.results);
  }
  if (problems.length > 0) throw new VectorFileError('docs', problems);
  const vectorFiles = new Map<string, string>();
  for (const file of new Set(vectors.map((v) => v.source.file))) vectorFiles.set(file, fs.readFileSync(file, 'utf8'));
  let written: string[];
  try {
    written = writeSite(out, buildSite({ vectors, vectorFiles, results }), { force });
  } catch (e) {
    if (e instanceof SiteWriteError) throw new UsageError(`docs: ${e.message}`);
    throw e;
  }
  io.stdout(`docs: ${written.length} files written to ${out}; open ${path.join(out, 'index.html')}\n`);
  return EXIT_OK;
}
