/**
 * Reports a CI dashboard reads, and `--retries`: a vector that fails then passes is `flaky` in
 * every report; JUnit follows the rules of the Jenkins xUnit plugin's published `junit-10.xsd`
 * (checked here element by element, as that schema states them) and carries what the console
 * shows; TAP is read the same way by `prove` and by tap-parser.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { ALL_SCHEMAS, RESULTS_FORMAT } from '../../../spec/src/index';
import { AdapterError, type Adapter } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { PROGRESS_DEVICE_MUTANTS } from '../../test/teeth/device-mutants-progress';
import { loadVectors } from '../loader/load';
import type { Vector } from '../loader/types';
import type { ExpectationSet } from '../runner/expectations';
import { RunResult, VectorResult, runVectors } from '../runner/run';
import type { Verdict } from '../judge/verdicts';
import { humanReport, resultsDocument, tapReport } from './reports';
import { junitReport } from './junit';

const corpus = loadVectors([path.join(__dirname, '..', '..', 'vectors')]).vectors;
const vector = (id: string): Vector => corpus.find((v) => v.id === id)!;
/** Device vectors the always-BUSY mutant fails (no progress) and the reference model passes. */
const FLAKY = 'vmem.dev.plug.ack-first-block';
const FAILS = 'vmem.dev.cfg.plugged-size-tracks-blocks';
const ERRS = 'vmem.dev.cfg.aligned-block-1mib';
const KNOWN = 'vmem.dev.cfg.aligned-large-region';
const PASSES = 'vmem.dev.cfg.fixed-fields-through-operations';
const DRIVER = corpus.find((v) => v.target === 'driver' && !v.retired)!.id;

const good = createModelAdapter();
const busy = createModelAdapter(PROGRESS_DEVICE_MUTANTS[0]!.adapter);

/** A device-only target whose n-th opened device is the reference model, the always-BUSY mutant, or an adapter error. */
function scripted(plan: readonly ('good' | 'busy' | 'throw')[]): Adapter & { opened: () => number } {
  let n = 0;
  return {
    info: { ...good.info, implementation: 'scripted', targets: ['device'] },
    openDevice: (setup) => {
      const step = plan[n++] ?? 'good';
      if (step === 'throw') return Promise.reject(new AdapterError('the target went away'));
      return (step === 'busy' ? busy : good).openDevice(setup);
    },
    dispose: () => Promise.resolve(),
    opened: () => n,
  };
}

function expecting(...entries: [string, Verdict][]): ExpectationSet {
  return {
    file: 'scripted.yaml',
    implementation: 'scripted',
    entries: entries.map(([pattern, verdict], i) => ({
      pattern,
      verdict,
      reason: `known ${verdict} of the scripted target`,
      maxMatches: 1,
      line: i + 4,
    })),
  };
}

async function runOne(
  plan: readonly ('good' | 'busy' | 'throw')[],
  retries: number,
  expectations?: ExpectationSet,
): Promise<{ r: VectorResult; run: RunResult<VectorResult>; opened: number }> {
  const adapter = scripted(plan);
  const run = await runVectors(adapter, [vector(FLAKY)], corpus, { retries, expectations });
  return { r: run.results[0]!, run, opened: adapter.opened() };
}

