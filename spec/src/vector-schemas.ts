/**
 * JSON Schemas of the conformance suite's own files: vector files, expectation files and the
 * results document. The runner validates every file it reads against these (Ajv 2020, strict);
 * checks a schema cannot express (expressions, known requirement IDs, duplicate IDs, which step
 * kinds suit which target) follow in the loader.
 *
 * A vector's steps are not described here: each step kind declares the schema of its action and
 * of the expectations it reads (conformance/src/steps/), and the vector schemas are assembled
 * from those fragments with {@link vectorSchemas}. This file keeps the building blocks they share.
 */
import { FEATURE_NAMES, RESPONSE_CODE_NAMES } from './constants';

/** Verdict classes an outcome set may give an outcome. */
export const VERDICT_CLASSES_IN_SETS = ['pass', 'acceptable', 'non-strict', 'informational', 'fail'] as const;

/** An integer or an expression string such as `addr + 4 * block_size` or `2MiB`. */
export const Expression = { type: ['string', 'integer'] } as const;

/** Hex bytes, spaces allowed: `"01 00 00 00"`. */
export const HexBytes = { type: 'string', pattern: '^\\s*([0-9a-fA-F]{2}\\s*)*$' } as const;

/** A single expected outcome, or a map from outcome to verdict class. */
export function outcomeSet(values: readonly string[]): object {
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

/** Configuration fields a `config:` expectation may address. */
export const CONFIG_FIELDS = [
  'block_size',
  'node_id',
  'addr',
  'region_size',
  'usable_region_size',
  'plugged_size',
  'requested_size',
] as const;
/** Outcomes a `response:` expectation may name: response codes and the ways a device can fail to answer. */
export const RESPONSE_OUTCOMES = [...RESPONSE_CODE_NAMES, 'needs-reset', 'no-used-entry', 'used-length-zero'];
/** Names of the optional adapter capabilities a vector may need (the adapter contract uses these). */
export const CAPABILITY_NAMES = [
  'host-resize',
  'device-reset',
  'system-reset',
  'raw-descriptor-layout',
  'read-raw-config',
  'inject-busy',
  'host-busy',
  'feature-negotiation',
  'initial-plugged',
  'memory-access',
  'suspend',
  'observe-driver',
  'inject-responses',
  'config-generation',
  'multi-device',
  'node-memory',
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

/** A `config:` expectation: field → expected value. */
export const ConfigExpectation = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: Object.fromEntries(CONFIG_FIELDS.map((f) => [f, ValueSpec])),
} as const;

/** A list of feature names. */
export const FeatureList = { type: 'array', uniqueItems: true, items: { enum: FEATURE_NAMES } } as const;

/** A vector's initial device (also the file's `defaults.setup`). */
export const Setup = {
  type: 'object',
  additionalProperties: false,
  properties: {
    block_size: Expression,
    region_size: Expression,
    addr: Expression,
    requested_size: Expression,
    usable_region_size: Expression,
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

/** A device's name in a multi-device vector (steps address it by this name or by its 0-based index). */
export const DeviceName = { type: 'string', pattern: '^[a-z][a-z0-9-]*$', maxLength: 32 } as const;

/**
 * The devices of a multi-device driver vector: two or more, each named, each with its own set-up
 * laid over the vector's `setup:` (a single-device vector has no `devices:`).
 */
export const DeviceList = {
  type: 'array',
  minItems: 2,
  maxItems: 16,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: { name: DeviceName, setup: Setup },
  },
} as const;

/** The `$id`s of the assembled vector schemas. */
export const VECTOR_SCHEMA_IDS = {
  vector: 'https://vmemct.dev/schemas/vector.json',
  file: 'https://vmemct.dev/schemas/vector-file.json',
} as const;

/**
 * The schemas of one vector and of a vector file, around `step`, the schema of one step (built
 * from the step kinds by the conformance suite).
 */
export function vectorSchemas(step: object): {
  readonly VectorSchema: { readonly $id: string };
  readonly VectorFileSchema: { readonly $id: string };
} {
  const VectorSchema = {
    $id: 'https://vmemct.dev/schemas/vector.json',
    type: 'object',
    additionalProperties: false,
    required: ['id', 'title', 'requirements', 'target', 'steps'],
    properties: {
      id: { type: 'string', pattern: '^vmem\\.(dev|drv)\\.[a-z0-9]+(\\.[a-z0-9]+(-[a-z0-9]+)*)+$', maxLength: 100 },
      title: { type: 'string', minLength: 5, maxLength: 160 },
      requirements: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'string', pattern: '^(dev|drv)\\.[a-z]+\\.[0-9]+$' },
      },
      target: { enum: ['device', 'driver'] },
      needs: { type: 'array', uniqueItems: true, items: { enum: CAPABILITY_NAMES } },
      tags: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' } },
      timeout_ms: { type: 'integer', minimum: 1, maximum: 600000 },
      check_invariants: { type: 'boolean' },
      setup: Setup,
      devices: DeviceList,
      steps: { type: 'array', minItems: 1, items: step },
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

  /** A vector file: a format tag, optional defaults for every vector's setup, and the vectors. */
  const VectorFileSchema = {
    $id: 'https://vmemct.dev/schemas/vector-file.json',
    type: 'object',
    additionalProperties: false,
    required: ['format', 'vectors'],
    properties: {
      format: { const: 'vmemct-vectors/1' },
      defaults: {
        type: 'object',
        additionalProperties: false,
        properties: {
          setup: Setup,
          tags: { type: 'array', items: { type: 'string' } },
          needs: { type: 'array', items: { enum: CAPABILITY_NAMES } },
        },
      },
      vectors: { type: 'array', minItems: 1, items: { $ref: 'https://vmemct.dev/schemas/vector.json' } },
    },
  } as const;
  return { VectorSchema, VectorFileSchema };
}

/**
 * Verdicts a vector can end with. `flaky` is a result's only, never a finding's: a case that
 * failed, errored or timed out and then passed on a retry (`vmemct run --retries`); an expectation
 * entry `verdict: flaky` accepts a pass or a flaky result.
 */
export const VERDICTS = [
  'pass',
  'fail',
  'non-strict',
  'acceptable',
  'informational',
  'not-applicable',
  'unsupported',
  'error',
  'timeout',
  'flaky',
] as const;

/**
 * How bad a failing finding is, worst first, each with what it means: every finding whose verdict
 * is fail, non-strict, error or timeout carries one, and a result carries its findings' worst.
 */
export const SEVERITY_TIERS = [
  {
    name: 'stopped',
    meaning: 'the target stopped answering: it crashed, hung, timed out or left a request without a used entry',
  },
  {
    name: 'wedged',
    meaning:
      'the target is stuck: DEVICE_NEEDS_RESET without cause, BUSY forever, a driver that never converges or never goes quiet',
  },
  {
    name: 'state',
    meaning: 'a wrong state change: configuration fields, plugged blocks, memory contents, an invariant over the state',
  },
  {
    name: 'answer',
    meaning:
      'a wrong answer: response type or block state, used length, features, notifications, a request a driver must not send',
  },
  { name: 'should', meaning: 'a SHOULD-level deviation (every non-strict finding)' },
  { name: 'harness', meaning: 'the harness or the adapter broke (an error verdict): it says nothing about the target' },
] as const;

/** The severity tiers' names, worst first (what the results schema enumerates). */
export const SEVERITIES = SEVERITY_TIERS.map((t) => t.name);

/** The format a results document is written in; {@link RESULTS_FORMATS} lists every one that is read. */
export const RESULTS_FORMAT = 'vmemct-results/3';

/**
 * Results formats read back (`vmemct docs --results`): 2 adds `severity` to results and findings;
 * 3 adds the verdict `flaky` and a result's `attempts` (a run with `--retries`).
 */
export const RESULTS_FORMATS = ['vmemct-results/1', 'vmemct-results/2', RESULTS_FORMAT] as const;

/** Schema of an expectation file: known results of one implementation. */
/** The grades a known deviation may give its findings: still reported, never a pass. */
export const KNOWN_DEVIATION_VERDICTS = ['non-strict', 'acceptable', 'informational'] as const;

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
          id: {
            type: 'string',
            minLength: 1,
            description: 'a vector id or a glob (`*` matches within a dot-separated part, `**` across parts)',
          },
          verdict: { enum: VERDICTS },
          reason: { type: 'string', minLength: 10 },
          link: { type: 'string' },
          max_matches: { type: 'integer', minimum: 1 },
        },
      },
    },
    known_deviations: {
      description:
        'findings of a check the implementation is known to produce in any vector (a rule it breaks everywhere): each failing (fail or non-strict) finding of that check is graded `verdict`, and keeps its message with the reason appended; a known deviation is still reported, so it cannot be graded pass',
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['check', 'verdict', 'reason'],
        properties: {
          check: { type: 'string', minLength: 1 },
          verdict: { enum: KNOWN_DEVIATION_VERDICTS },
          reason: { type: 'string', minLength: 10 },
          link: { type: 'string' },
        },
      },
    },
  },
} as const;

