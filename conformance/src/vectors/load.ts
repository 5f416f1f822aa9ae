/**
 * Loads vector files: YAML → schema check → meaning check → {@link Vector}s.
 *
 * Every problem is reported with file, line and field; loading goes on after a problem so one
 * run shows them all. Nothing in a vector is executed: expressions go through our own parser.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  REQUEST_TYPE_NAMES,
  REQUIREMENTS,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_ACPI_PXM,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  VirtioMemConfigLayout,
  featureMask,
} from '../../../spec/src/index';
import type { Capability, Target } from '../../../adapters/core/src/contract';
import { Expr, parseExpression } from './expr';
import {
  ConfigFieldName,
  Expectation,
  LoadProblem,
  OutcomeSet,
  RequestSpec,
  SetClass,
  SetupSpec,
  Step,
  StepAction,
  STEP_KEYS,
  ValueExpectation,
  Vector,
} from './types';
import { YamlSource, validateSource } from './yaml-source';

/** Feature names used in vectors → feature bit masks. */
export const FEATURE_BITS: Readonly<Record<string, bigint>> = {
  VERSION_1: featureMask(VIRTIO_F_VERSION_1),
  ACPI_PXM: featureMask(VIRTIO_MEM_F_ACPI_PXM),
  UNPLUGGED_INACCESSIBLE: featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE),
  PERSISTENT_SUSPEND: featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND),
};


const KNOWN_REQUIREMENTS = new Set(REQUIREMENTS.map((r) => r.id));

/** Step kinds each target may use. */
const STEPS_FOR: Readonly<Record<Target, ReadonlySet<StepAction['kind']>>> = {
  device: new Set(['request', 'resize', 'device-reset', 'system-reset', 'read-config', 'initialise', 'inject-busy', 'write-memory', 'read-memory', 'suspend']),
  driver: new Set(['start', 'settle', 'resize', 'inject', 'system-reset', 'suspend', 'read-config']),
};

/** Expectation keys each step kind may carry (config and notification fit any device step). */
const EXPECT_FOR: Readonly<Record<StepAction['kind'], readonly string[]>> = {
  request: ['response', 'state', 'config', 'notification', 'needs_reset'],
  resize: ['resize', 'config', 'notification'],
  'device-reset': ['config', 'notification', 'needs_reset'],
  'system-reset': ['config', 'notification', 'needs_reset'],
  'read-config': ['config', 'config_bytes', 'notification', 'needs_reset'],
  initialise: ['features_ok', 'config', 'needs_reset'],
  'inject-busy': [],
  'write-memory': ['access'],
  'read-memory': ['access', 'data'],
  suspend: ['config', 'notification', 'suspend'],
  start: ['config', 'accepted_features'],
  settle: ['converged', 'settled', 'first_request', 'requests', 'request_types', 'config'],
  inject: [],
};

/** Capabilities a step kind implies. */
const IMPLIED: Partial<Record<StepAction['kind'], Capability>> = {
  resize: 'host-resize',
  'device-reset': 'device-reset',
  'system-reset': 'system-reset',
  'inject-busy': 'inject-busy',
  'write-memory': 'memory-access',
  'read-memory': 'memory-access',
  suspend: 'suspend',
  inject: 'inject-responses',
  initialise: 'feature-negotiation',
};

/** Result of loading. */
export interface LoadResult {
  readonly vectors: Vector[];
  readonly problems: LoadProblem[];
  /** Files read, in order. */
  readonly files: string[];
}

/** Lists the `.yaml`/`.yml` files under `paths` (files or folders, recursively), sorted. */
export function listVectorFiles(paths: readonly string[]): { files: string[]; problems: LoadProblem[] } {
  const files: string[] = [];
  const problems: LoadProblem[] = [];
  const walk = (p: string): void => {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch {
      problems.push({ file: p, line: 0, field: '', reason: 'no such file or folder' });
      return;
    }
    if (stat.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) {
        const child = path.join(p, name);
        if (fs.statSync(child).isDirectory() || /\.ya?ml$/.test(name)) walk(child);
      }
    } else {
      files.push(p);
    }
  };
  for (const p of paths) walk(p);
  return { files, problems };
}

