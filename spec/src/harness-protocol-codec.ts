/**
 * Decoders and encoders of the harness protocol, driven by the field tables of
 * harness-protocol.ts. Decoders take parsed JSON and return a tagged result whose reason names
 * the message and field; encoders turn decoded values back into JSON-ready objects (64-bit
 * values as `"0x…"` lowercase hex, bytes as lowercase hex). Both sides use them: the suite (it
 * sends commands and answers, reads hellos, replies and calls) and a harness written in
 * TypeScript (the served model).
 */
import type { DeviceSetup } from './device-setup';
import {
  FAILURE_REPLY_FIELDS,
  HARNESS_CALLS,
  HARNESS_COMMANDS,
  HARNESS_LINE_LIMIT,
  HARNESS_PROTOCOL,
  HARNESS_TARGETS,
  HELLO_FIELDS,
  SETUP_FIELDS,
} from './harness-protocol';
import type {
  HarnessAnswer,
  HarnessBlockRun,
  HarnessCall,
  HarnessCallName,
  HarnessCapability,
  HarnessCommand,
  HarnessDecoded,
  HarnessFieldKind,
  HarnessFields,
  HarnessFieldSpec,
  HarnessHello,
  HarnessKindValues,
  HarnessOp,
  HarnessRecord,
  HarnessReply,
  HarnessTarget,
} from './harness-protocol';
import { CAPABILITY_NAMES } from './vector-schemas';

type Decoded<T> = HarnessDecoded<T>;
const U64_MAX = (1n << 64n) - 1n;

