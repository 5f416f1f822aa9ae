/**
 * The living spec: a static HTML site generated from `spec/` (layouts, requirements) and
 * `conformance/` (vectors, results files), plus the model's profiles. Every page is a plain file
 * with relative links, so the site opens from disk without a server.
 */
import { FEATURE_BITS, LAYOUTS, REQUIREMENTS } from '../../../spec/src/index';
import type { Vector } from '../loader/types';
import { CaseResult, RunResult, caseId } from '../runner/run';
import type { Finding } from '../judge/verdicts';
import { badge, esc, page, table, STYLE } from './html';
import { byteDiagram, fieldTable, legend } from './diagrams';
import { profilesPage } from './profiles-page';
import { HARNESS_SCHEMAS_FILE, harnessPage, harnessSchemasFile } from './harness-page';
import { CitingCase, requirementPages, requirementsPage } from './requirement-pages';
import { casesOutsideCorpus, resultsPage } from './results-page';
import { resultColumns } from './results-columns';
import { vectorFilePage, vectorIndexPage } from './vector-pages';

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

/** One finding of a result, as a results file records it. */
export interface FindingRow {
  readonly verdict: string;
  readonly severity?: string;
  /** 1-based step; 0 for the set-up. */
  readonly step: number;
  /** What was checked, e.g. `response`, `config.plugged_size`. */
  readonly check: string;
  readonly message: string;
  readonly expected?: string;
  readonly observed?: string;
  readonly requirements?: readonly string[];
}

/** One result of a results file: a vector's, or (with `kind: 'check'`) a suite check's. */
export interface ResultRow {
  readonly id: string;
  readonly verdict: string;
  /** The worst severity of its findings (results format 2; absent when none fails). */
  readonly severity?: string;
  readonly expected: string;
  /** Why the expectation file expects this verdict (absent without an entry). */
  readonly expectationReason?: string;
  readonly status: string;
  readonly kind?: 'vector' | 'check';
  /** The check's suite and title (checks only; vectors are looked up in the corpus). */
  readonly suite?: string;
  readonly title?: string;
  /** The requirements the case cites (how a case outside the corpus finds its requirement pages). */
  readonly requirements?: readonly string[];
  /** What the run found: the failure text of the site. */
  readonly findings?: readonly FindingRow[];
  /** Every attempt, when the case was retried (`--retries`). */
  readonly attempts?: readonly { readonly verdict: string; readonly findings: readonly FindingRow[] }[];
}

/** What the site is generated from. */
export interface SiteInput {
  readonly vectors: readonly Vector[];
  /** The YAML text of each vector file, by the path in `Vector.source.file`. */
  readonly vectorFiles: ReadonlyMap<string, string>;
  readonly results: readonly ResultsInput[];
}

/** A finding as the site keeps it. */
function findingRow(f: Finding): FindingRow {
  return {
    verdict: f.verdict,
    ...(f.severity ? { severity: f.severity } : {}),
    step: f.step,
    check: f.check,
    message: f.message,
    ...(f.expected !== undefined ? { expected: f.expected } : {}),
    ...(f.observed !== undefined ? { observed: f.observed } : {}),
    ...(f.requirements ? { requirements: f.requirements } : {}),
  };
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
      ...(r.expectation ? { expectationReason: r.expectation.reason } : {}),
      status: r.unexpected ? 'unexpected' : 'expected',
      ...(r.kind === 'check' ? { kind: 'check' as const, suite: r.suite, title: r.check.title } : {}),
      requirements: r.kind === 'vector' ? r.vector.requirements : [],
      findings: r.findings.map(findingRow),
      ...(r.attempts ? { attempts: r.attempts.map((a) => ({ verdict: a.verdict, findings: a.findings.map(findingRow) })) } : {}),
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

/** The cases that cite each requirement: corpus vectors, then cases only the results files know. */
function citingCases(vectors: readonly Vector[], outside: ReturnType<typeof casesOutsideCorpus>): Map<string, CitingCase[]> {
  const citing = new Map<string, CitingCase[]>();
  const add = (id: string, c: CitingCase): void => void citing.set(id, [...(citing.get(id) ?? []), c]);
  for (const v of vectors) for (const r of v.requirements) add(r, { kind: 'vector', vector: v });
  for (const row of outside) for (const r of row.requirements ?? []) add(r, { kind: 'outside', row });
  return citing;
}

/** Builds every page: site-relative path → content. */
export function buildSite(input: SiteInput): Map<string, string> {
  const pages = new Map<string, string>();
  const active = input.vectors.filter((v) => !v.retired);
  const files = [...new Set(input.vectors.map((v) => v.source.file))];
  const pageOf = vectorPagePaths(files);
  const columns = resultColumns(input.results);
  const requirementInput = { citing: citingCases(input.vectors, casesOutsideCorpus(input.vectors, columns)), pageOf, columns };

  pages.set('style.css', STYLE);
  pages.set('index.html', indexPage(active, files));
  pages.set('protocol.html', protocolPage());
  pages.set('requirements.html', requirementsPage(requirementInput));
  for (const [p, content] of requirementPages(requirementInput)) pages.set(p, content);
  pages.set('vectors.html', vectorIndexPage(input.vectors, files, pageOf));
  for (const file of files) pages.set(pageOf.get(file)!, vectorFilePage(file, input.vectors.filter((v) => v.source.file === file), input.vectorFiles.get(file), columns));
  pages.set('results.html', resultsPage(input.vectors, columns, pageOf));
  pages.set('profiles.html', profilesPage());
  pages.set('harness.html', harnessPage());
  pages.set(HARNESS_SCHEMAS_FILE, harnessSchemasFile());
  return pages;
}

function indexPage(vectors: readonly Vector[], files: readonly string[]): string {
  const device = REQUIREMENTS.filter((r) => r.side === 'device').length;
  const testable = REQUIREMENTS.filter((r) => r.testable).length;
  const body = `<h1>virtio-mem, readable</h1>
<p>The virtio memory device (device ID 24) lets a hypervisor grow and shrink a guest's memory in blocks: the device offers a region, the host sets a <code>requested_size</code>, and the guest's driver plugs and unplugs blocks with requests on one virtqueue until <code>plugged_size</code> matches. These pages show the protocol as bytes, every normative statement of VIRTIO 1.4 §5.15 with the tests that check it, every test vector, and how implementations fare.</p>
<div class="cards">
  <a href="protocol.html"><strong>Protocol bytes</strong><br>The 56-byte configuration space, the request and the response, byte by byte.</a>
  <a href="requirements.html"><strong>${REQUIREMENTS.length} requirements</strong><br>${device} for the device, ${REQUIREMENTS.length - device} for the driver; ${testable} testable; a page each with its vectors and every implementation's results.</a>
  <a href="vectors.html"><strong>${vectors.length} vectors</strong><br>In ${files.length} files: initial state, steps and the outcomes each step allows.</a>
  <a href="results.html"><strong>Results</strong><br>Implementations × vectors, from <code>vmemct run --json</code> files; filter them, and follow a failure to its text.</a>
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
