/**
 * Reports of a run: the human summary, TAP 13 (JUnit XML is in junit.ts) and the canonical
 * results document (schema `ResultsSchema` in `spec/`). A run's cases are vectors or suite checks
 * (`suites/`); every report shows both.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ALL_REQUIREMENTS, RESULTS_FORMAT } from '../../../spec/src/index';
import type { AdapterInfo } from '../../../adapters/core/src/contract';
import { Attempt, CaseResult, RunResult, VectorResult, caseId } from '../runner/run';
import { Finding, VERDICT_ORDER, Verdict } from '../judge/verdicts';
import { SEVERITY_ORDER, Severity } from '../judge/severity';
import type { Vector } from '../loader/types';

const REQUIREMENT_TEXT = new Map(ALL_REQUIREMENTS.map((r) => [r.id, `${r.summary} (§${r.section})`]));

/** A file as reports show it: relative to the working directory when it lies below it. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

/** Counts per verdict. */
export function countVerdicts(results: readonly CaseResult[]): Partial<Record<Verdict, number>> {
  const counts: Partial<Record<Verdict, number>> = {};
  for (const r of results) counts[r.verdict] = (counts[r.verdict] ?? 0) + 1;
  return counts;
}

/** A verdict with its severity when it has one: `fail [state]`, `pass`. */
export function verdictText(r: { readonly verdict: Verdict; readonly severity?: Severity }): string {
  return r.severity === undefined ? r.verdict : `${r.verdict} [${r.severity}]`;
}

/** Counts per severity of the unexpected results, worst first: `2 wedged, 1 state`; empty when none has one. */
export function severityCounts(results: readonly CaseResult[]): string {
  const counts = new Map<Severity, number>();
  for (const r of results) if (r.unexpected && r.severity) counts.set(r.severity, (counts.get(r.severity) ?? 0) + 1);
  return SEVERITY_ORDER.filter((s) => counts.has(s))
    .map((s) => `${counts.get(s)} ${s}`)
    .join(', ');
}

/** A finding's verdict and severity as the human report ends its line: `[fail, state]`. */
function findingTag(f: Finding): string {
  return `[${f.verdict}${f.severity ? `, ${f.severity}` : ''}]`;
}

/** The last line of every report: counts, unexpected results and the exit code. */
export function summaryLine(run: RunResult<CaseResult>): string {
  const counts = countVerdicts(run.results);
  const parts = VERDICT_ORDER.filter((v) => counts[v]).map((v) => `${counts[v]} ${v}`);
  const unexpected = run.results.filter((r) => r.unexpected).length;
  const stale = run.stale.length ? `, ${run.stale.length} stale expectation${run.stale.length > 1 ? 's' : ''}` : '';
  return `vmemct: ${countOf(run.results)}: ${parts.join(', ') || 'none'}; ${unexpected} unexpected${stale}; ${run.durationMs} ms; exit ${run.exitCode}`;
}

/** `12 vectors`, `1 check`, `3 cases` (vectors and checks mixed). */
function countOf(results: readonly CaseResult[]): string {
  const kinds = new Set(results.map((r) => r.kind));
  const noun = kinds.size > 1 ? 'case' : kinds.has('check') ? 'check' : 'vector';
  return `${results.length} ${noun}${results.length === 1 ? '' : 's'}`;
}

/** What reports show of a case, whichever kind it is. */
interface CaseFacts {
  readonly id: string;
  readonly title: string;
  /** Where it is defined: `file:line` of a vector, the suite of a check. */
  readonly location: string;
  readonly requirements: readonly string[];
}

function caseFacts(r: CaseResult): CaseFacts {
  if (r.kind === 'check')
    return { id: r.check.id, title: r.check.title, location: `the ${r.suite} suite`, requirements: [] };
  const v = r.vector;
  return {
    id: v.id,
    title: v.title,
    location: `${displayPath(v.source.file)}:${v.source.line}`,
    requirements: v.requirements,
  };
}

function stepText(r: CaseResult, step: number): string {
  if (r.kind === 'check') return r.check.id;
  const vector = r.vector;
  if (step === 0) return 'set-up';
  const s = vector.steps[step - 1];
  return s ? `step ${step} (${displayPath(vector.source.file)}:${s.line})` : `step ${step}`;
}