/**
 * Vector files already parsed and validated at build time, keyed by absolute path. Loading the
 * shipped corpus from it skips YAML parsing and schema compilation (most of a run's start-up);
 * an entry is used only when the file's SHA-256 still matches.
 */
export interface VectorCache {
  readonly format: 'vmemct-vector-cache/1';
  readonly files: Readonly<Record<string, { readonly sha256: string; readonly value: unknown; readonly lines: Readonly<Record<string, number>> }>>;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Builds the cache of the files under `paths`; files with problems are left out. */
export function buildVectorCache(paths: readonly string[]): { cache: VectorCache; problems: LoadProblem[] } {
  const files: Record<string, VectorCache['files'][string]> = {};
  const problems: LoadProblem[] = [];
  for (const file of listVectorFiles(paths).files) {
    const text = fs.readFileSync(file, 'utf8');
    const loaded = loadVectorText(file, text);
    if (loaded.problems.length > 0) {
      problems.push(...loaded.problems);
      continue;
    }
    const parsed = YamlSource.parse(file, text).source!;
    const value = parsed.value as RawFile;
    const lines: Record<string, number> = {};
    value.vectors.forEach((v, i) => {
      lines[`vectors/${i}`] = parsed.lineOf(['vectors', i]);
      v.steps.forEach((_, j) => (lines[`vectors/${i}/steps/${j}`] = parsed.lineOf(['vectors', i, 'steps', j])));
    });
    files[path.resolve(file)] = { sha256: sha256(text), value, lines };
  }
  return { cache: { format: 'vmemct-vector-cache/1', files }, problems };
}

/** Reads a cache file; a missing or unreadable one is simply no cache. */
export function readVectorCache(file: string): VectorCache | undefined {
  try {
    const cache = JSON.parse(fs.readFileSync(file, 'utf8')) as VectorCache;
    return cache.format === 'vmemct-vector-cache/1' ? cache : undefined;
  } catch {
    return undefined;
  }
}

/** Loads every vector under `paths`. IDs must be unique across all of them. */
export function loadVectors(paths: readonly string[], cache?: VectorCache): LoadResult {
  const listed = listVectorFiles(paths);
  const vectors: Vector[] = [];
  const problems = [...listed.problems];
  for (const file of listed.files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      problems.push({ file, line: 0, field: '', reason: `cannot read: ${(e as Error).message}` });
      continue;
    }
    const cached = cache?.files[path.resolve(file)];
    const loaded = cached && cached.sha256 === sha256(text) ? normaliseFile(YamlSource.fromCache(file, cached.value, cached.lines)) : loadVectorText(file, text);
    vectors.push(...loaded.vectors);
    problems.push(...loaded.problems);
  }
  const firstSeen = new Map<string, Vector>();
  for (const v of vectors) {
    const earlier = firstSeen.get(v.id);
    if (earlier) {
      problems.push({ file: v.source.file, line: v.source.line, field: 'id', reason: `duplicate vector id '${v.id}' (first at ${earlier.source.file}:${earlier.source.line})` });
    } else {
      firstSeen.set(v.id, v);
    }
  }
  return { vectors, problems, files: listed.files };
}

/** Loads the vectors of one file's text. */
export function loadVectorText(file: string, text: string): { vectors: Vector[]; problems: LoadProblem[] } {
  const parsed = YamlSource.parse(file, text);
  if (!parsed.source) return { vectors: [], problems: parsed.problems };
  const source = parsed.source;
  const schemaProblems = validateSource(source, 'https://vmemct.dev/schemas/vector-file.json');
  if (schemaProblems.length > 0) return { vectors: [], problems: schemaProblems };
  return normaliseFile(source);
}

