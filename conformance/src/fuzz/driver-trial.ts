/**
 * One trial of a driver scenario: written as a vector file, loaded by the loader and run by the
 * runner, so it is judged exactly as the corpus is (the runner's driver checks and the vector's
 * expectations). A trial finds something when the vector ends unexpected.
 */
import type { Adapter } from '../../../adapters/core/src/contract';
import { loadVectorText } from '../loader/load';
import { formatProblem } from '../loader/types';
import { runVectors } from '../runner/run';
import type { Finding, Verdict } from '../judge/verdicts';
import { DriverScenario, VectorHeader, requirementsOf, scenarioYaml } from './driver-scenario';

/** The file name trials are loaded under (it appears in load problems only). */
export const TRIAL_FILE = 'fuzz-driver.yaml';

/** What one trial showed. */
export type TrialOutcome =
  | { readonly kind: 'conforming' }
  /** The vector ended unexpected; `finding` is the first finding with the vector's verdict. */
  | { readonly kind: 'found'; readonly verdict: Verdict; readonly finding: Finding }
  /** The scenario did not load (a generator bug, reported rather than judged). */
  | { readonly kind: 'invalid'; readonly problems: readonly string[] };

/** The header a trial's vector carries while exploring (the final one is written by the caller). */
export function trialHeader(scenario: DriverScenario): VectorHeader {
  return {
    id: 'vmem.drv.fuzz.trial',
    title: 'driver scenario under exploration',
    requirements: requirementsOf(scenario),
  };
}

/** Runs `yaml` (one driver vector) on `adapter` and says whether it ended unexpected. */
export async function runTrialYaml(adapter: Adapter, yaml: string, strict: boolean): Promise<TrialOutcome> {
  const loaded = loadVectorText(TRIAL_FILE, yaml);
  if (loaded.problems.length > 0 || loaded.vectors.length !== 1)
    return { kind: 'invalid', problems: loaded.problems.map(formatProblem) };
  const run = await runVectors(adapter, loaded.vectors, loaded.vectors, { strict });
  const result = run.results[0]!;
  if (!result.unexpected) return { kind: 'conforming' };
  const finding = result.findings.find((f) => f.verdict === result.verdict) ?? {
    verdict: result.verdict,
    step: 0,
    check: 'vector',
    message: `the vector ended ${result.verdict}`,
  };
  return { kind: 'found', verdict: result.verdict, finding };
}

/** Runs a scenario as a trial vector. */
export function runTrial(adapter: Adapter, scenario: DriverScenario, strict: boolean): Promise<TrialOutcome> {
  return runTrialYaml(adapter, scenarioYaml(scenario, trialHeader(scenario)), strict);
}

/** Whether two trial outcomes are the same finding (same verdict, same check), wherever it happened. */
export function sameFinding(a: TrialOutcome, b: TrialOutcome): boolean {
  return a.kind === 'found' && b.kind === 'found' && a.verdict === b.verdict && a.finding.check === b.finding.check;
}
