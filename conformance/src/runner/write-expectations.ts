/**
 * Writing an expectation file from a run (`vmemct run --write-expectations FILE`): every vector
 * whose verdict is not a plain pass gets an entry. Given the file as it was, the update keeps the
 * entries (reasons, links, known deviations) that still match, marks the reason of an entry whose
 * verdict moved for review, adds new entries with a placeholder reason and drops the stale ones
 * (now plain passes, or matching no vector). A vector whose only deviations are known deviations of
 * the file needs no entry. Entries are sorted by id, so reruns give stable diffs.
 */
import { stringify as stringifyYaml } from 'yaml';
import type { Verdict } from '../judge/verdicts';
import {
  DEFAULT_MAX_MATCHES,
  ExpectationEntry,
  ExpectationSet,
  KnownDeviation,
  compileGlob,
  isGlob,
} from './expectations';
import { entryNotObserved } from './run';

/** The reason of an entry written for a new non-pass result: the maintainer replaces it with the cause. */
export const PLACEHOLDER_REASON = 'TODO: why (added by vmemct run --write-expectations)';

const REVIEW_PREFIX = /^TODO: review, was [a-z-]+: /;

/** The reason of an entry whose verdict moved from `previous`: the old reason, marked for review. */
export function reviewReason(previous: Verdict, reason: string): string {
  return `TODO: review, was ${previous}: ${reason.replace(REVIEW_PREFIX, '')}`;
}

/**
 * The verdict an entry would need: `pass` when every finding that is not a pass is one a known
 * deviation graded (the rule covers the vector; it needs no entry of its own), else `verdict`.
 */
export function verdictBeyondKnownDeviations(
  verdict: Verdict,
  findings: readonly { readonly check: string; readonly verdict: Verdict }[],
  known: readonly KnownDeviation[],
): Verdict {
  if (verdict === 'pass' || known.length === 0) return verdict;
  const covered = findings.every(
    (f) => f.verdict === 'pass' || known.some((k) => k.check === f.check && k.verdict === f.verdict),
  );
  return covered ? 'pass' : verdict;
}

/** One entry as written. */
export interface WrittenEntry {
  readonly id: string;
  readonly verdict: Verdict;
  readonly reason: string;
  readonly link?: string;
  /** Written for a glob whose cap is not the default. */
  readonly maxMatches?: number;
}

/** A verdict that moved, by vector id (or by glob, when a glob entry kept its id). */
export interface MovedVerdict {
  readonly id: string;
  readonly from: Verdict;
  readonly to: Verdict;
}

/** The written file and what changed against the previous one. */
export interface ExpectationUpdate {
  readonly text: string;
  readonly entries: readonly WrittenEntry[];
  readonly added: readonly string[];
  readonly changed: readonly MovedVerdict[];
  /** Ids (or globs) of entries dropped: now plain passes, or matching no vector. */
  readonly removed: readonly string[];
  readonly kept: number;
}

/** What the update needs of a run. */
export interface ExpectationUpdateInput {
  /** The implementation the adapter names; a previous file's name is kept when the adapter's starts with it. */
  readonly implementation: string;
  /** The file as it was, if it exists. */
  readonly previous?: ExpectationSet;
  /** The known deviations that graded the run, written into the file (default: the previous file's). */
  readonly knownDeviations?: readonly KnownDeviation[];
  /** The verdict of each vector that ran (vectors that did not run keep their entries). */
  readonly results: readonly { readonly id: string; readonly verdict: Verdict }[];
  /** Every vector id of the corpus (a glob is resolved against it). */
  readonly corpus: readonly { readonly id: string }[];
}

