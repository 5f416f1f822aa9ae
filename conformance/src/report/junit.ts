/**
 * JUnit XML of a run, in the shape the Jenkins xUnit plugin's published `junit-10.xsd` describes
 * (and GitLab, GitHub test-report actions and Jenkins' JUnit plugin read):
 *
 * - `<testsuites>` holds one `<testsuite>` per vector file (per suite for suite checks), plus one
 *   named `expectations` when stale expectation entries made the run fail;
 * - each case is a `<testcase>` with `classname` (its file, as dotted path without the extension,
 *   or its suite), `name` (its id), `time` (seconds), `file` and `line`;
 * - an unexpected result is a `<failure>` (type: its severity or verdict) whose body is what the
 *   console shows: the findings with expected and observed values, each step's file:line, the
 *   requirements with their text; an unexpected `error` or `timeout` is an `<error>` instead;
 * - `unsupported` and `not-applicable` are `<skipped message="…">` with the reason;
 * - an expected result that is not a plain pass (an expectation entry, or a verdict the rules
 *   accept such as `acceptable`) is not a failure, so a dashboard agrees with the exit code; its
 *   `<system-out>` starts `expected fail: <reason>` (or `acceptable: …`), so it is never shown as a
 *   plain pass without a word;
 * - the earlier failed runs of a retried case (`--retries`) are `<rerunFailure>`/`<rerunError>`.
 *
 * Counts agree: the `failures` plus `errors` of the whole report are the run's unexpected results
 * plus its stale expectations, exactly what makes the exit code non-zero.
 */
import type { CaseResult, RunResult } from '../runner/run';
import { attemptsText, describeResult, displayPath, verdictText } from './reports';

/** What one `<testcase>` reports. */
interface JunitCase {
  readonly classname: string;
  readonly name: string;
  readonly seconds: number;
  readonly file?: string;
  readonly line?: number;
  /** The `<failure>`, `<error>` or `<skipped>` element, or nothing for a case that passed as expected. */
  readonly outcome?: {
    readonly element: 'failure' | 'error' | 'skipped';
    readonly type: string;
    readonly message: string;
    readonly body: string;
  };
  readonly reruns: readonly {
    readonly element: 'rerunFailure' | 'rerunError';
    readonly type: string;
    readonly message: string;
  }[];
  readonly systemOut?: string;
}

/** Characters XML 1.0 cannot carry at all (C0 controls but tab, line feed and carriage return; lone surrogates; U+FFFE/U+FFFF). */
// eslint-disable-next-line no-control-regex
const NOT_XML =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text as XML attribute or element content: escaped, characters XML cannot hold replaced by U+FFFD. */
export function xmlText(s: string): string {
  return s
    .replace(NOT_XML, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\r/g, '&#13;');
}

