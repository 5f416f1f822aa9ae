/**
 * JSON Schemas (draft 2020-12, the subset Ajv 8 validates without plugins) of every harness
 * protocol message, derived from the field tables of harness-protocol.ts. Unknown fields are
 * allowed (forward compatibility); the schemas check what JSON can say (types, patterns,
 * ranges); the decoders also check what it cannot (a decimal u64 above 2^64−1).
 */
import {
  FAILURE_REPLY_FIELDS,
  HARNESS_CALL_NAMES,
  HARNESS_CALLS,
  HARNESS_COMMANDS,
  HARNESS_OPS,
  HARNESS_PROTOCOL,
  HARNESS_TARGETS,
  HELLO_FIELDS,
  SETUP_FIELDS,
} from './harness-protocol';
import type { HarnessCallName, HarnessFields, HarnessFieldSpec, HarnessOp } from './harness-protocol';
import { CAPABILITY_NAMES } from './vector-schemas';

/** A JSON Schema object (as plain data). */
export type JsonSchema = Readonly<Record<string, unknown>>;

const SCHEMA_BASE = 'https://vmemct.dev/schemas/harness';

/** Pattern of a 64-bit value on the wire: `0x` hex (1–16 digits) or decimal (1–20 digits). */
export const HARNESS_U64_PATTERN = '^(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20})$';

/** Pattern of bytes on the wire: hex, two digits per byte. */
export const HARNESS_HEX_PATTERN = '^([0-9a-fA-F]{2})*$';

function hexSchema(spec: HarnessFieldSpec): JsonSchema {
  return spec.length === undefined
    ? { type: 'string', pattern: HARNESS_HEX_PATTERN }
    : { type: 'string', pattern: HARNESS_HEX_PATTERN, minLength: spec.length * 2, maxLength: spec.length * 2 };
}

/** The schema of one field value. */
export function harnessFieldSchema(spec: HarnessFieldSpec): JsonSchema {
  const description = spec.description;
  switch (spec.kind) {
    case 'u64':
      return { description, type: 'string', pattern: HARNESS_U64_PATTERN };
    case 'count':
      return { description, type: 'integer', minimum: 0, maximum: spec.max ?? Number.MAX_SAFE_INTEGER };
    case 'bytes':
      return { description, ...hexSchema(spec) };
    case 'bytes-or-null':
      return { description, anyOf: [{ type: 'null' }, hexSchema(spec)] };
    case 'bytes-list':
      return { description, type: 'array', items: hexSchema(spec) };
    case 'bool':
      return { description, type: 'boolean' };
    case 'text':
      return { description, type: 'string' };
    case 'multiplier':
      return { description, type: 'number', minimum: 1 };
    case 'block-runs':
      return {
        description,
        type: 'array',
        items: {
          type: 'object',
          required: ['first', 'count'],
          properties: {
            first: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
            count: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
          },
        },
      };
    case 'setup':
      return { description, ...harnessRecordSchema(SETUP_FIELDS) };
    case 'targets':
      return {
        description,
        type: 'object',
        minProperties: 1,
        properties: Object.fromEntries(
          HARNESS_TARGETS.map((target) => [target, { type: 'array', items: { enum: [...CAPABILITY_NAMES] } }]),
        ),
      };
  }
}

/**
 * The schema of an object holding the fields of a table (plus `extra` properties and required
 * names). A field required only under a condition becomes an `if`/`then` pair.
 */
export function harnessRecordSchema(
  fields: HarnessFields,
  extra: Readonly<Record<string, JsonSchema>> = {},
  extraRequired: readonly string[] = [],
): JsonSchema {
  const properties: Record<string, JsonSchema> = { ...extra };
  const required = [...extraRequired];
  const conditions: JsonSchema[] = [];
  for (const [name, spec] of Object.entries(fields)) {
    properties[name] = extra[name] ?? harnessFieldSchema(spec);
    if (spec.optional === undefined) required.push(name);
    const when = spec.requiredWhen;
    if (when === undefined) continue;
    // Ajv's strict mode wants a `then` that requires a field to declare it as well.
    const then = { required: [name], properties: { [name]: properties[name] } };
    conditions.push(
      when.is === 'absent'
        ? { if: { properties: { [when.field]: false } }, then }
        : { if: { required: [when.field], properties: { [when.field]: { const: when.is } } }, then },
    );
  }
  const schema: Record<string, unknown> = { type: 'object', required, properties };
  if (conditions.length === 1) Object.assign(schema, conditions[0]);
  else if (conditions.length > 1) schema.allOf = conditions;
  return schema;
}

