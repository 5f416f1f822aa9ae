/**
 * Loads vector files: YAML → schema check → meaning check → {@link Vector}s.
 *
 * Every problem is reported with file, line and field; loading goes on after a problem so one
 * run shows them all. Nothing in a vector is executed: expressions go through our own parser.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ALL_REQUIREMENTS, VECTOR_SCHEMA_IDS } from '../../../spec/src/index';
import type { Capability, Target } from '../../../adapters/core/src/contract';
import { capabilitiesOf, normaliseStep } from '../steps/registry';
import { Site, featureSet } from '../steps/site';
import type { Expr } from './expr';
import type { DeviceSpec, LoadProblem, SetupSpec, Step, Vector } from './types';
import { readInputFile } from './input-file';
import { YamlSource, validateSource } from './yaml-source';

const KNOWN_REQUIREMENTS = new Set(ALL_REQUIREMENTS.map((r) => r.id));

/** Result of loading. */
export interface LoadResult {
  readonly vectors: Vector[];
  readonly problems: LoadProblem[];
  /** Files read, in order. */
  readonly files: string[];
}

/**
 * Lists the `.yaml`/`.yml` files under `paths` (files or folders, recursively), sorted. A path
 * that cannot be followed — missing, a dangling or looping symbolic link, a folder that links
 * back to one of its parents, an unreadable folder — is a problem naming it (exit 3), not a crash.
 * What the listed files are (regular or not) is judged when they are read.
 */
export function listVectorFiles(paths: readonly string[]): { files: string[]; problems: LoadProblem[] } {
  const files: string[] = [];
  const problems: LoadProblem[] = [];
  const problem = (file: string, reason: string): void => {
    problems.push({ file, line: 0, field: '', reason });
  };
  const statOf = (p: string): fs.Stats | undefined => {
    try {
      return fs.statSync(p);
    } catch (e) {
      problem(p, unfollowable(p, e));
      return undefined;
    }
  };
  const walk = (p: string, stat: fs.Stats, parents: ReadonlySet<string>): void => {
    if (!stat.isDirectory()) {
      files.push(p);
      return;
    }
    const identity = `${stat.dev}:${stat.ino}`;
    if (parents.has(identity)) return problem(p, 'symbolic link loop: this folder contains itself');
    let names: string[];
    try {
      names = fs.readdirSync(p).sort();
    } catch (e) {
      return problem(p, `cannot read folder: ${errorText(e)}`);
    }
    const inside = new Set(parents).add(identity);
    for (const name of names) {
      const child = path.join(p, name);
      const childStat = statOf(child);
      if (childStat && (childStat.isDirectory() || /\.ya?ml$/.test(name))) walk(child, childStat, inside);
    }
  };
  for (const p of paths) {
    const stat = statOf(p);
    if (stat) walk(p, stat, new Set());
  }
  return { files, problems };
}

/** Why `p` cannot be followed (stat failed with `e`). */
function unfollowable(p: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return 'symbolic link loop (too many levels of symbolic links)';
  if (code === 'ENOENT') {
    try {
      if (fs.lstatSync(p).isSymbolicLink()) return 'dangling symbolic link (its target does not exist)';
    } catch {
      // Not there at all.
    }
    return 'no such file or folder';
  }
  return `cannot read: ${errorText(e)}`;
}

