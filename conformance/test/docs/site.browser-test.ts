/**
 * The generated site in a real headless browser (Debian's chromium through playwright-core):
 * every page loads without console errors or failed requests, every internal link and anchor
 * resolves and nothing is loaded or linked from outside the site (but the public sources it
 * cites), all 71 requirements and the byte diagrams are there, a requirement page shows its
 * results with the failure text, the matrix's filters work and live in the URL fragment, and a
 * failing cell shows its reason on focus and leads to its failure text. A screenshot of the
 * config-space diagram is saved to test-output/docs/config-diagram.png.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { chromium, Browser } from 'playwright-core';
import { CORE_REQUIREMENTS, REQUIREMENTS, SUITE_REQUIREMENTS } from '../../../spec/src/index';
import { loadVectors } from '../../src/loader/load';
import { runVectors } from '../../src/runner/run';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { DEVICE_PROFILES } from '../../../model/src/index';
import { buildSite, resultsOfRun } from '../../src/docs/site';
import { writeSite } from '../../src/docs/output';
import { FILTER_KEYS } from '../../src/docs/matrix-script';
import { PUBLIC_CITATIONS, outsideReferences } from '../../src/docs/site-references';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CHROMIUM = process.env.VMEMCT_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOT = path.join(ROOT, 'test-output', 'docs', 'config-diagram.png');

let browser: Browser;
let site: string;
/** Vectors in the corpus (one matrix row each). */
let corpusSize = 0;
/** Every page as built, site-relative path → content. */
let builtPages: Map<string, string>;
/** Vectors the firecracker profile fails, with the requirements they cite. */
let firecrackerFails: { id: string; requirements: readonly string[]; tags: readonly string[] }[] = [];

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install --no-install-recommends chromium) or set VMEMCT_CHROMIUM`);
  const loaded = loadVectors([path.join(ROOT, 'conformance', 'vectors')]);
  corpusSize = loaded.vectors.length;
  const run = await runVectors(createModelAdapter(), loaded.vectors, loaded.vectors, {});
  // A second column with failures (no expectation file, so they are unexpected too).
  const firecracker = await runVectors(createModelAdapter({ profile: DEVICE_PROFILES.firecracker }), loaded.vectors, loaded.vectors, {});
  firecrackerFails = firecracker.results.flatMap((r) => (r.kind === 'vector' && r.verdict === 'fail' ? [{ id: r.vector.id, requirements: r.vector.requirements, tags: r.vector.tags }] : []));

  const results = [
    resultsOfRun(run, { file: 'model.json', implementation: 'model:spec', adapter: 'model', profile: 'spec', expectations: null }),
    resultsOfRun(firecracker, { file: 'firecracker.json', implementation: 'model:firecracker', adapter: 'model', profile: 'firecracker', expectations: null }),
  ];
  const files = new Map([...new Set(loaded.vectors.map((v) => v.source.file))].map((f) => [f, fs.readFileSync(f, 'utf8')] as const));
  site = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-site-'));
  builtPages = buildSite({ vectors: loaded.vectors, vectorFiles: files, results });
  writeSite(site, builtPages);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});

afterAll(async () => {
  await browser?.close();
  if (site) fs.rmSync(site, { recursive: true, force: true });
});

function htmlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile() && e.name.endsWith('.html')).map((e) => path.join(e.parentPath, e.name)).sort();
}

test('every page loads without console errors and every internal link and anchor resolves', async () => {
  const pages = htmlFiles(site);
  expect(pages.length).toBeGreaterThan(20);
  const idsByFile = new Map<string, Set<string>>();
  const links: { from: string; href: string }[] = [];
  const problems: string[] = [];
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed request ${r.url()} from ${page.url()}`));
  for (const file of pages) {
    const response = await page.goto(pathToFileURL(file).href);
    expect(response?.ok() ?? true).toBe(true);
    idsByFile.set(file, new Set(await page.$$eval('[id]', (els) => els.map((e) => e.id))));
    for (const href of await page.$$eval('a[href], link[href]', (els) => els.map((e) => (e as unknown as { href: string }).href))) links.push({ from: file, href });
    for (const src of await page.$$eval('[src]', (els) => els.map((e) => (e as unknown as { src: string }).src))) links.push({ from: file, href: src });
  }
  await page.close();
  for (const { from, href } of links) {
    const url = new URL(href);
    if (url.protocol !== 'file:') {
      // Outside the site only the public sources a page cites on purpose.
      if (!PUBLIC_CITATIONS.some((c) => href.startsWith(c.prefix))) problems.push(`${path.relative(site, from)} links outside the site: ${href}`);
      continue;
    }
    const target = fileURLToPath(url);
    if (path.relative(site, target).startsWith('..')) {
      problems.push(`${path.relative(site, from)} links outside the site folder: ${target}`);
      continue;
    }
    if (!fs.existsSync(target)) {
      problems.push(`${path.relative(site, from)} links to missing ${path.relative(site, target)}`);
      continue;
    }
    const fragment = decodeURIComponent(url.hash.slice(1));
    if (fragment.includes('=') && path.basename(target) === 'results.html') {
      // A filtered view of the matrix: every key is a filter's.
      for (const part of fragment.split('&')) if (!(FILTER_KEYS as readonly string[]).includes(part.split('=')[0]!)) problems.push(`${path.relative(site, from)} links to an unknown filter ${part}`);
      continue;
    }
    if (fragment && !idsByFile.get(target)?.has(fragment)) problems.push(`${path.relative(site, from)} links to missing anchor #${fragment} in ${path.relative(site, target)}`);
  }
  expect(problems).toEqual([]);
  expect(links.filter((l) => l.href.includes('#')).length).toBeGreaterThan(1000);
  // The text of every page too: no source paths, notes for the authors, or foreign section numbers.
  expect(builtPages.size).toBeGreaterThan(100);
  expect(outsideReferences(builtPages)).toEqual([]);
});

