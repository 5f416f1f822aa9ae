/**
 * `vmemct docs` against hostile input, through the built CLI: vector file names, titles, notes
 * and results contents that carry markup; results files that break the results schema or are not
 * regular files; output folders that are not ours; vector files whose page names would collide.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { MATRIX_SCRIPT } from '../src/docs/matrix-script';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const XSS_NAME = 'x"><img src=z onerror=alert(1)>';
const XSS_TEXT = `</code><script>alert(1)</script>"'><img src=z onerror=alert(2)> javascript:alert(3)`;

let tmp: string;

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function vmemct(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Outcome {
  const started = Date.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30000, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

/** Exit 3 with one `file:line: field: reason` style line naming `what`, no stack trace, quickly. */
function expectRefused(r: Outcome, what: string | RegExp): void {
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(what);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toMatch(/internal error/i);
  expect(r.ms).toBeLessThan(20000);
}

function vectorFile(id: string, title: string, note: string): string {
  return `format: vmemct-vectors/1
# A header comment with markup: ${title}
vectors:
  - id: ${id}
    title: ${JSON.stringify(title)}
    description: ${JSON.stringify(title)}
    requirements: [dev.state.4]
    target: device
    setup: {block_size: 2MiB, region_size: 1GiB, addr: 4GiB, requested_size: 64MiB}
    steps:
      - request: {type: STATE, addr: addr, nb_blocks: 8}
        expect: {response: ACK, state: UNPLUGGED}
        note: ${JSON.stringify(note)}
`;
}

function htmlFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.html'))
    .map((e) => path.join(e.parentPath, e.name));
}

const SITE_TAGS = new Set(
  'html head meta title link body header span nav a main footer h1 h2 h3 h4 p div strong em code pre table thead tbody tfoot tr th td section br mark ul li form fieldset legend label select option input button output'.split(
    ' ',
  ),
);

/** The attributes the site writes without a value. */
const BOOLEAN_ATTRIBUTES = /\s+(?:hidden|checked|data-u)(?=[\s>]|$)/g;

/**
 * Every tag of the page is one the site itself writes, with quoted attributes and no handlers;
 * the one script is the matrix's own, verbatim.
 */
