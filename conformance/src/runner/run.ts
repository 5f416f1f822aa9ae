/**
 * The runner: selects vectors, runs each against an adapter with a timeout and a fresh session,
 * turns findings into verdicts, applies the expectation file and computes the exit code.
 *
 * A case is a vector or a suite check (`suites/`): checks run the same way, one at a time with a
 * fresh context and the same timeout, and their results go through the same expectations, exit
 * code and reports.
 */
import type { Adapter, Capability, DriverOptions, NamedDeviceSetup } from '../../../adapters/core/src/contract';
import {
  AdapterError,
  AdapterTimeoutError,
  UnsupportedSetupError,
  capabilitiesFor,
} from '../../../adapters/core/src/contract';
import type { Vector } from '../loader/types';
import type { CheckTarget, SuiteCheck } from '../suites/suite';
import { DeviceRun } from './device-run';
import { evaluateSetup } from './setup';
import { DriverRun } from './driver-run';
import { MultiDriverRun, RunDevice } from './multi-driver-run';
import { BAD_VECTOR_CHECK } from '../steps/values';
import { BUSY_RETRIES } from '../steps/request';
import { ExpectationEntry, ExpectationSet, applyKnownDeviations, compileGlob, matchExpectations } from './expectations';
import { Finding, Verdict, vectorVerdict } from '../judge/verdicts';
import { Severity, withSeverity, worstSeverity } from '../judge/severity';
import { scriptAtProbe } from './script-at-probe';

/** Which vectors to run. */
export interface Selection {
  readonly filters?: readonly string[];
  readonly tags?: readonly string[];
  readonly target?: 'device' | 'driver';
  readonly requirements?: readonly string[];
  /** 1-based shard index and shard count. */
  readonly shard?: { readonly index: number; readonly count: number };
}

/** Options of a run (`R`: the kind of result `onResult` sees). */
export interface RunOptions<R extends CaseResult = VectorResult> {
  readonly strict?: boolean;
  /** Per-case timeout before the adapter's multiplier (default 10 s); a vector's own `timeout_ms` wins. */
  readonly timeoutMs?: number;
  readonly expectations?: ExpectationSet;
  /**
   * How many times a device request answered BUSY is retried when its vector does not list BUSY
   * (default {@link BUSY_RETRIES}`.default`); a device still answering BUSY then fails `progress` (dev.suite.1).
   */
  readonly busyRetries?: number;
  /**
   * How many times a vector whose verdict is an unexpected fail, error or timeout is run again
   * (0 to {@link RETRIES}`.max`, default 0); one that then passes is `flaky`, never a pass.
   */
  readonly retries?: number;
  /** Called after each case (progress reporting). */
  readonly onResult?: (result: R, done: number, total: number) => void;
}

/** The result of one vector. */
export interface VectorResult extends Judged {
  readonly kind: 'vector';
  readonly vector: Vector;
}

/** The result of one suite check. */
export interface CheckResult extends Judged {
  readonly kind: 'check';
  /** The suite the check belongs to (`vhost-user`). */
  readonly suite: string;
  readonly check: Pick<SuiteCheck<unknown>, 'id' | 'title' | 'needs'>;
}

/** The result of one case: a vector or a suite check. */
export type CaseResult = VectorResult | CheckResult;

/** The id of a case's result. */
export function caseId(result: CaseResult): string {
  return result.kind === 'vector' ? result.vector.id : result.check.id;
}

/** One run of a case that was retried: its verdict, time and findings. */
export interface Attempt {
  readonly verdict: Verdict;
  readonly durationMs: number;
  readonly findings: readonly Finding[];
}

/** `--retries`: the default and the most a run may ask for. */
export const RETRIES = { default: 0, max: 10 } as const;

