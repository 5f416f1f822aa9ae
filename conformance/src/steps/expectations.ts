/**
 * Every expectation key a step may state: the schema of its value, the field it is kept in once
 * normalised, how it is normalised, and the capability stating it implies. Which step kinds may
 * state a key — and how it is checked — is declared by the step kinds themselves (their
 * `expect` records); this table only says what the value looks like.
 */
import {
  BLOCK_STATE_NAMES,
  ConfigExpectation,
  FeatureList,
  HexBytes,
  REQUEST_TYPE_NAMES,
  RESPONSE_OUTCOMES,
  VirtioMemConfigLayout,
  outcomeSet,
} from '../../../spec/src/index';
import type { Capability } from '../../../adapters/core/src/contract';
import type { ConfigFieldName, OutcomeSet, SetClass, ValueExpectation } from '../loader/types';
import { Site, featureSet } from './site';

/** An expectation key's value: schema, normalised field, normalisation, implied capability. */
interface ExpectationValue<F extends string, V> {
  readonly field: F;
  readonly schema: object;
  normalise(raw: unknown, site: Site): V | undefined;
  readonly capability?: Capability;
}

function outcomes(raw: unknown): OutcomeSet {
  if (typeof raw === 'string') return new Map([[raw, 'pass']]);
  return new Map(Object.entries(raw as Record<string, SetClass>));
}

function flag(raw: unknown): boolean {
  return raw as boolean;
}

const RequestTypeArray = { type: 'array', items: { enum: REQUEST_TYPE_NAMES } } as const;

function valueExpectation(value: unknown, site: Site): ValueExpectation | undefined {
  if (value === 'unchanged') return { kind: 'unchanged' };
  if (typeof value === 'string' || typeof value === 'number') {
    const e = site.expr(value);
    return e && { kind: 'equals', expr: e, text: String(value) };
  }
  const range = value as { min?: string | number; max?: string | number };
  const min = range.min === undefined ? undefined : site.at('min').expr(range.min);
  const max = range.max === undefined ? undefined : site.at('max').expr(range.max);
  const text = [range.min !== undefined ? `≥ ${range.min}` : '', range.max !== undefined ? `≤ ${range.max}` : '']
    .filter(Boolean)
    .join(' and ');
  return { kind: 'range', min, max, text };
}

function configExpectation(raw: unknown, site: Site): ReadonlyMap<ConfigFieldName, ValueExpectation> {
  const config = new Map<ConfigFieldName, ValueExpectation>();
  for (const [field, value] of Object.entries(raw as Record<string, unknown>)) {
    const v = valueExpectation(value, site.at(field));
    if (v) config.set(field as ConfigFieldName, v);
  }
  return config;
}

