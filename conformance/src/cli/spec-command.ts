/**
 * `vmemct spec [--json]`: the protocol as data — layouts, constants and the requirement catalogue.
 * The 71 statements of §5.15 are `requirements`; the statements beyond it (virtio core, the
 * suite's own) are listed apart, under `beyond` in the JSON and after them in the text.
 */
import { buildSpecDocument, LayoutSpec, Requirement } from '../../../spec/src/index';
import { OptionSpec, parseArgs } from './args';
import { UsageError } from './usage-error';

function layoutTable(layout: LayoutSpec): string[] {
  const lines = [`${layout.structName} (${layout.size} bytes, §${layout.section}, little-endian)`];
  lines.push('  off  size  kind   field                mutability      notes');
  for (const f of layout.fields) {
    const notes = [
      f.featureCondition ? `needs ${f.featureCondition}` : '',
      f.meaningfulFor ? `for ${f.meaningfulFor.join('/')}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    lines.push(
      `  ${String(f.offset).padStart(3)}  ${String(f.size).padStart(4)}  ${f.kind.padEnd(5)}  ${f.name.padEnd(19)}  ${f.mutability.padEnd(14)}  ${notes}`,
    );
  }
  return lines;
}

function requirementLine(r: Requirement): string {
  const testability = r.testable
    ? r.needs.length
      ? `testable, needs ${r.needs.join('+')}`
      : 'testable'
    : 'untestable';
  return `  ${r.id.padEnd(16)} §${r.section.padEnd(11)} ${r.level.padEnd(10)} ${r.summary} [${testability}]`;
}

/** The options of `vmemct spec`. */
export const SPEC_OPTIONS: Readonly<Record<string, OptionSpec>> = { json: { kind: 'flag' } };

/** Renders the spec document as text or JSON. */
export function specCommand(args: readonly string[]): string {
  const parsed = parseArgs('spec', args, SPEC_OPTIONS);
  if (parsed.positional.length > 0)
    throw new UsageError(`spec: unexpected argument '${parsed.positional[0]}' (usage: vmemct spec [--json])`);
  const document = buildSpecDocument();
  if (parsed.flags.has('json')) return JSON.stringify(document, null, 2);
  const lines: string[] = [];
  lines.push(`virtio-mem — VIRTIO ${document.specVersion} §${document.section}`);
  lines.push(
    `device ID ${document.deviceId}; PCI ${document.pci.vendorId}:${document.pci.deviceId}; queues: ${document.queues.map((q) => `${q.index} ${q.name}`).join(', ')}`,
  );
  lines.push('');
  lines.push('feature bits:');
  for (const f of document.features) lines.push(`  ${String(f.value).padStart(2)}  ${f.name.padEnd(38)} ${f.meaning}`);
  for (const [title, list] of [
    ['request types', document.requestTypes],
    ['response codes', document.responseCodes],
    ['block states', document.blockStates],
  ] as const) {
    lines.push(`${title}:`);
    for (const c of list) lines.push(`  ${c.value}  ${c.name.padEnd(38)} ${c.meaning}`);
  }
  for (const layout of document.layouts) {
    lines.push('');
    lines.push(...layoutTable(layout));
  }
  const device = document.requirements.filter((r) => r.side === 'device').length;
  lines.push('');
  lines.push(
    `requirements: ${document.requirements.length} (${device} device, ${document.requirements.length - device} driver)`,
  );
  for (const r of document.requirements) lines.push(requirementLine(r));
  // Beyond §5.15 (core chapters, the suite's own expectations): listed apart, so the count above stays §5.15's.
  lines.push('');
  lines.push(`beyond §5.15: ${document.beyond.length} (virtio core statements and the suite's own expectations)`);
  for (const r of document.beyond) lines.push(requirementLine(r));
  return lines.join('\n');
}
