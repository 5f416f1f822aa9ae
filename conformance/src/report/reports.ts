/**
 * Reports of a run: the human summary, TAP 14, JUnit XML (through tap-junit) and the canonical
 * results document (schema `ResultsSchema` in `spec/`).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REQUIREMENTS } from '../../../spec/src/index';
import type { AdapterInfo } from '../../../adapters/core/src/contract';
import type { RunResult, VectorResult } from '../runner/run';
import { VERDICT_ORDER, Verdict } from '../runner/verdicts';
import type { Vector } from '../loader/types';

const REQUIREMENT_TEXT = new Map(REQUIREMENTS.map((r) => [r.id, `${r.summary} (§${r.section})`]));

/** A file as reports show it: relative to the working directory when it lies below it. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

/** Counts per verdict. */
export function countVerdicts(results: readonly VectorResult[]): Partial<Record<Verdict, number>> {
  const counts: Partial<Record<Verdict, number>> = {};
  for (const r of results) counts[r.verdict] = (counts[r.verdict] ?? 0) + 1;
  return counts;
}

/** The last line of every report: counts, unexpected results and the exit code. */
export function summaryLine(run: RunResult): string {
  const counts = countVerdicts(run.results);
  const parts = VERDICT_ORDER.filter((v) => counts[v]).map((v) => `${counts[v]} ${v}`);
  const unexpected = run.results.filter((r) => r.unexpected).length;
  const stale = run.stale.length ? `, ${run.stale.length} stale expectation${run.stale.length > 1 ? 's' : ''}` : '';
  return `vmemct: ${run.results.length} vector${run.results.length === 1 ? '' : 's'}: ${parts.join(', ') || 'none'}; ${unexpected} unexpected${stale}; ${run.durationMs} ms; exit ${run.exitCode}`;
}

function stepText(vector: Vector, step: number): string {
  if (step === 0) return 'set-up';
  const s = vector.steps[step - 1];
  return s ? `step ${step} (${displayPath(vector.source.file)}:${s.line})` : `step ${step}`;
}

/** Details of one result: file, steps, expected vs observed, the requirements' text. */
export function describeResult(r: VectorResult): string[] {
  const v = r.vector;
  const lines = [`${r.unexpected ? '✗' : '•'} ${v.id} — ${r.verdict}${r.expectation ? ` (expected ${r.expected}: ${r.expectation.reason})` : ''}`, `    ${v.title}`, `    at ${displayPath(v.source.file)}:${v.source.line}`];
  for (const f of r.findings) {
    lines.push(`    ${stepText(v, f.step)}: ${f.check}: ${f.message} [${f.verdict}]`);
    if (f.expected !== undefined) lines.push(`      expected: ${f.expected}`);
    if (f.observed !== undefined) lines.push(`      observed: ${f.observed}`);
  }
  const ids = new Set([...v.requirements, ...r.findings.flatMap((f) => f.requirements ?? [])]);
  for (const id of ids) lines.push(`    ${id}: ${REQUIREMENT_TEXT.get(id) ?? '(unknown requirement)'}`);
  if (r.diagnostics) lines.push(...r.diagnostics.split('\n').slice(0, 20).map((l) => `    | ${l}`));
  return lines;
}