/** Every expectation key, in the order the schema lists them. */
export const EXPECTATION_VALUES = {
  response: { field: 'response', schema: outcomeSet(RESPONSE_OUTCOMES), normalise: outcomes },
  state: { field: 'state', schema: outcomeSet(BLOCK_STATE_NAMES), normalise: outcomes },
  config: { field: 'config', schema: ConfigExpectation, normalise: configExpectation },
  config_bytes: {
    field: 'configBytes',
    schema: HexBytes,
    normalise: (raw: unknown, site: Site) => site.hex(raw as string, VirtioMemConfigLayout.size),
    capability: 'read-raw-config',
  },
  notification: { field: 'notification', schema: outcomeSet(['sent', 'none']), normalise: outcomes },
  needs_reset: { field: 'needsReset', schema: { type: 'boolean' }, normalise: flag },
  resize: { field: 'resize', schema: outcomeSet(['applied', 'refused']), normalise: outcomes },
  features_ok: { field: 'featuresOk', schema: outcomeSet(['accepted', 'refused']), normalise: outcomes },
  access: { field: 'access', schema: outcomeSet(['ok', 'refused']), normalise: outcomes },
  data: { field: 'data', schema: HexBytes, normalise: (raw: unknown, site: Site) => site.hex(raw as string) },
  converged: { field: 'converged', schema: { type: 'boolean' }, normalise: flag },
  settled: { field: 'settled', schema: { type: 'boolean' }, normalise: flag },
  first_request: {
    field: 'firstRequest',
    schema: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: REQUEST_TYPE_NAMES } },
    normalise: (raw: unknown): readonly string[] => raw as string[],
  },
  requests: {
    field: 'requests',
    schema: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: { min: { type: 'integer', minimum: 0 }, max: { type: 'integer', minimum: 0 } },
    },
    normalise: (raw: unknown): { readonly min?: number; readonly max?: number } =>
      raw as { min?: number; max?: number },
  },
  retry_delay: {
    field: 'retryDelay',
    schema: {
      type: 'object',
      additionalProperties: false,
      required: ['min_ms'],
      properties: { min_ms: { type: 'integer', minimum: 1, maximum: 2_147_483_647 } },
    },
    normalise: (raw: unknown): { readonly minMs: number } => ({ minMs: (raw as { min_ms: number }).min_ms }),
  },
  busy_retries: {
    field: 'busyRetries',
    schema: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: { min: { type: 'integer', minimum: 0 }, max: { type: 'integer', minimum: 0 } },
    },
    normalise: (raw: unknown): { readonly min?: number; readonly max?: number } =>
      raw as { min?: number; max?: number },
  },
  nack_repeats: {
    field: 'nackRepeats',
    schema: {
      type: 'object',
      additionalProperties: false,
      required: ['max'],
      properties: { max: { type: 'integer', minimum: 0 } },
    },
    normalise: (raw: unknown): { readonly max: number } => raw as { max: number },
  },
  request_types: {
    field: 'requestTypes',
    schema: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: { includes: RequestTypeArray, excludes: RequestTypeArray },
    },
    normalise: (raw: unknown): { readonly includes: readonly string[]; readonly excludes: readonly string[] } => {
      const t = raw as { includes?: string[]; excludes?: string[] };
      return { includes: t.includes ?? [], excludes: t.excludes ?? [] };
    },
  },
  suspend: { field: 'suspend', schema: outcomeSet(['allowed', 'refused']), normalise: outcomes },
  /** Whether the driver accepted an offered PERSISTENT_SUSPEND: optional, so graded, never required (drv.op.11). */
  persistent_suspend: {
    field: 'persistentSuspend',
    schema: outcomeSet(['accepted', 'declined']),
    normalise: outcomes,
  },
  accepted_features: {
    field: 'acceptedFeatures',
    schema: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: { includes: FeatureList, excludes: FeatureList },
    },
    normalise: (raw: unknown): { readonly includes: bigint; readonly excludes: bigint } => {
      const f = raw as { includes?: string[]; excludes?: string[] };
      return { includes: featureSet(f.includes ?? []), excludes: featureSet(f.excludes ?? []) };
    },
  },
} as const satisfies Record<string, ExpectationValue<string, unknown>>;

type Values = typeof EXPECTATION_VALUES;

/** An expectation key as written in YAML (`response`, `config_bytes`, …). */
export type ExpectKey = keyof Values;

/** The normalised value of an expectation key. */
export type ExpectValue<K extends ExpectKey> = NonNullable<ReturnType<Values[K]['normalise']>>;

/** What a step expects (every member optional; only what is stated is checked). */
export type Expectation = { readonly [K in ExpectKey as Values[K]['field']]?: ExpectValue<K> };

/** The stated value of `key` in a normalised expectation, if any. */
export function statedValue<K extends ExpectKey>(expect: Expectation, key: K): ExpectValue<K> | undefined {
  return (expect as Record<string, unknown>)[EXPECTATION_VALUES[key].field] as ExpectValue<K> | undefined;
}

/** Normalises the stated expectations (keys already checked against the step kind). */
export function normaliseExpectation(raw: Readonly<Record<string, unknown>>, site: Site): Expectation {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const def = (EXPECTATION_VALUES as Record<string, ExpectationValue<string, unknown>>)[key];
    if (!def || value === undefined) continue;
    const normalised = def.normalise(value, site.at(key));
    if (normalised !== undefined) out[def.field] = normalised;
  }
  return out as Expectation;
}