describe('--retries', () => {
  test('a vector that fails then passes is flaky, never a pass: unexpected, exit 1, its attempts kept', async () => {
    const { r, run, opened } = await runOne(['busy', 'good'], 2);
    expect(opened).toBe(2);
    expect([r.verdict, r.unexpected, r.expected, run.exitCode]).toEqual(['flaky', true, 'pass', 1]);
    expect(r.attempts?.map((a) => a.verdict)).toEqual(['fail', 'pass']);
    // The findings of the failed attempt stay on the result, with their severity.
    expect(r.findings.some((f) => f.check === 'progress')).toBe(true);
    expect(r.severity).toBe('wedged');
    expect(r.durationMs).toBeCloseTo(
      r.attempts!.reduce((s, a) => s + a.durationMs, 0),
      6,
    );
  });

  test('without retries a failure is a plain fail; a vector failing every attempt keeps its verdict and all attempts', async () => {
    const once = await runOne(['busy', 'good'], 0);
    expect([once.r.verdict, once.r.attempts, once.opened]).toEqual(['fail', undefined, 1]);
    const always = await runOne(['busy', 'busy', 'busy', 'good'], 2);
    expect([always.r.verdict, always.opened, always.run.exitCode]).toEqual(['fail', 3, 1]);
    expect(always.r.attempts?.map((a) => a.verdict)).toEqual(['fail', 'fail', 'fail']);
  });

  test('an adapter error is retried too; a pass is never rerun', async () => {
    const errored = await runOne(['throw', 'good'], 1);
    expect(errored.r.verdict).toBe('flaky');
    expect(errored.r.attempts?.map((a) => a.verdict)).toEqual(['error', 'pass']);
    expect(errored.run.exitCode).toBe(1);
    const passed = await runOne(['good'], 3);
    expect([passed.r.verdict, passed.r.attempts, passed.opened, passed.run.exitCode]).toEqual([
      'pass',
      undefined,
      1,
      0,
    ]);
  });

  test('an expectation entry `flaky` accepts a flaky result and a pass; an expected fail is not retried', async () => {
    const flakyEntry = expecting([FLAKY, 'flaky']);
    const flaky = await runOne(['busy', 'good'], 1, flakyEntry);
    expect([flaky.r.verdict, flaky.r.unexpected, flaky.run.exitCode]).toEqual(['flaky', false, 0]);
    const pass = await runOne(['good'], 1, flakyEntry);
    expect([pass.r.verdict, pass.r.unexpected, pass.run.exitCode]).toEqual(['pass', false, 0]);
    const failing = await runOne(['busy', 'busy'], 1, flakyEntry);
    expect([failing.r.verdict, failing.r.unexpected, failing.run.exitCode]).toEqual(['fail', true, 1]);
    const known = await runOne(['busy', 'good'], 2, expecting([FLAKY, 'fail']));
    expect([known.r.verdict, known.r.unexpected, known.opened, known.run.exitCode]).toEqual(['fail', false, 1, 0]);
  });
});

/** A tiny strict XML reader (well-formedness: balanced tags, quoted attributes, known entities only). */
interface XmlElement {
  readonly name: string;
  readonly attrs: Record<string, string>;
  readonly children: XmlElement[];
  text: string;
}