test('the requirements page shows all 71 statements and the protocol page its byte diagrams; the config diagram is captured', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(pathToFileURL(path.join(site, 'requirements.html')).href);
  const ids = await page.$$eval('tbody tr td:first-child span[id]', (els) => els.map((e) => e.id));
  // Device statements first, then the driver's, each in document order; then those beyond §5.15 (core, suite).
  expect(ids).toEqual([...REQUIREMENTS.filter((r) => r.side === 'device'), ...REQUIREMENTS.filter((r) => r.side === 'driver'), ...CORE_REQUIREMENTS, ...SUITE_REQUIREMENTS].map((r) => r.id));
  expect(REQUIREMENTS).toHaveLength(71);

  await page.goto(pathToFileURL(path.join(site, 'protocol.html')).href);
  for (const id of ['config', 'request', 'response']) expect(await page.locator(`#diagram-${id}`).isVisible()).toBe(true);
  const fields = await page.$$eval('#diagram-config .field strong', (els) => els.map((e) => e.textContent));
  expect(fields).toEqual(['block_size', 'node_id', 'padding', 'addr', 'region_size', 'usable_region_size', 'plugged_size', 'requested_size']);
  // The boxes really span their bytes: node_id covers 2 of the 8 byte columns of its row.
  const widths = await page.$$eval('#diagram-config .field', (els) => els.map((e) => e.getBoundingClientRect().width));
  expect(widths[1]! / widths[0]!).toBeCloseTo(2 / 8, 1);

  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.locator('#diagram-config').screenshot({ path: SCREENSHOT });
  const png = fs.readFileSync(SCREENSHOT);
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  expect(png.length).toBeGreaterThan(5000);
  await page.close();
});

