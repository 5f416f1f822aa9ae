/**
 * The results page of the living spec: a summary per results file, then the matrix of cases ×
 * implementations with filters (implementation, verdict, requirement, tag; the state in the URL
 * fragment). A cell that is anything but an expected pass links to its failure text — on the
 * vector's page, or below the matrix for cases outside the corpus — and shows the short reason on
 * hover and focus.
 */
import * as path from 'node:path';
import { ALL_REQUIREMENTS, SEVERITY_TIERS, VERDICTS } from '../../../spec/src/index';
import type { Vector } from '../loader/types';
import { badge, esc, href, page, table } from './html';
import { MATRIX_SCRIPT, VERDICT_FILTERS } from './matrix-script';
import {
  ResultColumn,
  caseResults,
  needsDetails,
  resultAnchor,
  severityMark,
  shortReason,
  verdictMarks,
} from './results-columns';
import type { ResultRow } from './site';
import { PageOf, vectorLink } from './site-links';

/** One matrix row: a corpus vector, or a case only results files know (a user's vector, a suite check). */
interface MatrixRow {
  readonly id: string;
  /** The first cell. */
  readonly link: string;
  /** The page holding its results' failure text (site-relative; `results.html` for cases outside the corpus). */
  readonly detailsPage: string;
  readonly requirements: readonly string[];
  readonly tags: readonly string[];
}

