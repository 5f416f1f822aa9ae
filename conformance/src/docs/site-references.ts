/**
 * What a published page may point at: pages of the site itself, and — deliberately — the public
 * sources listed in {@link PUBLIC_CITATIONS}. Nothing else: no link, script, stylesheet or image
 * from another host, no path of this repository's source tree, no note meant for its authors,
 * and no `§` number outside the specification chapters the site cites. {@link outsideReferences}
 * finds every breach in a built site; the site's tests fail on one.
 */

/** A public source a page may link to or name, by URL prefix, and why it is cited. */
export interface PublicCitation {
  readonly prefix: string;
  readonly why: string;
}

/**
 * The public sources a page may cite. The profiles page gives the QEMU source (at a release tag)
 * each QEMU profile value was read from, so a reader can check the model against the device.
 */
export const PUBLIC_CITATIONS: readonly PublicCitation[] = [
  { prefix: 'https://github.com/qemu/qemu/blob/v', why: 'the QEMU source at a release tag that a QEMU profile value is read from' },
];

/** The chapters of VIRTIO 1.4 the site cites: the core (§2–§4) and the virtio-mem device (§5.15). */
const CITED_CHAPTERS = /^(?:[234]|5\.15)(?:\.|$)/;

/** One reference to something outside the site. */
export interface OutsideReference {
  /** The site-relative page. */
  readonly page: string;
  /** 1-based line in the page. */
  readonly line: number;
  /** What is referenced: a link or embed (`href`/`src`/`url()`), a URL in text, a source path, an internal note, a section number. */
  readonly kind: 'link' | 'url' | 'source-path' | 'internal-note' | 'section';
  /** The offending text. */
  readonly text: string;
}

/** Source-tree paths of this repository: its code folders, and TypeScript file names. */
const SOURCE_PATHS = /\b(?:spec|model|adapters|conformance|examples)\/(?:src|test|bin|native|lib)\b|\b[\w-]+(?:\.[\w-]+)*\.(?:ts|tsx|mts|cts)\b/g;

/** Notes written for the project's authors, never for a reader of the site. */
const INTERNAL_NOTES = /\bfacts\s*§|\bDESIGN\.md\b|\.\.\/shared\b|\bcode-style-anchors\b|\bfield-20\d\d\b|\bbug class\b/gi;

const ATTRIBUTE = /\b(?:href|src|action|poster|data)\s*=\s*"([^"]*)"/g;
const CSS_URL = /url\(\s*['"]?([^'")]*)/g;
const TEXT_URL = /\b(?:https?|ftp|file):\/\/[^\s"<>)]+/g;
const SECTION = /§\s*(\d+(?:\.\d+)*)/g;

function unescapeAttribute(value: string): string {
  return value
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function cited(url: string): boolean {
  return PUBLIC_CITATIONS.some((c) => url.startsWith(c.prefix));
}

/** The site-relative path a relative link from `page` leads to, or null when it leaves the site. */
function resolve(page: string, target: string): string | null {
  const parts = page.split('/').slice(0, -1);
  for (const segment of target.split('/')) {
    if (segment === '..') {
      if (parts.length === 0) return null;
      parts.pop();
    } else if (segment !== '.' && segment !== '') parts.push(decodeURIComponent(segment));
  }
  return parts.join('/');
}

/** Why a link (an attribute value or a CSS `url()`) leaves the site, or null when it stays in it. */
function linkProblem(page: string, raw: string, pages: ReadonlyMap<string, string>): string | null {
  const target = unescapeAttribute(raw).trim();
  if (target === '' || target.startsWith('#')) return null;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return cited(target) ? null : target;
  if (target.startsWith('/')) return target;
  const file = target.replace(/[?#].*$/, '');
  const resolved = resolve(page, file);
  return resolved !== null && pages.has(resolved) ? null : target;
}

/**
 * Every reference in `pages` (site-relative path → content, as `buildSite` returns) to something
 * outside the site, in page and line order. HTML pages are checked whole; the stylesheet for
 * its `url()`s; other files (the JSON Schemas) are data and not checked.
 */
export function outsideReferences(pages: ReadonlyMap<string, string>): OutsideReference[] {
  const found: OutsideReference[] = [];
  for (const [page, content] of [...pages].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const html = page.endsWith('.html');
    if (!html && !page.endsWith('.css')) continue;
    content.split('\n').forEach((line, i) => {
      const add = (kind: OutsideReference['kind'], text: string): void => void found.push({ page, line: i + 1, kind, text });
      for (const m of line.matchAll(CSS_URL)) {
        const problem = linkProblem(page, m[1]!, pages);
        if (problem !== null) add('link', problem);
      }
      if (!html) return;
      for (const m of line.matchAll(ATTRIBUTE)) {
        const problem = linkProblem(page, m[1]!, pages);
        if (problem !== null) add('link', problem);
      }
      // The text a reader sees (tags removed, so attribute values are not counted twice).
      const text = line.replace(/<[^>]*>/g, ' ');
      for (const m of text.matchAll(TEXT_URL)) if (!cited(unescapeAttribute(m[0]))) add('url', m[0]);
      for (const m of text.matchAll(SOURCE_PATHS)) add('source-path', m[0]);
      for (const m of text.matchAll(INTERNAL_NOTES)) add('internal-note', m[0]);
      for (const m of text.matchAll(SECTION)) if (!CITED_CHAPTERS.test(m[1]!)) add('section', m[0]);
    });
  }
  return found;
}
