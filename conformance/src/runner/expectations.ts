/**
 * Expectation files: the known results of one implementation, strict both ways. A vector whose
 * verdict differs from its entry is unexpected (including an unexpected pass); an entry that
 * matches no vector is stale; a glob matching more vectors than allowed is refused.
 */
import { readInputFile } from '../loader/input-file';
import type { LoadProblem } from '../loader/types';
import { YamlSource, validateSource } from '../loader/yaml-source';
import type { Verdict } from '../judge/verdicts';

/** One entry. */
export interface ExpectationEntry {
  readonly pattern: string;
  readonly verdict: Verdict;
  readonly reason: string;
  readonly link?: string;
  readonly maxMatches: number;
  readonly line: number;
}

/**
 * A rule the implementation breaks wherever it applies (e.g. QEMU 7.2 and config_generation): every
 * finding of `check` gets `verdict`, and its message the reason, before the vector's verdict is taken.
 */
export interface KnownDeviation {
  readonly check: string;
  readonly verdict: Verdict;
  readonly reason: string;
  readonly link?: string;
  readonly line: number;
}

/** A loaded expectation file. */
export interface ExpectationSet {
  readonly file: string;
  readonly implementation: string;
  readonly description?: string;
  readonly entries: readonly ExpectationEntry[];
  readonly knownDeviations?: readonly KnownDeviation[];
}

/** `findings` with the known deviations of `set` applied (the same array when none applies). */
export function applyKnownDeviations<
  F extends { readonly check: string; readonly verdict: Verdict; readonly message: string },
>(set: ExpectationSet | undefined, findings: F[]): F[] {
  const known = set?.knownDeviations ?? [];
  if (known.length === 0 || !findings.some((f) => known.some((k) => k.check === f.check))) return findings;
  return findings.map((f) => {
    // Only failing findings are graded: a harness error or a timeout of the same check stays what it is.
    const failing = f.verdict === 'fail' || f.verdict === 'non-strict';
    const k = failing ? known.find((d) => d.check === f.check) : undefined;
    return k
      ? { ...f, verdict: k.verdict, message: `${f.message} (known deviation, ${set!.file}:${k.line}: ${k.reason})` }
      : f;
  });
}

/** What an entry names: a vector or a suite check, by id. */
interface Case {
  readonly id: string;
}

/** What the cases are called in messages. */
type CaseNoun = 'vector' | 'check';

/** Default cap on how many vectors one glob entry may match. */
export const DEFAULT_MAX_MATCHES = 20;

/** Loads an expectation file; problems name file and line. */
export function loadExpectations(file: string): { set?: ExpectationSet; problems: LoadProblem[] } {
  const read = readInputFile(file, 'expectation file');
  if (read.kind === 'problem') return { problems: [read.problem] };
  const parsed = YamlSource.parse(file, read.text);
  if (!parsed.source) return { problems: parsed.problems };
  const problems = validateSource(parsed.source, 'https://vmemct.dev/schemas/expectations.json');
  if (problems.length > 0) return { problems };
  const raw = parsed.source.value as {
    implementation: string;
    description?: string;
    entries: { id: string; verdict: Verdict; reason: string; link?: string; max_matches?: number }[];
    known_deviations?: { check: string; verdict: Verdict; reason: string; link?: string }[];
  };
  const knownDeviations = (raw.known_deviations ?? []).map((d, i) => ({
    check: d.check,
    verdict: d.verdict,
    reason: d.reason,
    link: d.link,
    line: parsed.source!.lineOf(['known_deviations', i]),
  }));
  const entries = raw.entries.map((e, i) => ({
    pattern: e.id,
    verdict: e.verdict,
    reason: e.reason,
    link: e.link,
    maxMatches: e.max_matches ?? (isGlob(e.id) ? DEFAULT_MAX_MATCHES : 1),
    line: parsed.source!.lineOf(['entries', i]),
  }));
  return {
    set: { file, implementation: raw.implementation, description: raw.description, entries, knownDeviations },
    problems: [],
  };
}

/** True when an entry's id is a glob (it may match several vectors). */
export function isGlob(pattern: string): boolean {
  return pattern.includes('*');
}

/** A compiled id glob. */
export interface IdGlob {
  /** True when the whole of `id` matches. */
  test(id: string): boolean;
}

