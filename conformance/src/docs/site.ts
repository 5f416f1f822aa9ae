/**
 * The living spec: a static HTML site generated from `spec/` (layouts, requirements) and
 * `conformance/` (vectors, results files), plus the model's profiles. Every page is a plain file
 * with relative links, so the site opens from disk without a server.
 */
import * as path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  CORE_REQUIREMENTS,
  FEATURE_BITS,
  LAYOUTS,
  REQUIREMENTS,
  Requirement,
  SEVERITY_TIERS,
  SIZE_STYLES,
  SUITE_REQUIREMENTS,
  formatSize,
} from '../../../spec/src/index';
import type { Vector } from '../loader/types';
import { evaluateSetup } from '../runner/setup';
import { CaseResult, RunResult, caseId } from '../runner/run';
import { anchor, badge, esc, href, page, prose, STYLE, table } from './html';
import { byteDiagram, fieldTable, legend } from './diagrams';
import { profilesPage } from './profiles-page';
import { HARNESS_SCHEMAS_FILE, harnessPage, harnessSchemasFile } from './harness-page';

/** One results file (`vmemct run --json`), as much of it as the matrix needs. */
export interface ResultsInput {
  /** Where it came from (for messages). */
  readonly file: string;
  readonly implementation: string;
  readonly adapter: string;
  readonly profile: string | null;
  readonly expectations: string | null;
  /** Whether the run counted SHOULD-level deviations as failures. */
  readonly strict?: boolean;
  readonly results: readonly ResultRow[];
}

/** One result of a results file: a vector's, or (with `kind: 'check'`) a suite check's. */
export interface ResultRow {
  readonly id: string;
  readonly verdict: string;
  /** The worst severity of its findings (results format 2; absent when none fails). */
  readonly severity?: string;
  readonly expected: string;
  readonly status: string;
  readonly kind?: 'vector' | 'check';
  /** The check's suite and title (checks only; vectors are looked up in the corpus). */
  readonly suite?: string;
  readonly title?: string;
}

/** What the site is generated from. */
export interface SiteInput {
  readonly vectors: readonly Vector[];
  /** The YAML text of each vector file, by the path in `Vector.source.file`. */
  readonly vectorFiles: ReadonlyMap<string, string>;
  readonly results: readonly ResultsInput[];
}

/** The matrix column of a run made in-process (what `vmemct run --json` would have written). */
export function resultsOfRun(run: RunResult<CaseResult>, column: Omit<ResultsInput, 'results'>): ResultsInput {
  return {
    ...column,
    results: run.results.map((r) => ({
      id: caseId(r),
      verdict: r.verdict,
      ...(r.severity ? { severity: r.severity } : {}),
      expected: r.expected,
      status: r.unexpected ? 'unexpected' : 'expected',
      ...(r.kind === 'check' ? { kind: 'check' as const, suite: r.suite, title: r.check.title } : {}),
    })),
  };
}

/**
 * The page of each vector file, one per file: its folder and base name
 * (`conformance/vectors/device/plug.yaml` → `vectors/device-plug.html`). Files that would share a
 * page are named by their whole path below the folder all files share, and a number is added to
 * any name still taken (compared without case, for case-insensitive file systems). Characters
 * other than letters, digits, `.`, `_` and `-` become `_`.
 */
