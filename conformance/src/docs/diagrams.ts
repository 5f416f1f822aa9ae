/**
 * Byte diagrams of the wire structures: an offset ruler, eight bytes per row, each field a box
 * spanning its bytes and coloured by who may change it; then a table of the same fields with
 * endianness, mutability and feature condition. Built from `spec/` layouts, never restated.
 */
import type { FieldSpec, LayoutSpec } from '../../../spec/src/layouts';
import { esc, table } from './html';

const BYTES_PER_ROW = 8;

const KIND_TEXT: Record<FieldSpec['kind'], string> = {
  le16: 'le16 (16-bit little-endian)',
  le64: 'le64 (64-bit little-endian)',
  bytes: 'bytes',
};

const MUTABILITY_TEXT: Record<FieldSpec['mutability'], string> = {
  fixed: 'fixed (changes only across a system reset)',
  'device-policy': 'device policy (may change at run time within §5.15.4.2)',
  host: 'host (changed by a resize request)',
  derived: 'derived (follows the plugged blocks)',
  reserved: 'reserved padding (no meaning)',
  'driver-written': 'written by the driver',
  'device-written': 'written by the device',
};

const hexOffset = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** The grid diagram of one layout. */
export function byteDiagram(layout: LayoutSpec): string {
  const rows = Math.ceil(layout.size / BYTES_PER_ROW);
  const cells: string[] = [`<div class="ruler" style="grid-row: 1; grid-column: 1">offset</div>`];
  for (let b = 0; b < BYTES_PER_ROW; b++) cells.push(`<div class="ruler" style="grid-row: 1; grid-column: ${b + 2}">+${b}</div>`);
  for (let r = 0; r < rows; r++) cells.push(`<div class="rowlabel" style="grid-row: ${r + 2}; grid-column: 1">${hexOffset(r * BYTES_PER_ROW)}</div>`);
  for (const field of layout.fields) {
    // A field crossing a row boundary is drawn as one box per row.
    for (let at = field.offset; at < field.offset + field.size; ) {
      const row = Math.floor(at / BYTES_PER_ROW);
      const column = at % BYTES_PER_ROW;
      const span = Math.min(BYTES_PER_ROW - column, field.offset + field.size - at);
      const first = at === field.offset;
      const title = `${field.specPath} · offset ${field.offset} · ${field.size} byte${field.size > 1 ? 's' : ''} · ${field.kind} · ${field.mutability}${field.featureCondition ? ` · needs ${field.featureCondition}` : ''}`;
      cells.push(
        `<div class="field m-${field.mutability}" style="grid-row: ${row + 2}; grid-column: ${column + 2} / span ${span}" title="${esc(title)}">` +
          `<strong>${esc(field.name)}${first ? '' : ' (cont.)'}</strong>${first ? `${esc(field.kind)} · ${field.size} B${field.featureCondition ? ` · ${esc(field.featureCondition)}` : ''}` : ''}</div>`,
      );
      at += span;
    }
  }
  return `<div class="diagram" id="diagram-${esc(layout.id)}" role="img" aria-label="${esc(`byte layout of struct ${layout.structName}, ${layout.size} bytes`)}">\n${cells.join('\n')}\n</div>`;
}

/** The field table of one layout. */
export function fieldTable(layout: LayoutSpec): string {
  return table(
    ['offset', 'size', 'field', 'encoding', 'who changes it', 'feature', 'meaning'],
    layout.fields.map((f) => [
      `<code>${hexOffset(f.offset)}</code>`,
      String(f.size),
      `<code>${esc(f.specPath)}</code>`,
      esc(KIND_TEXT[f.kind]),
      esc(MUTABILITY_TEXT[f.mutability]),
      f.featureCondition ? `<code>${esc(f.featureCondition)}</code>` : '',
      esc(f.description) + (f.meaningfulFor ? ` <span class="muted">(for ${esc(f.meaningfulFor.join(', '))})</span>` : ''),
    ]),
  );
}

/** The colour legend of the diagrams (only the mutabilities `layouts` use). */
export function legend(layouts: readonly LayoutSpec[]): string {
  const used = [...new Set(layouts.flatMap((l) => l.fields.map((f) => f.mutability)))];
  return `<p class="legend">${used.map((m) => `<span class="m-${m}">${esc(m)}</span>`).join('')}</p>`;
}