/** A finding in a results document (of a result, or of one of its attempts). */
const FINDING_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['verdict', 'step', 'check', 'message'],
  properties: {
    verdict: { enum: VERDICTS },
    /** Set exactly on fail, non-strict, error and timeout findings (format 2). */
    severity: { enum: SEVERITIES },
    step: { type: 'integer' },
    check: { type: 'string' },
    message: { type: 'string' },
    expected: { type: 'string' },
    observed: { type: 'string' },
    requirements: { type: 'array', items: { type: 'string' } },
  },
} as const;

/** Schema of the results document written by `vmemct run --json FILE`. */
export const ResultsSchema = {
  $id: 'https://vmemct.dev/schemas/results.json',
  type: 'object',
  additionalProperties: false,
  required: [
    'format',
    'suite',
    'adapter',
    'startedAt',
    'durationMs',
    'options',
    'summary',
    'results',
    'staleExpectations',
    'exitCode',
  ],
  properties: {
    format: { enum: RESULTS_FORMATS },
    suite: {
      type: 'object',
      additionalProperties: false,
      required: ['version', 'vectorsDigest', 'vectorCount'],
      properties: {
        version: { type: 'string' },
        vectorsDigest: { type: 'string' },
        vectorCount: { type: 'integer' },
        checkCount: { type: 'integer' },
      },
    },
    adapter: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'implementation', 'capabilities'],
      properties: {
        name: { type: 'string' },
        implementation: { type: 'string' },
        capabilities: { type: 'array', items: { type: 'string' } },
      },
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
        then: {
          required: ['suite'],
          properties: {
            id: { type: 'string', pattern: '^[a-z][a-z0-9]*(\\.[a-z0-9]+(-[a-z0-9]+)*)+$' },
            suite: { type: 'string' },
          },
        },
        else: {
          required: ['file', 'line', 'target'],
          properties: { file: { type: 'string' }, line: { type: 'integer' }, target: { type: 'string' } },
        },
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
          /** The worst severity of the result's findings (format 2; absent when none has one). */
          severity: { enum: SEVERITIES },
          expected: { enum: VERDICTS },
          expectationReason: { type: 'string' },
          status: { enum: ['expected', 'unexpected'] },
          durationMs: { type: 'number', minimum: 0 },
          findings: {
            type: 'array',
            items: FINDING_SCHEMA,
          },
          diagnostics: { type: 'string' },
          /** Every attempt in order, when the case was retried (format 3, `--retries`). */
          attempts: {
            type: 'array',
            minItems: 2,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['verdict', 'durationMs', 'findings'],
              properties: {
                verdict: { enum: VERDICTS },
                durationMs: { type: 'number', minimum: 0 },
                findings: { type: 'array', items: FINDING_SCHEMA },
              },
            },
          },
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
