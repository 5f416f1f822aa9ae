/**
 * The vector pages of the living spec: the index of every vector file and vector, and one page
 * per file with each vector's initial state, steps and allowed outcomes, and, when the site is
 * built from results files, each implementation's verdict with its failure text (the target of
 * the matrix's failing cells).
 */
import * as path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { FEATURE_BITS, SIZE_STYLES, formatSize } from '../../../spec/src/index';
import type { Vector } from '../loader/types';
import { evaluateSetup } from '../runner/setup';
import { anchor, badge, esc, href, page, prose, table } from './html';
import { ResultColumn, caseResults } from './results-columns';
import { PageOf, requirementLink, vectorLink } from './site-links';

/** The index of vector files and of every vector. */
export function vectorIndexPage(vectors: readonly Vector[], files: readonly string[], pageOf: PageOf): string {
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

/** A vector file as the corpus names it (`conformance/vectors/device/plug.yaml`), else its base name. */
export function displayFile(file: string): string {
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

/** The page of one vector file: its header comment, then each vector with its steps and results. */
export function vectorFilePage(file: string, vectors: readonly Vector[], text: string | undefined, columns: readonly ResultColumn[]): string {
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
${columns.length ? caseResults(v.id, columns) : ''}
</section>`;
  });
  const body = `<h1>${esc(displayFile(file))}</h1>
${header ? `<p>${prose(header)}</p>` : ''}
<p><a href="../vectors.html">All vectors</a></p>
${sections.join('\n')}`;
  return page(displayFile(file), 'vectors.html', body, 1);
}