type GlobToken = { readonly kind: 'char'; readonly char: string } | { readonly kind: 'one' | 'part' | 'any' };

/**
 * Compiles an id glob: `*` matches within a dot-separated part, `**` across parts, `?` is one
 * character other than a dot; everything else is literal. Matching simulates the pattern as an
 * automaton over its positions, so it takes time proportional to id length × pattern length
 * whatever the pattern (no backtracking: `a*******b` cannot stall a run).
 */
export function compileGlob(glob: string): IdGlob {
  const tokens: GlobToken[] = [];
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*' && glob[i + 1] === '*') {
      tokens.push({ kind: 'any' });
      i++;
    } else if (ch === '*') tokens.push({ kind: 'part' });
    else if (ch === '?') tokens.push({ kind: 'one' });
    else tokens.push({ kind: 'char', char: ch });
  }
  const size = tokens.length + 1;
  // Positions reachable without consuming input: a star may match nothing.
  const close = (states: Uint8Array): void => {
    for (let j = 0; j < tokens.length; j++)
      if (states[j] && tokens[j].kind !== 'char' && tokens[j].kind !== 'one') states[j + 1] = 1;
  };
  return {
    test(id: string): boolean {
      let states = new Uint8Array(size);
      let next = new Uint8Array(size);
      states[0] = 1;
      close(states);
      for (const ch of id) {
        next.fill(0);
        let alive = false;
        for (let j = 0; j < tokens.length; j++) {
          if (!states[j]) continue;
          const t = tokens[j];
          if (t.kind === 'any' || (t.kind === 'part' && ch !== '.')) next[j] = 1;
          else if ((t.kind === 'one' && ch !== '.') || (t.kind === 'char' && t.char === ch)) next[j + 1] = 1;
          else continue;
          alive = true;
        }
        if (!alive) return false;
        close(next);
        [states, next] = [next, states];
      }
      return states[tokens.length] === 1;
    },
  };
}

/**
 * Problems of an expectation file against the corpus that make it unusable (exit 3): a glob
 * matching more than `max_matches` vectors, or two entries claiming the same vector.
 */
export function expectationProblems(
  set: ExpectationSet,
  allVectors: readonly Case[],
  noun: CaseNoun = 'vector',
): LoadProblem[] {
  const problems: LoadProblem[] = [];
  const claimedBy = new Map<string, ExpectationEntry>();
  for (const entry of set.entries) {
    const re = compileGlob(entry.pattern);
    const matched = allVectors.filter((v) => re.test(v.id));
    if (matched.length > entry.maxMatches) {
      problems.push({
        file: set.file,
        line: entry.line,
        field: 'id',
        reason: `'${entry.pattern}' matches ${matched.length} ${noun}s, more than max_matches ${entry.maxMatches}; list them or raise max_matches`,
      });
    }
    for (const v of matched) {
      const earlier = claimedBy.get(v.id);
      if (earlier)
        problems.push({
          file: set.file,
          line: entry.line,
          field: 'id',
          reason: `'${entry.pattern}' matches ${v.id}, already claimed by the entry at line ${earlier.line}`,
        });
      else claimedBy.set(v.id, entry);
    }
  }
  return problems;
}

/** Entry for each vector id, and the entries that match no vector (stale). */
export function matchExpectations(
  set: ExpectationSet,
  allVectors: readonly Case[],
  noun: CaseNoun = 'vector',
): { byId: Map<string, ExpectationEntry>; stale: { id: string; reason: string }[] } {
  const byId = new Map<string, ExpectationEntry>();
  const stale: { id: string; reason: string }[] = [];
  for (const entry of set.entries) {
    const re = compileGlob(entry.pattern);
    const matched = allVectors.filter((v) => re.test(v.id));
    if (matched.length === 0) {
      stale.push({ id: entry.pattern, reason: `${set.file}:${entry.line}: matches no ${noun}` });
      continue;
    }
    if (matched.length > entry.maxMatches) {
      stale.push({
        id: entry.pattern,
        reason: `${set.file}:${entry.line}: matches ${matched.length} ${noun}s, more than max_matches ${entry.maxMatches}`,
      });
      continue;
    }
    for (const v of matched) if (!byId.has(v.id)) byId.set(v.id, entry);
  }
  return { byId, stale };
}