/** The schema of the hello. */
export const HARNESS_HELLO_SCHEMA: JsonSchema = {
  $id: `${SCHEMA_BASE}/hello.json`,
  ...harnessRecordSchema(HELLO_FIELDS, { hello: { const: HARNESS_PROTOCOL } }),
};

function commandSchema(op: HarnessOp): JsonSchema {
  const spec = HARNESS_COMMANDS[op];
  return {
    $id: `${SCHEMA_BASE}/command-${op}.json`,
    description: spec.description,
    ...harnessRecordSchema(
      spec.params,
      { id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER }, op: { const: op } },
      ['id', 'op'],
    ),
  };
}

const ID_SCHEMA: JsonSchema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };

function replySchema(op: HarnessOp): JsonSchema {
  return {
    $id: `${SCHEMA_BASE}/reply-${op}.json`,
    description: `the success reply to ${op}`,
    ...harnessRecordSchema(HARNESS_COMMANDS[op].reply, { id: ID_SCHEMA, ok: { const: true } }, ['id', 'ok']),
  };
}

/** The schema of every failure reply (`ok: false` with `error`, or `unsupported` for the open commands). */
export const HARNESS_FAILURE_REPLY_SCHEMA: JsonSchema = {
  $id: `${SCHEMA_BASE}/reply-failure.json`,
  ...harnessRecordSchema(FAILURE_REPLY_FIELDS, { id: ID_SCHEMA, ok: { const: false } }, ['id', 'ok']),
};

function callSchema(name: HarnessCallName): JsonSchema {
  const spec = HARNESS_CALLS[name];
  return {
    $id: `${SCHEMA_BASE}/call-${name}.json`,
    description: spec.description,
    ...harnessRecordSchema(spec.fields, { call: { const: name } }, ['call']),
  };
}

function answerSchema(name: HarnessCallName): JsonSchema {
  return {
    $id: `${SCHEMA_BASE}/answer-${name}.json`,
    description: `the answer to the ${name} call`,
    ...harnessRecordSchema(HARNESS_CALLS[name].answer, { answer: { const: name } }, ['answer']),
  };
}

/** The schema of each command, by op. */
export const HARNESS_COMMAND_SCHEMAS = Object.fromEntries(HARNESS_OPS.map((op) => [op, commandSchema(op)])) as Readonly<
  Record<HarnessOp, JsonSchema>
>;

/** The schema of each success reply, by op. */
export const HARNESS_REPLY_SCHEMAS = Object.fromEntries(HARNESS_OPS.map((op) => [op, replySchema(op)])) as Readonly<
  Record<HarnessOp, JsonSchema>
>;

/** The schema of each call, by name. */
export const HARNESS_CALL_SCHEMAS = Object.fromEntries(
  HARNESS_CALL_NAMES.map((name) => [name, callSchema(name)]),
) as Readonly<Record<HarnessCallName, JsonSchema>>;

/** The schema of each answer, by call name. */
export const HARNESS_ANSWER_SCHEMAS = Object.fromEntries(
  HARNESS_CALL_NAMES.map((name) => [name, answerSchema(name)]),
) as Readonly<Record<HarnessCallName, JsonSchema>>;

/** Every harness protocol schema (each with its own `$id`), for publishing and for tests. */
export const HARNESS_SCHEMAS: readonly JsonSchema[] = [
  HARNESS_HELLO_SCHEMA,
  ...Object.values(HARNESS_COMMAND_SCHEMAS),
  ...Object.values(HARNESS_REPLY_SCHEMAS),
  HARNESS_FAILURE_REPLY_SCHEMA,
  ...Object.values(HARNESS_CALL_SCHEMAS),
  ...Object.values(HARNESS_ANSWER_SCHEMAS),
];