function errorText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return (e as Error).message;
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
    const read = readInputFile(file, 'vector file');
    if (read.kind === 'problem') {
      problems.push(read.problem);
      continue;
    }
    const text = read.text;
    const loaded = loadVectorText(file, text);
    if (loaded.problems.length > 0) {
      appendAll(problems, loaded.problems);
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

/**
 * The cache as written to disk: its files keyed relative to `root` (the package root), so the
 * cache still matches once the package is installed elsewhere (for example under node_modules/).
 */
export function portableVectorCache(cache: VectorCache, root: string): VectorCache {
  const base = path.resolve(root);
  return {
    format: cache.format,
    files: Object.fromEntries(Object.entries(cache.files).map(([file, entry]) => [path.relative(base, file), entry])),
  };
}

/**
 * Reads a cache file written by {@link portableVectorCache}, its relative keys resolved against
 * `root`; a missing or unreadable one is simply no cache.
 */
export function readVectorCache(file: string, root: string): VectorCache | undefined {
  try {
    const cache = JSON.parse(fs.readFileSync(file, 'utf8')) as VectorCache;
    if (cache.format !== 'vmemct-vector-cache/1') return undefined;
    const base = path.resolve(root);
    return {
      format: cache.format,
      files: Object.fromEntries(Object.entries(cache.files).map(([key, entry]) => [path.resolve(base, key), entry])),
    };
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
    const read = readInputFile(file, 'vector file');
    if (read.kind === 'problem') {
      problems.push(read.problem);
      continue;
    }
    const text = read.text;
    const cached = cache?.files[path.resolve(file)];
    const loaded =
      cached && cached.sha256 === sha256(text)
        ? normaliseFile(YamlSource.fromCache(file, cached.value, cached.lines))
        : loadVectorText(file, text);
    appendAll(vectors, loaded.vectors);
    appendAll(problems, loaded.problems);
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

/** Appends `items` to `list` one by one (a spread of an input-sized array would overflow the stack). */
export function appendAll<T>(list: T[], items: readonly T[]): void {
  for (const item of items) list.push(item);
}

/** Loads the vectors of one file's text. */
export function loadVectorText(file: string, text: string): { vectors: Vector[]; problems: LoadProblem[] } {
  const parsed = YamlSource.parse(file, text);
  if (!parsed.source) return { vectors: [], problems: parsed.problems };
  const source = parsed.source;
  const sizeProblem = oversizeProblem(source);
  if (sizeProblem) return { vectors: [], problems: [sizeProblem] };
  const schemaProblems = validateSource(source, VECTOR_SCHEMA_IDS.file);
  if (schemaProblems.length > 0) return { vectors: [], problems: schemaProblems };
  return normaliseFile(source);
}

/**
 * Loads the vectors of a file's value built in memory rather than parsed from text (it must be
 * what a schema-valid file parses to; only meaning checks run): the cached path's loading.
 * `lines` maps paths such as `vectors/0/steps/3` to lines for problems and findings.
 */
export function loadVectorValue(
  file: string,
  value: unknown,
  lines: Readonly<Record<string, number>>,
): { vectors: Vector[]; problems: LoadProblem[] } {
  return normaliseFile(YamlSource.fromCache(file, value, lines));
}

/**
 * The most vectors one file may hold: 10,000 (the shipped corpus's largest file has a few dozen;
 * split a generated corpus into several files).
 */
export const MAX_VECTORS_PER_FILE = 10_000;

/** The most steps one vector may have: 10,000 (the longest shipped vector has a few dozen). */
export const MAX_STEPS_PER_VECTOR = 10_000;

/** A file over {@link MAX_VECTORS_PER_FILE} or with a vector over {@link MAX_STEPS_PER_VECTOR}, checked before the schema. */
function oversizeProblem(source: YamlSource): LoadProblem | undefined {
  const vectors = (source.value as { vectors?: unknown } | null)?.vectors;
  if (!Array.isArray(vectors)) return undefined;
  if (vectors.length > MAX_VECTORS_PER_FILE)
    return source.problem(
      ['vectors', MAX_VECTORS_PER_FILE],
      `more than ${MAX_VECTORS_PER_FILE} vectors in one file (${vectors.length}); split the file`,
    );
  for (const [i, v] of vectors.entries()) {
    const steps = (v as { steps?: unknown } | null)?.steps;
    if (Array.isArray(steps) && steps.length > MAX_STEPS_PER_VECTOR)
      return source.problem(
        ['vectors', i, 'steps', MAX_STEPS_PER_VECTOR],
        `more than ${MAX_STEPS_PER_VECTOR} steps in one vector (${steps.length})`,
      );
  }
  return undefined;
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
  usable_region_size?: string | number;
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
  devices?: { name: string; setup?: RawSetup }[];
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
  const devices = raw.devices && normaliseDevices(source, at, raw, setupRaw, whereIs, problems);

  const needs = new Set<Capability>([...(defaults.needs ?? []), ...(raw.needs ?? [])]);
  if (setupRaw.plugged && setupRaw.plugged.length > 0) needs.add('initial-plugged');
  if (setupRaw.config_padding !== undefined) needs.add('observe-driver');
  if (raw.target === 'driver') needs.add('observe-driver');
  if (raw.devices) needs.add('multi-device');

  const steps: Step[] = [];
  raw.steps.forEach((step, i) => {
    const s = normaliseStep(step, new Site(source, [...at, 'steps', i], problems), i + 1, raw.target);
    const device = addressedDevice(source, [...at, 'steps', i, 'device'], step.device, raw.devices, problems);
    if (s) {
      steps.push(device === undefined ? s : { ...s, device });
      for (const capability of capabilitiesOf(s)) needs.add(capability);
    }
  });
  problems.push(...requestsWithoutDriver(source, at, steps));
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
    ...(devices ? { devices } : {}),
    steps,
    description: raw.description,
    retired: raw.retired ? { reason: raw.retired.reason, supersededBy: raw.retired.superseded_by } : undefined,
    source: { file: source.file, line: source.lineOf(at) },
  };
}

/**
 * The devices of a multi-device driver vector: each device's set-up is the vector's with the
 * device's own fields laid over it (a problem in a device's field names that field). Names are unique.
 */
function normaliseDevices(
  source: YamlSource,
  at: (string | number)[],
  raw: RawVector,
  vectorSetup: RawSetup,
  whereIs: (key: keyof RawSetup) => (string | number)[],
  problems: LoadProblem[],
): DeviceSpec[] | undefined {
  if (raw.target !== 'driver') {
    problems.push(source.problem([...at, 'devices'], 'only a driver vector declares several devices'));
    return undefined;
  }
  const devices: DeviceSpec[] = [];
  const seen = new Set<string>();
  raw.devices!.forEach((d, j) => {
    const here = [...at, 'devices', j];
    if (seen.has(d.name)) problems.push(source.problem([...here, 'name'], `duplicate device name '${d.name}'`));
    seen.add(d.name);
    const own = d.setup ?? {};
    const where = (key: keyof RawSetup): (string | number)[] => (key in own ? [...here, 'setup', key] : whereIs(key));
    const setup = normaliseSetup(source, where, { ...vectorSetup, ...own }, problems);
    if (setup) devices.push({ name: d.name, setup });
  });
  return devices.length === raw.devices!.length ? devices : undefined;
}

/**
 * The 0-based index of the device a step's `device:` names (a name or an index); undefined when
 * the step names none. A step of a single-device vector names none; a name or index that is not
 * declared is a problem.
 */
function addressedDevice(
  source: YamlSource,
  where: (string | number)[],
  written: unknown,
  devices: RawVector['devices'],
  problems: LoadProblem[],
): number | undefined {
  if (written === undefined) return undefined;
  if (!devices) {
    problems.push(source.problem(where, 'this vector declares no devices (a `devices:` list); drop `device:`'));
    return undefined;
  }
  const names = devices.map((d) => d.name);
  const index = typeof written === 'number' ? written : names.indexOf(written as string);
  if (index < 0 || index >= names.length) {
    const what = typeof written === 'number' ? `no device with index ${written}` : `no device named '${written}'`;
    problems.push(source.problem(where, `${what} (declared: ${names.join(', ')})`));
    return undefined;
  }
  return index;
}

/**
 * A request after `device_reset: {reinitialise: false}` and before the next `initialise` would meet
 * a device no driver activated (it must not consume buffers before DRIVER_OK, §2.1.2), which the
 * runner's oracle does not model: such a step is refused.
 */
function requestsWithoutDriver(source: YamlSource, at: (string | number)[], steps: readonly Step[]): LoadProblem[] {
  const problems: LoadProblem[] = [];
  let resetAt: number | undefined;
  for (const step of steps) {
    if (step.action.kind === 'device-reset') resetAt = step.action.reinitialise ? undefined : step.index;
    else if (step.action.kind === 'initialise' || step.action.kind === 'system-reset') resetAt = undefined;
    else if (step.action.kind === 'request' && resetAt !== undefined)
      problems.push(
        source.problem(
          [...at, 'steps', step.index - 1],
          `no driver is active here: step ${resetAt} reset the device without re-initialising it; add an initialise step before this request`,
        ),
      );
  }
  return problems;
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
  const usable_region_size =
    raw.usable_region_size === undefined ? undefined : site('usable_region_size').expr(raw.usable_region_size);
  const configPadding =
    raw.config_padding === undefined ? undefined : site('config_padding').hex(raw.config_padding, 6);
  if (problems.length > before || !block_size || !region_size || !addr || !requested_size) return undefined;
  return {
    block_size,
    region_size,
    addr,
    requested_size,
    usable_region_size,
    node_id: raw.node_id ?? 0,
    features: raw.features ? featureSet(raw.features) : undefined,
    accept: raw.accept === undefined || raw.accept === 'offered' ? 'offered' : featureSet(raw.accept),
    plugged: raw.plugged ?? [],
    configPadding,
  };
}
