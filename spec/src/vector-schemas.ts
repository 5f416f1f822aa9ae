/**
 * JSON Schemas of the conformance suite's own files: vector files, expectation files and the
 * results document. The runner validates every file it reads against these (Ajv 2020, strict);
 * checks a schema cannot express (expressions, known requirement IDs, duplicate IDs, which step
 * kinds suit which target) follow in the loader.
 */
import { BLOCK_STATE_NAMES, REQUEST_TYPE_NAMES, RESPONSE_CODE_NAMES } from './constants';

const VERDICT_CLASSES_IN_SETS = ['pass', 'acceptable', 'non-strict', 'informational', 'fail'] as const;

/** An integer or an expression string such as `addr + 4 * block_size` or `2MiB`. */
const Expression = { type: ['string', 'integer'] } as const;

/** Hex bytes, spaces allowed: `"01 00 00 00"`. */
const HexBytes = { type: 'string', pattern: '^\\s*([0-9a-fA-F]{2}\\s*)*$' } as const;

/** A single expected outcome, or a map from outcome to verdict class. */
function outcomeSet(values: readonly string[]): object {
  return {
    oneOf: [
      { enum: values },
      {
        type: 'object',
        minProperties: 1,
        propertyNames: { enum: values },
        additionalProperties: { enum: VERDICT_CLASSES_IN_SETS },
      },
    ],
  };
}

const FEATURE_NAMES = ['VERSION_1', 'ACPI_PXM', 'UNPLUGGED_INACCESSIBLE', 'PERSISTENT_SUSPEND'] as const;
const CONFIG_FIELDS = ['block_size', 'node_id', 'addr', 'region_size', 'usable_region_size', 'plugged_size', 'requested_size'] as const;
const RESPONSE_OUTCOMES = [...RESPONSE_CODE_NAMES, 'needs-reset', 'no-used-entry', 'used-length-zero'];
const REQUEST_TYPES = REQUEST_TYPE_NAMES;
/** Names of the optional adapter capabilities a vector may need (the adapter contract uses these). */
export const CAPABILITY_NAMES = [
  'host-resize',
  'device-reset',
  'system-reset',
  'raw-descriptor-layout',
  'read-raw-config',
  'inject-busy',
  'feature-negotiation',
  'initial-plugged',
  'memory-access',
  'suspend',
  'observe-driver',
  'inject-responses',
] as const;

/** An expected config value: an expression (equality), a range, or `unchanged`. */
const ValueSpec = {
  anyOf: [
    Expression,
    { const: 'unchanged' },
    {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: { min: Expression, max: Expression },
    },
  ],
} as const;

const FeatureList = { type: 'array', uniqueItems: true, items: { enum: FEATURE_NAMES } } as const;

const Setup = {
  type: 'object',
  additionalProperties: false,
  properties: {
    block_size: Expression,
    region_size: Expression,
    addr: Expression,
    requested_size: Expression,
    node_id: { type: 'integer', minimum: 0, maximum: 65535 },
    features: FeatureList,
    accept: { oneOf: [{ const: 'offered' }, FeatureList] },
    plugged: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['first', 'count'],
        properties: { first: { type: 'integer', minimum: 0 }, count: { type: 'integer', minimum: 1 } },
      },
    },
    config_padding: HexBytes,
  },
} as const;

const Expect = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    response: outcomeSet(RESPONSE_OUTCOMES),
    state: outcomeSet(BLOCK_STATE_NAMES),
    config: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: Object.fromEntries(CONFIG_FIELDS.map((f) => [f, ValueSpec])),
    },
    config_bytes: HexBytes,
    notification: outcomeSet(['sent', 'none']),
    needs_reset: { type: 'boolean' },
    resize: outcomeSet(['applied', 'refused']),
    features_ok: outcomeSet(['accepted', 'refused']),
    access: outcomeSet(['ok', 'refused']),
    data: HexBytes,
    converged: { type: 'boolean' },
    settled: { type: 'boolean' },
    first_request: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: REQUEST_TYPES } },
    requests: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: { min: { type: 'integer', minimum: 0 }, max: { type: 'integer', minimum: 0 } },
    },
    request_types: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        includes: { type: 'array', items: { enum: REQUEST_TYPES } },
        excludes: { type: 'array', items: { enum: REQUEST_TYPES } },
      },
    },
    suspend: outcomeSet(['allowed', 'refused']),
    accepted_features: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: { includes: FeatureList, excludes: FeatureList },
    },
  },
} as const;

