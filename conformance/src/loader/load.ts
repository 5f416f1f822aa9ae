/**
 * Loads vector files: YAML → schema check → meaning check → {@link Vector}s.
 *
 * Every problem is reported with file, line and field; loading goes on after a problem so one
 * run shows them all. Nothing in a vector is executed: expressions go through our own parser.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REQUIREMENTS, VECTOR_SCHEMA_IDS } from '../../../spec/src/index';
import type { Capability, Target } from '../../../adapters/core/src/contract';
import { capabilitiesOf, normaliseStep } from '../steps/registry';
import { Site, featureSet } from '../steps/site';
import type { Expr } from './expr';
import type { LoadProblem, SetupSpec, Step, Vector } from './types';
import { YamlSource, validateSource } from './yaml-source';

const KNOWN_REQUIREMENTS = new Set(REQUIREMENTS.map((r) => r.id));

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
  readonly files: Readonly<
    Record<
      string,
      { readonly sha256: string; readonly value: unknown; readonly lines: Readonly<Record<string, number>> }
    >
  >;
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
    const loaded =
      cached && cached.sha256 === sha256(text)
        ? normaliseFile(YamlSource.fromCache(file, cached.value, cached.lines))
        : loadVectorText(file, text);
    vectors.push(...loaded.vectors);
    problems.push(...loaded.problems);
  }
  const firstSeen = new Map<string, Vector>();
  for (const v of vectors) {
    const earlier = firstSeen.get(v.id);
    if (earlier) {
      problems.push({
        file: v.source.file,
        line: v.source.line,
        field: 'id',
        reason: `duplicate vector id '${v.id}' (first at ${earlier.source.file}:${earlier.source.line})`,
      });
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
  const schemaProblems = validateSource(source, VECTOR_SCHEMA_IDS.file);
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
    if (!KNOWN_REQUIREMENTS.has(id))
      problems.push(source.problem([...at, 'requirements', i], `unknown requirement '${id}' (see \`vmemct spec\`)`));
    else if (!id.startsWith(raw.target === 'device' ? 'dev.' : 'drv.')) {
      problems.push(
        source.problem(
          [...at, 'requirements', i],
          `'${id}' is a ${raw.target === 'device' ? 'driver' : 'device'} requirement; a ${raw.target} vector checks ${raw.target === 'device' ? 'dev.*' : 'drv.*'} statements`,
        ),
      );
    }
  }
  const side = raw.id.split('.')[1] === 'dev' ? 'device' : 'driver';
  if (side !== raw.target)
    problems.push(
      source.problem(
        [...at, 'id'],
        `a ${raw.target} vector's id starts with vmem.${raw.target === 'device' ? 'dev' : 'drv'}.`,
      ),
    );

  const setupRaw: RawSetup = { ...DEFAULT_SETUP, ...(defaults.setup ?? {}), ...(raw.setup ?? {}) };
  // A value taken from the file's defaults is reported where the defaults give it.
  const whereIs = (key: keyof RawSetup): (string | number)[] =>
    (raw.setup && key in raw.setup) || !(defaults.setup && key in defaults.setup)
      ? [...at, 'setup', key]
      : ['defaults', 'setup', key];
  const setup = normaliseSetup(source, whereIs, setupRaw, problems);

  const needs = new Set<Capability>([...(defaults.needs ?? []), ...(raw.needs ?? [])]);
  if (setupRaw.plugged && setupRaw.plugged.length > 0) needs.add('initial-plugged');
  if (setupRaw.config_padding !== undefined) needs.add('observe-driver');
  if (raw.target === 'driver') needs.add('observe-driver');

  const steps: Step[] = [];
  raw.steps.forEach((step, i) => {
    const s = normaliseStep(step, new Site(source, [...at, 'steps', i], problems), i + 1, raw.target);
    if (s) {
      steps.push(s);
      for (const capability of capabilitiesOf(s)) needs.add(capability);
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

function normaliseSetup(
  source: YamlSource,
  whereIs: (key: keyof RawSetup) => (string | number)[],
  raw: RawSetup,
  problems: LoadProblem[],
): SetupSpec | undefined {
  const before = problems.length;
  const site = (key: keyof RawSetup): Site => new Site(source, whereIs(key), problems);
  const e = (key: 'block_size' | 'region_size' | 'addr' | 'requested_size'): Expr | undefined =>
    site(key).expr(raw[key]!);
  const block_size = e('block_size');
  const region_size = e('region_size');
  const addr = e('addr');
  const requested_size = e('requested_size');
  const configPadding =
    raw.config_padding === undefined ? undefined : site('config_padding').hex(raw.config_padding, 6);
  if (problems.length > before || !block_size || !region_size || !addr || !requested_size) return undefined;
  return {
    block_size,
    region_size,
    addr,
    requested_size,
    node_id: raw.node_id ?? 0,
    features: raw.features ? featureSet(raw.features) : undefined,
    accept: raw.accept === undefined || raw.accept === 'offered' ? 'offered' : featureSet(raw.accept),
    plugged: raw.plugged ?? [],
    configPadding,
  };
}
