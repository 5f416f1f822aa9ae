/**
 * Device fuzzing: seeded cases of operations ({@link generateFuzzOperations}) run on the
 * implementation through the runner and judged by its oracle ({@link runFuzzCase}); on the first
 * difference the case is shrunk — fewest operations first (the failing prefix, then chunks and
 * single operations left out), then smallest values — to a vector that still fails on the
 * implementation and passes on the reference model, and that vector is the finding.
 */
import { Adapter, DeviceSetup, capabilitiesFor } from '../../../adapters/core/src/contract';
import { ALL_REQUIREMENTS } from '../../../spec/src/index';
import type { Finding } from '../judge/verdicts';
import {
  FuzzOperation,
  coverageKeys,
  generateFuzzOperations,
  jointlySmallerAddresses,
  simplerOperations,
} from './device-operations';
import { runFuzzCase, fuzzVectorText } from './device-case';
import type { FuzzFinding, FuzzOptions, FuzzReport } from './fuzz-types';

/** The device fuzzed by default: 128 blocks of 2 MiB at 4 GiB, 64 MiB requested. */
export const DEFAULT_FUZZ_SETUP: DeviceSetup = {
  block_size: 2n << 20n,
  region_size: 256n << 20n,
  addr: 1n << 32n,
  requested_size: 64n << 20n,
  node_id: 0,
  plugged: [],
};

/**
 * Blocks plugged at start where the adapter can (`initial-plugged`) and memory can be accessed:
 * the last two blocks of the default requested size, whose content the fuzzer can then judge
 * (see StepKnowledge).
 */
export const FUZZ_PLUGGED_AT_START = [{ first: 30, count: 2 }] as const;

/** Operations per case (one fresh device each) unless the options say otherwise. */
export const DEFAULT_CASE_LENGTH = 200;

/** Replays shrinking may spend unless the options say otherwise. */
export const DEFAULT_SHRINK_REPLAYS = 1_000;

/** Options of device fuzzing beyond the shared ones. */
export interface DeviceFuzzOptions extends FuzzOptions {
  /**
   * The reference model (`spec` profile) as an adapter, supplied by the caller so this layer needs
   * no concrete adapter: a case is a difference only if it passes there.
   */
  readonly reference: Adapter;
  readonly setup?: DeviceSetup;
  readonly caseLength?: number;
  readonly shrinkReplays?: number;
  /** Lower-case name of the implementation for the vector id (default from its name). */
  readonly slug?: string;
  /** Count `non-strict` verdicts (a SHOULD not met) as differences, as `vmemct run --strict` does. */
  readonly strict?: boolean;
  /** How to replay the written vector, for its header (e.g. `vmemct run --adapter qemu --vectors F`). */
  readonly replayHint?: string;
}

/** The seed of case `index` of a run seeded `seed`. */
export function caseSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca6b)) >>> 0;
}

/** The longest implementation name a vector id carries. */
const MAX_SLUG_LENGTH = 24;

/** A lower-case name for vector ids (`QEMU 7.2.0` → `qemu-7-2-0`). */
export function fuzzSlug(implementation: string): string {
  return (
    implementation
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, MAX_SLUG_LENGTH)
      .replace(/-+$/, '') || 'device'
  );
}

/** Fuzzes the device of `adapter` within the budget; the report holds the first difference, shrunk. */
export async function fuzzDevice(adapter: Adapter, options: DeviceFuzzOptions): Promise<FuzzReport> {
  const capabilities = capabilitiesFor(adapter.info, 'device');
  const setup =
    options.setup ??
    (capabilities.includes('initial-plugged') && capabilities.includes('memory-access')
      ? { ...DEFAULT_FUZZ_SETUP, plugged: FUZZ_PLUGGED_AT_START }
      : DEFAULT_FUZZ_SETUP);
  const caseLength = options.caseLength ?? DEFAULT_CASE_LENGTH;
  const strict = options.strict ?? false;
  const limits = { capabilities };
  const reference = options.reference;
  const coverage = new Map<string, number>();
  const started = Date.now();
  const maxOps = options.budget.operations ?? Number.POSITIVE_INFINITY;
  const maxMs = options.budget.timeMs ?? Number.POSITIVE_INFINITY;
  let operations = 0;
  const report = (finding?: FuzzFinding): FuzzReport => ({
    target: 'device',
    seed: options.seed,
    operations,
    elapsedMs: Date.now() - started,
    coverage: Object.fromEntries([...coverage].sort(([a], [b]) => a.localeCompare(b))),
    ...(finding ? { finding } : {}),
  });
  for (let index = 0; operations < maxOps && Date.now() - started < maxMs; index++) {
    const length = Math.min(caseLength, maxOps - operations);
    const ops = generateFuzzOperations(caseSeed(options.seed, index), length, setup, limits);
    for (const op of ops) for (const key of coverageKeys(op)) coverage.set(key, (coverage.get(key) ?? 0) + 1);
    const outcome = await runFuzzCase(adapter, setup, ops, coverage, strict);
    operations += ops.length;
    options.onProgress?.({ operations, elapsedMs: Date.now() - started });
    const difference = outcome.difference;
    if (!difference) continue;
    const failing = ops.slice(0, Math.max(1, difference.step));
    // A case the reference model fails too is no difference of the implementation.
    if ((await runFuzzCase(reference, setup, failing, undefined, strict)).difference) {
      coverage.set('skipped:reference-fails', (coverage.get('skipped:reference-fails') ?? 0) + 1);
      continue;
    }
    const shrunk = await shrinkCase(adapter, reference, setup, failing, difference, strict, options.shrinkReplays);
    if (!shrunk) {
      coverage.set('skipped:not-reproduced', (coverage.get('skipped:not-reproduced') ?? 0) + 1);
      continue;
    }
    return report(findingOf(adapter, setup, options, failing.length, shrunk));
  }
  return report();
}

