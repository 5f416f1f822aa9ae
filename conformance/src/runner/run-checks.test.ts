/**
 * Suite checks through the main runner: verdicts, per-case timeout, expectation files, exit codes,
 * and every report (human, TAP, JUnit, results document), with a fake suite and target.
 */
import Ajv2020 from 'ajv/dist/2020';
import { ALL_SCHEMAS, ResultsSchema } from '../../../spec/src/index';
import { checkReport, resultsDocument, summaryLine, tapReport } from '../report/reports';
import { junitReport } from '../report/junit';
import { CheckTarget, SuiteCheck, checkOutcome } from '../suites/suite';
import type { ExpectationEntry, ExpectationSet } from './expectations';
import { CheckResult, RunResult, runChecks } from './run';
import type { Verdict } from '../judge/verdicts';

/** What the fake checks get: a log of what was opened and closed. */
interface FakeContext {
  readonly log: string[];
}

function check(id: string, run: SuiteCheck<FakeContext>['run'], needs: string[] = []): SuiteCheck<FakeContext> {
  return { id, title: `the ${id} check`, needs, run };
}

const CHECKS: readonly SuiteCheck<FakeContext>[] = [
  check('fk.passes', async () => checkOutcome('pass', 'fk.passes', 'all answered')),
  check('fk.fails', async () => checkOutcome('fail', 'fk.fails', 'SET_OWNER ack: reply flags 0xd, expected 0x5')),
  check('fk.needs-more', async () => checkOutcome('pass', 'fk.needs-more', 'never runs'), ['CONFIG']),
];

function fakeTarget(log: string[] = []): CheckTarget<FakeContext> {
  return {
    info: { name: 'fake', implementation: 'fake back-end 1.0', capabilities: ['MQ'] },
    open(c) {
      const missing = c.needs.filter((n) => n !== 'MQ');
      if (missing.length) return { kind: 'unsupported', reason: `the back-end does not offer ${missing.join(', ')}` };
      log.push(`open ${c.id}`);
      return { kind: 'ready', context: { log }, close: () => log.push(`close ${c.id}`) };
    },
  };
}

function expectations(...entries: [string, Verdict][]): ExpectationSet {
  return {
    file: 'fake.yaml',
    implementation: 'fake back-end',
    entries: entries.map(([pattern, verdict], i): ExpectationEntry => ({
      pattern,
      verdict,
      reason: 'known result of the fake',
      maxMatches: 1,
      line: i + 5,
    })),
  };
}

function verdicts(run: RunResult<CheckResult>): Record<string, string> {
  return Object.fromEntries(run.results.map((r) => [r.check.id, `${r.verdict}${r.unexpected ? ' (unexpected)' : ''}`]));
}

describe('runChecks', () => {
  test('should run each check with a fresh context, closed after it, and judge it like a vector', async () => {
    const log: string[] = [];
    const seen: string[] = [];
    const run = await runChecks(fakeTarget(log), 'fake', CHECKS, CHECKS, {
      onResult: (r, done, total) => seen.push(`${r.check.id} ${done}/${total}`),
    });
    expect(verdicts(run)).toEqual({
      'fk.passes': 'pass',
      'fk.fails': 'fail (unexpected)',
      'fk.needs-more': 'unsupported',
    });
    expect(log).toEqual(['open fk.passes', 'close fk.passes', 'open fk.fails', 'close fk.fails']);
    expect(seen).toEqual(['fk.passes 1/3', 'fk.fails 2/3', 'fk.needs-more 3/3']);
    expect(run.results[2]!.findings).toEqual([
      { verdict: 'unsupported', step: 0, check: 'needs', message: 'the back-end does not offer CONFIG' },
    ]);
    expect(run.results.every((r) => r.kind === 'check' && r.suite === 'fake')).toBe(true);
    expect(run.exitCode).toBe(1);
  });

  test('should hold expectation files both ways and report stale entries', async () => {
    const known = await runChecks(fakeTarget(), 'fake', CHECKS, CHECKS, {
      expectations: expectations(['fk.fails', 'fail']),
    });
    expect(known.exitCode).toBe(0);
    expect(known.results[1]).toMatchObject({ verdict: 'fail', expected: 'fail', unexpected: false });
    const wrong = await runChecks(fakeTarget(), 'fake', CHECKS, CHECKS, {
      expectations: expectations(['fk.fails', 'fail'], ['fk.passes', 'fail']),
    });
    expect(verdicts(wrong)['fk.passes']).toBe('pass (unexpected)');
    expect(wrong.exitCode).toBe(1);
    const stale = await runChecks(fakeTarget(), 'fake', CHECKS.slice(0, 1), CHECKS, {
      expectations: expectations(['fk.gone', 'fail']),
    });
    expect(stale.stale).toEqual([{ id: 'fk.gone', reason: 'fake.yaml:5: matches no check' }]);
    expect(stale.exitCode).toBe(1);
  });

  test('should report a check that throws as error (our side failed) and exit 2', async () => {
    const throwing = [check('fk.throws', async () => Promise.reject(new Error('memfd_create: EMFILE')))];
    const run = await runChecks(fakeTarget(), 'fake', throwing, throwing);
    expect(run.results[0]).toMatchObject({
      verdict: 'error',
      findings: [{ check: 'harness', message: 'our side failed: Error: memfd_create: EMFILE' }],
    });
    expect(run.exitCode).toBe(2);
  });

  test('should time a check out after the per-case timeout and still close its context', async () => {
    const log: string[] = [];
    const hanging = [check('fk.hangs', () => new Promise(() => undefined))];
    const run = await runChecks(fakeTarget(log), 'fake', hanging, hanging, { timeoutMs: 30 });
    expect(run.results[0]).toMatchObject({
      verdict: 'timeout',
      findings: [{ message: 'the check did not finish within 30 ms' }],
    });
    expect(log).toEqual(['open fk.hangs', 'close fk.hangs']);
    expect(run.exitCode).toBe(2);
  });

  test('should exit 2 when every check was unsupported (nothing was tested)', async () => {
    const run = await runChecks(fakeTarget(), 'fake', CHECKS.slice(2), CHECKS);
    expect(run.testedNothing).toBe(true);
    expect(run.exitCode).toBe(2);
  });
});

