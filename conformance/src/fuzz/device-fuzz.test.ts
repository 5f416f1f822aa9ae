import type { Adapter } from '../../../adapters/core/src/contract';
import { openExecAdapter } from '../../../adapters/exec/src/exec-adapter';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { transpiledCli } from '../../../adapters/model-harness/test/transpiled-cli';
import { DEVICE_PROFILES } from '../../../model/src/device/profiles';
import { DEVICE_MUTANTS } from '../../test/teeth/device-mutants';
import { loadVectorText } from '../loader/load';
import { lintReport } from '../runner/lint';
import { runVectors } from '../runner/run';
import { fuzzDevice } from './device-fuzz';
import { generateFuzzOperations } from './device-operations';
import type { FuzzReport } from './fuzz-types';

/**
 * The planted bugs the fuzzer must find, each within the same budget and seed: every device
 * mutant of the teeth test (a SHOULD-level one with `strict`).
 */
const PLANTED = DEVICE_MUTANTS.map((m) => m.name);
const BUDGET = { operations: 10_000 };
const SEED = 1;

/** The verdict of the one vector in `yaml`, run by the runner on `adapter`. */
async function verdictOf(adapter: Adapter, yaml: string, strict: boolean): Promise<string> {
  const loaded = loadVectorText('finding.yaml', yaml);
  expect(loaded.problems).toEqual([]);
  const run = await runVectors(adapter, loaded.vectors, loaded.vectors, { strict });
  expect(run.results).toHaveLength(1);
  return run.results[0]!.verdict;
}

describe('device fuzzing finds planted bugs and writes a minimal failing vector', () => {
  test.each(PLANTED)('%s', async (name) => {
    const mutant = DEVICE_MUTANTS.find((m) => m.name === name)!;
    expect(mutant).toBeDefined();
    const adapter = createModelAdapter(mutant.adapter);
    const report = await fuzzDevice(adapter, {
      reference: createModelAdapter(),
      seed: SEED,
      budget: BUDGET,
      strict: mutant.strict,
    });
    const finding = report.finding!;
    expect(finding).toBeDefined();
    expect(report.operations).toBeLessThanOrEqual(BUDGET.operations);
    expect(finding.operationsAfterShrink).toBeLessThanOrEqual(3);
    expect(finding.operationsAfterShrink).toBeLessThanOrEqual(finding.operationsBeforeShrink);
    expect(finding.requirements.length).toBeGreaterThan(0);
    expect(finding.vectorYaml).toContain(`requirements: [${finding.requirements.join(', ')}]`);
    // The vector fails on the mutant and passes on the unmutated model, through the runner.
    expect(await verdictOf(createModelAdapter(mutant.adapter), finding.vectorYaml, mutant.strict)).toBe(
      mutant.strict ? 'non-strict' : 'fail',
    );
    expect(await verdictOf(createModelAdapter(), finding.vectorYaml, mutant.strict)).toBe('pass');
    // …and lints clean.
    const loaded = loadVectorText('finding.yaml', finding.vectorYaml);
    const lint = await lintReport(loaded.vectors, (setup, steering) =>
      createModelAdapter({ steering }).openDevice(setup),
    );
    expect(lint.problems).toEqual([]);
  });

  test('the same seed finds the same vector', async () => {
    const mutant = DEVICE_MUTANTS.find((m) => m.name === PLANTED[0])!;
    const a = await fuzzDevice(createModelAdapter(mutant.adapter), {
      reference: createModelAdapter(),
      seed: 9,
      budget: BUDGET,
    });
    const b = await fuzzDevice(createModelAdapter(mutant.adapter), {
      reference: createModelAdapter(),
      seed: 9,
      budget: BUDGET,
    });
    expect(a.finding?.vectorYaml).toBeDefined();
    expect(a.finding?.vectorYaml).toBe(b.finding?.vectorYaml);
  });
});

