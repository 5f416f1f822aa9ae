import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import type { Adapter } from '../../../adapters/core/src/contract';
import { loadVectorText } from '../loader/load';
import { formatProblem } from '../loader/types';
import { OpenReferenceDevice, lintVectors } from '../runner/lint';
import { runVectors } from '../runner/run';
import { DRIVER_MUTANTS } from '../../test/teeth/driver-mutants';
import { MORE_DRIVER_MUTANTS } from '../../test/teeth/driver-mutants-more';
import { fuzzDriver } from './driver-fuzz';
import { DriverScenario, expectationsOf, generateScenario } from './driver-scenario';
import { shrinkScenario } from './driver-shrink';
import { seededRandom } from '../differential/differential';

/** The fixed seed and budget every planted bug must be found within. */
const SEED = 1;
const BUDGET = { operations: 1500 };

const reference: OpenReferenceDevice = (setup, steering) => createModelAdapter({ steering }).openDevice(setup);

function descriptionOf(yaml: string): string | undefined {
  return loadVectorText('found.yaml', yaml).vectors[0]?.description;
}

async function runVector(adapter: Adapter, yaml: string, strict: boolean) {
  const loaded = loadVectorText('found.yaml', yaml);
  expect(loaded.problems.map(formatProblem)).toEqual([]);
  const run = await runVectors(adapter, loaded.vectors, loaded.vectors, { strict });
  return { loaded, result: run.results[0]! };
}

describe('driver fuzzing finds every planted driver bug within a fixed budget', () => {
  const found: string[] = [];
  afterAll(() =>
    console.log(['Driver fuzzing: mutant → operations to find, steps before → after shrinking', ...found].join('\n')),
  );

  test.each([...DRIVER_MUTANTS, ...MORE_DRIVER_MUTANTS].map((m) => [m.name, m] as const))(
    '%s',
    async (_name, mutant) => {
      const adapter = createModelAdapter(mutant.adapter);
      const report = await fuzzDriver(adapter, {
        seed: SEED,
        budget: BUDGET,
        strict: mutant.strict,
        reference: createModelAdapter(),
        replayHint: 'vmemct run --adapter model --vectors found.yaml',
      });
      expect(report.target).toBe('driver');
      expect(report.finding).toBeDefined();
      const finding = report.finding!;
      found.push(
        `  ${String(report.operations).padStart(5)} ops, ${finding.operationsBeforeShrink} → ${finding.operationsAfterShrink} steps: ${mutant.name}: ${finding.summary}`,
      );
      expect(report.operations).toBeLessThanOrEqual(BUDGET.operations + 20);
      expect(finding.operationsAfterShrink).toBeLessThanOrEqual(finding.operationsBeforeShrink);
      expect(finding.operationsAfterShrink).toBeLessThanOrEqual(5);
      expect(finding.summary).not.toMatch(/did not fail again/);
      expect(descriptionOf(finding.vectorYaml)).toMatch(
        /^Found by vmemct fuzz --target driver --seed 1 \(scenario \d+\) on mutant:.*The reference driver passes it\. Replay: vmemct run --adapter model --vectors found\.yaml$/,
      );

      // The vector: valid, lints clean, fails on the mutant and passes on the reference driver.
      const onMutant = await runVector(adapter, finding.vectorYaml, mutant.strict);
      expect(onMutant.loaded.vectors[0]!.id).toBe(finding.vectorId);
      expect(onMutant.loaded.vectors[0]!.requirements).toEqual(finding.requirements);
      expect((await lintVectors(onMutant.loaded.vectors, reference)).map(formatProblem)).toEqual([]);
      expect(onMutant.result.unexpected).toBe(true);
      expect(['fail', 'non-strict']).toContain(onMutant.result.verdict);
      const onReference = await runVector(createModelAdapter(), finding.vectorYaml, true);
      expect(onReference.result.findings).toEqual([]);
      expect(onReference.result.verdict).toBe('pass');
    },
  );
});

