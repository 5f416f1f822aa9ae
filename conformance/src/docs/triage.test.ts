/** The living spec as a triage tool: requirement pages, the matrix's filters and failing cells, the failure text. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ALL_REQUIREMENTS } from '../../../spec/src/index';
import { loadVectors } from '../loader/load';
import type { Vector } from '../loader/types';
import { buildSite, vectorPagePaths, ResultRow, ResultsInput } from './site';
import { resultColumns, shortReason } from './results-columns';
import { FILTER_KEYS } from './matrix-script';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const vectors: Vector[] = loadVectors([path.join(ROOT, 'conformance', 'vectors')]).vectors;
const vectorFiles = new Map([...new Set(vectors.map((v) => v.source.file))].map((f) => [f, fs.readFileSync(f, 'utf8')] as const));
const pageOf = vectorPagePaths([...vectorFiles.keys()]);

const FAILING = 'vmem.dev.plug.ack-first-block';
const failing = vectors.find((v) => v.id === FAILING)!;
const failingRow: ResultRow = {
  id: FAILING,
  verdict: 'fail',
  severity: 'answer',
  expected: 'pass',
  status: 'unexpected',
  requirements: failing.requirements,
  findings: [
    { verdict: 'pass', step: 1, check: 'config.plugged_size', message: 'as expected' },
    { verdict: 'fail', severity: 'answer', step: 2, check: 'response', message: 'response ERROR is not allowed here', expected: 'ACK (pass)', observed: 'ERROR', requirements: ['dev.plug.6'] },
  ],
};
const passRows: ResultRow[] = vectors.filter((v) => v.id !== FAILING).map((v) => ({ id: v.id, verdict: 'pass', expected: 'pass', status: 'expected', requirements: v.requirements, findings: [] }));
/** A case only the results file knows: a user's vector citing dev.plug.6, failing in its set-up. */
const outsideRow: ResultRow = {
  id: 'vmem.dev.mine.plug-twice',
  verdict: 'error',
  expected: 'pass',
  status: 'unexpected',
  requirements: ['dev.plug.6'],
  findings: [{ verdict: 'error', severity: 'harness', step: 0, check: 'setup', message: 'the harness <closed> the connection' }],
};
const qemu: ResultsInput = { file: '/x/qemu.json', implementation: 'QEMU 7.2.22', adapter: 'qemu', profile: null, expectations: null, results: [failingRow, ...passRows, outsideRow] };
const model: ResultsInput = {
  file: '/x/model.json', implementation: 'model:spec', adapter: 'model', profile: 'spec', expectations: 'e.yaml',
  results: [{ id: FAILING, verdict: 'fail', expected: 'fail', expectationReason: 'known to answer ERROR', status: 'expected', requirements: failing.requirements, findings: [failingRow.findings![1]!] }, ...passRows],
};
const site = buildSite({ vectors, vectorFiles, results: [qemu, model] });
const [qemuColumn, modelColumn] = resultColumns([qemu, model]);

describe('requirement pages', () => {
  test('every statement of the catalogue has its own page, linked from the index', () => {
    for (const r of ALL_REQUIREMENTS) {
      expect(site.has(`requirements/${r.id}.html`)).toBe(true);
      expect(site.get('requirements.html')).toContain(`<a href="requirements/${r.id}.html"><code>${r.id}</code></a>`);
    }
  });

  test('shows the paraphrase, level, section, the vectors that cite it and links back to the index and the matrix', () => {
    const html = site.get('requirements/dev.plug.6.html')!;
    const r = ALL_REQUIREMENTS.find((x) => x.id === 'dev.plug.6')!;
    expect(html).toContain('<h1><code>dev.plug.6</code></h1>');
    expect(html).toContain(`<p class="paraphrase">`);
    expect(html).toContain(`§${r.section}`);
    expect(html).toContain(`<span class="level">${r.level}</span>`);
    expect(html).toContain('<a href="../requirements.html#dev.plug.6">All requirements</a>');
    expect(html).toContain('<a href="../results.html#req=dev.plug.6">');
    const citing = vectors.filter((v) => v.requirements.includes('dev.plug.6'));
    expect(citing.length).toBeGreaterThan(1);
    for (const v of citing) expect(html).toContain(`href="../${pageOf.get(v.source.file)}#${v.id}"`);
    expect(html).toContain(`Vectors (${citing.length})`);
  });

  test('gives each results file its verdicts and the failure text of a failure: step, check, message, expected vs observed', () => {
    const html = site.get('requirements/dev.plug.6.html')!;
    expect(html).toContain('<th><a href="../results.html#impl=qemu-7.2.22">QEMU 7.2.22</a></th><th><a href="../results.html#impl=model-spec">model:spec</a></th>');
    // The failing cell links to the failure text on the same page.
    expect(html).toContain(`<a class="to-failure" href="#${FAILING}--qemu-7.2.22"><span class="badge v-fail">fail</span>`);
    const block = html.slice(html.indexOf(`<div class="failure" id="${FAILING}--qemu-7.2.22">`));
    expect(block.length).toBeLessThan(html.length);
    const text = block.slice(0, block.indexOf('</div>'));
    expect(text).toContain('Unexpected: the run expected <span class="badge v-pass">pass</span>');
    expect(text).toContain('step 2 · <code>response</code>: response ERROR is not allowed here');
    expect(text).toContain('expected <code>ACK (pass)</code> · observed <code>ERROR</code>');
    // Passing findings are not failure text.
    expect(text).not.toContain('as expected');
    // An expected failure says why it is expected.
    expect(html).toContain('Expected <span class="badge v-fail">fail</span>: known to answer ERROR');
    // The case outside the corpus cites dev.plug.6 too: its row and its error, escaped.
    expect(html).toContain('<code>vmem.dev.mine.plug-twice</code> <span class="muted">(not in this corpus)</span>');
    expect(html).toContain('set-up · <code>setup</code>: the harness &lt;closed&gt; the connection');
  });

  test('a statement no vector cites says so, and a site without results says how to get them', () => {
    const untestable = ALL_REQUIREMENTS.find((r) => !r.testable)!;
    expect(site.get(`requirements/${untestable.id}.html`)).toContain('No vector can check this statement.');
    const bare = buildSite({ vectors, vectorFiles, results: [] });
    expect(bare.get('requirements/dev.plug.6.html')).toContain('No results files were given');
  });
});