function fail<T>(reason: string): Decoded<T> {
  return { ok: false, reason };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : `'${value}'`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Decodes a 64-bit value: a string of `0x` hex (1–16 digits) or decimal digits, at most 2^64−1. */
export function decodeU64(value: unknown): Decoded<bigint> {
  if (typeof value !== 'string')
    return fail(`expected a 64-bit value as a string ("0x…" or decimal), got ${describe(value)}`);
  if (!/^0[xX][0-9a-fA-F]+$/.test(value) && !/^[0-9]+$/.test(value))
    return fail(`expected "0x…" hex or decimal digits, got ${describe(value)}`);
  const parsed = BigInt(value);
  if (parsed > U64_MAX) return fail(`${value} does not fit in 64 bits`);
  return { ok: true, value: parsed };
}

/** Encodes a 64-bit value as `"0x…"` lowercase hex. */
export function encodeU64(value: bigint): string {
  return `0x${value.toString(16)}`;
}

/** Decodes a non-negative integer number (at most `max`, by default 2^53−1). */
export function decodeCount(value: unknown, max: number = Number.MAX_SAFE_INTEGER): Decoded<number> {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    return fail(`expected a non-negative integer number, got ${describe(value)}`);
  if (value > max) return fail(`${value} exceeds the maximum ${max}`);
  return { ok: true, value };
}

/** Decodes bytes written as hex (two digits per byte, either case; `""` for none). */
export function decodeHex(value: unknown, length?: number): Decoded<Uint8Array> {
  if (typeof value !== 'string') return fail(`expected bytes as a hex string, got ${describe(value)}`);
  if (value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value))
    return fail(`expected hex digits, two per byte, got ${describe(value)}`);
  if (length !== undefined && value.length !== length * 2)
    return fail(`expected ${length} bytes, got ${value.length / 2}`);
  const bytes = new Uint8Array(value.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(value.slice(2 * i, 2 * i + 2), 16);
  return { ok: true, value: bytes };
}

/** Encodes bytes as lowercase hex. */
export function encodeHex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function decodeBlockRuns(value: unknown): Decoded<readonly HarnessBlockRun[]> {
  if (!Array.isArray(value)) return fail(`expected an array of {first, count}, got ${describe(value)}`);
  const runs: HarnessBlockRun[] = [];
  for (const [index, run] of value.entries()) {
    if (!isRecord(run)) return fail(`[${index}]: expected {first, count}, got ${describe(run)}`);
    const first = decodeCount(run.first);
    if (!first.ok) return fail(`[${index}].first: ${first.reason}`);
    const count = decodeCount(run.count);
    if (!count.ok) return fail(`[${index}].count: ${count.reason}`);
    if (count.value < 1) return fail(`[${index}].count: a run holds at least one block`);
    runs.push({ first: first.value, count: count.value });
  }
  return { ok: true, value: runs };
}

function decodeTargets(value: unknown): Decoded<HarnessKindValues['targets']> {
  if (!isRecord(value)) return fail(`expected an object of target → capability names, got ${describe(value)}`);
  const targets: Partial<Record<HarnessTarget, readonly HarnessCapability[]>> = {};
  for (const target of HARNESS_TARGETS) {
    const names = value[target];
    if (names === undefined) continue;
    if (!Array.isArray(names)) return fail(`${target}: expected an array of capability names, got ${describe(names)}`);
    for (const name of names) {
      if (typeof name !== 'string' || !(CAPABILITY_NAMES as readonly string[]).includes(name))
        return fail(`${target}: ${describe(name)} is not a capability (known: ${CAPABILITY_NAMES.join(', ')})`);
    }
    targets[target] = names as HarnessCapability[];
  }
  if (Object.keys(targets).length === 0) return fail(`names no target (expected ${HARNESS_TARGETS.join(' and/or ')})`);
  return { ok: true, value: targets };
}

function decodeSetup(value: unknown): Decoded<DeviceSetup> {
  if (!isRecord(value)) return fail(`expected the set-up record, got ${describe(value)}`);
  const fields = decodeFields(SETUP_FIELDS, value);
  return fields.ok ? { ok: true, value: fields.value as DeviceSetup } : fail(fields.reason);
}

/** Decodes one field value of the given kind. */
export function decodeFieldValue<K extends HarnessFieldKind>(
  spec: HarnessFieldSpec & { kind: K },
  value: unknown,
): Decoded<HarnessKindValues[K]> {
  const result = decodeAnyKind(spec, value);
  return result as Decoded<HarnessKindValues[K]>;
}

function decodeAnyKind(spec: HarnessFieldSpec, value: unknown): Decoded<unknown> {
  switch (spec.kind) {
    case 'u64':
      return decodeU64(value);
    case 'count':
      return decodeCount(value, spec.max);
    case 'bytes':
      return decodeHex(value, spec.length);
    case 'bytes-or-null':
      return value === null ? { ok: true, value: null } : decodeHex(value, spec.length);
    case 'bytes-list': {
      if (!Array.isArray(value)) return fail(`expected an array of hex strings, got ${describe(value)}`);
      const list: Uint8Array[] = [];
      for (const [index, item] of value.entries()) {
        const bytes = decodeHex(item);
        if (!bytes.ok) return fail(`[${index}]: ${bytes.reason}`);
        list.push(bytes.value);
      }
      return { ok: true, value: list };
    }
    case 'bool':
      return typeof value === 'boolean' ? { ok: true, value } : fail(`expected true or false, got ${describe(value)}`);
    case 'text':
      return typeof value === 'string' ? { ok: true, value } : fail(`expected a string, got ${describe(value)}`);
    case 'multiplier':
      return typeof value === 'number' && Number.isFinite(value) && value >= 1
        ? { ok: true, value }
        : fail(`expected a number ≥ 1, got ${describe(value)}`);
    case 'block-runs':
      return decodeBlockRuns(value);
    case 'setup':
      return decodeSetup(value);
    case 'targets':
      return decodeTargets(value);
  }
}

function conditionHolds(spec: HarnessFieldSpec, message: Record<string, unknown>): boolean {
  const when = spec.requiredWhen;
  if (when === undefined) return false;
  const other = message[when.field];
  return when.is === 'absent' ? other === undefined : other === when.is;
}

function conditionText(spec: HarnessFieldSpec): string {
  const when = spec.requiredWhen;
  if (when === undefined) return '';
  return when.is === 'absent'
    ? ` (required when '${when.field}' is absent)`
    : ` (required when '${when.field}' is ${when.is})`;
}

/**
 * Decodes the fields a table describes from a message object. Unknown fields are ignored; a
 * missing required field or a value of the wrong kind is refused, naming the field.
 */
export function decodeFields<F extends HarnessFields>(
  fields: F,
  message: Record<string, unknown>,
): Decoded<HarnessRecord<F>> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(fields)) {
    const value = message[name];
    if (value === undefined) {
      if (spec.optional === undefined || conditionHolds(spec, message))
        return fail(`field '${name}' is missing${conditionText(spec)}`);
      continue;
    }
    const decoded = decodeAnyKind(spec, value);
    if (!decoded.ok) return fail(`field '${name}': ${decoded.reason}`);
    out[name] = decoded.value;
  }
  return { ok: true, value: out as HarnessRecord<F> };
}