/** Turns a schema-valid file into vectors (meaning checks included). */
function normaliseFile(source: YamlSource): { vectors: Vector[]; problems: LoadProblem[] } {
  const doc = source.value as RawFile;
  const problems: LoadProblem[] = [];
  const vectors: Vector[] = [];
  doc.vectors.forEach((raw, i) => {
    const v = normaliseVector(source, raw, i, doc.defaults ?? {}, problems);
    if (v) vectors.push(v);
  });
  // A bad default is found once per vector that inherits it; report it once.
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const key = `${p.line}\0${p.field}\0${p.reason}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
  return { vectors, problems: unique };
}

// ---------------------------------------------------------------- normalisation

interface RawSetup {
  block_size?: string | number;
  region_size?: string | number;
  addr?: string | number;
  requested_size?: string | number;
  node_id?: number;
  features?: string[];
  accept?: 'offered' | string[];
  plugged?: { first: number; count: number }[];
  config_padding?: string;
}

interface RawVector {
  id: string;
  title: string;
  requirements: string[];
  target: Target;
  needs?: Capability[];
  tags?: string[];
  timeout_ms?: number;
  check_invariants?: boolean;
  setup?: RawSetup;
  steps: Record<string, unknown>[];
  description?: string;
  retired?: { reason: string; superseded_by?: string };
}

interface RawFile {
  format: string;
  defaults?: { setup?: RawSetup; tags?: string[]; needs?: Capability[] };
  vectors: RawVector[];
}

const DEFAULT_SETUP: Required<Pick<RawSetup, 'block_size' | 'region_size' | 'addr' | 'requested_size'>> = {
  block_size: '2MiB',
  region_size: '1GiB',
  addr: '4GiB',
  requested_size: 0,
};

function normaliseVector(
  source: YamlSource,
  raw: RawVector,
  index: number,
  defaults: NonNullable<RawFile['defaults']>,
  problems: LoadProblem[],
): Vector | undefined {
  const at = ['vectors', index];
  const before = problems.length;
  for (const [i, id] of raw.requirements.entries()) {
    if (!KNOWN_REQUIREMENTS.has(id)) problems.push(source.problem([...at, 'requirements', i], `unknown requirement '${id}' (see \`vmemct spec\`)`));
    else if (!id.startsWith(raw.target === 'device' ? 'dev.' : 'drv.')) {
      problems.push(source.problem([...at, 'requirements', i], `'${id}' is a ${raw.target === 'device' ? 'driver' : 'device'} requirement; a ${raw.target} vector checks ${raw.target === 'device' ? 'dev.*' : 'drv.*'} statements`));
    }
  }
  const side = raw.id.split('.')[1] === 'dev' ? 'device' : 'driver';
  if (side !== raw.target) problems.push(source.problem([...at, 'id'], `a ${raw.target} vector's id starts with vmem.${raw.target === 'device' ? 'dev' : 'drv'}.`));

  const setupRaw: RawSetup = { ...DEFAULT_SETUP, ...(defaults.setup ?? {}), ...(raw.setup ?? {}) };
  // A value taken from the file's defaults is reported where the defaults give it.
  const whereIs = (key: keyof RawSetup): (string | number)[] => (raw.setup && key in raw.setup) || !(defaults.setup && key in defaults.setup) ? [...at, 'setup', key] : ['defaults', 'setup', key];
  const setup = normaliseSetup(source, whereIs, setupRaw, problems);

  const needs = new Set<Capability>([...(defaults.needs ?? []), ...(raw.needs ?? [])]);
  if (setupRaw.plugged && setupRaw.plugged.length > 0) needs.add('initial-plugged');
  if (setupRaw.config_padding !== undefined) needs.add('observe-driver');
  if (raw.target === 'driver') needs.add('observe-driver');

  const steps: Step[] = [];
  raw.steps.forEach((step, i) => {
    const s = normaliseStep(source, [...at, 'steps', i], step, i + 1, raw.target, problems);
    if (s) {
      steps.push(s);
      const implied = IMPLIED[s.action.kind];
      if (implied) needs.add(implied);
      if (s.action.kind === 'request' && s.action.layout) needs.add('raw-descriptor-layout');
      if (s.expect.configBytes) needs.add('read-raw-config');
    }
  });
  if (problems.length > before || !setup) return undefined;
  return {
    id: raw.id,
    title: raw.title,
    requirements: raw.requirements,
    target: raw.target,
    needs: [...needs].sort(),
    tags: [...new Set([...(defaults.tags ?? []), ...(raw.tags ?? [])])],
    timeoutMs: raw.timeout_ms,
    checkInvariants: raw.check_invariants ?? true,
    setup,
    steps,
    description: raw.description,
    retired: raw.retired ? { reason: raw.retired.reason, supersededBy: raw.retired.superseded_by } : undefined,
    source: { file: source.file, line: source.lineOf(at) },
  };
}

