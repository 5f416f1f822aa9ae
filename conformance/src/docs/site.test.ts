import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LAYOUTS, REQUIREMENTS } from '../../../spec/src/index';
import { loadVectors } from '../loader/load';
import type { Vector } from '../loader/types';
import { buildSite, resultsOfRun, vectorPagePaths, ResultsInput } from './site';
import { readResultsFile } from './results-file';
import { runVectors } from '../runner/run';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { byteDiagram } from './diagrams';
import { esc, page, prose } from './html';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const loaded = loadVectors([path.join(ROOT, 'conformance', 'vectors')]);
const vectors: Vector[] = loaded.vectors;
const vectorFiles = new Map([...new Set(vectors.map((v) => v.source.file))].map((f) => [f, fs.readFileSync(f, 'utf8')] as const));

describe('the documentation site', () => {
  const site = buildSite({ vectors, vectorFiles, results: [] });
  const pageOf = vectorPagePaths([...vectorFiles.keys()]);
  const vectorPagePath = (file: string): string => pageOf.get(file)!;

  test('has the overview, protocol, requirements, vectors, results and profiles pages, and one page per vector file', () => {
    for (const p of ['index.html', 'protocol.html', 'requirements.html', 'vectors.html', 'results.html', 'profiles.html', 'style.css']) expect(site.has(p)).toBe(true);
    for (const file of vectorFiles.keys()) expect(site.has(vectorPagePath(file))).toBe(true);
  });

  test('lists every requirement with its level and section, and its vectors or why it is untestable', () => {
    const html = site.get('requirements.html')!;
    for (const r of REQUIREMENTS) {
      expect(html).toContain(`<span id="${r.id}"><a href="requirements/${r.id}.html"><code>${r.id}</code></a></span>`);
      if (!r.testable) expect(html).toContain(esc(`untestable: ${r.untestableReason}`));
    }
    // Statements beyond §5.15 that vectors cite have an anchor too.
    expect(html).toContain('<span id="dev.suite.1"><a href="requirements/dev.suite.1.html"><code>dev.suite.1</code></a></span>');
    const covering = vectors.find((v) => v.requirements.includes('dev.plug.3'))!;
    expect(html).toContain(`${vectorPagePath(covering.source.file)}#${covering.id}`);
  });

  test('renders every vector under its id with its requirements, setup and steps', () => {
    for (const v of vectors) {
      const html = site.get(vectorPagePath(v.source.file))!;
      expect(html).toContain(`<section class="vector" id="${v.id}">`);
      for (const r of v.requirements) expect(html).toContain(`<a href="../requirements/${r}.html"><code>${r}</code></a>`);
    }
    const plug = site.get('vectors/device-plug.html')!;
    expect(plug).toContain('Initial state: block_size 2 MiB · region 1 GiB at 0x100000000 · requested_size 64 MiB');
    expect(plug).toContain('<code>{ request: { type: PLUG, addr: addr, nb_blocks: 1 } }</code>');
    expect(plug).toMatch(/none: <span class="badge v-pass">pass<\/span>, sent: <span class="badge v-non-strict">non-strict<\/span>/);
  });

  test('draws each layout with one box per field spanning its bytes', () => {
    const d = byteDiagram(LAYOUTS.config);
    expect(d.match(/class="field /g)).toHaveLength(LAYOUTS.config.fields.length);
    expect(d).toContain('grid-row: 3; grid-column: 2 / span 2');
    expect(d).toContain('grid-row: 3; grid-column: 4 / span 6');
    const crossing = byteDiagram({ ...LAYOUTS.request, size: 16, fields: [{ name: 'x', specPath: 'x', offset: 6, size: 4, kind: 'bytes', mutability: 'reserved', description: 'crosses a row' }] });
    expect(crossing).toContain('grid-row: 2; grid-column: 8 / span 2');
    expect(crossing).toContain('grid-row: 3; grid-column: 2 / span 2');
    expect(crossing).toContain('x (cont.)');
  });

  test('is deterministic', () => {
    const again = buildSite({ vectors, vectorFiles, results: [] });
    expect([...again]).toEqual([...site]);
  });

  test('says how to get a matrix when no results are given, and draws one per results file otherwise', () => {
    expect(site.get('results.html')).toContain('No results files were given');
    const results: ResultsInput = {
      file: '/x/qemu.json', implementation: 'QEMU 7.2.22', adapter: 'qemu', profile: null, expectations: null,
      results: [{ id: vectors[0]!.id, verdict: 'fail', expected: 'pass', status: 'unexpected' }],
    };
    const html = buildSite({ vectors, vectorFiles, results: [results] }).get('results.html')!;
    expect(html).toContain('<th data-col="qemu-7.2.22">QEMU 7.2.22</th>');
    expect(html).toContain('<span class="badge v-fail">fail</span> <strong title="expected pass">!</strong>');
    expect((html.match(/<td><span class="muted">—<\/span><\/td>/g) ?? []).length).toBe(vectors.length - 1);
  });

  test('a run made in-process becomes a column with each verdict and whether it was expected', async () => {
    const one = vectors.filter((v) => v.id === 'vmem.dev.plug.ack-first-block');
    const run = await runVectors(createModelAdapter(), one, vectors, { expectations: { file: 'e.yaml', implementation: 'model', entries: [{ pattern: one[0]!.id, verdict: 'fail', reason: 'test', maxMatches: 1, line: 1 }] } });
    const column = resultsOfRun(run, { file: 'f', implementation: 'model:spec', adapter: 'model', profile: 'spec', expectations: 'e.yaml' });
    expect(column.results).toEqual([{ id: one[0]!.id, verdict: 'pass', expected: 'fail', expectationReason: 'test', status: 'unexpected', requirements: one[0]!.requirements, findings: [] }]);
  });

  test('tells apart two runs of the same implementation, marks strict runs and keeps vectors from outside the corpus', () => {
    const run = (file: string, strict: boolean): ResultsInput => ({
      file, implementation: 'QEMU 7.2.22', adapter: 'qemu', profile: null, expectations: null, strict,
      results: [{ id: 'vmem.dev.mine.plug-then-state', verdict: 'pass', expected: 'pass', status: 'expected' }],
    });
    const html = buildSite({ vectors, vectorFiles, results: [run('/x/a.json', false), run('/x/b.json', false), run('/x/c.json', true)] }).get('results.html')!;
    expect(html).toContain('<th data-col="qemu-7.2.22-a.json">QEMU 7.2.22 · a.json</th><th data-col="qemu-7.2.22-b.json">QEMU 7.2.22 · b.json</th><th data-col="qemu-7.2.22-strict">QEMU 7.2.22 (strict)</th>');
    expect(html).toContain('<code>vmem.dev.mine.plug-then-state</code> <span class="muted">(not in this corpus)</span>');
  });

  test('escapes text from vectors and results', () => {
    expect(esc(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(page('<T>', 'index.html', '')).toContain('<title>&lt;T&gt; · vmemct</title>');
    expect(prose('keeps `plugged_size` <b>')).toBe('keeps <code>plugged_size</code> &lt;b&gt;');
    expect(site.get('requirements.html')).toContain('<code>plugged_size</code> always equals');
    // Statements beyond §5.15 have their own sections, each with its vectors.
    const requirements = site.get('requirements.html')!;
    expect(requirements).toContain('<h2 id="core">Virtio core statements');
    expect(requirements).toContain('<h2 id="suite">');
    expect(requirements).toMatch(/id="[^"]*dev\.virtio\.6[^"]*"[\s\S]*?vmem\.dev\.virtio\.generation-follows-plugged-size/);
  });
});

describe('vectorPagePaths', () => {
  test('names a page by folder and base name, and gives files that would share one distinct pages', () => {
    expect([...vectorPagePaths(['/c/conformance/vectors/device/plug.yaml', '/c/conformance/vectors/driver/init.yaml']).values()]).toEqual(['vectors/device-plug.html', 'vectors/driver-init.html']);
    const pages = vectorPagePaths(['/v/one/device/plug.yaml', '/v/two/device/plug.yaml', '/v/a/b-c.yaml', '/v/a-b/c.yaml', '/v/x/A B.yaml', '/v/x/a_b.yaml', '/v/x/"><i>.yaml']);
    expect(new Set([...pages.values()].map((p) => p.toLowerCase())).size).toBe(7);
    expect(pages.get('/v/one/device/plug.yaml')).toBe('vectors/one-device-plug.html');
    for (const p of pages.values()) expect(p).toMatch(/^vectors\/[A-Za-z0-9._-]+\.html$/);
  });
});

describe('readResultsFile', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-docs-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const document = {
    format: 'vmemct-results/1',
    suite: { version: '0.1.0', vectorsDigest: 'x', vectorCount: 0 },
    adapter: { name: 'model', implementation: 'model:qemu', capabilities: [] },
    expectations: null,
    startedAt: '2026-01-01T00:00:00Z',
    durationMs: 1,
    options: { profile: 'qemu' },
    summary: { total: 0, unexpected: 0, byVerdict: {} },
    results: [],
    staleExpectations: [],
    exitCode: 0,
  };

  test('reads a results document and refuses anything else with file, line and field', () => {
    const good = path.join(dir, 'good.json');
    fs.writeFileSync(good, JSON.stringify(document));
    expect(readResultsFile(good)).toMatchObject({ kind: 'results', results: { implementation: 'model:qemu', adapter: 'model', profile: 'qemu', results: [] } });
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ ...document, format: 'something else' }, null, 2));
    expect(readResultsFile(bad)).toEqual({ kind: 'problems', problems: [{ file: bad, line: 2, field: 'format', reason: 'must be one of "vmemct-results/1", "vmemct-results/2", "vmemct-results/3"' }] });
    expect(readResultsFile(path.join(dir, 'missing.json'))).toMatchObject({ kind: 'problems', problems: [{ file: path.join(dir, 'missing.json'), reason: 'cannot read results file: no such file' }] });
  });
});
