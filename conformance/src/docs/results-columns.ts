/**
 * The results files of the site as columns: each column's label and slug (the name a filter and
 * an anchor use), a lookup of its results by id, and the failure text of one result as the
 * vector pages, the requirement pages and the matrix's hover text show it. One home for the
 * wording, so a failure reads the same everywhere on the site.
 */
import * as path from 'node:path';
import { SEVERITY_TIERS } from '../../../spec/src/index';
import { badge, esc, href } from './html';
import type { FindingRow, ResultRow, ResultsInput } from './site';

/** One results file as a column of the site. */
export interface ResultColumn {
  readonly input: ResultsInput;
  /** The heading: the implementation (with its profile, strictness, file name when shared). */
  readonly label: string;
  /** A name unique among the columns, of letters, digits, `.`, `_` and `-` (anchors, the filter's fragment). */
  readonly slug: string;
  /** The column's results by id. */
  readonly byId: ReadonlyMap<string, ResultRow>;
}

/** The columns of a set of results files, in the order given. */
export function resultColumns(results: readonly ResultsInput[]): ResultColumn[] {
  const baseLabel = (r: ResultsInput): string =>
    `${r.profile && r.adapter === 'model' ? `model:${r.profile}` : r.implementation}${r.strict ? ' (strict)' : ''}`;
  // Columns with the same implementation are told apart by their file names.
  const labels = results.map((r) =>
    results.filter((o) => baseLabel(o) === baseLabel(r)).length > 1 ? `${baseLabel(r)} · ${path.basename(r.file)}` : baseLabel(r),
  );
  const taken = new Set<string>();
  return results.map((input, i) => {
    const base = labels[i]!.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'results';
    let slug = base;
    for (let n = 2; taken.has(slug); n++) slug = `${base}-${n}`;
    taken.add(slug);
    return { input, label: labels[i]!, slug, byId: new Map(input.results.map((x) => [x.id, x])) };
  });
}

/**
 * The fragment id of one result's details on the page that holds them (the vector's page, or the
 * results page for results outside the corpus): the case id, two dashes, the column's slug.
 * Case ids never hold two dashes in a row, so no two results share an id.
 */
export function resultAnchor(id: string, column: ResultColumn): string {
  return `${id.replace(/[^A-Za-z0-9._-]/g, '-')}--${column.slug}`;
}

/** Whether a result has details worth a link: anything but a pass that was expected. */
export function needsDetails(row: ResultRow): boolean {
  return row.verdict !== 'pass' || row.status === 'unexpected';
}

/**
 * A result's severity next to its verdict badge, with its meaning on hover (`meaning: false`
 * leaves the meaning out, for lists that repeat it); nothing without one.
 */
export function severityMark(severity: string | undefined, meaning = true): string {
  if (severity === undefined) return '';
  const title = meaning ? ` title="${esc(SEVERITY_TIERS.find((t) => t.name === severity)?.meaning ?? '')}"` : '';
  return ` <span class="severity s-${esc(severity.replace(/[^a-z-]/g, ''))}"${title}>${esc(severity)}</span>`;
}

/** A result's verdict as badges: the verdict, its severity, and `!` when it was not expected. */
export function verdictMarks(row: ResultRow): string {
  return (
    badge(row.verdict) +
    severityMark(row.severity) +
    (row.status === 'unexpected' ? ` <strong title="expected ${esc(row.expected)}">!</strong>` : '')
  );
}

const REASON_LIMIT = 200;

/** The findings a result's failure text shows: those that are not passes, of the result and of every attempt. */
function shownFindings(row: ResultRow): FindingRow[] {
  const own = (row.findings ?? []).filter((f) => f.verdict !== 'pass');
  const retried = (row.attempts ?? []).flatMap((a) => a.findings.filter((f) => f.verdict !== 'pass'));
  return [...own, ...retried];
}

/** Where a finding happened: its step, or the set-up (step 0). */
function stepText(f: FindingRow): string {
  return f.step === 0 ? 'set-up' : `step ${f.step}`;
}