function encodeAnyKind(spec: HarnessFieldSpec, value: unknown): unknown {
  switch (spec.kind) {
    case 'u64':
      return encodeU64(value as bigint);
    case 'bytes':
      return encodeHex(value as Uint8Array);
    case 'bytes-or-null':
      return value === null ? null : encodeHex(value as Uint8Array);
    case 'bytes-list':
      return (value as readonly Uint8Array[]).map(encodeHex);
    case 'block-runs':
      return (value as readonly HarnessBlockRun[]).map((run) => ({ first: run.first, count: run.count }));
    case 'setup':
      return encodeFields(SETUP_FIELDS, value as HarnessRecord<typeof SETUP_FIELDS>);
    case 'targets': {
      const targets = value as HarnessKindValues['targets'];
      const out: Record<string, string[]> = {};
      for (const target of HARNESS_TARGETS) if (targets[target]) out[target] = [...targets[target]];
      return out;
    }
    default:
      return value;
  }
}

/** Encodes the fields a table describes into a JSON-ready object (absent optional fields left out). */
export function encodeFields<F extends HarnessFields>(fields: F, record: HarnessRecord<F>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const values = record as Record<string, unknown>;
  for (const [name, spec] of Object.entries(fields)) {
    if (values[name] === undefined) continue;
    out[name] = encodeAnyKind(spec, values[name]);
  }
  return out;
}

/** Decodes a hello; a hello naming another protocol or major version is refused, saying which. */
export function decodeHello(message: Record<string, unknown>): Decoded<HarnessHello> {
  const hello = decodeFields(HELLO_FIELDS, message);
  if (!hello.ok) return fail(`hello: ${hello.reason}`);
  if (hello.value.hello !== HARNESS_PROTOCOL)
    return fail(`hello: the harness speaks '${hello.value.hello}'; this vmemct speaks '${HARNESS_PROTOCOL}'`);
  return hello;
}

/** Encodes a hello. */
export function encodeHello(hello: HarnessHello): Record<string, unknown> {
  return encodeFields(HELLO_FIELDS, hello);
}

/** Encodes a command: `{id, op, …params}`. */
export function encodeCommand(command: HarnessCommand): Record<string, unknown> {
  const params = encodeFields(HARNESS_COMMANDS[command.op].params as HarnessFields, command.params as never);
  return { id: command.id, op: command.op, ...params };
}

function isOp(value: unknown): value is HarnessOp {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(HARNESS_COMMANDS, value);
}

function isCallName(value: unknown): value is HarnessCallName {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(HARNESS_CALLS, value);
}

/** Decodes a command (what a harness reads). */
export function decodeCommand(message: Record<string, unknown>): Decoded<HarnessCommand> {
  const id = decodeCount(message.id);
  if (!id.ok) return fail(`command: field 'id': ${id.reason}`);
  if (!isOp(message.op)) return fail(`command ${id.value}: field 'op': ${describe(message.op)} is not a command`);
  const params = decodeFields(HARNESS_COMMANDS[message.op].params as HarnessFields, message);
  if (!params.ok) return fail(`command ${id.value} (${message.op}): ${params.reason}`);
  return { ok: true, value: { id: id.value, op: message.op, params: params.value } as HarnessCommand };
}

/**
 * Decodes the reply to command `op`: its fields on success, the harness's error text, or
 * `unsupported` (only `open_device`/`open_driver` may say it). The caller checks the id.
 */
export function decodeReply<O extends HarnessOp>(op: O, message: Record<string, unknown>): Decoded<HarnessReply<O>> {
  const id = decodeCount(message.id);
  if (!id.ok) return fail(`reply to ${op}: field 'id': ${id.reason}`);
  if (typeof message.ok !== 'boolean')
    return fail(`reply to ${op}: field 'ok': expected true or false, got ${describe(message.ok)}`);
  if (message.ok) {
    const fields = decodeFields(HARNESS_COMMANDS[op].reply as HarnessFields, message);
    if (!fields.ok) return fail(`reply to ${op}: ${fields.reason}`);
    return { ok: true, value: { kind: 'ok', id: id.value, fields: fields.value as never } };
  }
  const failure = decodeFields(FAILURE_REPLY_FIELDS, message);
  if (!failure.ok) return fail(`reply to ${op}: ${failure.reason}`);
  if (failure.value.error !== undefined)
    return { ok: true, value: { kind: 'error', id: id.value, error: failure.value.error } };
  if (!('mayBeUnsupported' in HARNESS_COMMANDS[op]))
    return fail(`reply to ${op}: field 'unsupported': only open_device and open_driver may answer unsupported`);
  return { ok: true, value: { kind: 'unsupported', id: id.value, reason: failure.value.unsupported ?? '' } };
}