const RequestFields = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { oneOf: [{ enum: REQUEST_TYPES }, { type: 'integer', minimum: 0, maximum: 65535 }] },
    addr: Expression,
    nb_blocks: Expression,
    padding: HexBytes,
    payload_padding: HexBytes,
    raw: HexBytes,
    layout: {
      type: 'object',
      additionalProperties: false,
      required: ['readable', 'writable'],
      properties: {
        readable: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'integer', minimum: 0, maximum: 4096 } },
        writable: { type: 'array', minItems: 0, maxItems: 16, items: { type: 'integer', minimum: 0, maximum: 4096 } },
      },
    },
  },
} as const;

const Step = {
  type: 'object',
  additionalProperties: false,
  properties: {
    request: RequestFields,
    resize: Expression,
    device_reset: { const: true },
    system_reset: { const: true },
    read_config: { const: true },
    initialise: {
      type: 'object',
      additionalProperties: false,
      properties: { accept: { oneOf: [{ const: 'offered' }, FeatureList] } },
    },
    inject_busy: { type: 'integer', minimum: 1, maximum: 1000 },
    write_memory: {
      type: 'object',
      additionalProperties: false,
      required: ['addr', 'data'],
      properties: { addr: Expression, data: HexBytes },
    },
    read_memory: {
      type: 'object',
      additionalProperties: false,
      required: ['addr', 'length'],
      properties: { addr: Expression, length: { type: 'integer', minimum: 1, maximum: 65536 } },
    },
    suspend: { const: true },
    start: { const: true },
    settle: {
      oneOf: [
        { const: true },
        {
          type: 'object',
          additionalProperties: false,
          properties: { max_requests: { type: 'integer', minimum: 1 }, timeout_ms: { type: 'integer', minimum: 1 } },
        },
      ],
    },
    inject: {
      type: 'object',
      additionalProperties: false,
      required: ['response', 'count'],
      properties: {
        response: { enum: RESPONSE_CODE_NAMES },
        count: { type: 'integer', minimum: 1, maximum: 1000 },
        types: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: REQUEST_TYPES } },
        trailer: HexBytes,
      },
    },
    expect: Expect,
    note: { type: 'string' },
  },
} as const;

/** Schema of one vector. */
export const VectorSchema = {
  $id: 'https://vmemct.dev/schemas/vector.json',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'title', 'requirements', 'target', 'steps'],
  properties: {
    id: { type: 'string', pattern: '^vmem\\.(dev|drv)\\.[a-z0-9]+(\\.[a-z0-9]+(-[a-z0-9]+)*)+$', maxLength: 100 },
    title: { type: 'string', minLength: 5, maxLength: 160 },
    requirements: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^(dev|drv)\\.[a-z]+\\.[0-9]+$' } },
    target: { enum: ['device', 'driver'] },
    needs: { type: 'array', uniqueItems: true, items: { enum: CAPABILITY_NAMES } },
    tags: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' } },
    timeout_ms: { type: 'integer', minimum: 1, maximum: 600000 },
    check_invariants: { type: 'boolean' },
    setup: Setup,
    steps: { type: 'array', minItems: 1, items: Step },
    description: { type: 'string' },
    links: { type: 'array', items: { type: 'string' } },
    retired: {
      type: 'object',
      additionalProperties: false,
      required: ['reason'],
      properties: { reason: { type: 'string' }, superseded_by: { type: 'string' } },
    },
  },
} as const;

/** Schema of a vector file: a format tag, optional defaults for every vector's setup, and the vectors. */
export const VectorFileSchema = {
  $id: 'https://vmemct.dev/schemas/vector-file.json',
  type: 'object',
  additionalProperties: false,
  required: ['format', 'vectors'],
  properties: {
    format: { const: 'vmemct-vectors/1' },
    defaults: {
      type: 'object',
      additionalProperties: false,
      properties: { setup: Setup, tags: { type: 'array', items: { type: 'string' } }, needs: { type: 'array', items: { enum: CAPABILITY_NAMES } } },
    },
    vectors: { type: 'array', minItems: 1, items: { $ref: 'https://vmemct.dev/schemas/vector.json' } },
  },
} as const;