describe('the reference driver', () => {
  test('shows nothing in 3000 operations, strict, on two seeds; coverage counts every kind of step', async () => {
    for (const seed of [SEED, 20261207]) {
      const report = await fuzzDriver(createModelAdapter(), { seed, budget: { operations: 3000 }, strict: true });
      expect(report.finding).toBeUndefined();
      expect(report.operations).toBeGreaterThanOrEqual(3000);
      for (const key of ['start', 'settle', 'resize', 'inject', 'system-reset', 'suspend'])
        expect(report.coverage[`step:${key}`]).toBeGreaterThan(0);
      for (const key of ['ACK', 'BUSY', 'NACK', 'ERROR']) expect(report.coverage[`inject:${key}`]).toBeGreaterThan(0);
      expect(report.coverage['settle:max-requests']).toBeGreaterThan(0);
      expect(report.coverage['settle:timeout']).toBeGreaterThan(0);
      expect(report.coverage['setup:plugged-at-start']).toBeGreaterThan(0);
      expect(report.coverage['setup:over-65535-blocks']).toBeGreaterThan(0);
      expect(report.coverage['outcome:conforming']).toBeGreaterThan(0);
      // What the driver did: every request type, answered as injected, and memory writes.
      for (const type of ['PLUG', 'UNPLUG', 'UNPLUG_ALL', 'STATE'])
        expect(report.coverage[`response:${type}:ACK`]).toBeGreaterThan(0);
      for (const type of ['PLUG', 'UNPLUG', 'UNPLUG_ALL'])
        expect(report.coverage[`response:${type}:BUSY`]).toBeGreaterThan(0);
      expect(report.coverage['response:STATE:ERROR']).toBeGreaterThan(0);
      expect(report.coverage['response:PLUG:NACK']).toBeGreaterThan(0);
      expect(report.coverage['response:PLUG:ERROR']).toBeGreaterThan(0);
      expect(report.coverage['driver:memory-write']).toBeGreaterThan(0);
      expect(report.coverage['driver:config-write']).toBeUndefined();
      expect(report.coverage['settle:cut-short']).toBeGreaterThan(0);
    }
  });

  test('a time budget ends the run and progress is reported', async () => {
    const seen: number[] = [];
    const report = await fuzzDriver(createModelAdapter(), {
      seed: 3,
      budget: { timeMs: 300 },
      onProgress: (p) => seen.push(p.operations),
    });
    expect(report.finding).toBeUndefined();
    expect(report.elapsedMs).toBeGreaterThanOrEqual(300);
    expect(report.elapsedMs).toBeLessThan(5000);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[seen.length - 1]).toBe(report.operations);
  });
});

describe('the reference check', () => {
  test('a scenario the reference driver fails as well is not reported', async () => {
    // The mutant as its own reference: every scenario it fails, its reference fails too.
    const mutant = MORE_DRIVER_MUTANTS.find((m) => m.name.includes('always allows suspend'))!;
    const report = await fuzzDriver(createModelAdapter(mutant.adapter), {
      seed: SEED,
      budget: { operations: 300 },
      reference: createModelAdapter(mutant.adapter),
    });
    expect(report.finding).toBeUndefined();
    expect(report.coverage['outcome:reference-fails']).toBeGreaterThan(0);
    expect(report.coverage['outcome:reference-fails']).toBe(report.coverage['outcome:fail']);
  });
});

describe('an adapter with fewer capabilities', () => {
  test('gets only scenarios it can run: no injected answers, resets, suspends or plugged set-ups, nothing unsupported', async () => {
    const model = createModelAdapter();
    const limited: Adapter = {
      ...model,
      info: { ...model.info, capabilities: ['host-resize', 'observe-driver'], targetCapabilities: undefined },
      openDevice: (setup) => model.openDevice(setup),
      openDriver: (setup, options) => model.openDriver!(setup, options),
      dispose: () => model.dispose(),
    };
    const report = await fuzzDriver(limited, { seed: SEED, budget: { operations: 500 }, strict: true });
    expect(report.finding).toBeUndefined();
    expect(report.coverage['step:resize']).toBeGreaterThan(0);
    for (const key of [
      'step:inject',
      'step:system-reset',
      'step:suspend',
      'setup:plugged-at-start',
      'outcome:unsupported',
    ])
      expect(report.coverage[key]).toBeUndefined();
    expect(report.coverage['outcome:conforming']).toBeGreaterThan(0);
  });
});

