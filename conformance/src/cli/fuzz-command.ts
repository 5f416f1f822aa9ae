/**
 * `vmemct fuzz`: explores an implementation with seeded operations judged against the reference
 * model, and on the first difference writes the shrunk vector that replays it.
 *
 * ```sh
 * vmemct fuzz --adapter qemu --time 60s --seed 7 --out found.yaml
 * vmemct run --adapter qemu --vectors found.yaml        # fails on QEMU, passes on the model
 * ```
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { loadVectorText } from '../loader/load';
import { formatProblem } from '../loader/types';
import { lintReport } from '../runner/lint';
import { FuzzAdapterError } from '../fuzz/device-case';
import { fuzzDevice } from '../fuzz/device-fuzz';
import { fuzzDriver } from '../fuzz/driver-fuzz';
import type { FuzzOptions, FuzzReport } from '../fuzz/fuzz-types';
import { ADAPTER_OPTIONS, createAdapter } from './adapter-options';
import { OptionSpec, parseArgs, positiveInt } from './args';
import { EXIT_OK, EXIT_UNEXPECTED, HarnessError, UsageError } from './usage-error';
import type { CliIo } from './main';

const COMMAND = 'fuzz';

/** The options of `vmemct fuzz` besides the adapter's. */
const FUZZ_ONLY_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  target: { kind: 'value' },
  seed: { kind: 'value' },
  budget: { kind: 'value' },
  time: { kind: 'value' },
  out: { kind: 'value' },
  json: { kind: 'value' },
  quiet: { kind: 'flag' },
  strict: { kind: 'flag' },
};

/** The options of `vmemct fuzz`: an adapter as for run, and the fuzzing's own. */
export const FUZZ_OPTIONS: Readonly<Record<string, OptionSpec>> = { ...ADAPTER_OPTIONS, ...FUZZ_ONLY_OPTIONS };

/** Operations run when neither `--budget` nor `--time` is given. */
export const DEFAULT_FUZZ_OPERATIONS = 10_000;

/** At most this many operations in one run. */
const MAX_OPERATIONS = 1_000_000_000;

/** How often progress is reported on stderr. */
export const PROGRESS_INTERVAL_MS = 2_000;

/** `--time`: `90`, `90s`, `500ms`, `5m`, `1h` as milliseconds. */
export function parseDuration(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m?.[2] ?? 's'];
  const ms = m && unit ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isFinite(ms) || ms <= 0 || ms > 2_147_483_647)
    throw new UsageError(`${COMMAND}: --time must be a positive duration such as 500ms, 90s, 5m or 1h (got '${text}')`);
  return ms;
}

