/**
 * Checks shared by device and driver runs: outcome sets, configuration values and bytes, and the
 * application of a step's checkers to what it observed.
 */
import { formatHex } from '../../../spec/src/index';
import type { VirtioMemConfig } from '../../../model/src/index';
import { evaluate, scopeOfConfig } from '../loader/expr';
import type { ConfigFieldName, OutcomeSet, ValueExpectation } from '../loader/types';
import type { Finding, Verdict } from './verdicts';
import { Checked, proceed, stopWith } from './verdicts';

/** Bytes as spaced hex. */
export function formatBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Describes a set: `ACK` or `NACK (pass) | ERROR (informational)`. */
export function describeSet(set: OutcomeSet): string {
  if (set.size === 1 && [...set.values()][0] === 'pass') return [...set.keys()][0];
  return [...set].map(([k, v]) => `${k} (${v})`).join(' | ');
}

/** The verdict an observed outcome earns against a set: its class, or fail when not listed. */
export function judgeSet(set: OutcomeSet, observed: string): Verdict {
  return set.get(observed) ?? 'fail';
}

/** Checks an observed outcome against a set: no finding when the set grades it pass. */
export function judgeOutcome(
  step: number,
  check: string,
  set: OutcomeSet,
  observed: string,
  detail?: string,
  requirements?: readonly string[],
): Finding[] {
  const verdict = judgeSet(set, observed);
  if (verdict === 'pass') return [];
  return [
    {
      verdict,
      step,
      check,
      message:
        verdict === 'fail'
          ? `unexpected ${check}: ${observed}${detail ? ` (${detail})` : ''}`
          : `${check} ${observed} is ${verdict} here${detail ? ` (${detail})` : ''}`,
      expected: describeSet(set),
      observed,
      requirements,
    },
  ];
}

/**
 * Checks configuration fields after a step (expressions see the configuration after it). An
 * expression that cannot be evaluated stops the vector with an `error`.
 */
export function judgeConfig(
  step: number,
  expected: ReadonlyMap<ConfigFieldName, ValueExpectation>,
  before: VirtioMemConfig,
  after: VirtioMemConfig,
): Checked {
  const scope = scopeOfConfig(after);
  const findings: Finding[] = [];
  for (const [field, exp] of expected) {
    const observed = BigInt(after[field]);
    const fail = (expectedText: string): void => {
      findings.push({
        verdict: 'fail',
        step,
        check: `config.${field}`,
        message: `${field} is not as expected`,
        expected: expectedText,
        observed: formatHex(observed),
      });
    };
    if (exp.kind === 'unchanged') {
      const was = BigInt(before[field]);
      if (observed !== was) fail(`unchanged (${formatHex(was)})`);
      continue;
    }
    const unevaluable = (reason: string): Checked =>
      stopWith({ verdict: 'error', step, check: `config.${field}`, message: `config.${field}: ${reason}` });
    if (exp.kind === 'equals') {
      const v = evaluate(exp.expr, scope);
      if (!v.ok) return unevaluable(v.reason);
      if (observed !== v.value) fail(`${exp.text} = ${formatHex(v.value)}`);
      continue;
    }
    const min = exp.min ? evaluate(exp.min, scope) : undefined;
    const max = exp.max ? evaluate(exp.max, scope) : undefined;
    for (const r of [min, max]) if (r && !r.ok) return unevaluable(r.reason);
    const lo = min && min.ok ? min.value : undefined;
    const hi = max && max.ok ? max.value : undefined;
    if ((lo !== undefined && observed < lo) || (hi !== undefined && observed > hi)) {
      fail(
        `${exp.text} (${lo !== undefined ? `≥ ${formatHex(lo)}` : ''}${lo !== undefined && hi !== undefined ? ', ' : ''}${hi !== undefined ? `≤ ${formatHex(hi)}` : ''})`,
      );
    }
  }
  return proceed(findings);
}

/** Checks bytes. */
export function judgeBytes(step: number, check: string, expected: Uint8Array, observed: Uint8Array): Finding[] {
  const same = expected.length === observed.length && expected.every((b, i) => b === observed[i]);
  return same
    ? []
    : [
        {
          verdict: 'fail',
          step,
          check,
          message: `${check} differ`,
          expected: formatBytes(expected),
          observed: formatBytes(observed),
        },
      ];
}