/** What every case result carries: the verdict, what was expected, the findings. */
export interface Judged {
  readonly verdict: Verdict;
  /** The worst severity of the findings (judge/severity.ts); undefined when none fails. */
  readonly severity?: Severity;
  /** The verdict the expectation file (or the default rules) expected. */
  readonly expected: Verdict;
  readonly expectation?: ExpectationEntry;
  readonly unexpected: boolean;
  readonly findings: readonly Finding[];
  readonly durationMs: number;
  readonly diagnostics?: string;
  /** Every attempt in order when the case ran more than once (`retries`); absent otherwise. */
  readonly attempts?: readonly Attempt[];
}

/** The result of a run. */
export interface RunResult<R extends CaseResult = VectorResult> {
  readonly results: readonly R[];
  readonly stale: readonly { readonly id: string; readonly reason: string }[];
  /** 0 as expected, 1 unexpected results, 2 harness or adapter error, 3 a vector that cannot be evaluated (bad input). */
  readonly exitCode: 0 | 1 | 2 | 3;
  readonly durationMs: number;
  /** Every selected case was unsupported or not applicable: the run tested nothing (exit 2). */
  readonly testedNothing: boolean;
}

/** Default per-vector timeout. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Applies a selection; order is preserved (vectors come sorted by file, then position). */
export function selectVectors(vectors: readonly Vector[], sel: Selection): Vector[] {
  const filters = sel.filters?.map(compileGlob);
  let out = vectors.filter((v) => {
    if (v.retired) return false;
    if (filters && filters.length > 0 && !filters.some((re) => re.test(v.id))) return false;
    if (sel.tags && sel.tags.length > 0 && !sel.tags.some((t) => v.tags.includes(t))) return false;
    if (sel.target && v.target !== sel.target) return false;
    if (sel.requirements && sel.requirements.length > 0) {
      const hit = v.requirements.some((r) => sel.requirements!.some((want) => r === want || r.startsWith(`${want}.`)));
      if (!hit) return false;
    }
    return true;
  });
  if (sel.shard) {
    const { index, count } = sel.shard;
    const ordered = [...out].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const keep = new Set(ordered.filter((_, i) => i % count === index - 1).map((v) => v.id));
    out = out.filter((v) => keep.has(v.id));
  }
  return out;
}

/** Whether a verdict is acceptable without an expectation entry. */
export function isExpectedByDefault(verdict: Verdict, strict: boolean): boolean {
  if (verdict === 'fail' || verdict === 'error' || verdict === 'timeout') return false;
  if (verdict === 'non-strict') return !strict;
  return true;
}

/** What a driver session of `vector` is opened with (and what the adapter groups and prepares it by). */
export function driverOptionsFor(vector: Vector): DriverOptions {
  const stepActions = vector.steps.map((step) => step.action);
  const devices = vector.devices ? deviceSetupsOf(vector, stepActions) : undefined;
  return {
    configPadding: vector.setup.configPadding,
    scriptAtProbe: scriptAtProbe(vector),
    stepActions,
    ...(devices?.ok ? { devices: devices.devices } : {}),
  };
}

/**
 * The set-up of each of a multi-device vector's devices, as {@link Adapter.openDrivers} is
 * given them (each device's options carry the vector's step actions), or why one is invalid.
 */
function deviceSetupsOf(
  vector: Vector,
  stepActions: DriverOptions['stepActions'],
): { ok: true; devices: NamedDeviceSetup[] } | { ok: false; reason: string } {
  const devices: NamedDeviceSetup[] = [];
  for (const d of vector.devices ?? []) {
    const one = evaluateSetup(d);
    if (!one.ok) return { ok: false, reason: `device ${d.name}: ${one.reason}` };
    devices.push({ name: d.name, setup: one.setup, options: { configPadding: d.setup.configPadding, stepActions } });
  }
  return { ok: true, devices };
}

/**
 * The order to run `selected` in, each with its place in the corpus order: as selected, or,
 * when the adapter groups set-ups ({@link Adapter.scheduleKey}), group by group (stable within a
 * group; groups in the order of their first vector; vectors without a group where they are).
 */