/** A shrunk case: its operations and the difference they still show. */
interface ShrunkCase {
  readonly ops: readonly FuzzOperation[];
  readonly difference: Finding;
}

/**
 * Shrinks `ops` (whose last operation shows `found`) to fewer operations, then smaller values,
 * keeping only candidates that fail the same check on the implementation and pass on the
 * reference model (the smallest values first: see {@link simplerOperations}). Undefined when the case does not fail again on a fresh device.
 */
async function shrinkCase(
  adapter: Adapter,
  reference: Adapter,
  setup: DeviceSetup,
  ops: readonly FuzzOperation[],
  found: Finding,
  strict: boolean,
  budget = DEFAULT_SHRINK_REPLAYS,
): Promise<ShrunkCase | undefined> {
  let replays = 0;
  const tryCase = async (candidate: readonly FuzzOperation[]): Promise<ShrunkCase | undefined> => {
    replays++;
    const d = (await runFuzzCase(adapter, setup, candidate, undefined, strict)).difference;
    if (!d || d.check !== found.check) return undefined;
    const cut = candidate.slice(0, Math.max(1, d.step));
    if ((await runFuzzCase(reference, setup, cut, undefined, strict)).difference) return undefined;
    return { ops: cut, difference: d };
  };
  const first = await tryCase(ops);
  if (!first) return undefined;
  let best: ShrunkCase = first;
  // Rounds of: fewer operations (chunks, then single ones, left out), then smaller values; a
  // smaller value can make another operation unnecessary, so rounds go on while either helps.
  for (let progress = true; progress && replays < budget;) {
    progress = false;
    for (let chunk = Math.floor(best.ops.length / 2); chunk >= 1 && replays < budget; chunk = Math.floor(chunk / 2)) {
      for (let start = 0; start < best.ops.length && best.ops.length > 1 && replays < budget;) {
        const candidate: FuzzOperation[] = [...best.ops.slice(0, start), ...best.ops.slice(start + chunk)];
        const r: ShrunkCase | undefined = candidate.length > 0 ? await tryCase(candidate) : undefined;
        if (r) {
          best = r;
          progress = true;
        } else start += chunk;
      }
      chunk = Math.min(chunk, best.ops.length);
    }
    for (const candidate of jointlySmallerAddresses(best.ops)) {
      if (replays >= budget) break;
      const r = await tryCase(candidate);
      if (r) {
        best = r;
        progress = true;
        break;
      }
    }
    for (let i = 0; i < best.ops.length && replays < budget; i++) {
      // The first simpler variant that still fails, again, until none does.
      for (let simplified = true; simplified && i < best.ops.length && replays < budget;) {
        simplified = false;
        for (const simpler of simplerOperations(best.ops[i]!)) {
          if (replays >= budget) break;
          const r: ShrunkCase | undefined = await tryCase([...best.ops.slice(0, i), simpler, ...best.ops.slice(i + 1)]);
          if (r) {
            best = r;
            simplified = progress = true;
            break;
          }
        }
      }
    }
  }
  return best;
}

/**
 * What a check the oracle cites nothing for is about: memory content judged by a step's stated
 * data (plugged blocks keep theirs, dev.op.3, and can be read, dev.op.4), and the STATE stated
 * after a system reset (every block unplugged, dev.op.7).
 */
const UNCITED_CHECK_REQUIREMENTS: Readonly<Record<string, readonly string[]>> = {
  data: ['dev.op.3', 'dev.op.4'],
  state: ['dev.op.7'],
};

/** The requirement IDs of a difference that the catalogue knows (the oracle's citations). */
function citedRequirements(difference: Finding): string[] {
  const known = new Set(ALL_REQUIREMENTS.map((r) => r.id));
  return [...new Set(difference.requirements ?? [])].filter((id) => known.has(id)).sort();
}

/** The finding of a shrunk case: its one-line summary and the vector file that replays it. */
function findingOf(
  adapter: Adapter,
  setup: DeviceSetup,
  options: DeviceFuzzOptions,
  operationsBeforeShrink: number,
  shrunk: ShrunkCase,
): FuzzFinding {
  const d = shrunk.difference;
  const cited = citedRequirements(d);
  const requirements = cited.length > 0 ? cited : (UNCITED_CHECK_REQUIREMENTS[d.check] ?? ['dev.cfg.3']);
  const implementation = adapter.info.implementation;
  const vectorId = `vmem.dev.fuzz.${options.slug ?? fuzzSlug(implementation)}-${options.seed}`;
  const message = d.message.replace(/\s+/g, ' ');
  const summary = `step ${d.step} (${d.check}): ${message}${cited.length > 0 ? ` [${cited.join(', ')}]` : ''}`;
  const header = [
    `Found by vmemct fuzz (seed ${options.seed}) on ${implementation}: ${operationsBeforeShrink} operations shrunk to ${shrunk.ops.length}.`,
    `It fails on ${implementation} and passes on the reference model.`,
    ...(options.replayHint ? [`Replay: ${options.replayHint}`] : []),
  ];
  // The implementation is named in the header, not the title (titles carry no requirement levels).
  const title =
    d.verdict === 'non-strict'
      ? `Fuzz finding: the answer at step ${d.step} (${d.check}) is allowed but not what the specification recommends`
      : `Fuzz finding: the answer at step ${d.step} (${d.check}) is outside the conforming set`;
  return {
    summary,
    requirements,
    vectorId,
    vectorYaml: fuzzVectorText(setup, shrunk.ops, { id: vectorId, title, requirements, header }),
    operationsBeforeShrink,
    operationsAfterShrink: shrunk.ops.length,
  };
}