describe('determinism', () => {
  test('the same seed and budget give the same finding and vector', async () => {
    const mutant = MORE_DRIVER_MUTANTS.find((m) => m.name.includes('always allows suspend'))!;
    const a = await fuzzDriver(createModelAdapter(mutant.adapter), { seed: 7, budget: BUDGET });
    const b = await fuzzDriver(createModelAdapter(mutant.adapter), { seed: 7, budget: BUDGET });
    expect(a.finding).toBeDefined();
    expect(b.finding).toEqual(a.finding);
    expect(b.operations).toBe(a.operations);
    expect(b.coverage).toEqual(a.coverage);
  });
});

describe('scenarios', () => {
  test('use only the host actions the adapter can perform', () => {
    for (let seed = 0; seed < 200; seed++) {
      const s = generateScenario({ random: seededRandom(seed) }, new Set(['host-resize']));
      expect(s.steps[0]).toEqual({ kind: 'start' });
      expect(s.steps[s.steps.length - 1]).toEqual({ kind: 'settle' });
      expect(s.steps.filter((x) => !['start', 'settle', 'resize'].includes(x.kind))).toEqual([]);
      expect(s.setup.plugged).toEqual([]);
    }
  });

  test('expectations: convergence after unlimited settles until a NACK or ERROR; retry delay after BUSY; no NACK repeats after NACK', () => {
    const setup = { blockSizeMiB: 2, regionBlocks: 16, requestedBlocks: 4, plugged: [], nodeId: 0 };
    const s: DriverScenario = {
      setup,
      steps: [
        { kind: 'settle' },
        { kind: 'start' },
        { kind: 'settle' },
        { kind: 'settle', maxRequests: 2 },
        { kind: 'settle', timeoutMs: 100 },
        { kind: 'inject', response: 'BUSY', count: 2 },
        { kind: 'settle' },
        { kind: 'inject', response: 'NACK', count: 1, types: ['PLUG'] },
        { kind: 'settle' },
      ],
    };
    expect(expectationsOf(s)).toEqual([
      [],
      [],
      ['settled: true', 'converged: true'],
      [],
      [],
      [],
      ['settled: true', 'converged: true', 'retry_delay: {min_ms: 10}'],
      [],
      ['retry_delay: {min_ms: 10}', 'nack_repeats: {max: 0}'],
    ]);
  });

  test('shrinking keeps the leading start, drops what the failure does not need and simplifies the set-up', async () => {
    const s: DriverScenario = {
      setup: {
        blockSizeMiB: 128,
        regionBlocks: 1024,
        requestedBlocks: 700,
        plugged: [{ first: 1, count: 3 }],
        features: ['VERSION_1', 'ACPI_PXM'],
        nodeId: 7,
        configPadding: [1, 2, 3, 4, 5, 6],
      },
      steps: [
        { kind: 'start' },
        { kind: 'settle' },
        { kind: 'resize', blocks: 900 },
        { kind: 'inject', response: 'BUSY', count: 4, types: ['PLUG', 'STATE'], trailer: [1, 2, 3, 4, 5, 6, 7, 8] },
        { kind: 'settle', maxRequests: 3, timeoutMs: 60_000 },
        { kind: 'suspend' },
        { kind: 'system-reset' },
        { kind: 'settle' },
      ],
    };
    // The "failure": a suspend after an injected BUSY.
    const fails = async (c: DriverScenario): Promise<boolean> => {
      const b = c.steps.findIndex((x) => x.kind === 'inject' && x.response === 'BUSY');
      return b >= 0 && c.steps.slice(b).some((x) => x.kind === 'suspend');
    };
    const shrunk = await shrinkScenario(s, fails);
    expect(shrunk.scenario.steps).toEqual([
      { kind: 'start' },
      { kind: 'inject', response: 'BUSY', count: 1, types: ['STATE'] },
      { kind: 'suspend' },
    ]);
    expect(shrunk.scenario.setup).toEqual({
      blockSizeMiB: 2,
      regionBlocks: 1,
      requestedBlocks: 0,
      plugged: [],
      features: undefined,
      nodeId: 0,
      configPadding: undefined,
    });
    expect(shrunk.trials).toBeGreaterThan(0);
  });
});