export function scheduleVectors(
  adapter: Pick<Adapter, 'scheduleKey'>,
  selected: readonly Vector[],
): { vector: Vector; index: number }[] {
  const entries = selected.map((vector, index) => ({ vector, index }));
  if (!adapter.scheduleKey) return entries;
  const groups = new Map<string, { vector: Vector; index: number }[]>();
  const order: ({ vector: Vector; index: number } | { group: string })[] = [];
  for (const entry of entries) {
    const evaluated = evaluateSetup(entry.vector);
    const key = evaluated.ok
      ? adapter.scheduleKey(entry.vector.target, evaluated.setup, driverOptionsFor(entry.vector))
      : undefined;
    if (key === undefined) {
      order.push(entry);
      continue;
    }
    const group = groups.get(key);
    if (group) group.push(entry);
    else {
      groups.set(key, [entry]);
      order.push({ group: key });
    }
  }
  return order.flatMap((o) => ('group' in o ? groups.get(o.group)! : [o]));
}

/** Lets the adapter make ready what `vector` needs ({@link Adapter.prepare}) before its timeout starts. */
async function prepareFor(adapter: Adapter, vector: Vector): Promise<void> {
  if (!adapter.prepare || !adapter.info.targets.includes(vector.target)) return;
  const evaluated = evaluateSetup(vector);
  if (!evaluated.ok) return;
  await adapter.prepare(vector.target, evaluated.setup, driverOptionsFor(vector)).catch(() => undefined);
}

/**
 * Runs `selected` against `adapter`. `all` is the full corpus (for stale-entry detection).
 */
export async function runVectors(
  adapter: Adapter,
  selected: readonly Vector[],
  all: readonly Vector[],
  options: RunOptions = {},
): Promise<RunResult<VectorResult>> {
  const started = Date.now();
  const { judge, stale } = judgeAgainst(all, options);
  const results: VectorResult[] = [];
  const done: { index: number; result: VectorResult }[] = [];
  const retries = options.retries ?? RETRIES.default;
  for (const { vector, index } of scheduleVectors(adapter, selected)) {
    const runs: (Omit<Judged, 'durationMs'> & { durationMs: number })[] = [];
    await prepareFor(adapter, vector);
    for (;;) {
      const t0 = performance.now();
      const outcome = await runOne(
        adapter,
        vector,
        (vector.timeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS) * adapter.info.timeoutMultiplier,
        options.busyRetries ?? BUSY_RETRIES.default,
      );
      runs.push({ ...judge(vector.id, outcome), durationMs: performance.now() - t0 });
      if (runs.length > retries || !worthRetrying(runs[runs.length - 1]!)) break;
    }
    const result: VectorResult = { kind: 'vector', vector, ...settle(runs) };
    done.push({ index, result });
    options.onResult?.(result, done.length, selected.length);
  }
  results.push(...done.sort((a, b) => a.index - b.index).map((d) => d.result));
  return finishRun(results, stale, started);
}

/**
 * Runs `selected` checks of `suite` against `target`, one after the other, each with a fresh
 * context and the per-case timeout. `all` is the suite's every check (for stale-entry detection).
 */