function parseXml(xml: string): XmlElement {
  const body = xml.replace(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n/, '');
  expect(body).not.toBe(xml);
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack = [root];
  const decode = (s: string): string => {
    expect(s).not.toMatch(/[<]|&(?!(?:amp|lt|gt|quot|apos|#[0-9]+);)/);
    return s
      .replace(/&#([0-9]+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&');
  };
  const token = /<(\/?)([A-Za-z][\w.-]*)((?:\s+[A-Za-z][\w.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < body.length && (m = token.exec(body))) {
    at = token.lastIndex;
    const top = stack[stack.length - 1]!;
    if (m[5] !== undefined) {
      top.text += decode(m[5]);
      continue;
    }
    if (m[1]) {
      expect(m[2]).toBe(top.name);
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of m[3]!.matchAll(/([A-Za-z][\w.-]*)="([^"]*)"/g)) {
      expect(attrs[a[1]!]).toBeUndefined();
      attrs[a[1]!] = decode(a[2]!);
    }
    const el: XmlElement = { name: m[2]!, attrs, children: [], text: '' };
    top.children.push(el);
    if (!m[4]) stack.push(el);
  }
  expect(at).toBe(body.length);
  expect(stack).toHaveLength(1);
  expect(root.children).toHaveLength(1);
  return root.children[0]!;
}

/**
 * The rules of junit-10.xsd (Jenkins xUnit plugin) as that schema states them: which children
 * each element may have, which attributes it may carry, and which are required.
 */
const JUNIT_10: Record<string, { children: string[]; attributes: string[]; required: string[]; text: boolean }> = {
  testsuites: {
    children: ['testsuite'],
    attributes: ['name', 'time', 'tests', 'failures', 'disabled', 'errors'],
    required: [],
    text: false,
  },
  testsuite: {
    children: ['testsuite', 'properties', 'testcase', 'system-out', 'system-err'],
    attributes: [
      ...['name', 'tests', 'failures', 'errors', 'time', 'disabled', 'skipped', 'skips', 'timestamp', 'hostname'],
      ...['id', 'package', 'assertions', 'file', 'skip', 'log', 'url'],
    ],
    required: ['tests'],
    text: false,
  },
  testcase: {
    children: ['skipped', 'error', 'failure', 'rerunFailure', 'rerunError', 'system-out', 'system-err'],
    attributes: [
      ...['name', 'assertions', 'time', 'timestamp', 'classname', 'status', 'class', 'file', 'line', 'log'],
      ...['group', 'url'],
    ],
    required: ['name'],
    text: false,
  },
  failure: { children: [], attributes: ['type', 'message'], required: [], text: true },
  error: { children: [], attributes: ['type', 'message'], required: [], text: true },
  skipped: { children: [], attributes: ['type', 'message'], required: [], text: true },
  rerunFailure: { children: ['system-out', 'system-err'], attributes: ['type', 'message'], required: [], text: true },
  rerunError: { children: ['system-out', 'system-err'], attributes: ['type', 'message'], required: [], text: true },
  'system-out': { children: [], attributes: [], required: [], text: true },
  'system-err': { children: [], attributes: [], required: [], text: true },
};

/** Every violation of {@link JUNIT_10} in the tree under `el` (root: `testsuites`). */
function junitViolations(el: XmlElement, where = ''): string[] {
  const rule = JUNIT_10[el.name];
  const here = `${where}/${el.name}`;
  if (!rule) return [`${here}: unknown element`];
  const out: string[] = [];
  for (const a of Object.keys(el.attrs)) if (!rule.attributes.includes(a)) out.push(`${here}: attribute ${a}`);
  for (const a of rule.required) if (!(a in el.attrs)) out.push(`${here}: missing ${a}`);
  if (!rule.text && el.text.trim() !== '') out.push(`${here}: text`);
  for (const c of el.children) {
    if (!rule.children.includes(c.name)) out.push(`${here}: child ${c.name}`);
    out.push(...junitViolations(c, here));
  }
  return out;
}

describe('reports of a run with every kind of result', () => {
  const ids = [FLAKY, FAILS, ERRS, KNOWN, DRIVER, PASSES];
  let run: RunResult<VectorResult>;
  let result: (id: string) => VectorResult;
  beforeAll(async () => {
    // FLAKY fails then passes; FAILS fails twice; ERRS errors twice; KNOWN fails as its entry says (not retried);
    // DRIVER is unsupported (a device-only target); PASSES passes. A stale entry makes the run fail too.
    const adapter = scripted(['busy', 'good', 'busy', 'busy', 'throw', 'throw', 'busy', 'good']);
    const expectations = expecting([KNOWN, 'fail'], ['vmem.dev.no-such-vector', 'fail']);
    run = await runVectors(adapter, ids.map(vector), corpus, { retries: 1, expectations });
    result = (id) => run.results.find((r) => r.vector.id === id)!;
  });

  test('the verdicts are as scripted', () => {
    expect(run.results.map((r) => `${r.verdict}${r.unexpected ? '!' : ''}`)).toEqual([
      'flaky!',
      'fail!',
      'error!',
      'fail',
      'unsupported',
      'pass',
    ]);
    expect(run.stale.map((s) => s.id)).toEqual(['vmem.dev.no-such-vector']);
    expect(run.exitCode).toBe(2);
  });

  test('human: flaky among the unexpected results with its attempts, counted in the summary', () => {
    const text = humanReport(run, false);
    expect(text).toContain(`✗ ${FLAKY} — flaky [wedged]\n`);
    expect(text).toMatch(/ {4}attempts: fail \(\d+\.\d ms\), pass \(\d+\.\d ms\)\n/);
    expect(text).toMatch(/vmemct: 6 vectors: 1 error, 2 fail, 1 flaky, 1 unsupported, 1 pass; 3 unexpected/);
  });

  test('results document: format 3, the flaky verdict and every attempt, valid against the schema', () => {
    const doc = resultsDocument(run, {
      adapter: { name: 'model', implementation: 'scripted', capabilities: [] },
      version: 'test',
      vectors: corpus,
      startedAt: new Date(0),
      options: { retries: 1 },
    }) as {
      format: string;
      summary: { byVerdict: Record<string, number>; unexpected: number };
      results: { id: string; verdict: string; status: string; attempts?: { verdict: string; findings: unknown[] }[] }[];
    };
    expect(doc.format).toBe(RESULTS_FORMAT);
    expect(RESULTS_FORMAT).toBe('vmemct-results/3');
    const flaky = doc.results.find((r) => r.id === FLAKY)!;
    expect([flaky.verdict, flaky.status]).toEqual(['flaky', 'unexpected']);
    expect(flaky.attempts?.map((a) => [a.verdict, a.findings.length > 0])).toEqual([
      ['fail', true],
      ['pass', false],
    ]);
    expect(doc.results.find((r) => r.id === PASSES)!.attempts).toBeUndefined();
    expect([doc.summary.byVerdict.flaky, doc.summary.unexpected]).toEqual([1, 3]);
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
    for (const s of ALL_SCHEMAS) ajv.addSchema(s);
    const validate = ajv.getSchema('https://vmemct.dev/schemas/results.json')!;
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
    // Format 2 documents are still read.
    expect(validate({ ...doc, format: 'vmemct-results/2' }) ? [] : validate.errors).toEqual([]);
    // One attempt is not a retry: a single-element `attempts` is refused.
    flaky.attempts = flaky.attempts!.slice(0, 1);
    expect(validate(doc)).toBe(false);
  });

  test('JUnit: valid by junit-10.xsd, one testcase per result with classname, name, time, file and line', () => {
    const xml = junitReport(run, 'vmemct scripted', new Date(0));
    const root = parseXml(xml);
    expect(root.name).toBe('testsuites');
    expect(junitViolations(root)).toEqual([]);
    const cases = root.children.flatMap((s) => s.children.map((c) => ({ suite: s, c })));
    // Every result plus the stale entry, each in the testsuite named by its classname.
    expect(cases.map(({ c }) => c.attrs.name).sort()).toEqual([...ids, 'vmem.dev.no-such-vector'].sort());
    for (const { suite, c } of cases) expect(c.attrs.classname).toBe(suite.attrs.name);
    for (const id of ids) {
      const c = cases.find((x) => x.c.attrs.name === id)!.c;
      const v = vector(id);
      expect(c.attrs.file).toBe(path.relative(process.cwd(), v.source.file));
      expect(c.attrs.line).toBe(String(v.source.line));
      expect(c.attrs.classname).toBe(
        path
          .relative(process.cwd(), v.source.file)
          .replace(/\.yaml$/, '')
          .replace(/\//g, '.'),
      );
      expect(Number(c.attrs.time)).toBeCloseTo(result(id).durationMs / 1000, 2);
    }
    // Counts agree with the cases, and failures plus errors are what makes the exit code non-zero.
    let failures = 0;
    let errors = 0;
    for (const s of root.children) {
      const of = (n: string): number => s.children.filter((c) => c.children.some((x) => x.name === n)).length;
      expect([s.attrs.tests, s.attrs.failures, s.attrs.errors, s.attrs.skipped]).toEqual(
        [s.children.length, of('failure'), of('error'), of('skipped')].map(String),
      );
      failures += of('failure');
      errors += of('error');
    }
    expect([root.attrs.tests, root.attrs.failures, root.attrs.errors]).toEqual(
      [cases.length, failures, errors].map(String),
    );
    expect(failures + errors).toBe(run.results.filter((r) => r.unexpected).length + run.stale.length);
  });

  test('JUnit: failure bodies as the console shows them, error for harness problems, skipped with a reason, expected failures said so', () => {
    const root = parseXml(junitReport(run, 'vmemct scripted'));
    const testcase = (id: string): XmlElement =>
      root.children.flatMap((s) => s.children).find((c) => c.attrs.name === id)!;
    const only = (id: string): string[] => testcase(id).children.map((c) => c.name);

    const failed = testcase(FAILS).children.find((c) => c.name === 'failure')!;
    expect(failed.attrs.type).toBe('wedged');
    expect(failed.attrs.message).toMatch(/^progress: the device made no progress/);
    expect(failed.text).toContain(`✗ ${FAILS} — fail [wedged]`);
    expect(failed.text).toMatch(/ {6}expected: .+\n/);
    expect(failed.text).toMatch(/ {6}observed: .+\n/);
    expect(failed.text).toMatch(
      new RegExp(`step \\d+ \\(${path.relative(process.cwd(), vector(FAILS).source.file)}:\\d+\\)`),
    );
    expect(failed.text).toContain('dev.cfg.3: ');
    expect(failed.text).not.toContain('(unknown requirement)');
    expect(only(FAILS)).toEqual(['failure', 'rerunFailure']);

    expect(only(ERRS)).toEqual(['error', 'rerunError']);
    expect(testcase(ERRS).children[0]!.attrs.type).toBe('harness');
    expect(testcase(ERRS).children[0]!.attrs.message).toContain('the target went away');

    expect(only(FLAKY)).toEqual(['failure', 'rerunFailure']);
    expect(testcase(FLAKY).children[0]!.attrs.message).toMatch(/^flaky: progress: /);
    expect(testcase(FLAKY).children[0]!.text).toMatch(/attempts: fail \(.*\), pass \(/);

    expect(only(DRIVER)).toEqual(['skipped']);
    expect(testcase(DRIVER).children[0]!.attrs.message).toMatch(
      /^unsupported: the model adapter lacks: driver vectors/,
    );

    expect(only(KNOWN)).toEqual(['system-out']);
    expect(testcase(KNOWN).children[0]!.text).toMatch(
      /^expected fail: known fail of the scripted target\n✗|^expected fail: known fail of the scripted target\n•/,
    );

    expect(only(PASSES)).toEqual([]);
    const stale = testcase('vmem.dev.no-such-vector').children[0]!;
    expect([stale.name, stale.attrs.type]).toEqual(['failure', 'stale']);
    expect(testcase('vmem.dev.no-such-vector').attrs.classname).toBe('expectations');
    expect(testcase(FAILS).attrs.classname).toBe('conformance.vectors.device.config');

    // A verdict the rules accept without an entry (acceptable, informational) says so too.
    const passed = result(PASSES);
    const acceptable = {
      ...passed,
      verdict: 'acceptable' as const,
      expected: 'acceptable' as const,
      findings: [{ verdict: 'acceptable' as const, step: 1, check: 'response', message: 'BUSY is allowed' }],
    };
    const c = parseXml(junitReport({ ...run, stale: [], results: [acceptable] }, 'x')).children[0]!.children[0]!;
    expect(c.children.map((x) => [x.name, x.text.split('\n')[0]])).toEqual([
      ['system-out', 'acceptable: response: BUSY is allowed'],
    ]);
  });

  test('JUnit escapes what XML cannot hold: markup, quotes and control characters', () => {
    const r = result(FAILS);
    const nasty = { ...r, findings: [{ ...r.findings[0]!, message: 'a <b> & "c"\u0001\u001b[0m\n]]>' }] };
    const xml = junitReport({ ...run, results: [nasty] }, 'x');
    const c = parseXml(xml).children[0]!.children[0]!;
    expect(c.children[0]!.attrs.message).toBe('progress: a <b> & "c"\uFFFD\uFFFD[0m\n]]>');
  });

  function tapFile(): string {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-tap-')), 'run.tap');
    fs.writeFileSync(file, tapReport(run));
    return file;
  }

  test('TAP: prove fails exactly the unexpected results, skips the unsupported one, and reports no TODO', () => {
    const tap = tapReport(run);
    expect(tap).not.toContain('# TODO');
    expect(tap).toContain(`ok 4 - ${KNOWN} (expected fail: known fail of the scripted target)\n`);
    expect(tap).toContain(`not ok 1 - ${FLAKY} (flaky)\n`);
    const file = tapFile();
    const prove = spawnSync('prove', ['-v', '--exec', 'cat', file], { encoding: 'utf8' });
    expect(prove.error).toBeUndefined();
    expect(prove.stdout).toMatch(/Failed tests?: {2}1-3\n/);
    expect(prove.stdout).toContain('Tests: 6 Failed: 3');
    expect(prove.stdout).not.toMatch(/TODO|Parse errors/);
    expect(prove.stdout).toContain('(less 1 skipped subtest: 2 okay)');
    expect(prove.status).not.toBe(0);
    // Why the report says version 13: prove does not read version 14.
    fs.writeFileSync(file, tapReport(run).replace('TAP version 13', 'TAP version 14'));
    const prove14 = spawnSync('prove', ['--exec', 'cat', file], { encoding: 'utf8' });
    expect(prove14.stdout).toContain("TAP specified version 14 but we don't know about versions later than 13");
  });

  test('TAP: tap-parser counts the same (3 fail, 1 skip, no todo) and reads the YAML diagnostics', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Parser } = require('tap-parser') as {
      Parser: new (
        cb: (r: { fail: number; pass: number; skip: number; todo: number; ok: boolean }) => void,
      ) => NodeJS.WritableStream & {
        on(
          ev: 'assert',
          cb: (a: { id: number; ok: boolean; diag?: Record<string, unknown>; todo?: unknown; skip?: unknown }) => void,
        ): void;
      };
    };
    const asserts: { id: number; ok: boolean; diag?: Record<string, unknown>; todo?: unknown; skip?: unknown }[] = [];
    const summary = await new Promise<{ fail: number; pass: number; skip: number; todo: number; ok: boolean }>(
      (resolve) => {
        const p = new Parser(resolve);
        p.on('assert', (a) => asserts.push(a));
        p.end(fs.readFileSync(tapFile(), 'utf8'));
      },
    );
    expect([summary.ok, summary.fail, summary.pass, summary.skip, summary.todo]).toEqual([false, 3, 3, 1, 0]);
    expect(asserts.map((a) => a.ok)).toEqual([false, false, false, true, true, true]);
    expect(asserts.every((a) => !a.todo)).toBe(true);
    expect(asserts[0]!.diag).toMatchObject({ verdict: 'flaky', attempts: 'fail, pass', severity: 'wedged' });
    expect(asserts[3]!.diag).toMatchObject({ verdict: 'fail', expectation: 'fail: known fail of the scripted target' });
  });
});