test('the results matrix shows one column per results file and a verdict per vector', async () => {
  const page = await browser.newPage();
  await page.goto(pathToFileURL(path.join(site, 'results.html')).href);
  const headers = await page.$$eval('table.matrix thead th', (els) => els.map((e) => e.textContent));
  expect(headers).toEqual(['vector', 'model:spec', 'model:firecracker']);
  const badges = await page.$$eval('table.matrix tbody td:nth-child(2) .badge', (els) => els.map((e) => e.textContent));
  expect(badges.length).toBe(corpusSize);
  expect(badges.filter((b) => b === 'pass').length).toBeGreaterThan(280);
  expect(await page.locator('#matrix-count').textContent()).toBe(`Showing ${corpusSize} of ${corpusSize} rows and 2 of 2 columns.`);
  await page.close();
});

/** The ids of the matrix rows shown. */
async function shownRows(page: import('playwright-core').Page): Promise<string[]> {
  return page.$$eval('#matrix tbody tr:not([hidden]) td:first-child code', (els) => els.map((e) => e.textContent ?? ''));
}

test('the matrix filters by verdict, implementation, requirement and tag, and keeps the state in the URL fragment', async () => {
  expect(firecrackerFails.length).toBeGreaterThan(5);
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const url = pathToFileURL(path.join(site, 'results.html')).href;
  await page.goto(url);
  expect(await page.locator('#matrix-filters').isVisible()).toBe(true);

  // Verdict: only rows with a fail in a shown column.
  await page.selectOption('#matrix-filters select[name="verdict"]', 'fail');
  expect((await shownRows(page)).sort()).toEqual(firecrackerFails.map((f) => f.id).sort());
  expect(new URL(page.url()).hash).toBe('#verdict=fail');

  // Implementation: without the firecracker column no row has a fail; its cells are hidden.
  await page.uncheck('#matrix-filters input[value="model-firecracker"]');
  expect(await shownRows(page)).toEqual([]);
  expect(await page.locator('#matrix thead th[data-col="model-firecracker"]').isHidden()).toBe(true);
  expect(new URL(page.url()).hash).toBe('#impl=model-spec&verdict=fail');
  expect(await page.locator('#matrix-count').textContent()).toBe(`Showing 0 of ${corpusSize} rows and 1 of 2 columns.`);
  await page.click('#matrix-clear');
  expect((await shownRows(page)).length).toBe(corpusSize);

  // A linked view: requirement and tag from the fragment, the form showing them.
  const failing = firecrackerFails.find((f) => f.tags.length > 0)!;
  const requirement = failing.requirements[0]!;
  const tag = failing.tags[0]!;
  await page.goto(`${url}#impl=model-firecracker&verdict=not-pass&req=${requirement}&tag=${tag}`);
  await page.reload();
  expect(await page.locator('#matrix-filters select[name="req"]').inputValue()).toBe(requirement);
  expect(await page.locator('#matrix-filters select[name="tag"]').inputValue()).toBe(tag);
  expect(await page.locator('#matrix-filters input[value="model-spec"]').isChecked()).toBe(false);
  const shown = await shownRows(page);
  expect(shown).toContain(failing.id);
  const rowData = await page.$$eval('#matrix tbody tr:not([hidden])', (trs) => trs.map((tr) => [tr.getAttribute('data-req') ?? '', tr.getAttribute('data-tag') ?? '', tr.querySelector('td:nth-child(3)')?.getAttribute('data-v') ?? '']));
  for (const [reqs, tags, verdict] of rowData) {
    expect(reqs.split(' ')).toContain(requirement);
    expect(tags.split(' ')).toContain(tag);
    expect(verdict).not.toBe('pass');
  }
  // Every vector that cites the requirement, has the tag and is not a pass on firecracker is shown.
  const all = await page.$$eval('#matrix tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-req') ?? '', tr.getAttribute('data-tag') ?? '', tr.querySelector('td:nth-child(3)')?.getAttribute('data-v') ?? '']));
  expect(rowData.length).toBe(all.filter(([reqs, tags, v]) => reqs.split(' ').includes(requirement) && tags.split(' ').includes(tag) && v !== '' && v !== 'pass').length);
  expect(errors).toEqual([]);
  await page.close();
});

