import * as path from 'node:path';
import type { DeviceSetup } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import {
  CLOUD_HYPERVISOR_PROFILE,
  DeviceProfile,
  QEMU_PROFILE,
  SPEC_PROFILE,
  findDeviceProfile,
} from '../../../model/src/index';
import { loadVectorText, loadVectors } from '../loader/load';
import { formatProblem } from '../loader/types';
import type { Vector } from '../loader/types';
import { OpenReferenceDevice, lintReport } from '../runner/lint';
import { runVectors } from '../runner/run';
import { RecordingError, recordVectorFile } from './recorder';

const MiB = 1n << 20n;
const ROOT = path.resolve(__dirname, '..', '..', '..');
const RECORDING = path.join(ROOT, 'conformance', 'recordings', 'qemu-7.2.yaml');

/** 512 blocks of 2 MiB at 4 GiB, 64 MiB requested (the recorder's default device). */
const SETUP: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 1024n * MiB,
  addr: 4n << 30n,
  requested_size: 64n * MiB,
  node_id: 0,
  plugged: [],
};

/** Lint's reference device, following the vector (as `vmemct lint` opens it). */
const following: OpenReferenceDevice = (setup, steering) => createModelAdapter({ steering }).openDevice(setup);
/** The reference device making only its own choices (how lint worked before it followed vectors). */
const ownChoices: OpenReferenceDevice = (setup) => createModelAdapter().openDevice(setup);

/**
 * A conforming device that chooses differently from the spec profile wherever it may: the whole
 * region usable and kept by UNPLUG ALL, ERROR for over-budget plugs, the budget checked before the
 * block state, ERROR responses (or a used length of 0) for chains it cannot process, a
 * notification on every resize.
 */
const OTHER_CONFORMING: DeviceProfile = {
  ...SPEC_PROFILE,
  name: 'other-conforming',
  plugCheckOrder: ['range', 'budget', 'state'],
  overBudget: 'ERROR',
  usablePolicy: { kind: 'whole-region' },
  unplugAllUsable: 'keep',
  unknownType: 'error-response',
  malformedChain: 'used-length-zero',
  notifyOnUnchangedResize: true,
};

function load(name: string, text: string): Vector[] {
  const loaded = loadVectorText(name, text);
  expect(loaded.problems.map(formatProblem)).toEqual([]);
  return loaded.vectors;
}

async function record(profile: DeviceProfile, operations: number, seed: number): Promise<string> {
  return recordVectorFile(createModelAdapter({ profile }), {
    setup: SETUP,
    seed,
    operations,
    opsPerVector: 50,
    slug: profile.name,
    implementation: `model ${profile.name}`,
  });
}

const stepsOf = (vectors: readonly Vector[]): number => vectors.reduce((n, v) => n + v.steps.length, 0);

describe('the shipped QEMU 7.2 recording (conformance/recordings/qemu-7.2.yaml)', () => {
  const loaded = loadVectors([RECORDING]);

  test('loads, holds at least 2,000 operations and states the usable_region_size QEMU chose', () => {
    expect(loaded.problems.map(formatProblem)).toEqual([]);
    expect(stepsOf(loaded.vectors)).toBeGreaterThanOrEqual(2_000);
    for (const v of loaded.vectors) expect(v.setup.usable_region_size).toBeDefined();
  });

  test('lints clean: the reference device follows QEMU’s stated answers', async () => {
    const report = await lintReport(loaded.vectors, following);
    expect(report.problems.map(formatProblem)).toEqual([]);
    expect(report.unfinished).toEqual([]);
  });

  test('a reference device making its own choices would have rejected QEMU’s genuine answers', async () => {
    expect((await lintReport(loaded.vectors, ownChoices)).problems.length).toBeGreaterThan(10);
  });

  test('passes on the model with the qemu profile (exit 0), and fails on the spec profile', async () => {
    const onQemuProfile = await runVectors(
      createModelAdapter({ profile: QEMU_PROFILE }),
      loaded.vectors,
      loaded.vectors,
    );
    expect(onQemuProfile.results.filter((r) => r.verdict !== 'pass').map((r) => r.vector.id)).toEqual([]);
    expect(onQemuProfile.exitCode).toBe(0);
    const onSpec = await runVectors(createModelAdapter(), loaded.vectors, loaded.vectors);
    expect(onSpec.exitCode).toBe(1);
  });
});

describe('recordings of other devices', () => {
  test.each([
    ['a conforming device with other choices than every shipped profile', OTHER_CONFORMING],
    ['the qemu profile', QEMU_PROFILE],
  ])('a recording of %s loads, lints clean and passes on the device it was recorded from', async (_name, profile) => {
    const vectors = load('recorded.yaml', await record(profile, 400, 11));
    expect(vectors).toHaveLength(8);
    expect(stepsOf(vectors)).toBe(400);
    expect((await lintReport(vectors, following)).problems.map(formatProblem)).toEqual([]);
    const run = await runVectors(createModelAdapter({ profile }), vectors, vectors);
    expect(run.results.filter((r) => r.verdict !== 'pass').map((r) => r.vector.id)).toEqual([]);
    expect(run.exitCode).toBe(0);
  });

  test('the other conforming device’s recording needs lint to follow it (its choices differ from the spec profile’s)', async () => {
    const vectors = load('recorded.yaml', await record(OTHER_CONFORMING, 400, 11));
    expect((await lintReport(vectors, ownChoices)).problems.length).toBeGreaterThan(0);
  });

  test('answers no conforming device gives are still reported, with file, line and field', async () => {
    // cloud-hypervisor checks the budget before the range: an empty PLUG while over budget is NACKed where ERROR is required.
    const text = await record(CLOUD_HYPERVISOR_PROFILE, 400, 11);
    const problems = (await lintReport(load('ch.yaml', text), following)).problems;
    expect(problems.length).toBeGreaterThan(0);
    const first = problems[0]!;
    expect(first.file).toBe('ch.yaml');
    expect(first.field).toMatch(/^steps\[\d+\]\.expect\.response$/);
    expect(first.reason).toMatch(/^NACK is not something a conforming device answers here/);
    const line = text.split('\n')[first.line - 1]!;
    expect(line).toMatch(/^\s+- request: \{type: PLUG/);
    expect(text.split('\n')[first.line]).toMatch(/response: NACK/);
  });

  test('an adapter without host resize or device reset cannot be recorded from', async () => {
    const model = createModelAdapter();
    const limited = {
      ...model,
      info: { ...model.info, capabilities: model.info.capabilities.filter((c) => c !== 'device-reset') },
    };
    const plan = { setup: SETUP, seed: 1, operations: 10, opsPerVector: 10, slug: 'x', implementation: 'limited' };
    await expect(recordVectorFile(limited, plan)).rejects.toThrow(RecordingError);
    await expect(recordVectorFile(limited, plan)).rejects.toThrow(
      'model:spec lacks device-reset, which the operations need',
    );
  });

  test('the same seed records the same file; another seed another one', async () => {
    const profile = findDeviceProfile('qemu')!;
    const a = await record(profile, 120, 5);
    expect(await record(profile, 120, 5)).toBe(a);
    expect(await record(profile, 120, 6)).not.toBe(a);
  });
});
