/**
 * Severities: how bad a failing finding is, from `stopped` (the target stopped answering) down to
 * `should` (a SHOULD-level deviation), plus `harness` for our side breaking. The tiers and their
 * meanings are spec's {@link SEVERITY_TIERS} (the results schema enumerates them); this module
 * decides a finding's tier, in one place, from its verdict and its `check` name.
 *
 * By verdict: `timeout` → stopped, `error` → harness, `non-strict` → should; a `fail` goes by the
 * first rule of {@link CHECK_SEVERITY} matching its check (and, for `response`, what was
 * observed), and by {@link DEFAULT_FAIL_SEVERITY} when none does. Other verdicts (pass,
 * acceptable, informational, unsupported, not-applicable) carry no severity.
 */
import { SEVERITY_TIERS } from '../../../spec/src/index';
import type { Finding, Verdict } from './verdicts';

/** A severity tier's name. */
export type Severity = (typeof SEVERITY_TIERS)[number]['name'];

/** Severities from worst to best. */
export const SEVERITY_ORDER: readonly Severity[] = SEVERITY_TIERS.map((t) => t.name);

/** What each severity means, in one line. */
export const SEVERITY_MEANING: ReadonlyMap<Severity, string> = new Map(SEVERITY_TIERS.map((t) => [t.name, t.meaning]));

/** One rule: a failing finding whose check matches (and whose observed text matches, when given) has `severity`. */
export interface SeverityRule {
  /** A check name, or a prefix ending in `*` (`config.*` matches `config.plugged_size`). */
  readonly check: string;
  /** Further: the finding's `observed` text must match. */
  readonly observed?: RegExp;
  readonly severity: Severity;
}

/** The tier of a `fail` finding whose check no rule names: a wrong answer, the least a MUST failure says. */
export const DEFAULT_FAIL_SEVERITY: Severity = 'answer';

/** The tier of a failing finding by its check; the first matching rule wins. */
export const CHECK_SEVERITY: readonly SeverityRule[] = [
  // The device left the request without a used entry: with DEVICE_NEEDS_RESET it is wedged, else it stopped answering.
  { check: 'response', observed: /^no used entry, DEVICE_NEEDS_RESET set/, severity: 'wedged' },
  { check: 'response', observed: /^no used entry/, severity: 'stopped' },
  { check: 'timeout', severity: 'stopped' },
  // Stuck: no progress (dev.suite.1), NEEDS_RESET, a driver that never converges or never goes quiet.
  { check: 'progress', severity: 'wedged' },
  { check: 'needs_reset', severity: 'wedged' },
  { check: 'notification.needs_reset', severity: 'wedged' },
  { check: 'converged', severity: 'wedged' },
  { check: 'settled', severity: 'wedged' },
  // Wrong state: configuration, blocks, memory, invariants over them.
  { check: 'config', severity: 'state' },
  { check: 'config.*', severity: 'state' },
  { check: 'config_bytes', severity: 'state' },
  { check: 'config_generation', severity: 'state' },
  { check: 'invariant:*', severity: 'state' },
  { check: 'resize', severity: 'state' },
  { check: 'access', severity: 'state' },
  { check: 'data', severity: 'state' },
  { check: 'driver:write-unplugged', severity: 'state' },
  { check: 'driver:config-write', severity: 'state' },
  { check: 'vu.fd-hygiene', severity: 'state' },
  { check: 'vu.mem-slots', severity: 'state' },
  { check: 'vu.mem-table-replace', severity: 'state' },
  // The back-end stopped serving.
  { check: 'vu.reconnect', severity: 'stopped' },
  { check: 'vu.rem-unknown-region', severity: 'stopped' },
  // Wrong answers: responses, used lengths, features, notifications, a driver's requests and timing.
  { check: 'response', severity: 'answer' },
  { check: 'state', severity: 'answer' },
  { check: 'used_length', severity: 'answer' },
  { check: 'features_ok', severity: 'answer' },
  { check: 'accepted_features', severity: 'answer' },
  { check: 'persistent_suspend', severity: 'answer' },
  { check: 'notification', severity: 'answer' },
  { check: 'notification.*', severity: 'answer' },
  { check: 'suspend', severity: 'answer' },
  { check: 'first_request', severity: 'answer' },
  { check: 'requests', severity: 'answer' },
  { check: 'request_types', severity: 'answer' },
  // A driver that retries without any delay fails; a SHOULD-level timing finding is non-strict (→ should).
  { check: 'retry_delay', severity: 'answer' },
  { check: 'backoff', severity: 'answer' },
  { check: 'driver:*', severity: 'answer' },
  { check: 'vu.*', severity: 'answer' },
];

/** The tier a verdict gives regardless of the check (fail goes by the check). */
const BY_VERDICT: Partial<Record<Verdict, Severity>> = {
  timeout: 'stopped',
  error: 'harness',
  'non-strict': 'should',
};

function matches(rule: SeverityRule, finding: Pick<Finding, 'check' | 'observed'>): boolean {
  const checkMatches = rule.check.endsWith('*')
    ? finding.check.startsWith(rule.check.slice(0, -1))
    : finding.check === rule.check;
  return checkMatches && (rule.observed === undefined || rule.observed.test(finding.observed ?? ''));
}

/** The severity of a finding: set for fail, non-strict, error and timeout; undefined for the rest. */
export function severityOf(finding: Pick<Finding, 'verdict' | 'check' | 'observed'>): Severity | undefined {
  if (finding.verdict !== 'fail') return BY_VERDICT[finding.verdict];
  return CHECK_SEVERITY.find((rule) => matches(rule, finding))?.severity ?? DEFAULT_FAIL_SEVERITY;
}

/** The finding with its severity set (when its verdict has one). */
export function withSeverity(finding: Finding): Finding {
  const severity = severityOf(finding);
  const { severity: _ignored, ...rest } = finding;
  return severity === undefined ? rest : { ...rest, severity };
}

/** The worse of two severities. */
export function worseSeverity(a: Severity, b: Severity): Severity {
  return SEVERITY_ORDER.indexOf(a) <= SEVERITY_ORDER.indexOf(b) ? a : b;
}

/** The worst severity of some findings; undefined when none has one. */
export function worstSeverity(findings: readonly Finding[]): Severity | undefined {
  return findings.reduce<Severity | undefined>(
    (worst, f) =>
      f.severity === undefined ? worst : worst === undefined ? f.severity : worseSeverity(worst, f.severity),
    undefined,
  );
}