test('a failing cell shows its reason on focus and hover and leads to its failure text', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(pathToFileURL(path.join(site, 'results.html')).href);
  const id = firecrackerFails[0]!.id;
  const row = page.locator('#matrix tbody tr', { has: page.locator(`td:first-child code:text-is("${id}")`) });
  const link = row.locator('td:nth-child(3) a.cell');
  const reason = link.locator('.reason');
  expect(await reason.isHidden()).toBe(true);
  await link.focus();
  expect(await reason.isVisible()).toBe(true);
  const text = (await reason.textContent())!;
  expect(text).toMatch(/^(step \d+|set-up): ./);
  await page.mouse.move(0, 0);
  await link.blur();
  expect(await reason.isHidden()).toBe(true);
  await link.hover();
  expect(await reason.isVisible()).toBe(true);

  await link.click();
  await page.waitForURL(/vectors\/.*\.html#/);
  const target = decodeURIComponent(new URL(page.url()).hash.slice(1));
  expect(target).toBe(`${id}--model-firecracker`);
  const block = page.locator(`[id="${target}"]`);
  expect(await block.isVisible()).toBe(true);
  const blockText = (await block.textContent())!;
  expect(blockText).toContain('model:firecracker');
  expect(blockText).toContain(text.replace(/^(step \d+|set-up): /, '').replace(/…$/, ''));
  expect(blockText).toMatch(/expected .* · observed /);
  // The target is scrolled into view and marked.
  expect(await block.evaluate((e) => e.matches(':target'))).toBe(true);
  await page.close();
});

test('a requirement page shows the statement, its vectors and each implementation\'s results with the failure text', async () => {
  const requirement = firecrackerFails[0]!.requirements[0]!;
  const page = await browser.newPage();
  await page.goto(pathToFileURL(path.join(site, 'requirements.html')).href);
  await page.click(`a[href="requirements/${requirement}.html"]`);
  await page.waitForURL(new RegExp(`requirements/${requirement.replace(/\./g, '\\.')}\\.html$`));
  expect(await page.locator('h1').textContent()).toBe(requirement);
  const statement = [...REQUIREMENTS, ...CORE_REQUIREMENTS, ...SUITE_REQUIREMENTS].find((r) => r.id === requirement)!;
  expect((await page.locator('.paraphrase').textContent())!.length).toBeGreaterThan(10);
  expect(await page.locator('main').textContent()).toContain(`§${statement.section}`);
  const headers = await page.$$eval('table.matrix thead th', (els) => els.map((e) => e.textContent));
  expect(headers).toEqual(['vector', 'model:spec', 'model:firecracker']);
  const failingHere = firecrackerFails.filter((f) => f.requirements.includes(requirement));
  const failLinks = page.locator('table.matrix tbody td:nth-child(3) a.to-failure', { has: page.locator('.v-fail') });
  expect(await failLinks.count()).toBe(failingHere.length);
  await failLinks.first().click();
  const target = decodeURIComponent(new URL(page.url()).hash.slice(1));
  expect(target).toMatch(/--model-firecracker$/);
  const block = page.locator(`[id="${target}"]`);
  expect(await block.isVisible()).toBe(true);
  expect(await block.locator('.findings li').count()).toBeGreaterThan(0);
  // Back to the index and into the matrix, filtered to this requirement.
  await page.click('main a:text-is("Its rows in the results matrix")');
  await page.waitForURL(/results\.html#req=/);
  expect(await page.locator('#matrix-filters select[name="req"]').inputValue()).toBe(requirement);
  const shown = await shownRows(page);
  for (const f of failingHere) expect(shown).toContain(f.id);
  await page.close();
});