describe('reports of a check run', () => {
  let run: RunResult<CheckResult>;
  beforeAll(async () => {
    run = await runChecks(fakeTarget(), 'fake', CHECKS, CHECKS, { expectations: expectations(['fk.fails', 'fail']) });
  });

  test('the human report should print one aligned line per check, then the counts, unexpected results and exit code', () => {
    const lines = checkReport(run).split('\n');
    expect(lines[0]).toMatch(/^pass {8}fk\.passes +\d+\.\d ms {2}all answered$/);
    expect(lines[1]).toMatch(
      /^fail {8}fk\.fails +\d+\.\d ms {2}\[answer\] SET_OWNER ack: reply flags 0xd, expected 0x5$/,
    );
    expect(lines[2]).toBe(`${' '.repeat(12)}expected fail: known result of the fake`);
    expect(lines[3]).toMatch(/^unsupported fk\.needs-more +\d+\.\d ms {2}the back-end does not offer CONFIG$/);
    // The messages (a failing one led by its severity) start in the same column.
    expect(
      new Set([lines[0]!.indexOf('all'), lines[1]!.indexOf('[answer]'), lines[3]!.indexOf('the back-end')]).size,
    ).toBe(1);
    expect(lines[4]).toMatch(/^3 checks: 1 pass, 1 fail, 1 unsupported, 0 error \(\d+\.\d ms\); 0 unexpected; exit 0$/);
    expect(summaryLine(run)).toMatch(/^vmemct: 3 checks: 1 fail, 1 unsupported, 1 pass; 0 unexpected; \d+ ms; exit 0$/);
  });

  test('TAP and JUnit should name every check, with the expected failure as an ok point saying so (not a TODO)', async () => {
    const tap = tapReport(run);
    expect(tap).toContain('ok 2 - fk.fails (expected fail: known result of the fake)\n');
    expect(tap).not.toContain('# TODO');
    expect(tap).toContain('ok 3 - fk.needs-more # SKIP unsupported: the back-end does not offer CONFIG');
    expect(tap).toContain('  suite: "fake"');
    const xml = junitReport(run, 'vmemct fake');
    for (const c of CHECKS) expect(xml).toContain(`name="${c.id}"`);
  });

  test('the results document should be valid against the results schema', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    for (const schema of ALL_SCHEMAS) ajv.addSchema(schema);
    const validate = ajv.getSchema(ResultsSchema.$id)!;
    const doc = resultsDocument(run, {
      adapter: fakeTarget().info,
      version: '0.1.0',
      vectors: [],
      checks: CHECKS,
      expectations: 'fake.yaml',
      startedAt: new Date(0),
      options: {},
    }) as { results: object[]; suite: object };
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
    expect(doc.suite).toMatchObject({ vectorCount: 0, checkCount: 3 });
    expect(doc.results[1]).toMatchObject({
      id: 'fk.fails',
      kind: 'check',
      suite: 'fake',
      verdict: 'fail',
      expected: 'fail',
      status: 'expected',
      expectationReason: 'known result of the fake',
    });
    // A check record without its suite is refused; a vector record still needs its file, line and target.
    expect(validate({ ...doc, results: [{ ...doc.results[0], suite: undefined }] })).toBe(false);
    expect(validate({ ...doc, results: [{ ...doc.results[0], kind: undefined, suite: undefined }] })).toBe(false);
  });
});
