/**
 * A small option parser for the CLI: `--name value`, `--name=value`, repeatable options and
 * flags. Unknown options are usage errors (exit 3).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from './usage-error';

/** How an option is read. */
export interface OptionSpec {
  readonly kind: 'flag' | 'value' | 'list';
}

/** Parsed options and positional arguments. */
export interface ParsedArgs {
  readonly flags: ReadonlySet<string>;
  readonly values: ReadonlyMap<string, string>;
  readonly lists: ReadonlyMap<string, readonly string[]>;
  readonly positional: readonly string[];
}

/** Parses `args` against `specs` (keys without the leading `--`). */
export function parseArgs(
  command: string,
  args: readonly string[],
  specs: Readonly<Record<string, OptionSpec>>,
): ParsedArgs {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = Object.prototype.hasOwnProperty.call(specs, name) ? specs[name] : undefined;
    if (!spec) throw new UsageError(unknownOptionMessage(command, name, Object.keys(specs)));
    if (spec.kind === 'flag') {
      if (eq >= 0) throw new UsageError(`${command}: --${name} takes no value`);
      flags.add(name);
      continue;
    }
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || (eq < 0 && value.startsWith('--')))
      throw new UsageError(`${command}: --${name} needs a value`);
    value = value.trim();
    if (spec.kind === 'value') {
      if (values.has(name)) throw new UsageError(`${command}: --${name} given twice`);
      values.set(name, value);
    } else {
      lists.set(name, [...(lists.get(name) ?? []), value]);
    }
  }
  return { flags, values, lists, positional };
}

/** The message of an unknown option of `command` ('' for vmemct's own): the nearest valid one when it is close, and where the options are listed. */
export function unknownOptionMessage(command: string, name: string, known: readonly string[]): string {
  const near = nearest(name, known);
  const hint = near === undefined ? '' : `; did you mean --${near}?`;
  const where = command === '' ? 'vmemct' : `vmemct ${command.split(' ')[0]}`;
  return `${command === '' ? '' : `${command}: `}unknown option '--${name}'${hint} (${where} --help lists the options)`;
}

/**
 * Edit distance of `a` and `b` (optimal string alignment: insertions, deletions, substitutions and
 * swaps of two neighbouring characters each cost 1).
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate nearest to `word`, when it is close: at most a third of the word's length away by
 * {@link editDistance} (at least 1, at most 3), or else the only candidate that begins with `word`
 * or that `word` begins with (3 characters or more). Ties between equally near candidates suggest nothing.
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  const scored = candidates.map((c) => ({ c, d: editDistance(word.toLowerCase(), c.toLowerCase()) }));
  const best = Math.min(...scored.map((s) => s.d));
  const closest = scored.filter((s) => s.d === best);
  if (best <= limit && closest.length === 1) return closest[0].c;
  const related = candidates.filter(
    (c) => (word.length >= 3 && c.startsWith(word)) || (c.length >= 3 && word.startsWith(c)),
  );
  return related.length === 1 ? related[0] : undefined;
}

/** The folder holding the package's `package.json` (works from sources and from `dist/`). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (
      fs.existsSync(candidate) &&
      (JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string }).name === 'vmemct'
    )
      return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the vmemct package root');
    dir = parent;
  }
}

/** The package's version, as results files give it. */
export function suiteVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'unknown';
  }
}

/** The corpus shipped with the package. */
export function defaultVectorsDir(): string {
  return path.join(packageRoot(), 'conformance', 'vectors');
}

/**
 * The longest timer Node.js keeps: 2^31 - 1 ms (about 24.8 days). A longer `setTimeout` fires
 * after 1 ms instead, so longer timeouts are refused rather than silently shortened.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** Parses a positive integer option of at most `max` (a larger one is a usage error, never wrapped or rounded). */
export function positiveInt(command: string, name: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1)
    throw new UsageError(`${command}: --${name} must be a positive integer (got '${text}')`);
  if (Number(text) > max) throw new UsageError(`${command}: --${name} must be at most ${max} (got '${text}')`);
  return Number(text);
}