/** Encodes a reply to command `op`. */
export function encodeReply<O extends HarnessOp>(op: O, reply: HarnessReply<O>): Record<string, unknown> {
  if (reply.kind === 'error') return { id: reply.id, ok: false, error: reply.error };
  if (reply.kind === 'unsupported') return { id: reply.id, ok: false, unsupported: reply.reason };
  return {
    id: reply.id,
    ok: true,
    ...encodeFields(HARNESS_COMMANDS[op].reply as HarnessFields, reply.fields as never),
  };
}

/** Decodes a call (what the suite reads while a command is pending). */
export function decodeCall(message: Record<string, unknown>): Decoded<HarnessCall> {
  if (!isCallName(message.call)) return fail(`call: field 'call': ${describe(message.call)} is not a call`);
  const fields = decodeFields(HARNESS_CALLS[message.call].fields as HarnessFields, message);
  if (!fields.ok) return fail(`call ${message.call}: ${fields.reason}`);
  return { ok: true, value: { call: message.call, fields: fields.value } as HarnessCall };
}

/** Encodes a call. */
export function encodeCall(call: HarnessCall): Record<string, unknown> {
  return { call: call.call, ...encodeFields(HARNESS_CALLS[call.call].fields as HarnessFields, call.fields as never) };
}

/** Decodes an answer to call `name` (what a harness reads after a call). */
export function decodeAnswer(name: HarnessCallName, message: Record<string, unknown>): Decoded<HarnessAnswer> {
  if (message.answer !== name)
    return fail(`answer to ${name}: field 'answer': expected '${name}', got ${describe(message.answer)}`);
  const fields = decodeFields(HARNESS_CALLS[name].answer as HarnessFields, message);
  if (!fields.ok) return fail(`answer to ${name}: ${fields.reason}`);
  return { ok: true, value: { answer: name, fields: fields.value } as HarnessAnswer };
}

/** Encodes an answer. */
export function encodeAnswer(answer: HarnessAnswer): Record<string, unknown> {
  return {
    answer: answer.answer,
    ...encodeFields(HARNESS_CALLS[answer.answer].answer as HarnessFields, answer.fields as never),
  };
}

/** The UTF-8 length of a string in bytes (pure: no Buffer). */
export function utf8Length(text: string): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) length += 1;
    else if (code < 0x800) length += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      length += 4;
      i++;
    } else length += 3;
  }
  return length;
}

/** What a line holds, by shape (its fields still to be decoded). */
export type HarnessLineShape = {
  readonly shape: 'hello' | 'reply' | 'call' | 'command' | 'answer';
  readonly message: Record<string, unknown>;
};

/**
 * Parses one line (without its newline) and tells its shape: `hello` (has `hello`), `reply`
 * (has `id` and `ok`), `command` (has `id` and `op`), `call`, `answer`. Refuses a line over
 * {@link HARNESS_LINE_LIMIT} bytes, malformed JSON, a non-object and an unknown shape.
 */
export function parseHarnessLine(line: string): Decoded<HarnessLineShape> {
  const bytes = utf8Length(line) + 1;
  if (bytes > HARNESS_LINE_LIMIT) return fail(`a line of ${bytes} bytes exceeds the limit of ${HARNESS_LINE_LIMIT}`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return fail(`malformed JSON (${(error as Error).message}): ${line.length > 80 ? `${line.slice(0, 80)}…` : line}`);
  }
  if (!isRecord(value)) return fail(`expected a JSON object, got ${describe(value)}`);
  if ('hello' in value) return { ok: true, value: { shape: 'hello', message: value } };
  if ('id' in value && 'ok' in value) return { ok: true, value: { shape: 'reply', message: value } };
  if ('id' in value && 'op' in value) return { ok: true, value: { shape: 'command', message: value } };
  if ('call' in value) return { ok: true, value: { shape: 'call', message: value } };
  if ('answer' in value) return { ok: true, value: { shape: 'answer', message: value } };
  return fail(`an object of unknown shape (no hello, id with ok or op, call or answer): ${line.slice(0, 80)}`);
}