/** The human report: unexpected results in detail, then notable expected ones briefly, then the summary. */
export function humanReport(run: RunResult, verbose: boolean): string {
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
      else lines.push(`  ${r.verdict.padEnd(14)} ${r.vector.id}${r.findings[0] ? ` — ${r.findings[0].message}` : ''}`);
    }
    lines.push('');
  }
  if (run.stale.length > 0) {
    lines.push('Stale expectations:');
    for (const s of run.stale) lines.push(`  ${s.id}: ${s.reason}`);
    lines.push('');
  }
  lines.push(summaryLine(run));
  return `${lines.join('\n')}\n`;
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/** TAP version 14: one test point per vector; `# SKIP` for unsupported/not-applicable; diagnostics as YAML. */
export function tapReport(run: RunResult): string {
  const lines = ['TAP version 14', `1..${run.results.length}`];
  run.results.forEach((r, i) => {
    const skip = r.verdict === 'unsupported' || r.verdict === 'not-applicable';
    const ok = !r.unexpected;
    const directive = skip ? ` # SKIP ${r.verdict}: ${r.findings[0]?.message ?? ''}` : r.expectation && !r.unexpected && r.verdict !== 'pass' ? ` # TODO expected ${r.verdict}: ${r.expectation.reason}` : '';
    lines.push(`${ok ? 'ok' : 'not ok'} ${i + 1} - ${r.vector.id}${directive.replace(/\n/g, ' ')}`);
    if (!ok || (r.verdict !== 'pass' && !skip)) {
      lines.push('  ---');
      lines.push(`  message: ${yamlString(r.findings.map((f) => `${f.check}: ${f.message}`).join('; ') || r.verdict)}`);
      lines.push(`  severity: ${ok ? 'comment' : r.verdict}`);
      lines.push(`  verdict: ${r.verdict}`);
      lines.push(`  file: ${yamlString(`${displayPath(r.vector.source.file)}:${r.vector.source.line}`)}`);
      lines.push(`  requirements: ${yamlString(r.vector.requirements.join(', '))}`);
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

interface TapAssert {
  ok: boolean;
  id: number;
  name: string;
  diag?: Record<string, unknown>;
  skip?: boolean | string;
  todo?: boolean | string;
}

/** JUnit XML of a run, built by tap-junit from the TAP report. */
export function junitReport(run: RunResult, suiteName: string): Promise<string> {
  // tap-junit's serializer and the TAP parser it is built on (tap-parser's CommonJS build).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const serialize = require('tap-junit/src/serialize') as (tests: unknown[], output: unknown, options: { name: string; classname: string; pretty: boolean }) => string;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Parser } = require('tap-parser') as { Parser: new () => NodeJS.WritableStream & { on(ev: string, cb: (x: unknown) => void): void } };
  return new Promise((resolve, reject) => {
    const parser = new Parser();
    const tests: unknown[] = [];
    parser.on('assert', (a) => {
      const t = a as TapAssert;
      tests.push({ ...t, comments: '' });
    });
    parser.on('complete', (output) => {
      try {
        resolve(serialize(tests, output, { name: suiteName, classname: suiteName, pretty: true }));
      } catch (e) {
        reject(e);
      }
    });
    parser.end(tapReport(run));
  });
}

/** The canonical results document. */
export function resultsDocument(
  run: RunResult,
  context: { adapter: AdapterInfo; version: string; vectors: readonly Vector[]; expectations?: string; startedAt: Date; options: Record<string, unknown> },
): object {
  const digest = createHash('sha256');
  for (const v of [...context.vectors].sort((a, b) => (a.id < b.id ? -1 : 1))) digest.update(`${v.id}\n${v.source.file}:${v.source.line}\n`);
  for (const file of [...new Set(context.vectors.map((v) => v.source.file))].sort()) {
    try {
      digest.update(fs.readFileSync(file));
    } catch {
      /* a file that vanished since loading only changes the digest */
    }
  }
  const counts = countVerdicts(run.results);
  return {
    format: 'vmemct-results/1',
    suite: { version: context.version, vectorsDigest: `sha256:${digest.digest('hex')}`, vectorCount: context.vectors.length },
    adapter: { name: context.adapter.name, implementation: context.adapter.implementation, capabilities: [...context.adapter.capabilities] },
    expectations: context.expectations ?? null,
    startedAt: context.startedAt.toISOString(),
    durationMs: run.durationMs,
    options: context.options,
    summary: { total: run.results.length, unexpected: run.results.filter((r) => r.unexpected).length, byVerdict: counts },
    results: run.results.map((r) => ({
      id: r.vector.id,
      title: r.vector.title,
      file: displayPath(r.vector.source.file),
      line: r.vector.source.line,
      target: r.vector.target,
      requirements: [...r.vector.requirements],
      verdict: r.verdict,
      expected: r.expected,
      ...(r.expectation ? { expectationReason: r.expectation.reason } : {}),
      status: r.unexpected ? 'unexpected' : 'expected',
      durationMs: Math.round(r.durationMs * 1000) / 1000,
      findings: r.findings.map((f) => ({
        verdict: f.verdict,
        step: f.step,
        check: f.check,
        message: f.message,
        ...(f.expected !== undefined ? { expected: f.expected } : {}),
        ...(f.observed !== undefined ? { observed: f.observed } : {}),
        ...(f.requirements ? { requirements: [...f.requirements] } : {}),
      })),
      ...(r.diagnostics ? { diagnostics: r.diagnostics } : {}),
    })),
    staleExpectations: run.stale.map((s) => ({ ...s })),
    exitCode: run.exitCode,
  };
}
