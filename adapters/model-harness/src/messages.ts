/**
 * The harness protocol's messages as the served model reads and writes them: one command line
 * decoded into its op and typed params, replies, calls and answers encoded (64-bit values as
 * `"0x…"` strings, bytes as lowercase hex). The one place the served harness parses and
 * encodes, so it follows the protocol's data in spec/.
 */
import type { DeviceSetup } from '../../../spec/src/index';

/** A decoding result: the value, or why not (naming the field). */
export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** The protocol this harness speaks. */
export const HARNESS_PROTOCOL_NAME = 'vmemct-harness/1';

/** The longest line either side may write, newline included. */
export const LINE_LIMIT = 1024 * 1024;

const fail = <T>(reason: string): Decoded<T> => ({ ok: false, reason });
const done = <T>(value: T): Decoded<T> => ({ ok: true, value });

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : `'${value}'`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

/** A 64-bit value: `"0x…"` hex or decimal digits in a string, at most 2^64−1. */
export function decodeU64(value: unknown): Decoded<bigint> {
  if (typeof value !== 'string' || !(/^0[xX][0-9a-fA-F]{1,16}$/.test(value) || /^[0-9]{1,20}$/.test(value)))
    return fail(`expected a 64-bit value as a "0x…" or decimal string, got ${shown(value)}`);
  const parsed = BigInt(value);
  return parsed < 1n << 64n ? done(parsed) : fail(`${value} exceeds 2^64-1`);
}

/** A non-negative safe integer, at most `max`. */
export function decodeCount(value: unknown, max = Number.MAX_SAFE_INTEGER): Decoded<number> {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max)
    return fail(`expected an integer from 0 to ${max}, got ${shown(value)}`);
  return done(value);
}

/** Bytes as hex, two digits each. */
export function decodeHex(value: unknown): Decoded<Uint8Array> {
  if (typeof value !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(value))
    return fail(`expected bytes as hex (two digits a byte), got ${shown(value)}`);
  const out = new Uint8Array(value.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(value.slice(2 * i, 2 * i + 2), 16);
  return done(out);
}

/** `"0x…"` lowercase hex of a 64-bit value. */
export function encodeU64(value: bigint): string {
  return `0x${value.toString(16)}`;
}

/** Lowercase hex of bytes. */
export function encodeHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** The kinds of field a command carries, and what each decodes to. */
interface FieldKinds {
  u64: bigint;
  count: number;
  bool: boolean;
  bytes: Uint8Array;
  'bytes-list': readonly Uint8Array[];
  setup: DeviceSetup;
}
type FieldKind = keyof FieldKinds;
type FieldTable = Readonly<Record<string, { readonly kind: FieldKind; readonly optional?: true }>>;

/** The params of every command the served model answers, by op. */
export const COMMAND_PARAMS = {
  open_device: { setup: { kind: 'setup' } },
  initialise: {},
  read_config: {},
  read_status: {},
  notification_count: {},
  submit: { readable: { kind: 'bytes-list' }, writable: { kind: 'bytes-list' } },
  close_device: {},
  read_config_generation: {},
  resize: { requested_size: { kind: 'u64' } },
  device_reset: {},
  system_reset: {},
  inject_busy: { count: { kind: 'count' } },
  host_busy: { busy: { kind: 'bool' } },
  read_memory: { addr: { kind: 'u64' }, length: { kind: 'count' } },
  write_memory: { addr: { kind: 'u64' }, data: { kind: 'bytes' } },
  suspend: {},
  open_driver: { setup: { kind: 'setup' }, config_padding: { kind: 'bytes', optional: true } },
  start: { offered: { kind: 'u64' } },
  settle: { max_requests: { kind: 'count' }, timeout_ms: { kind: 'count' }, config_changed: { kind: 'bool' } },
  close_driver: {},
  reboot: {},
  may_suspend: {},
  shutdown: {},
} as const satisfies Readonly<Record<string, FieldTable>>;

/** A command's name. */
export type HarnessOp = keyof typeof COMMAND_PARAMS;

type Params<T extends FieldTable> = {
  readonly [K in keyof T as T[K] extends { optional: true } ? never : K]: FieldKinds[T[K]['kind']];
} & { readonly [K in keyof T as T[K] extends { optional: true } ? K : never]?: FieldKinds[T[K]['kind']] };

/** A command, decoded: its id, op and params. */
export type HarnessCommand = {
  [O in HarnessOp]: { readonly id: number; readonly op: O; readonly params: Params<(typeof COMMAND_PARAMS)[O]> };
}[HarnessOp];

function decodeSetup(value: unknown): Decoded<DeviceSetup> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return fail(`expected the set-up record, got ${shown(value)}`);
  const v = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name of ['block_size', 'region_size', 'addr', 'requested_size', 'features', 'usable_region_size']) {
    if (v[name] === undefined && (name === 'features' || name === 'usable_region_size')) continue;
    const d = decodeU64(v[name]);
    if (!d.ok) return fail(`field '${name}': ${d.reason}`);
    out[name] = d.value;
  }
  const node = decodeCount(v.node_id, 0xffff);
  if (!node.ok) return fail(`field 'node_id': ${node.reason}`);
  if (!Array.isArray(v.plugged)) return fail(`field 'plugged': expected a list of block runs, got ${shown(v.plugged)}`);
  const plugged = [];
  for (const [i, run] of v.plugged.entries()) {
    const r = (typeof run === 'object' && run !== null ? run : {}) as Record<string, unknown>;
    const first = decodeCount(r.first);
    const count = decodeCount(r.count);
    if (!first.ok) return fail(`field 'plugged[${i}].first': ${first.reason}`);
    if (!count.ok || count.value < 1) return fail(`field 'plugged[${i}].count': expected a count of at least 1`);
    plugged.push({ first: first.value, count: count.value });
  }
  return done({ ...out, node_id: node.value, plugged } as unknown as DeviceSetup);
}