describe('device fuzzing of conforming devices finds nothing', () => {
  // Strict too: the memory content and post-reboot STATE the fuzzer states hold on every conforming profile.
  test.each(['spec', 'qemu-7.2', 'qemu-10.0'])('model profile %s (strict)', async (name) => {
    const profile = DEVICE_PROFILES[name]!;
    const report = await fuzzDevice(createModelAdapter({ profile }), {
      reference: createModelAdapter(),
      seed: 2,
      budget: { operations: 3_000 },
      strict: true,
    });
    expect(report.finding?.summary).toBeUndefined();
    expect(report.operations).toBe(3_000);
    // Every request type and the main outcome classes were exercised.
    for (const key of [
      'request:PLUG',
      'request:UNPLUG',
      'request:UNPLUG_ALL',
      'request:STATE',
      'outcome:ACK',
      'outcome:ERROR',
      'outcome:BUSY',
    ])
      expect(report.coverage[key]).toBeGreaterThan(0);
  });

  // The profiles of devices with known failures (their expectation files list them as fail): the fuzzer finds those.
  test.each([
    ['cloud-hypervisor', /used entry of length 0|answered NACK.*dev\.plug\.3/],
    ['firecracker', /usable-covers-requested|answered no used entry/],
  ])('model profile %s: its known failure is found', async (name, known) => {
    const report = await fuzzDevice(createModelAdapter({ profile: DEVICE_PROFILES[name]! }), {
      reference: createModelAdapter(),
      seed: 2,
      budget: { operations: 3_000 },
    });
    expect(report.finding?.summary).toMatch(known);
  });

  test('progress is reported and a time budget ends the run', async () => {
    const ticks: number[] = [];
    const report: FuzzReport = await fuzzDevice(createModelAdapter(), {
      reference: createModelAdapter(),
      seed: 3,
      budget: { timeMs: 300 },
      onProgress: (p) => ticks.push(p.operations),
    });
    expect(report.finding).toBeUndefined();
    expect(ticks.length).toBeGreaterThan(0);
    expect(ticks[ticks.length - 1]).toBe(report.operations);
    expect(report.elapsedMs).toBeLessThan(5_000);
  });

  test('the model served over the harness protocol (exec adapter, serve-harness) finds nothing', async () => {
    const cli = transpiledCli();
    const adapter = await openExecAdapter({
      transport: { kind: 'command', program: process.execPath, args: [cli.bin, 'serve-harness'] },
    });
    try {
      const report = await fuzzDevice(adapter, {
        reference: createModelAdapter(),
        seed: 4,
        budget: { operations: 600 },
      });
      expect(report.finding?.summary).toBeUndefined();
      expect(report.operations).toBe(600);
      expect(report.coverage['outcome:ACK']).toBeGreaterThan(0);
    } finally {
      await adapter.dispose();
      cli.remove();
    }
  }, 60_000);
});

describe('fuzz operations', () => {
  const setup = {
    block_size: 2n << 20n,
    region_size: 256n << 20n,
    addr: 1n << 32n,
    requested_size: 64n << 20n,
    node_id: 0,
    plugged: [],
  };
  test('only steps the adapter can perform are generated', () => {
    const ops = generateFuzzOperations(5, 2_000, setup, { capabilities: [] });
    expect(ops).toHaveLength(2_000);
    expect(ops.every((op) => op.kind === 'request' || op.kind === 'short-request')).toBe(true);
  });
  test('boundaries are aimed at: 0 and 65,535 blocks, the usable and region ends', () => {
    const ops = generateFuzzOperations(6, 2_000, setup, { capabilities: ['host-resize', 'device-reset'] });
    const requests = ops.filter((op) => op.kind === 'request');
    expect(requests.some((op) => op.nbBlocks === 0)).toBe(true);
    expect(requests.some((op) => op.nbBlocks === 0xffff)).toBe(true);
    for (const anchor of ['usable_end', 'region_end', 'requested_end', 'plugged_end'])
      expect(requests.some((op) => 'anchor' in op.addr && op.addr.anchor === anchor)).toBe(true);
    expect(ops.some((op) => op.kind === 'resize')).toBe(true);
  });
});

describe('shrinking', () => {
  test('a valid UNPLUG answered ERROR shrinks to the smallest pair: PLUG then UNPLUG of the first block', async () => {
    const mutant = DEVICE_MUTANTS.find((m) => m.name === 'ERROR instead of ACK for a valid UNPLUG')!;
    const report = await fuzzDevice(createModelAdapter(mutant.adapter), {
      reference: createModelAdapter(),
      seed: SEED,
      budget: BUDGET,
    });
    const steps = report.finding!.vectorYaml.split('\n').filter((l) => /^ {6}- /.test(l));
    expect(steps).toEqual([
      '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
      '      - request: {type: UNPLUG, addr: addr, nb_blocks: 1}',
    ]);
  });
});