function markupProblems(html: string): string[] {
  const problems: string[] = [];
  const scripts = [...html.matchAll(/<script>\n([\s\S]*?)\n<\/script>/g)];
  for (const m of scripts) if (m[1] !== MATRIX_SCRIPT) problems.push(`a script that is not the matrix's at ${m.index}`);
  const text = html.replace(/^<!DOCTYPE html>/, '').replace(/<script>\n[\s\S]*?\n<\/script>/g, '');
  for (const m of text.matchAll(/<\/?([A-Za-z][A-Za-z0-9]*)([^>]*)>/g)) {
    const [tag, name, rest] = m;
    if (!SITE_TAGS.has(name!.toLowerCase())) problems.push(`unexpected tag ${tag}`);
    const attrs = rest!
      .replace(/\s+[a-z-]+="[^"<>]*"/g, '')
      .replace(BOOLEAN_ATTRIBUTES, '')
      .replace(/\s+$/, '');
    if (attrs !== '') problems.push(`attribute breakout in ${tag}`);
    // A handler is an attribute of its own; inside a quoted (escaped) value it is only text.
    if (/\son[a-z]+=/i.test(rest!.replace(/="[^"]*"/g, '=""'))) problems.push(`event handler in ${tag}`);
  }
  // A `<` that does not start a tag, or a javascript: URL in an attribute.
  for (const m of text.matchAll(/<(?![A-Za-z/])/g)) problems.push(`bare < at ${m.index}`);
  for (const m of text.matchAll(/(href|src)="\s*javascript:/gi)) problems.push(`javascript: URL at ${m.index}`);
  return problems;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-hostile-docs-'));
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('docs: markup from input never reaches a page unescaped', () => {
  test('hostile vector file names, titles, notes and results contents are escaped on every page', () => {
    const vectors = path.join(tmp, 'xss-vectors');
    fs.mkdirSync(path.join(vectors, XSS_NAME), { recursive: true });
    fs.writeFileSync(
      path.join(vectors, XSS_NAME, `${XSS_NAME}.yaml`),
      vectorFile('vmem.dev.xss.one', XSS_TEXT, XSS_TEXT),
    );
    fs.writeFileSync(path.join(vectors, 'javascript:alert(1).yaml'), vectorFile('vmem.dev.xss.two', 'plain', 'plain'));
    const results = path.join(tmp, `${XSS_NAME}.json`);
    const ok = vmemct(['run', '--vectors', vectors, '--json', results]);
    expect(ok.stderr).toBe('');
    const doc = JSON.parse(fs.readFileSync(results, 'utf8')) as {
      adapter: { implementation: string };
      results: { id: string; title: string; file: string; [field: string]: unknown }[];
    };
    doc.adapter.implementation = XSS_TEXT;
    doc.results.push({ ...doc.results[0]!, id: XSS_TEXT, title: XSS_TEXT, file: XSS_NAME });
    // A failure whose every text is hostile: on the matrix (tooltip, filters), below it and on the requirement page.
    doc.results.push({
      ...doc.results[0]!,
      id: `vmem.dev.${XSS_NAME}`,
      verdict: 'fail',
      status: 'unexpected',
      expectationReason: XSS_TEXT,
      requirements: ['dev.state.4', XSS_TEXT],
      findings: [
        {
          verdict: 'fail',
          step: 1,
          check: XSS_TEXT,
          message: XSS_TEXT,
          expected: XSS_TEXT,
          observed: XSS_TEXT,
          requirements: [XSS_TEXT],
        },
      ],
    } as (typeof doc.results)[number]);
    doc.results.push({ ...doc.results[0]!, id: `vu.${XSS_NAME}`, title: XSS_TEXT });
    fs.writeFileSync(results, JSON.stringify({ ...doc, expectations: XSS_TEXT }));
    const out = path.join(tmp, 'xss-site');
    const r = vmemct(['docs', '--out', out, '--vectors', vectors, '--results', results]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const pages = htmlFiles(out);
    expect(pages.length).toBeGreaterThanOrEqual(8);
    const problems = pages.flatMap((p) =>
      markupProblems(fs.readFileSync(p, 'utf8')).map((m) => `${path.relative(out, p)}: ${m}`),
    );
    expect(problems).toEqual([]);
    // The hostile texts are there, escaped, and the pages they name exist.
    const all = pages.map((p) => fs.readFileSync(p, 'utf8')).join('\n');
    expect(all).toContain('x&quot;&gt;&lt;img src=z onerror=alert(1)&gt;');
    expect(all).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    // The failure text reached the requirement page and the matrix, escaped.
    const requirement = fs.readFileSync(path.join(out, 'requirements', 'dev.state.4.html'), 'utf8');
    expect(requirement).toContain(`<code>vmem.dev.x&quot;&gt;&lt;img src=z onerror=alert(1)&gt;</code>`);
    expect(requirement).toContain('observed <code>&lt;/code&gt;&lt;script&gt;');
    expect(fs.readFileSync(path.join(out, 'results.html'), 'utf8')).toContain(
      '<span class="reason" role="tooltip">step 1: &lt;/code&gt;&lt;script&gt;',
    );
    for (const m of all.matchAll(/href="(vectors\/[^"#]+)/g))
      expect(fs.existsSync(path.join(out, decodeURIComponent(m[1]!)))).toBe(true);
  });
});

describe('docs --results: every results file is checked against the results schema', () => {
  let valid: Record<string, unknown>;

  beforeAll(() => {
    const file = path.join(tmp, 'valid.json');
    vmemct(['run', '--filter', 'vmem.dev.state.all-unplugged-run', '--json', file]);
    valid = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  });

  const cases: [string, (doc: Record<string, unknown>) => unknown, RegExp][] = [
    ['a null entry', (d) => ({ ...d, results: [null] }), /:\d+: results\[0\]: /],
    [
      'a numeric verdict',
      (d) => ({ ...d, results: [{ ...(d.results as object[])[0]!, verdict: 7 }] }),
      /:\d+: results\[0\]\.verdict: must be one of/,
    ],
    ['an adapter of the wrong type', (d) => ({ ...d, adapter: 5 }), /:\d+: adapter: /],
    ['results that are not a list', (d) => ({ ...d, results: { a: 1 } }), /:\d+: results: /],
    ['a missing field', (d) => ({ ...d, summary: undefined }), /:\d+: .*summary/],
  ];
  test.each(cases)('%s is exit 3 with file:line: field: reason', (_name, mutate, message) => {
    const file = path.join(tmp, 'bad.json');
    fs.writeFileSync(file, JSON.stringify(mutate(valid), null, 2));
    const r = vmemct(['docs', '--out', path.join(tmp, 'never-written'), '--results', file]);
    expectRefused(r, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${message.source}`));
    expect(fs.existsSync(path.join(tmp, 'never-written'))).toBe(false);
  });

  test('a JSON syntax error is exit 3 with its line', () => {
    const file = path.join(tmp, 'syntax.json');
    fs.writeFileSync(file, '{\n  "format": "vmemct-results/1",\n  oops\n}');
    expectRefused(vmemct(['docs', '--out', path.join(tmp, 'never-written'), '--results', file]), /syntax\.json:3: /);
  });

  test('a FIFO is refused without blocking', () => {
    const fifo = path.join(tmp, 'results.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expectRefused(
      vmemct(['docs', '--out', path.join(tmp, 'never-written'), '--results', fifo]),
      /results\.fifo.*not a regular file/,
    );
  });

  test('an oversized file is refused without being read', () => {
    const big = path.join(tmp, 'big.json');
    const fd = fs.openSync(big, 'w');
    fs.ftruncateSync(fd, 64 * 1024 * 1024);
    fs.closeSync(fd);
    expectRefused(
      vmemct(['docs', '--out', path.join(tmp, 'never-written'), '--results', big]),
      /big\.json.*larger than the limit/,
    );
  });
});

describe('docs --out: never writes over a folder that is not a previous docs output', () => {
  test('a non-empty folder without the marker is refused, and left alone', () => {
    const out = path.join(tmp, 'someone-elses');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'index.html'), 'precious');
    expectRefused(vmemct(['docs', '--out', out]), new RegExp(`${out}.*not empty.*--force`));
    expect(fs.readdirSync(out)).toEqual(['index.html']);
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toBe('precious');
    expect(vmemct(['docs', '--out', out, '--force']).code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toContain('<!DOCTYPE html>');
  });

  test('a previous docs output (with its marker) and an empty folder are written without --force', () => {
    const out = path.join(tmp, 'ours');
    fs.mkdirSync(out);
    expect(vmemct(['docs', '--out', out]).code).toBe(0);
    expect(fs.existsSync(path.join(out, '.vmemct-docs'))).toBe(true);
    expect(vmemct(['docs', '--out', out]).code).toBe(0);
  });

  test('the home folder is refused even with --force', () => {
    const home = path.join(tmp, 'home');
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, '.profile'), 'x');
    const env = { ...process.env, HOME: home };
    expectRefused(vmemct(['docs', '--out', home, '--force'], env), new RegExp(`${home}.*home`));
    expect(fs.readdirSync(home)).toEqual(['.profile']);
  });

  test('/ is refused even with --force', () => {
    const before = fs.readdirSync('/').sort();
    expectRefused(vmemct(['docs', '--out', '/', '--force']), /--out \/: the root folder/);
    expect(fs.readdirSync('/').sort()).toEqual(before);
  });
});

describe('docs: every vector file gets its own page', () => {
  test('files with the same base name in different folders, and names that flatten alike, get distinct pages', () => {
    const vectors = path.join(tmp, 'same-names');
    for (const [dir, file, id] of [
      ['one/device', 'plug.yaml', 'vmem.dev.same.one'],
      ['two/device', 'plug.yaml', 'vmem.dev.same.two'],
      ['a', 'b-c.yaml', 'vmem.dev.same.three'],
      ['a-b', 'c.yaml', 'vmem.dev.same.four'],
    ] as const) {
      fs.mkdirSync(path.join(vectors, dir), { recursive: true });
      fs.writeFileSync(path.join(vectors, dir, file), vectorFile(id, id, 'n'));
    }
    const out = path.join(tmp, 'same-names-site');
    expect(vmemct(['docs', '--out', out, '--vectors', vectors]).code).toBe(0);
    const pages = fs.readdirSync(path.join(out, 'vectors'));
    expect(pages).toHaveLength(4);
    const index = fs.readFileSync(path.join(out, 'vectors.html'), 'utf8');
    for (const id of ['one', 'two', 'three', 'four']) {
      const link = new RegExp(`href="(vectors/[^"#]+)#vmem\\.dev\\.same\\.${id}"`).exec(index);
      expect(link).not.toBeNull();
      expect(fs.readFileSync(path.join(out, decodeURIComponent(link![1]!)), 'utf8')).toContain(
        `id="vmem.dev.same.${id}"`,
      );
    }
  });
});
