/**
 * Shrinking a failing driver scenario: smaller candidates are tried in turn (chunks of steps
 * left out, halving the chunk down to single steps; then simpler set-ups and smaller values) and
 * a candidate is kept when its trial still shows the same finding. Greedy, until no candidate
 * is kept or the trial budget is spent; each kept candidate is strictly smaller, so it ends.
 */
import type { DriverFuzzSetup, DriverFuzzStep, DriverScenario } from './driver-scenario';

/** Tells whether a candidate still fails the same way. */
export type StillFails = (candidate: DriverScenario) => Promise<boolean>;

/** A shrunk scenario and the trials it took. */
export interface Shrunk {
  readonly scenario: DriverScenario;
  readonly trials: number;
}

/** The default number of trials shrinking may spend. */
export const SHRINK_TRIALS = 400;

function withoutRange(steps: readonly DriverFuzzStep[], from: number, count: number): DriverFuzzStep[] {
  return [...steps.slice(0, from), ...steps.slice(from + count)];
}

/**
 * Scenarios with a chunk of steps left out, largest chunks first. A leading `start` stays: a
 * vector reads more plainly when the driver is brought up first.
 */
function* fewerSteps(s: DriverScenario): Generator<DriverScenario> {
  const kept = s.steps[0]?.kind === 'start' ? 1 : 0;
  const droppable = s.steps.length - kept;
  for (let chunk = Math.max(1, Math.floor(droppable / 2)); chunk >= 1 && droppable > 0; chunk = Math.floor(chunk / 2)) {
    for (let from = kept; from + chunk <= s.steps.length; from += chunk)
      yield { ...s, steps: withoutRange(s.steps, from, chunk) };
  }
}

/** Smaller values for a block count: 0, 1, half, one less. */
function smallerCounts(n: number): number[] {
  return [...new Set([0, 1, Math.floor(n / 2), n - 1])].filter((m) => m >= 0 && m < n);
}

/** Set-ups one simplification away: no padding, features, node id or plugged runs, a smaller region or target. */
function* simplerSetups(s: DriverFuzzSetup, steps: readonly DriverFuzzStep[]): Generator<DriverFuzzSetup> {
  if (s.configPadding) yield { ...s, configPadding: undefined };
  if (s.features) yield { ...s, features: undefined };
  if (s.features && s.features.length > 1) {
    for (const f of s.features) if (f !== 'VERSION_1') yield { ...s, features: s.features.filter((g) => g !== f) };
  }
  if (s.nodeId !== 0) yield { ...s, nodeId: 0 };
  if (s.plugged.length > 0) {
    yield { ...s, plugged: [] };
    for (let i = 0; i < s.plugged.length; i++) yield { ...s, plugged: s.plugged.filter((_, j) => j !== i) };
    for (let i = 0; i < s.plugged.length; i++)
      if (s.plugged[i]!.count > 1)
        yield { ...s, plugged: s.plugged.map((r, j) => (j === i ? { first: r.first, count: 1 } : r)) };
  }
  for (const n of smallerCounts(s.requestedBlocks)) yield { ...s, requestedBlocks: n };
  // A smaller region must still hold the target, every resize and every plugged run.
  const needed = Math.max(
    s.requestedBlocks,
    ...steps.map((st) => (st.kind === 'resize' ? st.blocks : 0)),
    ...s.plugged.map((r) => r.first + r.count),
    1,
  );
  for (const n of [needed, 2 * needed, 16]) if (n < s.regionBlocks && n >= needed) yield { ...s, regionBlocks: n };
  if (s.blockSizeMiB !== 2) yield { ...s, blockSizeMiB: 2 };
}

/** Steps one simplification away: smaller resizes, counts and settle limits, no trailers or type filters. */
function* simplerSteps(steps: readonly DriverFuzzStep[]): Generator<DriverFuzzStep[]> {
  for (let i = 0; i < steps.length; i++) {
    const st = steps[i]!;
    const replace = (by: DriverFuzzStep): DriverFuzzStep[] => steps.map((x, j) => (j === i ? by : x));
    if (st.kind === 'resize') for (const n of smallerCounts(st.blocks)) yield replace({ ...st, blocks: n });
    if (st.kind === 'settle' && (st.maxRequests !== undefined || st.timeoutMs !== undefined))
      yield replace({ kind: 'settle' });
    if (st.kind === 'inject') {
      if (st.trailer && st.response !== 'ACK') yield replace({ ...st, trailer: undefined });
      if (st.types && st.types.length > 1)
        for (const t of st.types) yield replace({ ...st, types: st.types.filter((u) => u !== t) });
      for (const n of smallerCounts(st.count)) if (n >= 1) yield replace({ ...st, count: n });
    }
  }
}

/** Every candidate one step smaller than `s`, in the order they are tried. */
function* candidates(s: DriverScenario): Generator<DriverScenario> {
  yield* fewerSteps(s);
  for (const setup of simplerSetups(s.setup, s.steps)) yield { ...s, setup };
  for (const steps of simplerSteps(s.steps)) yield { ...s, steps };
}

/** Shrinks `failing` while `stillFails`, spending at most `budget` trials. */
export async function shrinkScenario(
  failing: DriverScenario,
  stillFails: StillFails,
  budget = SHRINK_TRIALS,
): Promise<Shrunk> {
  let current = failing;
  let trials = 0;
  let progress = true;
  while (progress && trials < budget) {
    progress = false;
    for (const candidate of candidates(current)) {
      if (trials >= budget) break;
      trials++;
      if (await stillFails(candidate)) {
        current = candidate;
        progress = true;
        break;
      }
    }
  }
  return { scenario: current, trials };
}
