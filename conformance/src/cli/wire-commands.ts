/**
 * `vmemct encode` and `vmemct decode`: the wire structures from the command line.
 */
import {
  BLOCK_STATE_NAMES,
  FieldSpec,
  FieldValue,
  LAYOUTS,
  LayoutSpec,
  REQUEST_TYPE_NAMES,
  RESPONSE_CODE_NAMES,
  findField,
  parseValue,
} from '../../../spec/src/index';
import { decodeLayout, describeFieldRange, encodeLayout, isCodecError } from '../../../model/src/index';
import { parseArgs } from './args';
import { UsageError } from './usage-error';

/** Symbolic names accepted for enumerated fields, by layout and field. */
const SYMBOLS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  request: { type: REQUEST_TYPE_NAMES },
  response: { type: RESPONSE_CODE_NAMES, state: BLOCK_STATE_NAMES },
};

/** Resolves the structure argument (`config`, `request`, `response`). */
export function layoutByName(name: string | undefined): LayoutSpec {
  if (name === undefined) throw new UsageError('missing structure: expected one of config, request, response');
  const layout = (LAYOUTS as Record<string, LayoutSpec | undefined>)[name];
  if (!layout) throw new UsageError(`unknown structure '${name}': expected one of config, request, response`);
  return layout;
}

function parseBytesArgument(field: FieldSpec, text: string, where: string): Uint8Array {
  const hex = text.replace(/^0x/i, '').replace(/[\s:_-]/g, '');
  if (!/^[0-9a-f]*$/i.test(hex) || hex.length !== field.size * 2) {
    throw new UsageError(`${where}: '${text}' must be ${field.size} bytes of hex (${field.size * 2} hex digits)`);
  }
  return Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

function parseFieldArgument(layout: LayoutSpec, argument: string): [string, FieldValue] {
  const eq = argument.indexOf('=');
  if (eq <= 0) throw new UsageError(`'${argument}' is not FIELD=VALUE`);
  const name = argument.slice(0, eq);
  const text = argument.slice(eq + 1);
  const field = findField(layout, name);
  if (!field) {
    throw new UsageError(`${layout.id} has no field '${name}'; fields: ${layout.fields.map((f) => f.name).join(', ')}`);
  }
  const where = `${layout.id}.${name}`;
  if (field.kind === 'bytes') return [name, parseBytesArgument(field, text, where)];
  const symbols = SYMBOLS[layout.id]?.[name];
  const symbolIndex = symbols ? symbols.indexOf(text.toUpperCase().replace(/^VIRTIO_MEM_(REQ|RESP|STATE)_/, '')) : -1;
  if (symbolIndex >= 0) return [name, symbolIndex];
  const parsed = parseValue(text);
  if (!parsed.ok) {
    const names = symbols ? ` or one of ${symbols.join(', ')}` : '';
    throw new UsageError(`${where}: ${parsed.reason}${names}; allowed ${describeFieldRange(field)}`);
  }
  if (field.kind === 'le16') {
    if (parsed.value > 0xffffn)
      throw new UsageError(`${where} = ${text} is out of range; allowed ${describeFieldRange(field)}`);
    return [name, Number(parsed.value)];
  }
  if (parsed.value > 0xffffffffffffffffn)
    throw new UsageError(`${where} = ${text} is out of range; allowed ${describeFieldRange(field)}`);
  return [name, parsed.value];
}

/** `vmemct encode STRUCT FIELD=VALUE …`: prints the bytes as hex. */
export function encodeCommand(argv: readonly string[]): string {
  const args = parseArgs('encode', argv, {}).positional;
  const layout = layoutByName(args[0]);
  const values: Record<string, FieldValue> = {};
  for (const argument of args.slice(1)) {
    const [name, value] = parseFieldArgument(layout, argument);
    if (name in values) throw new UsageError(`field '${name}' given twice`);
    values[name] = value;
  }
  try {
    return toHex(encodeLayout(layout, values));
  } catch (error) {
    if (isCodecError(error)) throw new UsageError(error.message);
    throw error;
  }
}

/** Parses a hex string (spaces, colons and a 0x prefix allowed) into bytes. */
export function parseHexInput(text: string): Uint8Array {
  const hex = text.trim().replace(/^0x/i, '').replace(/[\s:]/g, '');
  const bad = /[^0-9a-f]/i.exec(hex);
  if (bad) throw new UsageError(`input is not hex: unexpected '${bad[0]}' at digit ${bad.index + 1}`);
  if (hex.length % 2 !== 0)
    throw new UsageError(`input has an odd number of hex digits (${hex.length}); each byte needs two`);
  return Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/** `vmemct decode STRUCT HEX`: the fields as a JSON document. */
export function decodeCommand(argv: readonly string[]): string {
  const args = parseArgs('decode', argv, {}).positional;
  const layout = layoutByName(args[0]);
  if (args.length < 2) throw new UsageError(`missing hex input: vmemct decode ${layout.id} HEX (${layout.size} bytes)`);
  const bytes = parseHexInput(args.slice(1).join(''));
  const decoded = decodeLayout(layout, bytes);
  if (!decoded.ok) {
    throw new UsageError(
      `input is too short for ${layout.structName}: ${decoded.error.actual} bytes, need ${decoded.error.expected}`,
    );
  }
  const fields: Record<string, number | string> = {};
  const names: Record<string, string> = {};
  for (const field of layout.fields) {
    const value = decoded.value[field.name];
    if (value instanceof Uint8Array) fields[field.name] = `0x${toHex(value)}`;
    else if (typeof value === 'bigint') fields[field.name] = `0x${value.toString(16)}`;
    else {
      fields[field.name] = value;
      const symbol = SYMBOLS[layout.id]?.[field.name]?.[value];
      if (symbol) names[field.name] = symbol;
    }
  }
  const document = {
    structure: layout.structName,
    size: layout.size,
    fields,
    names,
    nonzero_padding: decoded.nonzeroPadding.map((p) => ({
      field: p.field,
      offset: p.offset,
      bytes: `0x${toHex(p.bytes)}`,
    })),
    trailing_bytes: decoded.trailingBytes,
  };
  return JSON.stringify(document, null, 2);
}

/** Lower-case hex of bytes, no separators. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