function decodeField(kind: FieldKind, value: unknown): Decoded<unknown> {
  switch (kind) {
    case 'u64':
      return decodeU64(value);
    case 'count':
      return decodeCount(value);
    case 'bool':
      return typeof value === 'boolean' ? done(value) : fail(`expected true or false, got ${shown(value)}`);
    case 'bytes':
      return decodeHex(value);
    case 'bytes-list': {
      if (!Array.isArray(value)) return fail(`expected a list of hex strings, got ${shown(value)}`);
      const out: Uint8Array[] = [];
      for (const [i, item] of value.entries()) {
        const d = decodeHex(item);
        if (!d.ok) return fail(`item ${i}: ${d.reason}`);
        out.push(d.value);
      }
      return done(out);
    }
    case 'setup':
      return decodeSetup(value);
  }
}

/** A command line that could not be decoded: why, and its id when it had a usable one. */
export interface CommandProblem {
  readonly id?: number;
  readonly reason: string;
}

/** Parses and decodes one command line (without its newline). */
export function decodeCommandLine(line: string): Decoded<HarnessCommand> & { readonly id?: number } {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch (error) {
    return fail(`malformed JSON (${(error as Error).message})`);
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message))
    return fail(`expected a JSON object, got ${shown(message)}`);
  const m = message as Record<string, unknown>;
  const id = decodeCount(m.id);
  if (!id.ok) return fail(`command: field 'id': ${id.reason}`);
  const problem = (reason: string) => ({ ok: false as const, reason, id: id.value });
  if (typeof m.op !== 'string' || !Object.prototype.hasOwnProperty.call(COMMAND_PARAMS, m.op))
    return problem(`command ${id.value}: field 'op': ${shown(m.op)} is not a command`);
  const op = m.op as HarnessOp;
  const params: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(COMMAND_PARAMS[op] as FieldTable)) {
    if (m[name] === undefined && spec.optional) continue;
    const d = decodeField(spec.kind, m[name]);
    if (!d.ok) return problem(`command ${id.value} (${op}): field '${name}': ${d.reason}`);
    params[name] = d.value;
  }
  return { ok: true, value: { id: id.value, op, params } as HarnessCommand };
}