/** A retried case's attempts: `attempts: fail (12.0 ms), pass (9.5 ms)`. */
export function attemptsText(attempts: readonly Attempt[]): string {
  return `attempts: ${attempts.map((a) => `${a.verdict} (${formatMs(a.durationMs)})`).join(', ')}`;
}

/** Details of one result: file, steps, expected vs observed, the requirements' text. */
export function describeResult(r: CaseResult): string[] {
  const c = caseFacts(r);
  const lines = [
    `${r.unexpected ? '✗' : '•'} ${c.id} — ${verdictText(r)}${r.expectation ? ` (expected ${r.expected}: ${r.expectation.reason})` : ''}`,
    `    ${c.title}`,
    `    ${r.kind === 'check' ? 'in' : 'at'} ${c.location}`,
  ];
  if (r.attempts) lines.push(`    ${attemptsText(r.attempts)}`);
  for (const f of r.findings) {
    lines.push(
      `    ${r.kind === 'check' && f.check === c.id ? '' : `${stepText(r, f.step)}: `}${f.check}: ${f.message} ${findingTag(f)}`,
    );
    if (f.expected !== undefined) lines.push(`      expected: ${f.expected}`);
    if (f.observed !== undefined) lines.push(`      observed: ${f.observed}`);
  }
  const ids = new Set([...c.requirements, ...r.findings.flatMap((f) => f.requirements ?? [])]);
  for (const id of ids) lines.push(`    ${id}: ${REQUIREMENT_TEXT.get(id) ?? '(unknown requirement)'}`);
  if (r.diagnostics)
    lines.push(
      ...r.diagnostics
        .split('\n')
        .slice(0, 20)
        .map((l) => `    | ${l}`),
    );
  return lines;
}