/** The cases of the results files that are not in the corpus: vectors first, then suite checks, each by id. */
export function casesOutsideCorpus(vectors: readonly Vector[], columns: readonly ResultColumn[]): ResultRow[] {
  const known = new Set(vectors.map((v) => v.id));
  const rowsOf = new Map<string, ResultRow>();
  for (const x of columns.flatMap((c) => c.input.results)) if (!known.has(x.id) && !rowsOf.has(x.id)) rowsOf.set(x.id, x);
  return [...rowsOf.values()].sort((a, b) => Number(a.kind === 'check') - Number(b.kind === 'check') || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function outsideLabel(x: ResultRow): string {
  return x.kind === 'check'
    ? `<code>${esc(x.id)}</code> <span class="muted">(${esc(x.suite ?? '')} check${x.title ? `: ${esc(x.title)}` : ''})</span>`
    : `<code>${esc(x.id)}</code> <span class="muted">(not in this corpus)</span>`;
}

/** A matrix cell: the verdict, linked to the failure text with the short reason on hover and focus when there is one. */
function cell(row: MatrixRow, column: ResultColumn): string {
  const r = column.byId.get(row.id);
  if (!r) return '<td><span class="muted">—</span></td>';
  const data = ` data-v="${esc(r.verdict)}"${r.status === 'unexpected' ? ' data-u' : ''}`;
  if (!needsDetails(r)) return `<td${data}>${verdictMarks(r)}</td>`;
  const target = href(row.detailsPage, resultAnchor(row.id, column));
  return `<td${data}><a class="cell" href="${target}">${verdictMarks(r)}<span class="reason" role="tooltip">${esc(shortReason(r))}</span></a></td>`;
}

function options(values: readonly (readonly [string, string])[]): string {
  return values.map(([value, text]) => `<option value="${esc(value)}">${esc(text)}</option>`).join('');
}

/** The filter form (hidden until its script runs, so a page without scripts shows no dead controls). */
function filterForm(rows: readonly MatrixRow[], columns: readonly ResultColumn[]): string {
  const present = new Set(columns.flatMap((c) => c.input.results.map((r) => r.verdict)));
  const verdicts = VERDICTS.filter((v) => present.has(v)).map((v) => [v, v] as const);
  const cited = new Set(rows.flatMap((r) => r.requirements));
  const catalogued = ALL_REQUIREMENTS.map((r) => r.id).filter((id) => cited.has(id));
  const requirements = [...catalogued, ...[...cited].filter((id) => !catalogued.includes(id)).sort()];
  const tags = [...new Set(rows.flatMap((r) => r.tags))].sort();
  const boxes = columns.map((c) => `<label><input type="checkbox" name="impl" value="${esc(c.slug)}" checked> ${esc(c.label)}</label>`).join('\n  ');
  return `<form id="matrix-filters" class="filters" hidden>
<fieldset><legend>Implementations</legend>
  ${boxes}
</fieldset>
<label>Verdict <select name="verdict"><option value="">any</option>${options(Object.entries(VERDICT_FILTERS))}${options(verdicts)}</select></label>
<label>Requirement <select name="req"><option value="">any</option>${options(requirements.map((id) => [id, id]))}</select></label>
<label>Tag <select name="tag"><option value="">any</option>${options(tags.map((t) => [t, t]))}</select></label>
<button type="button" id="matrix-clear">Show all</button>
<output id="matrix-count"></output>
</form>`;
}

/** The results page. */
export function resultsPage(vectors: readonly Vector[], columns: readonly ResultColumn[], pageOf: PageOf): string {
  if (columns.length === 0) {
    const body = `<h1>Results</h1>
<p>No results files were given. Run implementations with <code>vmemct run --json FILE</code> and generate the site with <code>vmemct docs --out DIR --results FILE …</code> to see a matrix of implementations × vectors here.</p>`;
    return page('Results', 'results.html', body);
  }
  const outside = casesOutsideCorpus(vectors, columns);
  const rows: MatrixRow[] = [
    ...vectors.map((v) => ({ id: v.id, link: vectorLink(v, 0, pageOf), detailsPage: pageOf.get(v.source.file)!, requirements: v.requirements, tags: v.tags })),
    ...outside.map((x) => ({ id: x.id, link: outsideLabel(x), detailsPage: 'results.html', requirements: x.requirements ?? [], tags: x.kind === 'check' ? [`${x.suite ?? ''}-check`] : [] })),
  ];
  const matrixRows = rows.map(
    (row) => `<tr data-req="${esc(row.requirements.join(' '))}" data-tag="${esc(row.tags.join(' '))}"><td>${row.link}</td>${columns.map((c) => cell(row, c)).join('')}</tr>`,
  );
  const summary = columns.map((c) => {
    const counts = new Map<string, number>();
    for (const x of c.input.results) counts.set(x.verdict, (counts.get(x.verdict) ?? 0) + 1);
    const unexpected = c.input.results.filter((x) => x.status === 'unexpected').length;
    return [
      `<a href="#impl=${esc(encodeURIComponent(c.slug))}">${esc(c.label)}</a>`,
      `<code>${esc(path.basename(c.input.file))}</code>`,
      c.input.expectations ? `<code>${esc(c.input.expectations)}</code>` : '<span class="muted">none</span>',
      [...counts].map(([k, n]) => `${badge(k)} ${n}`).join(' '),
      unexpected === 0 ? '0' : `<a href="#impl=${esc(encodeURIComponent(c.slug))}&amp;verdict=unexpected">${unexpected}</a>`,
    ];
  });
  const outsideDetails = outside.length
    ? `<h2 id="outside">Cases outside this corpus</h2>
${outside.map((x) => `<section class="vector" id="${esc(x.id.replace(/[^A-Za-z0-9._-]/g, '-'))}"><h3>${outsideLabel(x)}</h3>\n${caseResults(x.id, columns)}\n</section>`).join('\n')}`
    : '';
  const body = `<h1>Results</h1>
${table(['implementation', 'results file', 'expectations', 'verdicts', 'unexpected'], summary)}
<p class="muted">A <strong>!</strong> marks a verdict that differs from what the run expected (its expectation file, or the default rules). A failing cell names its severity, worst first: ${SEVERITY_TIERS.map((t) => `${severityMark(t.name)} ${esc(t.meaning)}`).join('; ')}. Every cell but an expected pass links to its failure text and shows the reason on hover or focus.</p>
${filterForm(rows, columns)}
<div class="scroll">
<table class="matrix" id="matrix">
<thead><tr><th>vector</th>${columns.map((c) => `<th data-col="${esc(c.slug)}">${esc(c.label)}</th>`).join('')}</tr></thead>
<tbody>
${matrixRows.join('\n')}
</tbody>
</table>
</div>
${outsideDetails}
<script>
${MATRIX_SCRIPT}
</script>`;
  return page('Results', 'results.html', body);
}