export async function runChecks<C>(
  target: CheckTarget<C>,
  suite: string,
  selected: readonly SuiteCheck<C>[],
  all: readonly SuiteCheck<C>[],
  options: RunOptions<CheckResult> = {},
): Promise<RunResult<CheckResult>> {
  const started = Date.now();
  const { judge, stale } = judgeAgainst(all, options, 'check');
  const results: CheckResult[] = [];
  for (const check of selected) {
    const t0 = performance.now();
    const outcome = await runOneCheck(target, check, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const result: CheckResult = {
      kind: 'check',
      suite,
      check: { id: check.id, title: check.title, needs: check.needs },
      ...judge(check.id, outcome),
      durationMs: performance.now() - t0,
    };
    results.push(result);
    options.onResult?.(result, results.length, selected.length);
  }
  return finishRun(results, stale, started);
}

/** A verdict a retry may change: an unexpected fail, error or timeout, unless the vector file itself is bad. */
function worthRetrying(r: Judged): boolean {
  const failed = r.verdict === 'fail' || r.verdict === 'error' || r.verdict === 'timeout';
  return r.unexpected && failed && !r.findings.some((f) => f.check === BAD_VECTOR_CHECK);
}

/**
 * The result of a case's runs. One run is the result as judged. After retries, the last run
 * decides unless earlier ones failed and the last did not: then the case is `flaky`, with the
 * findings of its first failed run; it is unexpected unless its expectation entry says `flaky`.
 */
function settle(runs: readonly Judged[]): Judged {
  const last = runs[runs.length - 1]!;
  if (runs.length === 1) return last;
  const attempts = runs.map((r) => ({ verdict: r.verdict, durationMs: r.durationMs, findings: r.findings }));
  const durationMs = runs.reduce((sum, r) => sum + r.durationMs, 0);
  if (worthRetrying(last)) return { ...last, durationMs, attempts };
  const firstFailed = runs[0]!;
  const expectation = last.expectation;
  return {
    ...firstFailed,
    verdict: 'flaky',
    expected: expectation ? expectation.verdict : 'pass',
    expectation,
    unexpected: expectation?.verdict !== 'flaky',
    durationMs,
    attempts,
  };
}

/**
 * Whether a case that came out `verdict` leaves an expectation entry of verdict `expected` neither
 * met nor contradicted: the adapter could not run the case, and the entry describes a deviation
 * (an entry `pass` pins the case to run, so it is judged).
 */
export function entryNotObserved(expected: Verdict, verdict: Verdict): boolean {
  return expected !== 'pass' && (verdict === 'unsupported' || verdict === 'not-applicable');
}

/** Judges outcomes against the expectation file (or the default rules); `stale`: entries matching no case of `all`. */
export function judgeAgainst(
  all: readonly { readonly id: string }[],
  options: Pick<RunOptions, 'strict' | 'expectations'>,
  noun: 'vector' | 'check' = 'vector',
): { judge: (id: string, outcome: CaseVerdict) => Omit<Judged, 'durationMs'>; stale: RunResult<CaseResult>['stale'] } {
  const strict = options.strict ?? false;
  const matched = options.expectations
    ? matchExpectations(options.expectations, all, noun)
    : { byId: new Map<string, ExpectationEntry>(), stale: [] };
  const judge = (id: string, given: CaseVerdict): Omit<Judged, 'durationMs'> => {
    const deviated = applyKnownDeviations(options.expectations, given.findings);
    const outcome =
      deviated === given.findings
        ? given
        : { ...given, findings: deviated, verdict: vectorVerdict(deviated, BAD_VECTOR_CHECK) };
    const verdict = outcome.verdict;
    const entry = matched.byId.get(id);
    const expected: Verdict = entry ? entry.verdict : isExpectedByDefault(verdict, strict) ? verdict : 'pass';
    // An entry `flaky` accepts a pass too: the case passes on some runs (with or without retries).
    // An entry describing a deviation (fail, acceptable, …) is neither met nor contradicted when
    // the adapter could not run the case: the implementation's behaviour was not observed. An
    // entry `pass` is a pin ("this must run and pass"), so losing the case is unexpected.
    const notObserved = entry !== undefined && entryNotObserved(entry.verdict, verdict);
    const unexpected = entry
      ? entry.verdict !== verdict && !notObserved && !(entry.verdict === 'flaky' && verdict === 'pass')
      : !isExpectedByDefault(verdict, strict);
    // Every failing finding of a vector, a driver vector or a suite check gets its severity here.
    const findings = outcome.findings.map(withSeverity);
    const severity = worstSeverity(findings);
    return {
      verdict,
      ...(severity === undefined ? {} : { severity }),
      expected,
      expectation: entry,
      unexpected,
      findings,
      diagnostics: outcome.diagnostics,
    };
  };
  return { judge, stale: matched.stale };
}

/** The exit code and summary flags of a run's results (`vmemct merge` finishes merged results with it too). */
export function finishRun<R extends CaseResult>(
  results: R[],
  stale: RunResult<R>['stale'],
  started: number,
): RunResult<R> {
  const unexpected = results.filter((r) => r.unexpected);
  const harness = unexpected.some((r) => r.verdict === 'error' || r.verdict === 'timeout');
  // A run in which no selected case could run tested nothing: that is not a green run.
  const testedNothing =
    results.length > 0 && results.every((r) => r.verdict === 'unsupported' || r.verdict === 'not-applicable');
  // A vector whose expressions cannot be evaluated is a bad input file, whatever else happened.
  const badVector = unexpected.some((r) => r.findings.some((f) => f.check === BAD_VECTOR_CHECK));
  const exitCode = badVector ? 3 : harness || testedNothing ? 2 : unexpected.length > 0 || stale.length > 0 ? 1 : 0;
  return { results, stale, exitCode, durationMs: Date.now() - started, testedNothing };
}

/** What running one case settled: its verdict, the findings behind it, diagnostics when the target broke. */
export interface CaseVerdict {
  readonly verdict: Verdict;
  readonly findings: Finding[];
  readonly diagnostics?: string;
}

/** Runs one vector with a fresh session and a timeout; never throws. */
async function runOne(adapter: Adapter, vector: Vector, timeoutMs: number, busyRetries: number): Promise<CaseVerdict> {
  const missingTarget = !adapter.info.targets.includes(vector.target);
  const offered = capabilitiesFor(adapter.info, vector.target);
  const missing = vector.needs.filter((n) => !offered.includes(n));
  const opener = vector.devices ? adapter.openDrivers : adapter.openDriver;
  if (missingTarget || missing.length > 0 || (vector.target === 'driver' && !opener)) {
    const why = (capability: Capability): string => {
      const reason = adapter.info.missingCapabilities?.[capability];
      return reason ? `${capability} (${reason})` : capability;
    };
    const what = missingTarget
      ? `${vector.target} vectors`
      : missing.length > 0
        ? missing.map(why).join(', ')
        : why(vector.devices ? 'multi-device' : 'observe-driver');
    return {
      verdict: 'unsupported',
      findings: [
        {
          verdict: 'unsupported',
          step: 0,
          check: 'capabilities',
          message: `the ${adapter.info.name} adapter lacks: ${what}`,
        },
      ],
    };
  }
  let closeSession: (() => Promise<void>) | undefined;
  let abandoned = false;
  /** Remembers how to close a session; one that opens after the timeout is closed at once. */
  const track = async (session: { close(): Promise<void> }): Promise<void> => {
    closeSession = () => session.close();
    if (abandoned) {
      await session.close().catch(() => undefined);
      throw new Error('abandoned after the timeout');
    }
  };
  const work = (async (): Promise<CaseVerdict> => {
    const evaluated = evaluateSetup(vector);
    if (!evaluated.ok)
      return { verdict: 'error', findings: [{ verdict: 'error', step: 0, check: 'step', message: evaluated.reason }] };
    const setup = evaluated.setup;
    let run: DeviceRun | DriverRun | MultiDriverRun;
    if (vector.devices) {
      const evaluatedDevices = deviceSetupsOf(
        vector,
        vector.steps.map((step) => step.action),
      );
      if (!evaluatedDevices.ok)
        return {
          verdict: 'error',
          findings: [{ verdict: 'error', step: 0, check: 'step', message: evaluatedDevices.reason }],
        };
      const setups = evaluatedDevices.devices;
      const sessions = await adapter.openDrivers!(setups);
      await track({ close: () => Promise.all(sessions.map((s) => s.close())).then(() => undefined) });
      const devices: RunDevice[] = setups.map((d, i) => ({ name: d.name, setup: d.setup, session: sessions[i]! }));
      run = new MultiDriverRun(vector, devices);
    } else if (vector.target === 'device') {
      const session = await adapter.openDevice(setup);
      await track(session);
      run = new DeviceRun(vector, session, setup, {
        configGeneration: capabilitiesFor(adapter.info, vector.target).includes('config-generation'),
        busyRetries,
      });
    } else {
      const session = await adapter.openDriver!(setup, driverOptionsFor(vector));
      await track(session);
      run = new DriverRun(vector, session, setup);
    }
    try {
      await run.run();
    } catch (e) {
      // What the vector found before the adapter failed still counts; the failure is placed at its step.
      const failed = errorOutcome(e);
      const findings = [...run.findings, ...failed.findings.map((f) => ({ ...f, step: run.stepIndex }))];
      return { verdict: vectorVerdict(findings, BAD_VECTOR_CHECK), findings, diagnostics: failed.diagnostics };
    }
    return { verdict: vectorVerdict(run.findings, BAD_VECTOR_CHECK), findings: run.findings };
  })();
  const outcome = await raceTimeout(work, timeoutMs, 'vector', errorOutcome);
  abandoned = true;
  if (closeSession) {
    try {
      await closeSession();
    } catch {
      /* closing is best effort; the adapter's dispose() cleans up the rest */
    }
  }
  return outcome;
}

/** Runs one check with a fresh context and a timeout; never throws. */
async function runOneCheck<C>(target: CheckTarget<C>, check: SuiteCheck<C>, timeoutMs: number): Promise<CaseVerdict> {
  let opened;
  try {
    opened = target.open(check);
  } catch (e) {
    return checkErrorOutcome(e);
  }
  if (opened.kind === 'unsupported')
    return {
      verdict: 'unsupported',
      findings: [{ verdict: 'unsupported', step: 0, check: 'needs', message: opened.reason }],
    };
  const context = opened.context;
  try {
    return await raceTimeout(
      (async (): Promise<CaseVerdict> => {
        const result = await check.run(context);
        return { verdict: result.verdict, findings: [...result.findings] };
      })(),
      timeoutMs,
      'check',
      checkErrorOutcome,
    );
  } finally {
    opened.close();
  }
}

/**
 * `work`'s outcome, or `timeout` once `timeoutMs` pass (the work is abandoned, and a late
 * rejection of it is swallowed); a rejection is turned into an outcome by `onError`.
 */
async function raceTimeout(
  work: Promise<CaseVerdict>,
  timeoutMs: number,
  what: 'vector' | 'check',
  onError: (e: unknown) => CaseVerdict,
): Promise<CaseVerdict> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CaseVerdict>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          verdict: 'timeout',
          findings: [
            {
              verdict: 'timeout',
              step: 0,
              check: 'timeout',
              message: `the ${what} did not finish within ${timeoutMs} ms`,
            },
          ],
        }),
      // The multiplied timeout may pass the longest timer Node.js keeps (which would fire at once).
      Math.min(timeoutMs, 2_147_483_647),
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } catch (e) {
    return onError(e);
  } finally {
    clearTimeout(timer);
    // A late rejection of the abandoned work must not surface as an unhandled rejection.
    work.catch(() => undefined);
  }
}

/** A check threw: our side failed (checks return their verdicts, so a throw is never the target's fault). */
function checkErrorOutcome(e: unknown): CaseVerdict {
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return {
    verdict: 'error',
    findings: [{ verdict: 'error', step: 0, check: 'harness', message: `our side failed: ${message}` }],
    diagnostics: e instanceof Error ? e.stack : undefined,
  };
}

function errorOutcome(e: unknown): CaseVerdict {
  if (e instanceof UnsupportedSetupError) {
    return {
      verdict: 'unsupported',
      findings: [{ verdict: 'unsupported', step: 0, check: 'setup', message: e.message }],
    };
  }
  if (e instanceof AdapterTimeoutError) {
    return {
      verdict: 'timeout',
      findings: [
        { verdict: 'timeout', step: 0, check: 'timeout', message: `the target stopped answering: ${e.message}` },
      ],
      diagnostics: e.diagnostics,
    };
  }
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const diagnostics = e instanceof AdapterError ? e.diagnostics : e instanceof Error ? e.stack : undefined;
  return {
    verdict: 'error',
    findings: [{ verdict: 'error', step: 0, check: 'adapter', message: `the adapter failed: ${message}` }],
    diagnostics,
  };
}