/** The human report: unexpected results in detail, then notable expected ones briefly, then the summary. */
export function humanReport(run: RunResult<CaseResult>, verbose: boolean): string {
  const lines: string[] = [];
  const unexpected = run.results.filter((r) => r.unexpected);
  const notable = run.results.filter((r) => !r.unexpected && r.verdict !== 'pass');
  if (unexpected.length > 0) {
    lines.push('Unexpected results:');
    for (const r of unexpected) lines.push(...describeResult(r));
    lines.push('');
  }
  if (notable.length > 0) {
    lines.push('Expected, not plain passes:');
    for (const r of notable) {
      if (verbose) lines.push(...describeResult(r));
      else
        lines.push(`  ${verdictText(r).padEnd(19)} ${caseId(r)}${r.findings[0] ? ` — ${r.findings[0].message}` : ''}`);
    }
    lines.push('');
  }
  if (run.stale.length > 0) {
    lines.push('Stale expectations:');
    for (const s of run.stale) lines.push(`  ${s.id}: ${s.reason}`);
    lines.push('');
  }
  const bySeverity = severityCounts(run.results);
  if (bySeverity) lines.push(`Unexpected results by severity: ${bySeverity}`);
  lines.push(summaryLine(run));
  return `${lines.join('\n')}\n`;
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/** A TAP test point's description: one line, `#` and `\\` escaped so no text reads as a directive. */
function tapDescription(s: string): string {
  return s
    .replace(/[\r\n]+/g, ' ')
    .replace(/\\/g, '\\\\')
    .replace(/#/g, '\\#');
}

/**
 * TAP version 13 (what `prove` reads; tap-parser reads it too): one test point per case, `not ok` exactly for the unexpected ones (the exit
 * code's count); `# SKIP` for unsupported/not-applicable. An expected result that is not a plain
 * pass is `ok` with what was expected in its description (`(expected fail: reason)`), never
 * `# TODO`, which TAP consumers read as a known bug and report as "TODO passed". Diagnostics as
 * YAML, whose `severity` is the case's worst severity.
 */
export function tapReport(run: RunResult<CaseResult>): string {
  const lines = ['TAP version 13', `1..${run.results.length}`];
  run.results.forEach((r, i) => {
    const c = caseFacts(r);
    const skip = !r.unexpected && (r.verdict === 'unsupported' || r.verdict === 'not-applicable');
    const ok = !r.unexpected;
    const note = skip
      ? ''
      : !ok
        ? ` (${r.verdict === 'flaky' ? 'flaky' : `expected ${r.expected}, got ${r.verdict}`})`
        : r.verdict !== 'pass'
          ? ` (${r.expectation ? `expected ${r.verdict}: ${r.expectation.reason}` : r.verdict})`
          : '';
    const directive = skip ? ` # SKIP ${tapDescription(`${r.verdict}: ${r.findings[0]?.message ?? ''}`)}` : '';
    lines.push(`${ok ? 'ok' : 'not ok'} ${i + 1} - ${tapDescription(`${c.id}${note}`)}${directive}`);
    if (!ok || (r.verdict !== 'pass' && !skip)) {
      lines.push('  ---');
      lines.push(`  message: ${yamlString(r.findings.map((f) => `${f.check}: ${f.message}`).join('; ') || r.verdict)}`);
      // The worst severity of the findings (JUnit's failure type); without one, `comment` or the verdict.
      lines.push(`  severity: ${r.severity ?? (ok ? 'comment' : r.verdict)}`);
      lines.push(`  verdict: ${r.verdict}`);
      lines.push(
        `  ${r.kind === 'check' ? 'suite' : 'file'}: ${yamlString(r.kind === 'check' ? r.suite : c.location)}`,
      );
      lines.push(`  requirements: ${yamlString(c.requirements.join(', '))}`);
      if (r.expectation) lines.push(`  expectation: ${yamlString(`${r.expected}: ${r.expectation.reason}`)}`);
      if (r.attempts) lines.push(`  attempts: ${yamlString(r.attempts.map((a) => a.verdict).join(', '))}`);
      const first = r.findings.find((f) => f.expected !== undefined || f.observed !== undefined);
      if (first?.expected !== undefined) lines.push(`  expected: ${yamlString(first.expected)}`);
      if (first?.observed !== undefined) lines.push(`  actual: ${yamlString(first.observed)}`);
      lines.push('  ...');
    }
  });
  for (const s of run.stale) lines.push(`# stale expectation ${s.id}: ${s.reason}`);
  lines.push(`# ${summaryLine(run)}`);
  return `${lines.join('\n')}\n`;
}

/** What a results document says about the run beyond its results. */
export interface ResultsContext {
  readonly adapter: Pick<AdapterInfo, 'name' | 'implementation'> & { readonly capabilities: readonly string[] };
  readonly version: string;
  /** The whole corpus (its digest and count identify the suite version); empty for a run of checks only. */
  readonly vectors: readonly Vector[];
  /** Every check of the suite run, when checks ran. */
  readonly checks?: readonly { readonly id: string; readonly title: string }[];
  readonly expectations?: string;
  readonly startedAt: Date;
  readonly options: Record<string, unknown>;
}

/** The canonical results document. */
export function resultsDocument(run: RunResult<CaseResult>, context: ResultsContext): object {
  const digest = createHash('sha256');
  for (const v of [...context.vectors].sort((a, b) => (a.id < b.id ? -1 : 1)))
    digest.update(`${v.id}\n${v.source.file}:${v.source.line}\n`);
  for (const file of [...new Set(context.vectors.map((v) => v.source.file))].sort()) {
    try {
      digest.update(fs.readFileSync(file));
    } catch {
      /* a file that vanished since loading only changes the digest */
    }
  }
  for (const c of context.checks ?? []) digest.update(`check ${c.id}\n${c.title}\n`);
  const counts = countVerdicts(run.results);
  return {
    format: RESULTS_FORMAT,
    suite: {
      version: context.version,
      vectorsDigest: `sha256:${digest.digest('hex')}`,
      vectorCount: context.vectors.length,
      ...(context.checks ? { checkCount: context.checks.length } : {}),
    },
    adapter: {
      name: context.adapter.name,
      implementation: context.adapter.implementation,
      capabilities: [...context.adapter.capabilities],
    },
    expectations: context.expectations ?? null,
    startedAt: context.startedAt.toISOString(),
    durationMs: run.durationMs,
    options: context.options,
    summary: {
      total: run.results.length,
      unexpected: run.results.filter((r) => r.unexpected).length,
      byVerdict: counts,
    },
    results: run.results.map((r) => ({
      ...(r.kind === 'vector'
        ? vectorFields(r)
        : { id: r.check.id, kind: 'check', suite: r.suite, title: r.check.title, requirements: [] }),
      verdict: r.verdict,
      ...(r.severity ? { severity: r.severity } : {}),
      expected: r.expected,
      ...(r.expectation ? { expectationReason: r.expectation.reason } : {}),
      status: r.unexpected ? 'unexpected' : 'expected',
      durationMs: Math.round(r.durationMs * 1000) / 1000,
      findings: r.findings.map(findingRecord),
      ...(r.diagnostics ? { diagnostics: r.diagnostics } : {}),
      ...(r.attempts
        ? {
            attempts: r.attempts.map((a) => ({
              verdict: a.verdict,
              durationMs: Math.round(a.durationMs * 1000) / 1000,
              findings: a.findings.map(findingRecord),
            })),
          }
        : {}),
    })),
    staleExpectations: run.stale.map((s) => ({ ...s })),
    exitCode: run.exitCode,
  };
}

/** A finding as a results document records it. */
function findingRecord(f: Finding): object {
  return {
    verdict: f.verdict,
    ...(f.severity ? { severity: f.severity } : {}),
    step: f.step,
    check: f.check,
    message: f.message,
    ...(f.expected !== undefined ? { expected: f.expected } : {}),
    ...(f.observed !== undefined ? { observed: f.observed } : {}),
    ...(f.requirements ? { requirements: [...f.requirements] } : {}),
  };
}

/** A vector's own fields in a results record (a record without `kind` is a vector's). */
function vectorFields(r: VectorResult): object {
  return {
    id: r.vector.id,
    title: r.vector.title,
    file: displayPath(r.vector.source.file),
    line: r.vector.source.line,
    target: r.vector.target,
    requirements: [...r.vector.requirements],
  };
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

/**
 * The human report of a run of suite checks (`vmemct vhost-user-check`): one line per check
 * (verdict, id, time, what was seen), a line under each one an expectation covered or that was
 * unexpected, stale expectations, then the counts, the unexpected results and the exit code.
 */
export function checkReport(run: RunResult<CaseResult>): string {
  const ids = run.results.map(caseId);
  const idWidth = Math.max(0, ...ids.map((id) => id.length));
  const lines: string[] = [];
  run.results.forEach((r, i) => {
    lines.push(
      `${r.verdict.padEnd(11)} ${ids[i]!.padEnd(idWidth)} ${formatMs(r.durationMs).padStart(9)}  ${r.severity ? `[${r.severity}] ` : ''}${r.findings.map((f) => f.message).join('; ')}`,
    );
    if (r.unexpected)
      lines.push(
        `${' '.repeat(12)}✗ unexpected: expected ${r.expected}${r.expectation ? ` (${r.expectation.reason})` : ''}`,
      );
    else if (r.expectation) lines.push(`${' '.repeat(12)}expected ${r.expected}: ${r.expectation.reason}`);
    if (r.diagnostics && r.unexpected)
      lines.push(
        ...r.diagnostics
          .split('\n')
          .slice(0, 20)
          .map((l) => `${' '.repeat(12)}| ${l}`),
      );
  });
  if (run.stale.length > 0) {
    lines.push('Stale expectations:');
    for (const s of run.stale) lines.push(`  ${s.id}: ${s.reason}`);
  }
  const counts = countVerdicts(run.results);
  const always: readonly Verdict[] = ['pass', 'fail', 'unsupported', 'error'];
  const parts = [...always, ...VERDICT_ORDER.filter((v) => !always.includes(v) && counts[v])].map(
    (v) => `${counts[v] ?? 0} ${v}`,
  );
  const total = run.results.reduce((sum, r) => sum + r.durationMs, 0);
  const unexpected = run.results.filter((r) => r.unexpected).length;
  const stale = run.stale.length ? `, ${run.stale.length} stale expectation${run.stale.length > 1 ? 's' : ''}` : '';
  lines.push(
    `${countOf(run.results)}: ${parts.join(', ')} (${formatMs(total)}); ${unexpected} unexpected${stale}; exit ${run.exitCode}`,
  );
  return `${lines.join('\n')}\n`;
}
