/**
 * The requirement pages of the living spec: the index of every statement (§5.15, then the
 * virtio core statements and the suite's own expectations), and one page per statement with its
 * paraphrase, kind and section, the vectors that cite it, and each results file's verdict per
 * vector with the failure text — the page to open when a requirement fails.
 */
import {
  ALL_REQUIREMENTS,
  CORE_REQUIREMENTS,
  REQUIREMENTS,
  Requirement,
  SUITE_REQUIREMENTS,
  requirementSource,
} from '../../../spec/src/index';
import type { Vector } from '../loader/types';
import { anchor, badge, esc, href, page, prose, table } from './html';
import { ResultColumn, failureBlock, needsDetails, resultAnchor, verdictCell } from './results-columns';
import { PageOf, requirementPagePath, vectorLink } from './site-links';
import type { ResultRow } from './site';

/** A row of a requirement's results: a corpus vector, or a case only a results file knows. */
export type CitingCase = { readonly kind: 'vector'; readonly vector: Vector } | { readonly kind: 'outside'; readonly row: ResultRow };

/** What the requirement pages are built from. */
export interface RequirementPagesInput {
  /** The cases that cite each requirement: corpus vectors first, then cases from results files. */
  readonly citing: ReadonlyMap<string, readonly CitingCase[]>;
  readonly pageOf: PageOf;
  readonly columns: readonly ResultColumn[];
}

/** Where a statement comes from, in words. */
const SOURCE_TEXT = {
  mem: 'VIRTIO 1.4 §5.15 (the virtio-mem device)',
  core: 'the virtio core chapters of VIRTIO 1.4',
  suite: "this suite's own expectation, beyond the letter of the specification",
} as const;

function caseId(c: CitingCase): string {
  return c.kind === 'vector' ? c.vector.id : c.row.id;
}

function caseLink(c: CitingCase, depth: number, pageOf: PageOf): string {
  if (c.kind === 'vector') return vectorLink(c.vector, depth, pageOf) + (c.vector.retired ? ` ${badge('retired')}` : '');
  const where = c.row.kind === 'check' ? `${c.row.suite ?? ''} check` : 'not in this corpus';
  return `<code>${esc(c.row.id)}</code> <span class="muted">(${esc(where)})</span>`;
}

/** The requirements index: every statement with level, section, paraphrase and the vectors that check it. */
export function requirementsPage(input: RequirementPagesInput): string {
  const row = (r: Requirement): string[] => {
    const covering = (input.citing.get(r.id) ?? []).filter((c): c is Extract<CitingCase, { kind: 'vector' }> => c.kind === 'vector' && !c.vector.retired);
    const coverage = !r.testable
      ? `<span class="muted">untestable: ${esc(r.untestableReason ?? '')}</span>`
      : covering.length === 0
        ? badge('missing')
        : `${covering.length} vector${covering.length > 1 ? 's' : ''}: ${covering.map((c) => vectorLink(c.vector, 0, input.pageOf)).join(', ')}`;
    return [
      `<span id="${anchor(r.id)}"><a href="${href(requirementPagePath(r.id))}"><code>${esc(r.id)}</code></a></span>`,
      `<span class="level">${esc(r.level)}</span>`,
      `§${esc(r.section)}`,
      prose(r.summary) + (r.needs.length ? ` <span class="muted">(needs ${esc(r.needs.join(', '))})</span>` : ''),
      coverage,
    ];
  };
  const head = ['id', 'level', 'section', 'paraphrase', 'checked by'];
  const sides = (['device', 'driver'] as const).map((side) => {
    const list = REQUIREMENTS.filter((r) => r.side === side);
    return `<h2 id="${side}">${side === 'device' ? 'Device' : 'Driver'} requirements (${list.length})</h2>\n${table(head, list.map(row))}`;
  });
  // Beyond §5.15: the virtio core statements and the suite's own expectations, in their own sections.
  const beyond = [
    ['core', 'Virtio core statements', CORE_REQUIREMENTS, 'Normative statements of the virtio core chapters (§2–§4) that a virtio-mem device shows through its requests, configuration and status; the runner checks some of them in every vector.'],
    ['suite', "The suite's own expectations", SUITE_REQUIREMENTS, 'Expectations beyond the letter of the specification that any useful implementation meets.'],
  ] as const;
  const beyondSections = beyond
    .filter(([, , list]) => list.length > 0)
    .map(([id, title, list, intro]) => `<h2 id="${id}">${title} (${list.length})</h2>\n<p>${esc(intro)}</p>\n${table(head, list.map(row))}`);
  const body = `<h1>Requirements</h1>
<p>All ${REQUIREMENTS.length} normative statements of VIRTIO 1.4 §5.15, in document order, each paraphrased, with the vectors that check it or why none can; then the statements beyond §5.15 that vectors and checks cite. Each id opens the statement's own page, with every implementation's results for it.</p>
${sides.join('\n')}
${beyondSections.join('\n')}`;
  return page('Requirements', 'requirements.html', body);
}