/** A value as the protocol writes it: bigints as `"0x…"`, bytes as hex, lists and records member by member. */
export function encodeValue(value: unknown): unknown {
  if (typeof value === 'bigint') return encodeU64(value);
  if (value instanceof Uint8Array) return encodeHex(value);
  if (Array.isArray(value)) return value.map(encodeValue);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, encodeValue(v)]),
    );
  return value;
}

/** How a command ended, as the target answers it. */
export type CommandOutcome =
  | { readonly kind: 'ok'; readonly fields: Readonly<Record<string, unknown>> }
  | { readonly kind: 'error'; readonly error: string }
  | { readonly kind: 'unsupported'; readonly reason: string };

/** The reply line of command `id` (no newline). */
export function encodeReplyLine(id: number | null, outcome: CommandOutcome): string {
  const reply =
    outcome.kind === 'ok'
      ? { id, ok: true, ...(encodeValue(outcome.fields) as object) }
      : outcome.kind === 'error'
        ? { id, ok: false, error: outcome.error }
        : { id, ok: false, unsupported: outcome.reason };
  return JSON.stringify(reply);
}

/** The calls a harness makes, with their fields and the suite's answer. */
export interface HarnessCalls {
  accept: { fields: { offered: bigint }; answer: { features: bigint } };
  read_config: { fields: Record<string, never>; answer: { config: Uint8Array; config_changed: boolean } };
  request: {
    fields: { bytes: Uint8Array; at_ms?: number };
    answer: { response: Uint8Array | null; config_changed: boolean };
  };
  write_memory: {
    fields: { addr: bigint; length: number; data?: Uint8Array };
    answer: { ok: boolean; config_changed: boolean };
  };
}

/** A call's name. */
export type HarnessCallName = keyof HarnessCalls;

/** The call line (no newline). */
export function encodeCallLine<C extends HarnessCallName>(call: C, fields: HarnessCalls[C]['fields']): string {
  return JSON.stringify({ call, ...(encodeValue(fields) as object) });
}

const CONFIG_BYTES = 56;

/** The fields of each answer, by kind. */
const ANSWER_FIELDS: Readonly<
  Record<HarnessCallName, Readonly<Record<string, 'u64' | 'config' | 'response' | 'bool'>>>
> = {
  accept: { features: 'u64' },
  read_config: { config: 'config', config_changed: 'bool' },
  request: { response: 'response', config_changed: 'bool' },
  write_memory: { ok: 'bool', config_changed: 'bool' },
};

function decodeAnswerField(kind: 'u64' | 'config' | 'response' | 'bool', raw: unknown): Decoded<unknown> {
  switch (kind) {
    case 'u64':
      return decodeU64(raw);
    case 'config': {
      const bytes = decodeHex(raw);
      if (bytes.ok && bytes.value.length !== CONFIG_BYTES)
        return fail(`expected ${CONFIG_BYTES} bytes, got ${bytes.value.length}`);
      return bytes;
    }
    case 'response':
      return raw === null ? done(null) : decodeHex(raw);
    case 'bool':
      return decodeField('bool', raw);
  }
}

/** Decodes the suite's answer line to call `call`. */
export function decodeAnswerLine<C extends HarnessCallName>(call: C, line: string): Decoded<HarnessCalls[C]['answer']> {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch (error) {
    return fail(`answer to ${call}: malformed JSON (${(error as Error).message})`);
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message))
    return fail(`answer to ${call}: expected a JSON object, got ${shown(message)}`);
  const m = message as Record<string, unknown>;
  if (m.answer !== call) return fail(`answer to ${call}: field 'answer': expected '${call}', got ${shown(m.answer)}`);
  const out: Record<string, unknown> = {};
  for (const [name, kind] of Object.entries(ANSWER_FIELDS[call])) {
    const d = decodeAnswerField(kind, m[name]);
    if (!d.ok) return fail(`answer to ${call}: field '${name}': ${d.reason}`);
    out[name] = d.value;
  }
  return done(out as HarnessCalls[C]['answer']);
}