/** The adapter options of the command line, for the replay command (fuzz-only options dropped). */
function adapterArguments(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const [name] = args[i]!.replace(/^--/, '').split('=');
    const spec = FUZZ_ONLY_OPTIONS[name!];
    if (spec) {
      if (spec.kind !== 'flag' && !args[i]!.includes('=')) i++;
      continue;
    }
    out.push(/^[A-Za-z0-9_./:=@+-]+$/.test(args[i]!) ? args[i]! : `'${args[i]!.replace(/'/g, `'\\''`)}'`);
  }
  return out;
}

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** `vmemct fuzz`. */
export async function fuzzCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(COMMAND, args, FUZZ_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`${COMMAND}: unexpected argument '${parsed.positional[0]}'`);
  const values = parsed.values;
  const target = values.get('target') ?? 'device';
  if (target !== 'device' && target !== 'driver')
    throw new UsageError(`${COMMAND}: --target must be device or driver (got '${target}')`);
  const seedText = values.get('seed');
  if (seedText !== undefined && (!/^[0-9]+$/.test(seedText) || Number(seedText) > 0xffff_ffff))
    throw new UsageError(`${COMMAND}: --seed must be an integer from 0 to 4294967295 (got '${seedText}')`);
  const seed = seedText === undefined ? Math.floor(Math.random() * 0x1_0000_0000) : Number(seedText);
  const budgetText = values.get('budget');
  const timeText = values.get('time');
  const operations =
    budgetText !== undefined
      ? positiveInt(COMMAND, 'budget', budgetText, MAX_OPERATIONS)
      : timeText === undefined
        ? DEFAULT_FUZZ_OPERATIONS
        : undefined;
  const timeMs = timeText === undefined ? undefined : parseDuration(timeText);
  const out = values.get('out') ?? `vmemct-fuzz-${seed}.yaml`;
  const outPath = path.resolve(out);
  const jsonText = values.get('json');
  for (const file of [outPath, ...(jsonText === undefined ? [] : [path.resolve(jsonText)])])
    if (!fs.existsSync(path.dirname(file)))
      throw new UsageError(`${COMMAND}: ${file}: the folder ${path.dirname(file)} does not exist`);
  const quiet = parsed.flags.has('quiet');

  const adapter = await createAdapter(parsed, COMMAND);
  let report: FuzzReport;
  try {
    if (!adapter.info.targets.includes(target))
      throw new UsageError(`${COMMAND}: ${adapter.info.implementation} has no ${target} target to fuzz`);
    let lastProgress = Date.now();
    const options: FuzzOptions = {
      seed,
      budget: { operations, timeMs },
      onProgress: (p) => {
        if (quiet || Date.now() - lastProgress < PROGRESS_INTERVAL_MS) return;
        lastProgress = Date.now();
        const rate = p.elapsedMs > 0 ? Math.round((p.operations * 1000) / p.elapsedMs) : 0;
        io.stderr(
          `${COMMAND}: ${formatCount(p.operations)} operations in ${(p.elapsedMs / 1000).toFixed(1)} s (${formatCount(rate)}/s)\n`,
        );
      },
    };
    const replay = `vmemct run ${adapterArguments(args).join(' ')} --vectors ${out}`.replace(/ +/g, ' ');
    report =
      target === 'device'
        ? await fuzzDevice(adapter, {
            ...options,
            strict: parsed.flags.has('strict'),
            reference: createModelAdapter(),
            replayHint: replay,
          })
        : await fuzzDriver(adapter, {
            ...options,
            strict: parsed.flags.has('strict'),
            reference: createModelAdapter(),
            replayHint: replay,
          });
    if (report.finding) fs.writeFileSync(outPath, report.finding.vectorYaml);
    if (jsonText !== undefined)
      fs.writeFileSync(
        path.resolve(jsonText),
        `${JSON.stringify({ ...report, vectorFile: report.finding ? out : undefined }, null, 2)}\n`,
      );
    io.stdout(summary(report, adapter.info.implementation, out, replay, args));
  } catch (e) {
    if (e instanceof FuzzAdapterError) throw new HarnessError(`${COMMAND}: ${e.message}`);
    throw e;
  } finally {
    await adapter.dispose();
  }
  if (!report.finding) return EXIT_OK;
  const problems = await lintProblems(outPath, report.finding.vectorYaml);
  if (problems.length > 0)
    throw new HarnessError(
      `${COMMAND}: the written vector does not lint clean (a bug of the fuzzer):\n${problems.join('\n')}`,
    );
  return EXIT_UNEXPECTED;
}

/** Lint problems of the written vector (none expected). */
async function lintProblems(file: string, text: string): Promise<string[]> {
  const loaded = loadVectorText(file, text);
  const lint = await lintReport(loaded.vectors, (setup, steering) =>
    createModelAdapter({ steering }).openDevice(setup),
  );
  return [...loaded.problems, ...lint.problems].map((p) => `  ${formatProblem(p)}`);
}

/** The final summary: operations, rate, coverage, and the finding with where it was written and how to replay it. */
function summary(
  report: FuzzReport,
  implementation: string,
  out: string,
  replay: string,
  args: readonly string[],
): string {
  const rate = report.elapsedMs > 0 ? Math.round((report.operations * 1000) / report.elapsedMs) : report.operations;
  const groups = new Map<string, string[]>();
  for (const [key, count] of Object.entries(report.coverage)) {
    const [group, ...rest] = key.split(':');
    const list = groups.get(group!) ?? [];
    list.push(`${rest.join(':')} ${formatCount(count)}`);
    groups.set(group!, list);
  }
  const lines = [
    `${COMMAND}: ${implementation} (${report.target}), seed ${report.seed}: ${formatCount(report.operations)} operations in ${(report.elapsedMs / 1000).toFixed(1)} s (${formatCount(rate)} operations/s)`,
    ...[...groups].map(([group, list]) => `  ${group}: ${list.join(', ')}`),
  ];
  const f = report.finding;
  if (!f) lines.push('no difference from the reference model found');
  else {
    const seedArgs = args.some((a) => a === '--seed' || a.startsWith('--seed='))
      ? args
      : [...args, '--seed', String(report.seed)];
    lines.push(
      `difference: ${f.summary}`,
      `  shrunk from ${f.operationsBeforeShrink} to ${f.operationsAfterShrink} operations; vector ${f.vectorId} written to ${out}`,
      `  replay the vector: ${replay}`,
      `  replay the run:    vmemct fuzz ${seedArgs.join(' ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
