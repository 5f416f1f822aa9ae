/**
 * Expectation files: the known results of one implementation, strict both ways. A vector whose
 * verdict differs from its entry is unexpected (including an unexpected pass); an entry that
 * matches no vector is stale; a glob matching more vectors than allowed is refused.
 */
import * as fs from 'node:fs';
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

/** A loaded expectation file. */
export interface ExpectationSet {
  readonly file: string;
  readonly implementation: string;
  readonly entries: readonly ExpectationEntry[];
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
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    return { problems: [{ file, line: 0, field: '', reason: `cannot read: ${(e as Error).message}` }] };
  }
  const parsed = YamlSource.parse(file, text);
  if (!parsed.source) return { problems: parsed.problems };
  const problems = validateSource(parsed.source, 'https://vmemct.dev/schemas/expectations.json');
  if (problems.length > 0) return { problems };
  const raw = parsed.source.value as {
    implementation: string;
    entries: { id: string; verdict: Verdict; reason: string; link?: string; max_matches?: number }[];
  };
  const entries = raw.entries.map((e, i) => ({
    pattern: e.id,
    verdict: e.verdict,
    reason: e.reason,
    link: e.link,
    maxMatches: e.max_matches ?? (isGlob(e.id) ? DEFAULT_MAX_MATCHES : 1),
    line: parsed.source!.lineOf(['entries', i]),
  }));
  return { set: { file, implementation: raw.implementation, entries }, problems: [] };
}

function isGlob(pattern: string): boolean {
  return pattern.includes('*');
}

/** Compiles an id glob: `*` matches within a dot-separated part, `**` across parts. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (ch === '*') {
      re += '[^.]*';
    } else if (ch === '?') {
      re += '[^.]';
    } else {
      re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
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
    const re = globToRegExp(entry.pattern);
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
    const re = globToRegExp(entry.pattern);
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
