/**
 * `vmemct fuzz --target driver`: explores a driver (any adapter with the driver target) with the
 * device the adapter attaches it to. Seeded scenarios of host actions — set-ups with plugged
 * runs, offered features and padding garbage, resizes to boundaries, injected BUSY/NACK/ERROR and
 * ACKs with garbage trailers, system resets, suspend requests, settles with limits — are written
 * as driver vectors and run through the runner, so they are judged exactly as the corpus is. The
 * first scenario that ends unexpected is shrunk (fewer steps, simpler set-up, smaller values)
 * while it still shows the same finding and returned as a vector file.
 */
import { Adapter, Capability, capabilitiesFor } from '../../../adapters/core/src/contract';
import { ALL_REQUIREMENTS } from '../../../spec/src/index';
import { seededRandom } from '../differential/differential';
import type { FuzzFinding, FuzzOptions, FuzzReport } from './fuzz-types';
import { DriverScenario, generateScenario, requirementsOf, scenarioYaml } from './driver-scenario';
import { SHRINK_TRIALS, shrinkScenario } from './driver-shrink';
import { CoverageCounts, countIn, coverScenario, observedAdapter } from './driver-coverage';
import { TrialOutcome, runTrial, runTrialYaml, sameFinding } from './driver-trial';

/** Options of driver fuzzing: the common ones, and whether SHOULD-level findings count (strict). */
export interface DriverFuzzOptions extends FuzzOptions {
  /** Count `non-strict` verdicts (a SHOULD not met) as findings, as `vmemct run --strict` does. */
  readonly strict?: boolean;
  /** Trials shrinking may spend (default {@link SHRINK_TRIALS}). */
  readonly shrinkTrials?: number;
  /**
   * A conforming driver (the reference driver on the model) that every written vector must pass:
   * a scenario it fails too is not reported (counted as `outcome:reference-fails`), and shrinking
   * keeps only candidates it passes. The CLI passes the model adapter; without one the
   * expectations are trusted as derived.
   */
  readonly reference?: Adapter;
  /** How to replay the written vector, for its description (e.g. `vmemct run --adapter exec … --vectors F`). */
  readonly replayHint?: string;
}

/** The operations run when the budget names neither operations nor time. */
export const DEFAULT_DRIVER_FUZZ_OPERATIONS = 10_000;

/** How often progress is reported, in operations. */
const PROGRESS_EVERY = 500;

const DRIVER_REQUIREMENTS = new Set(ALL_REQUIREMENTS.map((r) => r.id).filter((id) => id.startsWith('drv.')));

/** The scenario's own trial seed: scenario `n` of a run depends only on the seed and `n`. */
function scenarioSeed(seed: number, n: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(n + 1, 0x85ebca6b)) >>> 0;
}

/** The requirement of checks whose findings cite none (feature negotiation: drv.init.1; going quiet: drv.op.8). */
const CHECK_REQUIREMENTS: Readonly<Record<string, string>> = {
  'driver:unoffered-features': 'drv.init.1',
  settled: 'drv.op.8',
};

/**
 * The requirement IDs a finding's vector cites: the finding's own driver IDs, else the one its
 * check stands for, else those the scenario's expectations rest on.
 */
function findingRequirements(outcome: Extract<TrialOutcome, { kind: 'found' }>, scenario: DriverScenario): string[] {
  const own = (outcome.finding.requirements ?? []).filter((id) => DRIVER_REQUIREMENTS.has(id));
  if (own.length > 0) return [...new Set(own)];
  const byCheck = CHECK_REQUIREMENTS[outcome.finding.check];
  return byCheck ? [byCheck] : requirementsOf(scenario);
}

/**
 * Fuzzes the driver behind `adapter` (which must have the driver target) within `options.budget`.
 * The same seed and budget in operations give the same scenarios, the same finding and the same
 * vector. Operations are scenario steps run (shrinking not counted).
 */