/**
 * The short reason of a result (plain text, at most 200 characters): the first finding with the
 * result's verdict (else the first that is not a pass) as step and message; a result without one
 * says what was expected.
 */
export function shortReason(row: ResultRow): string {
  const findings = shownFindings(row);
  const first = findings.find((f) => f.verdict === row.verdict) ?? findings[0];
  const text = first
    ? `${stepText(first)}: ${first.message}`
    : row.verdict === 'flaky'
      ? 'failed, then passed on a rerun'
      : `${row.verdict}, expected ${row.expected}`;
  return text.length > REASON_LIMIT ? `${text.slice(0, REASON_LIMIT - 1)}…` : text;
}

/** One finding as a list item: verdict, step, check, message, and expected vs observed when known. */
function findingItem(f: FindingRow): string {
  const values = [
    f.expected !== undefined ? `expected <code>${esc(f.expected)}</code>` : '',
    f.observed !== undefined ? `observed <code>${esc(f.observed)}</code>` : '',
  ].filter((s) => s !== '');
  return `<li>${badge(f.verdict)}${severityMark(f.severity, false)} ${esc(stepText(f))} · <code>${esc(f.check)}</code>: ${esc(f.message)}${values.length ? `<br><span class="values">${values.join(' · ')}</span>` : ''}${f.requirements?.length ? ` <span class="muted">(${esc(f.requirements.join(', '))})</span>` : ''}</li>`;
}

/**
 * The failure text of a result (HTML): what was expected of the run and why, then every finding
 * that is not a pass, with step, check, message and expected vs observed. Empty for an expected pass.
 */
export function failureText(row: ResultRow): string {
  if (!needsDetails(row)) return '';
  const expectation =
    row.status === 'unexpected'
      ? `<p class="expectation">Unexpected: the run expected ${badge(row.expected)}${row.expectationReason ? ` (${esc(row.expectationReason)})` : ''}.</p>`
      : row.expectationReason
        ? `<p class="expectation">Expected ${badge(row.expected)}: ${esc(row.expectationReason)}</p>`
        : '';
  const attempts = row.attempts?.length
    ? `<p class="muted">Attempts: ${row.attempts.map((a) => badge(a.verdict)).join(' → ')}</p>`
    : '';
  const findings = shownFindings(row);
  const list = findings.length
    ? `<ul class="findings">${findings.map(findingItem).join('')}</ul>`
    : `<p class="muted">${esc(shortReason(row))}</p>`;
  return `${expectation}${attempts}${list}`;
}

/**
 * The failure text of one case in one column as a block with {@link resultAnchor} as its id (the
 * target of a failing cell): a heading (`heading`, then the column's label and the verdict),
 * then {@link failureText}.
 */
export function failureBlock(id: string, column: ResultColumn, row: ResultRow, heading = ''): string {
  return `<div class="failure" id="${esc(resultAnchor(id, column))}"><p>${heading}<strong>${esc(column.label)}</strong>: ${verdictMarks(row)}</p>${failureText(row)}</div>`;
}

/** A verdict in a summary line or a small matrix: linked to its failure block at `target` when it has one. */
export function verdictCell(row: ResultRow | undefined, target: string): string {
  if (!row) return '<span class="muted">—</span>';
  return needsDetails(row) ? `<a class="to-failure" href="${target}">${verdictMarks(row)}</a>` : verdictMarks(row);
}

/**
 * One case's results on its page: a line with every column's verdict (each that is not an
 * expected pass linking to its block below), then a {@link failureBlock} per such verdict.
 */
export function caseResults(id: string, columns: readonly ResultColumn[]): string {
  const line = columns
    .map((c) => `<span class="verdict-of">${esc(c.label)} ${verdictCell(c.byId.get(id), href('', resultAnchor(id, c)))}</span>`)
    .join(' · ');
  const blocks = columns.flatMap((c) => {
    const r = c.byId.get(id);
    return r && needsDetails(r) ? [failureBlock(id, c, r)] : [];
  });
  return `<p class="verdicts">Results: ${line}</p>\n${blocks.join('\n')}`;
}