/** The expectation file a run gives, and the summary of what changed. */
export function updateExpectations(input: ExpectationUpdateInput): ExpectationUpdate {
  const ran = new Map(input.results.map((r) => [r.id, r.verdict]));
  const entries = new Map<string, WrittenEntry>();
  const claimed = new Set<string>();
  const added: string[] = [];
  const changed: MovedVerdict[] = [];
  const removed: string[] = [];
  let kept = 0;
  const keepAs = (entry: ExpectationEntry, id: string, verdict: Verdict): void => {
    const moved = verdict !== entry.verdict;
    if (moved) changed.push({ id, from: entry.verdict, to: verdict });
    else kept++;
    entries.set(id, {
      id,
      verdict,
      reason: moved ? reviewReason(entry.verdict, entry.reason) : entry.reason,
      ...(entry.link === undefined ? {} : { link: entry.link }),
    });
  };
  for (const entry of input.previous?.entries ?? []) {
    const glob = compileGlob(entry.pattern);
    const matched = input.corpus.filter((v) => glob.test(v.id)).map((v) => v.id);
    for (const id of matched) claimed.add(id);
    // A vector that did not run, or that the adapter could not run, keeps what the entry says of it.
    const verdicts = matched.map((id) => {
      const verdict = ran.get(id);
      return {
        id,
        verdict: verdict === undefined || entryNotObserved(entry.verdict, verdict) ? entry.verdict : verdict,
      };
    });
    const remaining = verdicts.filter((v) => v.verdict !== 'pass');
    if (remaining.length === 0) {
      removed.push(entry.pattern);
    } else if (!isGlob(entry.pattern)) {
      keepAs(entry, entry.pattern, remaining[0].verdict);
    } else if (remaining.length === verdicts.length && remaining.every((v) => v.verdict === entry.verdict)) {
      kept++;
      entries.set(entry.pattern, {
        id: entry.pattern,
        verdict: entry.verdict,
        reason: entry.reason,
        ...(entry.link === undefined ? {} : { link: entry.link }),
        ...(entry.maxMatches === DEFAULT_MAX_MATCHES ? {} : { maxMatches: entry.maxMatches }),
      });
    } else {
      // The glob no longer says one thing of every vector it matches: one entry per vector instead.
      removed.push(entry.pattern);
      for (const v of remaining) keepAs(entry, v.id, v.verdict);
    }
  }
  for (const [id, verdict] of ran) {
    if (verdict === 'pass' || claimed.has(id)) continue;
    added.push(id);
    entries.set(id, { id, verdict, reason: PLACEHOLDER_REASON });
  }
  const sorted = [...entries.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const previous = input.previous;
  const implementation =
    previous && input.implementation.startsWith(previous.implementation)
      ? previous.implementation
      : input.implementation;
  return {
    text: expectationText(implementation, previous, input.knownDeviations ?? previous?.knownDeviations ?? [], sorted),
    entries: sorted,
    added: added.sort(),
    changed: changed.sort((a, b) => (a.id < b.id ? -1 : 1)),
    removed: removed.sort(),
    kept,
  };
}

/** The file's YAML: header, the known deviations unchanged, then the entries. */
function expectationText(
  implementation: string,
  previous: ExpectationSet | undefined,
  knownDeviations: readonly KnownDeviation[],
  entries: readonly WrittenEntry[],
): string {
  const description =
    previous?.description ??
    `Known results of ${implementation}: every vector it does not plainly pass, written by vmemct run --write-expectations. Replace each TODO reason with the cause (and a link), and review each entry marked for review.\n`;
  const doc = {
    format: 'vmemct-expectations/1',
    implementation,
    description,
    ...(knownDeviations.length > 0
      ? {
          known_deviations: knownDeviations.map((d) => ({
            check: d.check,
            verdict: d.verdict,
            reason: d.reason,
            ...(d.link === undefined ? {} : { link: d.link }),
          })),
        }
      : {}),
    entries: entries.map((e) => ({
      id: e.id,
      verdict: e.verdict,
      ...(e.maxMatches === undefined ? {} : { max_matches: e.maxMatches }),
      reason: e.reason,
      ...(e.link === undefined ? {} : { link: e.link }),
    })),
  };
  return stringifyYaml(doc, { lineWidth: 0 });
}

/** The summary printed after writing: counts, then one line per added, changed and removed entry. */
export function updateSummary(file: string, update: ExpectationUpdate): string {
  const lines = [
    `${file}: ${update.entries.length} entries; ${update.added.length} added, ${update.changed.length} changed, ${update.removed.length} removed, ${update.kept} kept`,
    ...update.added.map((id) => `  + ${id}`),
    ...update.changed.map((c) => `  ~ ${c.id}: ${c.from} -> ${c.to} (reason marked for review)`),
    ...update.removed.map((id) => `  - ${id}`),
  ];
  const harness = update.entries.filter((e) => e.verdict === 'error' || e.verdict === 'timeout');
  if (harness.length > 0)
    lines.push(
      `  note: ${harness.length} entr${harness.length > 1 ? 'ies expect' : 'y expects'} a harness error or timeout (${harness.map((e) => e.id).join(', ')}); check the harness before committing them`,
    );
  return `${lines.join('\n')}\n`;
}