export async function fuzzDriver(adapter: Adapter, options: DriverFuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const elapsed = (): number => performance.now() - started;
  const can = new Set<Capability>(capabilitiesFor(adapter.info, 'driver'));
  const strict = options.strict ?? false;
  const maxOperations =
    options.budget.operations ?? (options.budget.timeMs === undefined ? DEFAULT_DRIVER_FUZZ_OPERATIONS : Infinity);
  const maxMs = options.budget.timeMs ?? Infinity;
  const coverage: CoverageCounts = {};
  const observed = observedAdapter(adapter, coverage);
  let operations = 0;
  let nextProgress = PROGRESS_EVERY;
  const report = (finding?: FuzzFinding): FuzzReport => ({
    target: 'driver',
    seed: options.seed,
    operations,
    elapsedMs: elapsed(),
    coverage,
    finding,
  });

  for (let n = 0; operations < maxOperations && elapsed() < maxMs; n++) {
    const scenario = generateScenario({ random: seededRandom(scenarioSeed(options.seed, n)) }, can);
    const outcome = await runTrial(observed, scenario, strict);
    operations += scenario.steps.length;
    coverScenario(coverage, scenario);
    countIn(coverage, `outcome:${outcome.kind === 'found' ? outcome.verdict : outcome.kind}`);
    if (operations >= nextProgress) {
      options.onProgress?.({ operations, elapsedMs: elapsed() });
      nextProgress = operations + PROGRESS_EVERY;
    }
    if (outcome.kind === 'invalid')
      throw new Error(`driver fuzzing generated an invalid vector: ${outcome.problems.join('; ')}`);
    if (outcome.kind !== 'found') continue;
    const reference = options.reference;
    const referencePasses = async (candidate: DriverScenario): Promise<boolean> =>
      !reference || (await runTrial(reference, candidate, strict)).kind === 'conforming';
    if (!(await referencePasses(scenario))) {
      countIn(coverage, 'outcome:reference-fails');
      continue;
    }
    const shrunk = await shrinkScenario(
      scenario,
      async (candidate) =>
        sameFinding(outcome, await runTrial(adapter, candidate, strict)) && (await referencePasses(candidate)),
      options.shrinkTrials ?? SHRINK_TRIALS,
    );
    return report(await findingOf(adapter, options, n, outcome, scenario, shrunk.scenario));
  }
  options.onProgress?.({ operations, elapsedMs: elapsed() });
  return report();
}

/**
 * The finding of a shrunk scenario: its vector file, run once more to read the finding it shows.
 * A driver that does not repeat itself (timing, a live guest) may not fail the shrunk scenario
 * again; the original scenario is written then, and the summary says when neither failed again.
 */
async function findingOf(
  adapter: Adapter,
  options: DriverFuzzOptions,
  n: number,
  first: Extract<TrialOutcome, { kind: 'found' }>,
  original: DriverScenario,
  shrunk: DriverScenario,
): Promise<FuzzFinding> {
  const seed = options.seed;
  const strict = options.strict ?? false;
  const vectorId = `vmem.drv.fuzz.seed-${seed >>> 0}.scenario-${n}`;
  const draft = (s: DriverScenario): string =>
    scenarioYaml(s, { id: vectorId, title: 'driver scenario found by fuzzing', requirements: requirementsOf(s) });
  let scenario = shrunk;
  let outcome = await runTrialYaml(adapter, draft(shrunk), strict);
  if (outcome.kind !== 'found' && shrunk !== original) {
    scenario = original;
    outcome = await runTrialYaml(adapter, draft(original), strict);
  }
  const reproduced = outcome.kind === 'found';
  const seen = outcome.kind === 'found' ? outcome : first;
  const requirements = findingRequirements(seen, scenario);
  const what = `${seen.finding.check}: ${seen.finding.message}`;
  const vectorYaml = scenarioYaml(scenario, {
    id: vectorId,
    title: `Fuzzed driver scenario: ${seen.finding.check} (seed ${seed >>> 0}, scenario ${n})`.slice(0, 160),
    requirements,
    description: [
      `Found by vmemct fuzz --target driver --seed ${seed >>> 0} (scenario ${n}) on ${adapter.info.implementation};`,
      `shrunk from ${original.steps.length} to ${scenario.steps.length} steps.`,
      `The driver ended ${seen.verdict} at step ${seen.finding.step}: ${what}.`,
      ...(options.reference ? [`The reference driver passes it.`] : []),
      ...(options.replayHint ? [`Replay: ${options.replayHint}`] : []),
    ].join(' '),
  });
  return {
    summary:
      `${seen.verdict} at step ${seen.finding.step}: ${what} [${requirements.join(', ')}]` +
      (reproduced ? '' : ' (did not fail again when replayed)'),
    requirements,
    vectorId,
    vectorYaml,
    operationsBeforeShrink: original.steps.length,
    operationsAfterShrink: scenario.steps.length,
  };
}
