/**
 * Links between the site's pages: to a vector on its file's page, to a requirement's own page,
 * and the page paths they are built from. Every link is relative, so the site opens from disk.
 */
import { ALL_REQUIREMENTS } from '../../../spec/src/index';
import type { Vector } from '../loader/types';
import { anchor, esc, href } from './html';

/** Each vector file's page, site-relative (from `vectorPagePaths`). */
export type PageOf = ReadonlyMap<string, string>;

const KNOWN_REQUIREMENTS = new Set(ALL_REQUIREMENTS.map((r) => r.id));

/** The page of a requirement of the catalogue, site-relative (`requirements/dev.plug.3.html`). */
export function requirementPagePath(id: string): string {
  return `requirements/${anchor(id)}.html`;
}

/** Whether a requirement id is in the catalogue (and so has a page). */
export function hasRequirementPage(id: string): boolean {
  return KNOWN_REQUIREMENTS.has(id);
}

/** A link to a vector on its file's page, from a page `depth` folders below the root. */
export function vectorLink(v: Vector, depth: number, pageOf: PageOf): string {
  return `<a href="${href('../'.repeat(depth) + pageOf.get(v.source.file)!, anchor(v.id))}"><code>${esc(v.id)}</code></a>`;
}

/** A link to a requirement's page, from a page `depth` folders below the root; an id outside the catalogue as plain code. */
export function requirementLink(id: string, depth: number): string {
  if (!hasRequirementPage(id)) return `<code>${esc(id)}</code>`;
  return `<a href="${href('../'.repeat(depth) + requirementPagePath(id))}"><code>${esc(id)}</code></a>`;
}