/** Verdicts a vector can end with. */
export const VERDICTS = ['pass', 'fail', 'non-strict', 'acceptable', 'informational', 'not-applicable', 'unsupported', 'error', 'timeout'] as const;

/** Schema of an expectation file: known results of one implementation. */
export const ExpectationFileSchema = {
  $id: 'https://vmemct.dev/schemas/expectations.json',
  type: 'object',
  additionalProperties: false,
  required: ['format', 'implementation', 'entries'],
  properties: {
    format: { const: 'vmemct-expectations/1' },
    implementation: { type: 'string', minLength: 1 },
    description: { type: 'string' },
    entries: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'verdict', 'reason'],
        properties: {
          id: { type: 'string', minLength: 1, description: 'a vector id or a glob (`*` matches within a dot-separated part, `**` across parts)' },
          verdict: { enum: VERDICTS },
          reason: { type: 'string', minLength: 10 },
          link: { type: 'string' },
          max_matches: { type: 'integer', minimum: 1 },
        },
      },
    },
  },
} as const;

/** Schema of the results document written by `vmemct run --json FILE`. */
export const ResultsSchema = {
  $id: 'https://vmemct.dev/schemas/results.json',
  type: 'object',
  additionalProperties: false,
  required: ['format', 'suite', 'adapter', 'startedAt', 'durationMs', 'options', 'summary', 'results', 'staleExpectations', 'exitCode'],
  properties: {
    format: { const: 'vmemct-results/1' },
    suite: {
      type: 'object',
      additionalProperties: false,
      required: ['version', 'vectorsDigest', 'vectorCount'],
      properties: { version: { type: 'string' }, vectorsDigest: { type: 'string' }, vectorCount: { type: 'integer' }, checkCount: { type: 'integer' } },
    },
    adapter: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'implementation', 'capabilities'],
      properties: { name: { type: 'string' }, implementation: { type: 'string' }, capabilities: { type: 'array', items: { type: 'string' } } },
    },
    expectations: { type: ['string', 'null'] },
    startedAt: { type: 'string' },
    durationMs: { type: 'number', minimum: 0 },
    options: { type: 'object' },
    summary: {
      type: 'object',
      additionalProperties: false,
      required: ['total', 'unexpected', 'byVerdict'],
      properties: {
        total: { type: 'integer' },
        unexpected: { type: 'integer' },
        byVerdict: { type: 'object', propertyNames: { enum: VERDICTS }, additionalProperties: { type: 'integer' } },
      },
    },
    results: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'title', 'requirements', 'verdict', 'expected', 'status', 'durationMs', 'findings'],
        // A case is a vector (no `kind`, or `kind: vector`: file, line and target) or a check of a suite (`vu.*`).
        if: { required: ['kind'], properties: { kind: { const: 'check' } } },
        then: { required: ['suite'], properties: { id: { type: 'string', pattern: '^[a-z][a-z0-9]*(\\.[a-z0-9]+(-[a-z0-9]+)*)+$' }, suite: { type: 'string' } } },
        else: { required: ['file', 'line', 'target'], properties: { file: { type: 'string' }, line: { type: 'integer' }, target: { type: 'string' } } },
        properties: {
          id: { type: 'string' },
          kind: { enum: ['vector', 'check'] },
          suite: { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
          title: { type: 'string' },
          file: { type: 'string' },
          line: { type: 'integer' },
          target: { enum: ['device', 'driver'] },
          requirements: { type: 'array', items: { type: 'string' } },
          verdict: { enum: VERDICTS },
          expected: { enum: VERDICTS },
          expectationReason: { type: 'string' },
          status: { enum: ['expected', 'unexpected'] },
          durationMs: { type: 'number', minimum: 0 },
          findings: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['verdict', 'step', 'check', 'message'],
              properties: {
                verdict: { enum: VERDICTS },
                step: { type: 'integer' },
                check: { type: 'string' },
                message: { type: 'string' },
                expected: { type: 'string' },
                observed: { type: 'string' },
                requirements: { type: 'array', items: { type: 'string' } },
              },
            },
          },
          diagnostics: { type: 'string' },
        },
      },
    },
    staleExpectations: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'reason'],
        properties: { id: { type: 'string' }, reason: { type: 'string' } },
      },
    },
    exitCode: { type: 'integer', minimum: 0, maximum: 3 },
  },
} as const;
