/**
 * The living spec's harness page: the harness protocol (`vmemct-harness/1`) generated from its
 * tables in spec/src/harness-protocol.ts — framing, value encodings, the hello, every command per
 * target (required core or the capability that enables it) with its params, reply fields and
 * allowed calls, every call with its answer — and the JSON Schemas of every message, published
 * beside the page as one file.
 */
import {
  HARNESS_CALLS,
  HARNESS_CALL_NAMES,
  HARNESS_COMMANDS,
  HARNESS_LINE_LIMIT,
  HARNESS_OPS,
  HARNESS_PROTOCOL,
  HARNESS_SCHEMAS,
  HARNESS_TARGETS,
  HELLO_FIELDS,
  SETUP_FIELDS,
  FAILURE_REPLY_FIELDS,
} from '../../../spec/src/index';
import type { HarnessFields, HarnessFieldSpec, HarnessOp } from '../../../spec/src/index';
import { esc, page, table } from './html';

/** Where the schemas file is published, relative to the site root. */
export const HARNESS_SCHEMAS_FILE = 'harness-schemas.json';

/** How each field kind is written on the wire, for the page. */
const KIND_TEXT: Readonly<Record<HarnessFieldSpec['kind'], string>> = {
  u64: '64-bit: string, "0x…" hex or decimal',
  count: 'integer number',
  bytes: 'bytes: hex string',
  'bytes-or-null': 'bytes: hex string, or null',
  'bytes-list': 'array of hex strings',
  bool: 'true / false',
  text: 'string',
  multiplier: 'number ≥ 1',
  'block-runs': 'array of {first, count}',
  setup: 'the set-up record',
  targets: 'object: target → capability names',
};

function kindText(spec: HarnessFieldSpec): string {
  const limits = [
    spec.max !== undefined ? `at most ${spec.max}` : '',
    spec.length !== undefined ? `${spec.length} bytes` : '',
  ].filter((s) => s !== '');
  return `${KIND_TEXT[spec.kind]}${limits.length > 0 ? ` (${limits.join(', ')})` : ''}`;
}

function presence(spec: HarnessFieldSpec): string {
  const when = spec.requiredWhen;
  if (when) return `when <code>${esc(when.field)}</code> is ${when.is === 'absent' ? 'absent' : `<code>${when.is}</code>`}`;
  return spec.optional ? 'optional' : 'required';
}

/** A field table, or a dash when there are no fields. */
function fieldsHtml(fields: HarnessFields): string {
  const entries = Object.entries(fields);
  if (entries.length === 0) return '<p class="muted">no fields</p>';
  return table(
    ['field', 'value', 'presence', 'meaning'],
    entries.map(([name, spec]) => [`<code>${esc(name)}</code>`, esc(kindText(spec)), presence(spec), esc(spec.description)]),
  );
}

function fieldList(fields: HarnessFields): string {
  const names = Object.keys(fields);
  return names.length === 0 ? '—' : names.map((n) => `<code>${esc(n)}</code>`).join(', ');
}

function commandRows(ops: readonly HarnessOp[]): string[][] {
  return ops.map((op) => {
    const spec = HARNESS_COMMANDS[op];
    const capability = 'capability' in spec ? `<code>${esc(spec.capability)}</code>` : 'core';
    const calls = spec.calls.length === 0 ? '—' : spec.calls.map((c) => `<code>${esc(c)}</code>`).join(', ');
    return [`<code>${esc(op)}</code>`, capability, esc(spec.description), fieldList(spec.params), fieldList(spec.reply), calls];
  });
}

/** The harness protocol page. */
export function harnessPage(): string {
  const targetSections = [...HARNESS_TARGETS, 'both' as const].map((target) => {
    const ops = HARNESS_OPS.filter((op) => HARNESS_COMMANDS[op].target === target);
    const title = target === 'both' ? 'Either target' : `The ${target} target`;
    return `<h3>${title}</h3>
${table(['op', 'needs', 'what it does', 'params', 'reply fields', 'calls allowed'], commandRows(ops))}`;
  });
  const fieldSections = HARNESS_OPS.map((op) => {
    const spec = HARNESS_COMMANDS[op];
    return `<h3 id="op-${esc(op)}"><code>${esc(op)}</code></h3>
<p>${esc(spec.description)}.</p>
<h4>params</h4>
${fieldsHtml(spec.params)}
<h4>reply</h4>
${fieldsHtml(spec.reply)}`;
  });
  const callSections = HARNESS_CALL_NAMES.map((name) => {
    const spec = HARNESS_CALLS[name];
    return `<h3 id="call-${esc(name)}"><code>${esc(name)}</code></h3>
<p>${esc(spec.description)}.</p>
<h4>call</h4>
${fieldsHtml(spec.fields)}
<h4>answer</h4>
${fieldsHtml(spec.answer)}`;
  });
  const body = `<h1>The harness protocol: <code>${esc(HARNESS_PROTOCOL)}</code></h1>
<p>How <code>vmemct run --adapter exec</code> talks to a <em>harness</em>: a program in any language that wraps a virtio-mem device or driver. JSON Lines (one object per line, UTF-8, at most ${HARNESS_LINE_LIMIT} bytes with the newline) on the harness's stdin and stdout, or on a unix socket it listens on. Strict lock-step: the suite sends a command and nothing else until its reply, except the answers to the calls the harness makes while a command that allows them is pending. 64-bit values are strings (the suite writes <code>"0x…"</code>; a harness may write hex or decimal), small integers are numbers, bytes are hex strings. Unknown fields are ignored; a known field of the wrong kind is a protocol violation. JSON Schemas of every message: <a href="${HARNESS_SCHEMAS_FILE}">${HARNESS_SCHEMAS_FILE}</a>.</p>
<h2 id="hello">The hello</h2>
<p>The harness's first line.</p>
${fieldsHtml(HELLO_FIELDS)}
<h2 id="commands">Commands</h2>
<p>A command is <code>{"id": N, "op": "…", …params}</code>; its reply is <code>{"id": N, "ok": true, …fields}</code> or a failure:</p>
${fieldsHtml(FAILURE_REPLY_FIELDS)}
${targetSections.join('\n')}
<h2 id="setup">The set-up record</h2>
${fieldsHtml(SETUP_FIELDS)}
<h2 id="command-fields">Fields of each command</h2>
${fieldSections.join('\n')}
<h2 id="calls">Calls and answers</h2>
<p>A call is <code>{"call": "…", …fields}</code>; the suite's next line is its answer <code>{"answer": "…", …fields}</code>.</p>
${callSections.join('\n')}`;
  return page('Harness protocol', 'harness.html', body);
}

/** The schemas file published beside the page. */
export function harnessSchemasFile(): string {
  return `${JSON.stringify({ protocol: HARNESS_PROTOCOL, schemas: HARNESS_SCHEMAS }, null, 2)}\n`;
}