describe('the results matrix', () => {
  const html = site.get('results.html')!;

  test('carries the filter form, its script inline, and the data it filters on', () => {
    expect(html).toContain('<form id="matrix-filters" class="filters" hidden>');
    expect(html).toContain('<input type="checkbox" name="impl" value="qemu-7.2.22" checked> QEMU 7.2.22');
    expect(html).toContain('<option value="dev.plug.6">dev.plug.6</option>');
    expect(html).toContain('<option value="plug">plug</option>');
    expect(html).toContain('<option value="not-pass">');
    expect(html).not.toMatch(/<script[^>]*\bsrc=/);
    expect(html).toMatch(/<script>\n\(function \(\) \{[\s\S]*\}\)\(\);\n<\/script>/);
    for (const key of FILTER_KEYS) expect(html).toContain(key);
    expect(html).toContain(`<tr data-req="${failing.requirements.join(' ')}" data-tag="${failing.tags.join(' ')}">`);
    expect(html).toContain('<th data-col="qemu-7.2.22">QEMU 7.2.22</th><th data-col="model-spec">model:spec</th>');
  });

  test('a failing cell links to its failure text on the vector page and shows the short reason', () => {
    const cell = `<td data-v="fail" data-u><a class="cell" href="${pageOf.get(failing.source.file)}#${FAILING}--qemu-7.2.22"><span class="badge v-fail">fail</span>`;
    expect(html).toContain(cell);
    expect(html).toContain('<span class="reason" role="tooltip">step 2: response ERROR is not allowed here</span></a></td>');
    const vectorPage = site.get(pageOf.get(failing.source.file)!)!;
    const block = vectorPage.slice(vectorPage.indexOf(`<div class="failure" id="${FAILING}--qemu-7.2.22">`));
    expect(block).toContain('response ERROR is not allowed here');
    // An expected pass is a plain badge, no link.
    const pass = passRows[0]!.id;
    expect(html).toMatch(new RegExp(`${pass.replace(/\./g, '\\.')}</code></a></td><td data-v="pass"><span class="badge v-pass">pass</span></td>`));
  });

  test('a case outside the corpus links to its failure text below the matrix', () => {
    expect(html).toContain(`<a class="cell" href="results.html#vmem.dev.mine.plug-twice--qemu-7.2.22">`);
    expect(html).toContain('<div class="failure" id="vmem.dev.mine.plug-twice--qemu-7.2.22">');
    expect(html).toContain('<h2 id="outside">Cases outside this corpus</h2>');
  });

  test('column slugs are unique and made of safe characters', () => {
    const twice = resultColumns([qemu, qemu, { ...qemu, implementation: 'a/b "c"' }]);
    expect(twice.map((c) => c.slug)).toEqual(['qemu-7.2.22-qemu.json', 'qemu-7.2.22-qemu.json-2', 'a-b-c']);
    expect([qemuColumn!.slug, modelColumn!.slug]).toEqual(['qemu-7.2.22', 'model-spec']);
  });
});

describe('shortReason', () => {
  test('names the step and message of the first finding with the verdict, shortened to 200 characters', () => {
    expect(shortReason(failingRow)).toBe('step 2: response ERROR is not allowed here');
    const long = shortReason({ ...failingRow, findings: [{ verdict: 'fail', step: 3, check: 'x', message: 'y'.repeat(500) }] });
    expect(long).toHaveLength(200);
    expect(long.endsWith('…')).toBe(true);
    expect(shortReason({ id: 'a', verdict: 'flaky', expected: 'pass', status: 'expected', findings: [] })).toBe('failed, then passed on a rerun');
    expect(shortReason({ id: 'a', verdict: 'flaky', expected: 'pass', status: 'expected', findings: [], attempts: [{ verdict: 'timeout', findings: [{ verdict: 'timeout', step: 4, check: 'step', message: 'no answer in 10 s' }] }, { verdict: 'pass', findings: [] }] })).toBe('step 4: no answer in 10 s');
  });
});
