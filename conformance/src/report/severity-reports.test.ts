/**
 * Every report shows the severity of a failing result: the human report, TAP (its YAML
 * `severity`), JUnit (the failure's `type`), the results document (valid against the schema)
 * and the docs matrix built from it.
 */
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { ALL_SCHEMAS, RESULTS_FORMAT } from '../../../spec/src/index';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { PROGRESS_DEVICE_MUTANTS } from '../../test/teeth/device-mutants-progress';
import { loadVectors } from '../loader/load';
import { RunResult, VectorResult, runVectors, selectVectors } from '../runner/run';
import { buildSite } from '../docs/site';
import { humanReport, resultsDocument, tapReport } from './reports';
import { junitReport } from './junit';

const corpus = loadVectors([path.join(__dirname, '..', '..', 'vectors')]).vectors;
// A PLUG that must be acknowledged (wedged by an always-BUSY device) and one that must be refused
// with ERROR (the always-BUSY device answers BUSY: permitted, retried, then no progress either).
const selected = selectVectors(corpus, {
  filters: ['vmem.dev.plug.ack-first-block', 'vmem.dev.plug.misaligned-addr-one-byte', 'vmem.dev.state.*'],
});

let run: RunResult<VectorResult>;
beforeAll(async () => {
  run = await runVectors(createModelAdapter(PROGRESS_DEVICE_MUTANTS[0]!.adapter), selected, corpus);
});

function resultsDoc(): {
  format: string;
  results: { id: string; severity?: string; findings: { severity?: string; verdict: string }[] }[];
} {
  return resultsDocument(run, {
    adapter: { name: 'model', implementation: 'mutant', capabilities: [] },
    version: 'test',
    vectors: corpus,
    startedAt: new Date(0),
    options: {},
  }) as ReturnType<typeof resultsDoc>;
}

describe('reports show severities', () => {
  test('the run fails with wedged results (no progress) and passes the STATE-only vectors', () => {
    const plug = run.results.find((r) => r.vector.id === 'vmem.dev.plug.ack-first-block')!;
    expect([plug.verdict, plug.severity]).toEqual(['fail', 'wedged']);
    expect(run.results.some((r) => r.verdict === 'pass' && r.severity === undefined)).toBe(true);
    expect(run.exitCode).toBe(1);
  });

  test('human: the verdict with its severity, each finding tagged, and the unexpected results counted by severity', () => {
    const text = humanReport(run, false);
    expect(text).toContain('✗ vmem.dev.plug.ack-first-block — fail [wedged]');
    expect(text).toMatch(/progress: the device made no progress: .* \[fail, wedged\]\n/);
    const failing = run.results.filter((r) => r.unexpected).length;
    expect(text).toContain(`Unexpected results by severity: ${failing} wedged\n`);
  });

  test('TAP: the YAML diagnostic names the severity; JUnit: the failure type is the severity', async () => {
    const tap = tapReport(run);
    expect(tap).toMatch(
      /not ok \d+ - vmem\.dev\.plug\.ack-first-block \(expected pass, got fail\)\n {2}---\n(?: {2}.*\n)*? {2}severity: wedged\n/,
    );
    const junit = junitReport(run, 'vmemct test');
    expect(junit).toMatch(
      /<testcase name="vmem\.dev\.plug\.ack-first-block"[^>]*>\s*<failure message="[^"]*" type="wedged"/,
    );
  });

  test('results document: format 2, severity on the result and on each failing finding, valid against the schema', () => {
    const doc = resultsDoc();
    expect(doc.format).toBe(RESULTS_FORMAT);
    const plug = doc.results.find((r) => r.id === 'vmem.dev.plug.ack-first-block')!;
    expect(plug.severity).toBe('wedged');
    expect(plug.findings.map((f) => [f.verdict, f.severity])).toContainEqual(['fail', 'wedged']);
    const pass = doc.results.find((r) => r.findings.length === 0)!;
    expect('severity' in pass).toBe(false);

    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
    for (const s of ALL_SCHEMAS) ajv.addSchema(s);
    const validate = ajv.getSchema('https://vmemct.dev/schemas/results.json')!;
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
    // A severity outside the tiers is refused; a format-1 document without severities is still read.
    const bad = JSON.parse(JSON.stringify(doc)) as ReturnType<typeof resultsDoc>;
    bad.results[0]!.severity = 'catastrophic';
    expect(validate(bad)).toBe(false);
    const v1 = JSON.parse(JSON.stringify(doc, (k, v: unknown) => (k === 'severity' ? undefined : v))) as ReturnType<
      typeof resultsDoc
    >;
    v1.format = 'vmemct-results/1';
    expect(validate(v1) ? [] : validate.errors).toEqual([]);
  });

  test('docs matrix: a failing cell shows its severity next to the verdict', () => {
    const doc = resultsDoc();
    const html = buildSite({
      vectors: corpus,
      vectorFiles: new Map(),
      results: [
        {
          file: '/x/busy.json',
          implementation: 'mutant',
          adapter: 'model',
          profile: null,
          expectations: null,
          results: doc.results as never,
        },
      ],
    }).get('results.html')!;
    expect(html).toMatch(
      /<span class="badge v-fail">fail<\/span> <span class="severity s-wedged" title="the target is stuck: [^"]*">wedged<\/span> <strong title="expected pass">!<\/strong>/,
    );
    // The legend explains every tier.
    for (const tier of ['stopped', 'wedged', 'state', 'answer', 'should', 'harness'])
      expect(html).toContain(`s-${tier}`);
  });
});