export function vectorPagePaths(files: readonly string[]): Map<string, string> {
  const sorted = [...new Set(files)].sort();
  const parts = new Map(sorted.map((f) => [f, f.split(/[\\/]/).filter((p) => p !== '')] as const));
  const folders = [...parts.values()].map((p) => p.slice(0, -1));
  let shared = 0;
  while (folders.length > 0 && folders.every((f) => shared < f.length && f[shared] === folders[0]![shared])) shared++;
  const safe = (name: string): string => name.replace(/\.ya?ml$/, '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.*$/, '_');
  const short = (f: string): string => {
    const p = parts.get(f)!;
    return safe(`${p[p.length - 2] ?? 'vectors'}-${p[p.length - 1] ?? ''}`);
  };
  const long = (f: string): string => safe(parts.get(f)!.slice(shared).join('-'));
  const shortCount = new Map<string, number>();
  for (const f of sorted) shortCount.set(short(f), (shortCount.get(short(f)) ?? 0) + 1);
  const taken = new Set<string>();
  const pages = new Map<string, string>();
  for (const f of sorted) {
    const base = shortCount.get(short(f))! > 1 ? long(f) : short(f);
    let name = base;
    for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}-${n}`;
    taken.add(name.toLowerCase());
    pages.set(f, `vectors/${name}.html`);
  }
  return pages;
}

/** Builds every page: site-relative path → content. */
export function buildSite(input: SiteInput): Map<string, string> {
  const pages = new Map<string, string>();
  const active = input.vectors.filter((v) => !v.retired);
  const byRequirement = new Map<string, Vector[]>();
  for (const v of active) for (const r of v.requirements) byRequirement.set(r, [...(byRequirement.get(r) ?? []), v]);
  const files = [...new Set(input.vectors.map((v) => v.source.file))];
  const pageOf = vectorPagePaths(files);

  pages.set('style.css', STYLE);
  pages.set('index.html', indexPage(active, files));
  pages.set('protocol.html', protocolPage());
  pages.set('requirements.html', requirementsPage(byRequirement, pageOf));
  pages.set('vectors.html', vectorIndexPage(input.vectors, files, pageOf));
  for (const file of files) pages.set(pageOf.get(file)!, vectorFilePage(file, input.vectors.filter((v) => v.source.file === file), input.vectorFiles.get(file)));
  pages.set('results.html', resultsPage(input.vectors, input.results, pageOf));
  pages.set('profiles.html', profilesPage());
  pages.set('harness.html', harnessPage());
  pages.set(HARNESS_SCHEMAS_FILE, harnessSchemasFile());
  return pages;
}

/** Each vector file's page, site-relative (from {@link vectorPagePaths}). */
type PageOf = ReadonlyMap<string, string>;

function vectorLink(v: Vector, depth: number, pageOf: PageOf): string {
  return `<a href="${href('../'.repeat(depth) + pageOf.get(v.source.file)!, anchor(v.id))}"><code>${esc(v.id)}</code></a>`;
}

function requirementLink(id: string, depth: number): string {
  return `<a href="${href(`${'../'.repeat(depth)}requirements.html`, anchor(id))}"><code>${esc(id)}</code></a>`;
}

function indexPage(vectors: readonly Vector[], files: readonly string[]): string {
  const device = REQUIREMENTS.filter((r) => r.side === 'device').length;
  const testable = REQUIREMENTS.filter((r) => r.testable).length;
  const body = `<h1>virtio-mem, readable</h1>
<p>The virtio memory device (device ID 24) lets a hypervisor grow and shrink a guest's memory in blocks: the device offers a region, the host sets a <code>requested_size</code>, and the guest's driver plugs and unplugs blocks with requests on one virtqueue until <code>plugged_size</code> matches. These pages show the protocol as bytes, every normative statement of VIRTIO 1.4 §5.15 with the tests that check it, every test vector, and how implementations fare.</p>
<div class="cards">
  <a href="protocol.html"><strong>Protocol bytes</strong><br>The 56-byte configuration space, the request and the response, byte by byte.</a>
  <a href="requirements.html"><strong>${REQUIREMENTS.length} requirements</strong><br>${device} for the device, ${REQUIREMENTS.length - device} for the driver; ${testable} testable, each with its vectors.</a>
  <a href="vectors.html"><strong>${vectors.length} vectors</strong><br>In ${files.length} files: initial state, steps and the outcomes each step allows.</a>
  <a href="results.html"><strong>Results</strong><br>Implementations × vectors, from <code>vmemct run --json</code> files.</a>
  <a href="profiles.html"><strong>Profiles</strong><br>Where QEMU, cloud-hypervisor and Firecracker decide differently.</a>
  <a href="harness.html"><strong>Harness protocol</strong><br>How to test your own device or driver from any language.</a>
</div>
<h2>Verdict classes</h2>
<p>A vector lists the outcomes it allows for each step and the class of each: ${['pass', 'acceptable', 'non-strict', 'informational', 'fail'].map(badge).join(' ')}. A run also reports ${['unsupported', 'error', 'timeout'].map(badge).join(' ')} when the target cannot be tested.</p>`;
  return page('Overview', 'index.html', body);
}

function protocolPage(): string {
  const layouts = [LAYOUTS.config, LAYOUTS.request, LAYOUTS.response];
  const sections = layouts.map(
    (l) => `<h2 id="${esc(l.id)}">struct ${esc(l.structName)} — ${l.size} bytes (§${esc(l.section)})</h2>
${byteDiagram(l)}
${fieldTable(l)}`,
  );
  const features = table(
    ['bit', 'name', 'since', 'meaning'],
    FEATURE_BITS.map((f) => [String(f.value), `<code>${esc(f.name)}</code>`, esc(f.since), esc(f.meaning)]),
  );
  const body = `<h1>Protocol bytes</h1>
<p>All multi-byte fields are little-endian. Boxes are coloured by who may change the field:</p>
${legend(layouts)}
${sections.join('\n')}
<h2 id="features">Feature bits</h2>
${features}`;
  return page('Protocol bytes', 'protocol.html', body);
}

function requirementsPage(byRequirement: ReadonlyMap<string, readonly Vector[]>, pageOf: PageOf): string {
  const row = (r: Requirement): string[] => {
    const covering = byRequirement.get(r.id) ?? [];
    const coverage = !r.testable
      ? `<span class="muted">untestable: ${esc(r.untestableReason ?? '')}</span>`
      : covering.length === 0
        ? badge('missing')
        : `${covering.length} vector${covering.length > 1 ? 's' : ''}: ${covering.map((v) => vectorLink(v, 0, pageOf)).join(', ')}`;
    return [`<span id="${anchor(r.id)}"><code>${esc(r.id)}</code></span>`, `<span class="level">${esc(r.level)}</span>`, `§${esc(r.section)}`, prose(r.summary) + (r.needs.length ? ` <span class="muted">(needs ${esc(r.needs.join(', '))})</span>` : ''), coverage];
  };
  const sides = (['device', 'driver'] as const).map((side) => {
    const list = REQUIREMENTS.filter((r) => r.side === side);
    return `<h2 id="${side}">${side === 'device' ? 'Device' : 'Driver'} requirements (${list.length})</h2>\n${table(['id', 'level', 'section', 'paraphrase', 'checked by'], list.map(row))}`;
  });
  // Beyond §5.15: the virtio core statements and the suite's own expectations, in their own sections.
  const beyond = [
    ['core', 'Virtio core statements', CORE_REQUIREMENTS, 'Normative statements of the virtio core chapters (§2–§4) that a virtio-mem device shows through its requests, configuration and status; the runner checks some of them in every vector.'],
    ['suite', "The suite's own expectations", SUITE_REQUIREMENTS, 'Expectations beyond the letter of the specification that any useful implementation meets.'],
  ] as const;
  const beyondSections = beyond
    .filter(([, , list]) => list.length > 0)
    .map(([id, title, list, intro]) => `<h2 id="${id}">${title} (${list.length})</h2>\n<p>${esc(intro)}</p>\n${table(['id', 'level', 'section', 'paraphrase', 'checked by'], list.map(row))}`);
  const body = `<h1>Requirements</h1>
<p>All ${REQUIREMENTS.length} normative statements of VIRTIO 1.4 §5.15, in document order, each paraphrased, with the vectors that check it or why none can; then the statements beyond §5.15 that vectors and checks cite.</p>
${sides.join('\n')}
${beyondSections.join('\n')}`;
  return page('Requirements', 'requirements.html', body);
}

function vectorIndexPage(vectors: readonly Vector[], files: readonly string[], pageOf: PageOf): string {
  const rows = files.map((file) => {
    const inFile = vectors.filter((v) => v.source.file === file);
    return [`<a href="${href(pageOf.get(file)!)}">${esc(displayFile(file))}</a>`, esc(inFile[0]?.target ?? ''), String(inFile.length), esc([...new Set(inFile.flatMap((v) => v.tags))].slice(0, 8).join(', '))];
  });
  const all = table(
    ['vector', 'title', 'requirements'],
    vectors.map((v) => [vectorLink(v, 0, pageOf) + (v.retired ? ` ${badge('retired')}` : ''), esc(v.title), v.requirements.map((r) => requirementLink(r, 0)).join(' ')]),
  );
  const body = `<h1>Vectors</h1>
<p>${vectors.length} vectors in ${files.length} files. Each runs against a fresh device (device vectors) or a fresh driver (driver vectors).</p>
${table(['file', 'target', 'vectors', 'tags'], rows)}
<h2>All vectors</h2>
${all}`;
  return page('Vectors', 'vectors.html', body);
}

function displayFile(file: string): string {
  const i = file.replace(/\\/g, '/').lastIndexOf('conformance/vectors/');
  return i >= 0 ? file.slice(i) : path.basename(file);
}

const VERDICT_CLASS = /\b(pass|acceptable|non-strict|informational|fail)\b(?=[,}\s]|$)/g;

/** YAML flow text of a value, escaped, with verdict classes as badges. */
function flow(value: unknown, classes: boolean): string {
  const text = esc(stringifyYaml(value, { collectionStyle: 'flow', lineWidth: 0 }).trim());
  return classes ? text.replace(VERDICT_CLASS, (m) => badge(m)) : text;
}

function setupText(v: Vector): string {
  const format = (n: bigint): string => formatSize(n, SIZE_STYLES.prose);
  const evaluated = evaluateSetup(v);
  if (!evaluated.ok) return `<span class="muted">${esc(evaluated.reason)}</span>`;
  const s = evaluated.setup;
  const parts = [`block_size ${format(s.block_size)}`, `region ${format(s.region_size)} at 0x${s.addr.toString(16)}`, `requested_size ${format(s.requested_size)}`];
  if (s.node_id) parts.push(`node_id ${s.node_id}`);
  if (s.features !== undefined) parts.push(`features ${FEATURE_BITS.filter((f) => (s.features! >> BigInt(f.value)) & 1n).map((f) => f.name.replace(/^VIRTIO_(MEM_)?F_/, '')).join(', ') || 'none'}`);
  if (s.plugged.length) parts.push(`plugged blocks ${s.plugged.map((r) => (r.count === 1 ? `${r.first}` : `${r.first}–${r.first + r.count - 1}`)).join(', ')}`);
  return esc(parts.join(' · '));
}

function vectorFilePage(file: string, vectors: readonly Vector[], text: string | undefined): string {
  let raw: { id?: string; steps?: Record<string, unknown>[] }[] = [];
  try {
    raw = ((text ? parseYaml(text) : {}) as { vectors?: typeof raw }).vectors ?? [];
  } catch {
    raw = [];
  }
  const header = text ? ((/^((?:#.*\n)+)/m.exec(text.split('\n').slice(1).join('\n'))?.[1] ?? '').replace(/^# ?/gm, '').trim()) : '';
  const sections = vectors.map((v) => {
    const steps = raw.find((r) => r.id === v.id)?.steps ?? [];
    const rows = steps.map((step, i) => {
      const { expect, note, ...action } = step as { expect?: unknown; note?: unknown } & Record<string, unknown>;
      return [String(i + 1), `<code>${flow(action, false)}</code>`, expect === undefined ? '<span class="muted">—</span>' : `<code>${flow(expect, true)}</code>`, note === undefined ? '' : prose(String(note))];
    });
    return `<section class="vector" id="${anchor(v.id)}">
<h3><code>${esc(v.id)}</code>${v.retired ? ` ${badge('retired')}` : ''}</h3>
<p><strong>${esc(v.title)}</strong></p>
${v.description ? `<p>${prose(v.description)}</p>` : ''}
<p class="muted">${esc(v.target)} vector · ${esc(`${displayFile(v.source.file)}:${v.source.line}`)}${v.tags.length ? ` · tags ${esc(v.tags.join(', '))}` : ''}${v.needs.length ? ` · needs ${esc(v.needs.join(', '))}` : ''}</p>
<p>Requirements: ${v.requirements.map((r) => requirementLink(r, 1)).join(' ')}</p>
<p>Initial state: ${setupText(v)}</p>
${rows.length ? table(['step', 'action', 'expected (outcome: class)', 'note'], rows) : '<p class="muted">No steps recorded in the file.</p>'}
</section>`;
  });
  const body = `<h1>${esc(displayFile(file))}</h1>
${header ? `<p>${prose(header)}</p>` : ''}
<p><a href="../vectors.html">All vectors</a></p>
${sections.join('\n')}`;
  return page(displayFile(file), 'vectors.html', body, 1);
}

/** A result's severity next to its verdict badge, its meaning on hover; nothing without one. */
function severityMark(severity: string | undefined): string {
  if (severity === undefined) return '';
  const meaning = SEVERITY_TIERS.find((t) => t.name === severity)?.meaning ?? '';
  return ` <span class="severity s-${esc(severity.replace(/[^a-z-]/g, ''))}" title="${esc(meaning)}">${esc(severity)}</span>`;
}

function resultsPage(vectors: readonly Vector[], results: readonly ResultsInput[], pageOf: PageOf): string {
  if (results.length === 0) {
    const body = `<h1>Results</h1>
<p>No results files were given. Run implementations with <code>vmemct run --json FILE</code> and generate the site with <code>vmemct docs --out DIR --results FILE …</code> to see a matrix of implementations × vectors here.</p>`;
    return page('Results', 'results.html', body);
  }
  const baseLabel = (r: ResultsInput): string => `${r.profile && r.adapter === 'model' ? `model:${r.profile}` : r.implementation}${r.strict ? ' (strict)' : ''}`;
  // Columns with the same implementation are told apart by their file names.
  const labels = results.map((r) => (results.filter((o) => baseLabel(o) === baseLabel(r)).length > 1 ? `${baseLabel(r)} · ${path.basename(r.file)}` : baseLabel(r)));
  const label = (r: ResultsInput): string => esc(labels[results.indexOf(r)]!);
  const lookups = results.map((r) => new Map(r.results.map((x) => [x.id, x])));
  // Vectors that are in a results file but not in this corpus (e.g. a user's own) get a row too,
  // and so do suite checks (the vu.* transport checks), after the vectors, with their suite and title.
  const known = new Set(vectors.map((v) => v.id));
  const rowsOf = new Map<string, ResultRow>();
  for (const x of results.flatMap((r) => r.results)) if (!known.has(x.id) && !rowsOf.has(x.id)) rowsOf.set(x.id, x);
  const extra = [...rowsOf.values()].sort((a, b) => Number(a.kind === 'check') - Number(b.kind === 'check') || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const extraLink = (x: ResultRow): string =>
    x.kind === 'check' ? `<code>${esc(x.id)}</code> <span class="muted">(${esc(x.suite ?? '')} check${x.title ? `: ${esc(x.title)}` : ''})</span>` : `<code>${esc(x.id)}</code> <span class="muted">(not in this corpus)</span>`;
  const rowIds: { id: string; link: string }[] = [...vectors.map((v) => ({ id: v.id, link: vectorLink(v, 0, pageOf) })), ...extra.map((x) => ({ id: x.id, link: extraLink(x) }))];
  const rows = rowIds.map((v) => [
    v.link,
    ...lookups.map((m) => {
      const r = m.get(v.id);
      if (!r) return '<span class="muted">—</span>';
      return badge(r.verdict) + severityMark(r.severity) + (r.status === 'unexpected' ? ` <strong title="expected ${esc(r.expected)}">!</strong>` : '');
    }),
  ]);
  const summary = results.map((r) => {
    const counts = new Map<string, number>();
    for (const x of r.results) counts.set(x.verdict, (counts.get(x.verdict) ?? 0) + 1);
    const unexpected = r.results.filter((x) => x.status === 'unexpected').length;
    return [label(r), `<code>${esc(path.basename(r.file))}</code>`, r.expectations ? `<code>${esc(r.expectations)}</code>` : '<span class="muted">none</span>', [...counts].map(([k, n]) => `${badge(k)} ${n}`).join(' '), String(unexpected)];
  });
  const body = `<h1>Results</h1>
${table(['implementation', 'results file', 'expectations', 'verdicts', 'unexpected'], summary)}
<p class="muted">A <strong>!</strong> marks a verdict that differs from what the run expected (its expectation file, or the default rules). A failing cell names its severity, worst first: ${SEVERITY_TIERS.map((t) => `${severityMark(t.name)} ${esc(t.meaning)}`).join('; ')}.</p>
<div class="scroll">
${table(['vector', ...results.map(label)], rows, 'matrix')}
</div>`;
  return page('Results', 'results.html', body);
}