function expr(source: YamlSource, at: readonly (string | number)[], value: string | number, problems: LoadProblem[]): Expr | undefined {
  const parsed = parseExpression(value);
  if (!parsed.ok) {
    problems.push(source.problem(at, parsed.reason));
    return undefined;
  }
  return parsed.expr;
}

function hex(source: YamlSource, at: readonly (string | number)[], text: string, problems: LoadProblem[], exactLength?: number): Uint8Array | undefined {
  const bytes = hexBytes(text);
  if (exactLength !== undefined && bytes.length !== exactLength) {
    problems.push(source.problem(at, `must be exactly ${exactLength} bytes (got ${bytes.length})`));
    return undefined;
  }
  return bytes;
}

/** Parses `"01 02 ff"` into bytes (the schema has already checked the form). */
export function hexBytes(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, '');
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function features(names: readonly string[]): bigint {
  return names.reduce((mask, name) => mask | FEATURE_BITS[name], 0n);
}

function normaliseSetup(source: YamlSource, whereIs: (key: keyof RawSetup) => (string | number)[], raw: RawSetup, problems: LoadProblem[]): SetupSpec | undefined {
  const before = problems.length;
  const e = (key: 'block_size' | 'region_size' | 'addr' | 'requested_size'): Expr | undefined => expr(source, whereIs(key), raw[key]!, problems);
  const block_size = e('block_size');
  const region_size = e('region_size');
  const addr = e('addr');
  const requested_size = e('requested_size');
  const configPadding = raw.config_padding === undefined ? undefined : hex(source, whereIs('config_padding'), raw.config_padding, problems, 6);
  if (problems.length > before || !block_size || !region_size || !addr || !requested_size) return undefined;
  return {
    block_size,
    region_size,
    addr,
    requested_size,
    node_id: raw.node_id ?? 0,
    features: raw.features ? features(raw.features) : undefined,
    accept: raw.accept === undefined || raw.accept === 'offered' ? 'offered' : features(raw.accept),
    plugged: raw.plugged ?? [],
    configPadding,
  };
}

