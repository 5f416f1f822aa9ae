/**
 * Check suites: tests written as code rather than as vectors, run by the same runner
 * (`runner/run.ts`) with the same verdicts, per-case timeout, expectation files and reports.
 *
 * A suite is a list of checks, each with a stable id (`vu.handshake`), a title and what it needs.
 * A check's `run` returns its outcome as a value: a verdict and the findings behind it. A check
 * never throws to give a verdict; whatever it throws is reported as `error` by the runner.
 *
 * The runner knows no suite by name. What a check talks to (its context) is the suite's own
 * business: the runner gets it from a {@link CheckTarget}, which the command line builds from a
 * concrete implementation, and closes it after the check (also after a timeout).
 */
import type { Finding, Verdict } from '../judge/verdicts';

/**
 * What a check settled: its verdict and the findings behind it. Unlike a vector, a check records
 * what it observed even when it passes (one finding of verdict `pass`), so reports can show it.
 */
export interface CheckOutcome {
  readonly verdict: Verdict;
  readonly findings: readonly Finding[];
}

/** One check of a suite. */
export interface SuiteCheck<Context> {
  /** Stable identifier, `<suite prefix>.<name>` (e.g. `vu.handshake`); expectation files name it. */
  readonly id: string;
  readonly title: string;
  /** What the target must offer for the check to run, by name (e.g. protocol features). */
  readonly needs: readonly string[];
  /** Runs the check against a fresh context. */
  run(context: Context): Promise<CheckOutcome>;
}

/** A named list of checks, in the order they run. */
export interface Suite<Context> {
  /** The suite's name (`vhost-user`), as `--suite` and results files give it. */
  readonly name: string;
  /** What the suite tests, in one line. */
  readonly title: string;
  readonly checks: readonly SuiteCheck<Context>[];
}

/** The check can run: its context, and how to release it. */
export interface OpenedCheck<Context> {
  readonly kind: 'ready';
  readonly context: Context;
  /** Releases everything the check opened. Never throws. */
  close(): void;
}

/** The target lacks something the check needs; the reason names it. */
export interface UnmetNeeds {
  readonly kind: 'unsupported';
  readonly reason: string;
}

/** What a suite's checks run against (built by the command line from a concrete implementation). */
export interface CheckTarget<Context> {
  /** The implementation under test, as reports name it. */
  readonly info: { readonly name: string; readonly implementation: string; readonly capabilities: readonly string[] };
  /** A fresh context for one check, or why it cannot run. */
  open(check: SuiteCheck<Context>): OpenedCheck<Context> | UnmetNeeds;
}

/** An outcome with one finding: `check` names what was checked (the check's id), `message` what was seen. */
export function checkOutcome(verdict: Verdict, check: string, message: string): CheckOutcome {
  return { verdict, findings: [{ verdict, step: 0, check, message }] };
}
