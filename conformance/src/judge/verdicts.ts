/**
 * Verdicts and findings: richer than pass/fail, combined worst-first.
 */
import type { ConformanceClass, InvariantViolation } from '../../../model/src/index';
import type { VERDICTS } from '../../../spec/src/index';
import type { Severity } from './severity';

/** How a vector ended: one of spec's `VERDICTS`, the list the results schema enumerates. */
export type Verdict = (typeof VERDICTS)[number];

/** Verdicts from worst to best: a vector's verdict is its worst finding's. */
export const VERDICT_ORDER: readonly Verdict[] = [
  'error',
  'timeout',
  'fail',
  'flaky',
  'non-strict',
  'acceptable',
  'informational',
  'unsupported',
  'not-applicable',
  'pass',
];

/** One observation worth reporting. A vector records no passing check; a suite check records what it saw as one `pass` finding. */
export interface Finding {
  readonly verdict: Verdict;
  /** 1-based step; 0 for set-up. */
  readonly step: number;
  /** What was checked, e.g. `response`, `config.plugged_size`, `invariant:fields-aligned`. */
  readonly check: string;
  readonly message: string;
  readonly expected?: string;
  readonly observed?: string;
  readonly requirements?: readonly string[];
  /** In a multi-device vector, the name of the device the finding is about. */
  readonly device?: string;
  /**
   * How bad it is (fail, non-strict, error and timeout findings only): set by the runner from the
   * verdict and the check name (judge/severity.ts), never by the code that makes the finding.
   */
  readonly severity?: Severity;
}

/** The worse of two verdicts. */
export function worse(a: Verdict, b: Verdict): Verdict {
  return VERDICT_ORDER.indexOf(a) <= VERDICT_ORDER.indexOf(b) ? a : b;
}

/** The verdict of a set of findings (pass when there are none). */
export function combine(findings: readonly Finding[]): Verdict {
  return findings.reduce<Verdict>((v, f) => worse(v, f.verdict), 'pass');
}

/**
 * A vector's verdict from its findings: the worst one, except that a harness `error` at or after
 * a step the device already failed is taken as a consequence of that failure (a device whose
 * configuration is garbage leaves the runner unable to build the next request, say), so the
 * vector is `fail`, not `error`. The error stays among the findings. Errors in the vector file
 * itself (`badVectorCheck`) are never explained away.
 */
export function vectorVerdict(findings: readonly Finding[], badVectorCheck: string): Verdict {
  const verdict = combine(findings);
  if (verdict !== 'error') return verdict;
  const errors = findings.filter((f) => f.verdict === 'error');
  if (errors.some((f) => f.check === badVectorCheck)) return verdict;
  const firstError = Math.min(...errors.map((f) => f.step));
  const failedBefore = findings.some((f) => f.verdict === 'fail' && f.step <= firstError);
  return failedBefore ? 'fail' : verdict;
}

/** How the model's grading of an outcome is judged. */
export function verdictOfConformance(c: ConformanceClass): Verdict {
  switch (c) {
    case 'required':
    case 'recommended':
      return 'pass';
    case 'permitted':
      return 'acceptable';
    case 'unspecified':
      return 'informational';
    case 'discouraged':
      return 'non-strict';
    case 'nonconforming':
      return 'fail';
  }
}

/** A broken invariant as a finding: MUST → fail, SHOULD → non-strict. */
export function invariantFinding(step: number, v: InvariantViolation): Finding {
  return {
    verdict: v.severity === 'must' ? 'fail' : 'non-strict',
    step,
    check: `invariant:${v.invariant}`,
    message: v.detail,
    requirements: v.requirements,
  };
}

/** How a step (or a check) ended: go on with a value, or stop the vector with a finding. */
export type StepOutcome<T> =
  { readonly kind: 'continue'; readonly value: T } | { readonly kind: 'stop'; readonly finding: Finding };

/** Goes on with `value`. */
export function proceed<T>(value: T): StepOutcome<T> {
  return { kind: 'continue', value };
}

/** Stops the vector with `finding`. */
export function stopWith(finding: Finding): { readonly kind: 'stop'; readonly finding: Finding } {
  return { kind: 'stop', finding };
}

/** What checking one stated expectation gives: its findings (none when met), or a stop. */
export type Checked = StepOutcome<readonly Finding[]>;