/** Counts of a column's verdicts over some cases, as badges. */
function verdictCounts(rows: readonly (ResultRow | undefined)[]): string {
  const counts = new Map<string, number>();
  for (const r of rows) if (r) counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${badge(k)} ${n}`).join(' ') || '<span class="muted">no results</span>';
}

/**
 * The results of a requirement's cases: a small matrix (case × column, each verdict that is not
 * an expected pass linking to its failure text below), then the failure text of each.
 */
function requirementResults(cases: readonly CitingCase[], columns: readonly ResultColumn[], pageOf: PageOf): string {
  const rows = cases.map(
    (c) => `<tr><td>${caseLink(c, 1, pageOf)}</td>${columns.map((col) => `<td>${verdictCell(col.byId.get(caseId(c)), href('', resultAnchor(caseId(c), col)))}</td>`).join('')}</tr>`,
  );
  const totals = `<tr><th>verdicts</th>${columns.map((col) => `<td>${verdictCounts(cases.map((c) => col.byId.get(caseId(c))))}</td>`).join('')}</tr>`;
  const head = `<tr><th>vector</th>${columns.map((col) => `<th><a href="../results.html#impl=${esc(encodeURIComponent(col.slug))}">${esc(col.label)}</a></th>`).join('')}</tr>`;
  const blocks = cases.flatMap((c) =>
    columns.flatMap((col) => {
      const r = col.byId.get(caseId(c));
      return r && needsDetails(r) ? [failureBlock(caseId(c), col, r, `${caseLink(c, 1, pageOf)} · `)] : [];
    }),
  );
  return `<div class="scroll">
<table class="matrix">
<thead>${head}</thead>
<tbody>
${rows.join('\n')}
</tbody>
<tfoot>${totals}</tfoot>
</table>
</div>
<h2 id="failures">Failures and other findings (${blocks.length})</h2>
${blocks.length ? blocks.join('\n') : '<p class="muted">Every result above is a pass the run expected.</p>'}`;
}

/** The page of one requirement. */
export function requirementPage(r: Requirement, input: RequirementPagesInput): string {
  const cases = input.citing.get(r.id) ?? [];
  const vectors = cases.filter((c): c is Extract<CitingCase, { kind: 'vector' }> => c.kind === 'vector');
  const facts = table(
    ['level', 'side', 'topic', 'section', 'source', 'testable'],
    [
      [
        `<span class="level">${esc(r.level)}</span>`,
        esc(r.side),
        esc(r.topic),
        `§${esc(r.section)}`,
        esc(SOURCE_TEXT[requirementSource(r)]),
        r.testable ? `yes${r.needs.length ? ` (needs ${esc(r.needs.join(', '))})` : ''}` : `no: ${esc(r.untestableReason ?? '')}`,
      ],
    ],
  );
  const vectorTable = vectors.length
    ? table(
        ['vector', 'title', 'target', 'tags'],
        vectors.map((c) => [caseLink(c, 1, input.pageOf), esc(c.vector.title), esc(c.vector.target), esc(c.vector.tags.join(', '))]),
      )
    : `<p class="muted">${r.testable ? 'No vector cites this statement yet.' : 'No vector can check this statement.'}</p>`;
  const results =
    input.columns.length === 0
      ? '<p class="muted">No results files were given: generate the site with <code>vmemct docs --results FILE …</code> to see each implementation here.</p>'
      : cases.length === 0
        ? '<p class="muted">No vector or check cites this statement, so no results file has a result for it.</p>'
        : requirementResults(cases, input.columns, input.pageOf);
  const body = `<p><a href="${href(`../requirements.html`, anchor(r.id))}">All requirements</a> · <a href="../results.html#req=${esc(encodeURIComponent(r.id))}">Its rows in the results matrix</a></p>
<h1><code>${esc(r.id)}</code></h1>
<p class="paraphrase">${prose(r.summary)}</p>
${facts}
<p class="muted">The sentence above paraphrases the statement; the normative text is the specification's.</p>
<h2 id="vectors">Vectors (${vectors.length})</h2>
${vectorTable}
<h2 id="results">Results</h2>
${results}`;
  return page(r.id, 'requirements.html', body, 1);
}

/** Every requirement page: site-relative path → content. */
export function requirementPages(input: RequirementPagesInput): Map<string, string> {
  return new Map(ALL_REQUIREMENTS.map((r) => [requirementPagePath(r.id), requirementPage(r, input)] as const));
}