function normaliseStep(
  source: YamlSource,
  at: (string | number)[],
  raw: Record<string, unknown>,
  index: number,
  target: Target,
  problems: LoadProblem[],
): Step | undefined {
  const actionKeys = Object.keys(raw).filter((k) => k !== 'expect' && k !== 'note');
  if (actionKeys.length !== 1) {
    problems.push(source.problem(at, actionKeys.length === 0 ? 'a step needs one action (request, resize, device_reset, …)' : `a step has one action; found ${actionKeys.join(', ')}`));
    return undefined;
  }
  const key = actionKeys[0];
  const kind = (Object.keys(STEP_KEYS) as StepAction['kind'][]).find((k) => STEP_KEYS[k] === key)!;
  if (!STEPS_FOR[target].has(kind)) {
    problems.push(source.problem(at, `'${key}' is not a step of a ${target} vector (allowed: ${[...STEPS_FOR[target]].map((k) => STEP_KEYS[k]).join(', ')})`, key));
    return undefined;
  }
  const before = problems.length;
  const action = normaliseAction(source, [...at, key], kind, raw[key], problems);
  const expectRaw = (raw.expect ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(expectRaw)) {
    if (!EXPECT_FOR[kind].includes(k)) {
      problems.push(source.problem([...at, 'expect'], `'${k}' cannot be expected of a '${key}' step (allowed: ${EXPECT_FOR[kind].join(', ') || 'nothing'})`, k));
    }
  }
  const expect = normaliseExpect(source, [...at, 'expect'], expectRaw, problems);
  if (problems.length > before || !action) return undefined;
  return { index, line: source.lineOf(at), action, expect, note: raw.note as string | undefined };
}

function normaliseAction(source: YamlSource, at: (string | number)[], kind: StepAction['kind'], raw: unknown, problems: LoadProblem[]): StepAction | undefined {
  switch (kind) {
    case 'request': {
      const r = raw as { type?: string | number; addr?: string | number; nb_blocks?: string | number; padding?: string; payload_padding?: string; raw?: string; layout?: { readable: number[]; writable: number[] } };
      let request: RequestSpec | undefined;
      if (r.raw !== undefined) {
        const extra = (['type', 'addr', 'nb_blocks', 'padding', 'payload_padding'] as const).filter((k) => r[k] !== undefined);
        if (extra.length > 0) {
          problems.push(source.problem(at, `a raw request gives its bytes only; remove ${extra.join(', ')}`));
          return undefined;
        }
        const bytes = hex(source, [...at, 'raw'], r.raw, problems);
        if (!bytes) return undefined;
        request = { form: 'raw', bytes };
      } else {
        if (r.type === undefined) {
          problems.push(source.problem(at, "a request needs 'type' (PLUG, UNPLUG, UNPLUG_ALL, STATE or a number) or 'raw' bytes"));
          return undefined;
        }
        const addr = r.addr === undefined ? undefined : expr(source, [...at, 'addr'], r.addr, problems);
        const nbBlocks = r.nb_blocks === undefined ? undefined : expr(source, [...at, 'nb_blocks'], r.nb_blocks, problems);
        const padding = r.padding === undefined ? undefined : hex(source, [...at, 'padding'], r.padding, problems, 6);
        const payloadPadding = r.payload_padding === undefined ? undefined : hex(source, [...at, 'payload_padding'], r.payload_padding, problems, 6);
        request = {
          form: 'fields',
          type: typeof r.type === 'number' ? r.type : (REQUEST_TYPE_NAMES as readonly string[]).indexOf(r.type),
          addr: addr ?? { kind: 'number', value: 0n },
          nbBlocks: nbBlocks ?? { kind: 'number', value: 0n },
          padding,
          payloadPadding,
        };
      }
      return { kind, request, layout: r.layout };
    }
    case 'resize': {
      const size = expr(source, at, raw as string | number, problems);
      return size && { kind, size };
    }
    case 'initialise': {
      const accept = (raw as { accept?: 'offered' | string[] }).accept;
      return { kind, accept: accept === undefined || accept === 'offered' ? 'offered' : features(accept) };
    }
    case 'inject-busy':
      return { kind, count: raw as number };
    case 'write-memory': {
      const w = raw as { addr: string | number; data: string };
      const addr = expr(source, [...at, 'addr'], w.addr, problems);
      const data = hex(source, [...at, 'data'], w.data, problems);
      return addr && data && { kind, addr, data };
    }
    case 'read-memory': {
      const r = raw as { addr: string | number; length: number };
      const addr = expr(source, [...at, 'addr'], r.addr, problems);
      return addr && { kind, addr, length: r.length };
    }
    case 'settle': {
      const s = raw === true ? {} : (raw as { max_requests?: number; timeout_ms?: number });
      return { kind, maxRequests: s.max_requests, timeoutMs: s.timeout_ms };
    }
    case 'inject': {
      const i = raw as { response: 'ACK' | 'NACK' | 'BUSY' | 'ERROR'; count: number; types?: string[]; trailer?: string };
      const trailer = i.trailer === undefined ? undefined : hex(source, [...at, 'trailer'], i.trailer, problems);
      if (trailer && trailer.length > 8) {
        problems.push(source.problem([...at, 'trailer'], `at most 8 bytes follow the response type (got ${trailer.length})`));
        return undefined;
      }
      return { kind, response: i.response, count: i.count, types: i.types, trailer };
    }
    default:
      return { kind } as StepAction;
  }
}