/** An attribute value: as {@link xmlText}, with line breaks and tabs kept as character references. */
function attr(s: string): string {
  return xmlText(s).replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

/** The class a case belongs to: its vector file as a dotted path without the extension, or its suite. */
function classnameOf(r: CaseResult): string {
  if (r.kind === 'check') return r.suite;
  return displayPath(r.vector.source.file)
    .replace(/\.ya?ml$/, '')
    .replace(/^(\.\.\/)+/, '')
    .split(/[\\/]+/)
    .filter((p) => p !== '' && p !== '.')
    .join('.');
}

/** The one-line message of a result: its findings' checks and messages, or its verdict. */
function messageOf(findings: readonly { check: string; message: string }[], verdict: string): string {
  return findings.map((f) => `${f.check}: ${f.message}`).join('; ') || verdict;
}

function caseOf(r: CaseResult): JunitCase {
  const base = {
    classname: classnameOf(r),
    name: r.kind === 'vector' ? r.vector.id : r.check.id,
    seconds: r.durationMs / 1000,
    ...(r.kind === 'vector' ? { file: displayPath(r.vector.source.file), line: r.vector.source.line } : {}),
  };
  const reruns = (r.attempts ?? [])
    .filter((a) => a.verdict === 'fail' || a.verdict === 'error' || a.verdict === 'timeout')
    .slice(0, r.verdict === 'flaky' ? undefined : -1)
    .map((a) => ({
      element: a.verdict === 'fail' ? ('rerunFailure' as const) : ('rerunError' as const),
      type: a.verdict,
      message: messageOf(a.findings, a.verdict),
    }));
  const body = describeResult(r).join('\n');
  const message = messageOf(r.findings, r.verdict);
  const skipped = r.verdict === 'unsupported' || r.verdict === 'not-applicable';
  if (r.unexpected) {
    const harness = r.verdict === 'error' || r.verdict === 'timeout';
    const expectedText = `expected ${r.expected}${r.expectation ? ` (${r.expectation.reason})` : ''}, got ${verdictText(r)}`;
    return {
      ...base,
      reruns,
      outcome: {
        element: harness ? 'error' : 'failure',
        type: r.severity ?? r.verdict,
        message: r.verdict === 'flaky' ? `flaky: ${message}` : r.verdict === 'pass' ? expectedText : message,
        body: `${expectedText}\n${body}`,
      },
    };
  }
  if (skipped)
    return {
      ...base,
      reruns,
      outcome: {
        element: 'skipped',
        type: r.verdict,
        message: `${r.verdict}: ${r.findings.map((f) => f.message).join('; ')}`,
        body: '',
      },
    };
  if (r.verdict === 'pass') return { ...base, reruns };
  const why = r.expectation ? `expected ${r.verdict}: ${r.expectation.reason}` : `${r.verdict}: ${message}`;
  return { ...base, reruns, systemOut: `${why}\n${r.attempts ? `${attemptsText(r.attempts)}\n` : ''}${body}` };
}

function caseXml(c: JunitCase): string {
  const attrs = [
    `name="${attr(c.name)}"`,
    `classname="${attr(c.classname)}"`,
    `time="${c.seconds.toFixed(3)}"`,
    ...(c.file !== undefined ? [`file="${attr(c.file)}"`, `line="${c.line}"`] : []),
  ].join(' ');
  const children: string[] = [];
  if (c.outcome) {
    const o = c.outcome;
    children.push(
      o.element === 'skipped'
        ? `      <skipped message="${attr(o.message)}"/>`
        : `      <${o.element} message="${attr(o.message)}" type="${attr(o.type)}">${xmlText(o.body)}</${o.element}>`,
    );
  }
  for (const r of c.reruns) children.push(`      <${r.element} message="${attr(r.message)}" type="${attr(r.type)}"/>`);
  if (c.systemOut !== undefined) children.push(`      <system-out>${xmlText(c.systemOut)}</system-out>`);
  return children.length === 0
    ? `    <testcase ${attrs}/>`
    : `    <testcase ${attrs}>\n${children.join('\n')}\n    </testcase>`;
}

interface Counts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  seconds: number;
}

function countsOf(cases: readonly JunitCase[]): Counts {
  return {
    tests: cases.length,
    failures: cases.filter((c) => c.outcome?.element === 'failure').length,
    errors: cases.filter((c) => c.outcome?.element === 'error').length,
    skipped: cases.filter((c) => c.outcome?.element === 'skipped').length,
    seconds: cases.reduce((s, c) => s + c.seconds, 0),
  };
}

/** The JUnit XML report of a run; `suiteName` names the whole report (`vmemct <implementation>`). */
export function junitReport(run: RunResult<CaseResult>, suiteName: string, startedAt = new Date()): string {
  const groups = new Map<string, JunitCase[]>();
  for (const r of run.results) {
    const c = caseOf(r);
    groups.set(c.classname, [...(groups.get(c.classname) ?? []), c]);
  }
  if (run.stale.length > 0)
    groups.set(
      'expectations',
      run.stale.map((s) => ({
        classname: 'expectations',
        name: s.id,
        seconds: 0,
        reruns: [],
        outcome: {
          element: 'failure',
          type: 'stale',
          message: `stale expectation: ${s.id} matches no case of the suite`,
          body: `stale expectation ${s.id}: ${s.reason}`,
        },
      })),
    );
  const suites: string[] = [];
  const total: Counts = { tests: 0, failures: 0, errors: 0, skipped: 0, seconds: run.durationMs / 1000 };
  for (const [name, cases] of groups) {
    const n = countsOf(cases);
    total.tests += n.tests;
    total.failures += n.failures;
    total.errors += n.errors;
    total.skipped += n.skipped;
    suites.push(
      `  <testsuite name="${attr(name)}" tests="${n.tests}" failures="${n.failures}" errors="${n.errors}" skipped="${n.skipped}" time="${n.seconds.toFixed(3)}" timestamp="${startedAt.toISOString().replace(/\.\d+Z$/, '')}">\n${cases.map(caseXml).join('\n')}\n  </testsuite>`,
    );
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${attr(suiteName)}" tests="${total.tests}" failures="${total.failures}" errors="${total.errors}" time="${total.seconds.toFixed(3)}">\n${suites.join('\n')}\n</testsuites>\n`;
}
