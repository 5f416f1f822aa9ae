/**
 * The generated site in a real headless browser (Debian's chromium through playwright-core):
 * every page loads without console errors or failed requests, every internal link and anchor
 * resolves, all 71 requirements and the byte diagrams are there, and a screenshot of the
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
import { buildSite, resultsOfRun } from '../../src/docs/site';
import { writeSite } from '../../src/docs/output';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CHROMIUM = process.env.VMEMCT_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOT = path.join(ROOT, 'test-output', 'docs', 'config-diagram.png');

let browser: Browser;
let site: string;
/** Vectors in the corpus (one matrix row each). */
let corpusSize = 0;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install --no-install-recommends chromium) or set VMEMCT_CHROMIUM`);
  const loaded = loadVectors([path.join(ROOT, 'conformance', 'vectors')]);
  corpusSize = loaded.vectors.length;
  const run = await runVectors(createModelAdapter(), loaded.vectors, loaded.vectors, {});

  const results = [resultsOfRun(run, { file: 'model.json', implementation: 'model:spec', adapter: 'model', profile: 'spec', expectations: null })];
  const files = new Map([...new Set(loaded.vectors.map((v) => v.source.file))].map((f) => [f, fs.readFileSync(f, 'utf8')] as const));
  site = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-site-'));
  writeSite(site, buildSite({ vectors: loaded.vectors, vectorFiles: files, results }));
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
    for (const href of await page.$$eval('a[href]', (els) => els.map((e) => (e as unknown as { href: string }).href))) links.push({ from: file, href });
  }
  await page.close();
  for (const { from, href } of links) {
    const url = new URL(href);
    if (url.protocol !== 'file:') continue;
    const target = fileURLToPath(url);
    if (!fs.existsSync(target)) {
      problems.push(`${path.relative(site, from)} links to missing ${path.relative(site, target)}`);
      continue;
    }
    const fragment = decodeURIComponent(url.hash.slice(1));
    if (fragment && !idsByFile.get(target)?.has(fragment)) problems.push(`${path.relative(site, from)} links to missing anchor #${fragment} in ${path.relative(site, target)}`);
  }
  expect(problems).toEqual([]);
  expect(links.filter((l) => l.href.includes('#')).length).toBeGreaterThan(1000);
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
  expect(headers).toEqual(['vector', 'model:spec']);
  const badges = await page.$$eval('table.matrix tbody td .badge', (els) => els.map((e) => e.textContent));
  expect(badges.length).toBe(corpusSize);
  expect(badges.filter((b) => b === 'pass').length).toBeGreaterThan(280);
  await page.close();
});