function outcomeSet(raw: unknown): OutcomeSet {
  if (typeof raw === 'string') return new Map([[raw, 'pass']]);
  return new Map(Object.entries(raw as Record<string, SetClass>));
}

function normaliseExpect(source: YamlSource, at: (string | number)[], raw: Record<string, unknown>, problems: LoadProblem[]): Expectation {
  const out: { -readonly [K in keyof Expectation]: Expectation[K] } = {};
  for (const name of ['response', 'state', 'notification', 'resize', 'features_ok', 'access', 'suspend'] as const) {
    if (raw[name] !== undefined) {
      const set = outcomeSet(raw[name]);
      const key = name === 'features_ok' ? 'featuresOk' : name;
      out[key] = set;
    }
  }
  if (raw.config !== undefined) {
    const config = new Map<ConfigFieldName, ValueExpectation>();
    for (const [field, value] of Object.entries(raw.config as Record<string, unknown>)) {
      const v = valueExpectation(source, [...at, 'config', field], value, problems);
      if (v) config.set(field as ConfigFieldName, v);
    }
    out.config = config;
  }
  if (raw.config_bytes !== undefined) out.configBytes = hex(source, [...at, 'config_bytes'], raw.config_bytes as string, problems, VirtioMemConfigLayout.size);
  if (raw.needs_reset !== undefined) out.needsReset = raw.needs_reset as boolean;
  if (raw.data !== undefined) out.data = hex(source, [...at, 'data'], raw.data as string, problems);
  if (raw.converged !== undefined) out.converged = raw.converged as boolean;
  if (raw.settled !== undefined) out.settled = raw.settled as boolean;
  if (raw.first_request !== undefined) out.firstRequest = raw.first_request as string[];
  if (raw.requests !== undefined) out.requests = raw.requests as { min?: number; max?: number };
  if (raw.request_types !== undefined) {
    const t = raw.request_types as { includes?: string[]; excludes?: string[] };
    out.requestTypes = { includes: t.includes ?? [], excludes: t.excludes ?? [] };
  }
  if (raw.accepted_features !== undefined) {
    const f = raw.accepted_features as { includes?: string[]; excludes?: string[] };
    out.acceptedFeatures = { includes: features(f.includes ?? []), excludes: features(f.excludes ?? []) };
  }
  return out;
}

function valueExpectation(source: YamlSource, at: (string | number)[], value: unknown, problems: LoadProblem[]): ValueExpectation | undefined {
  if (value === 'unchanged') return { kind: 'unchanged' };
  if (typeof value === 'string' || typeof value === 'number') {
    const e = expr(source, at, value, problems);
    return e && { kind: 'equals', expr: e, text: String(value) };
  }
  const range = value as { min?: string | number; max?: string | number };
  const min = range.min === undefined ? undefined : expr(source, [...at, 'min'], range.min, problems);
  const max = range.max === undefined ? undefined : expr(source, [...at, 'max'], range.max, problems);
  const text = [range.min !== undefined ? `≥ ${range.min}` : '', range.max !== undefined ? `≤ ${range.max}` : ''].filter(Boolean).join(' and ');
  return { kind: 'range', min, max, text };
}
