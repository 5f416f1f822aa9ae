/**
 * Recordings against QEMU's real device: the shipped recording of QEMU 7.2 passes on it, and a
 * fresh recording from it (the differential machinery's seeded operations) loads, lints clean
 * and passes when run again.
 */
import * as path from 'node:path';
import { createQemuAdapter } from '../src/qemu-adapter';
import { createModelAdapter } from '../../model/src/model-adapter';
import { loadVectorText, loadVectors } from '../../../conformance/src/loader/load';
import { formatProblem } from '../../../conformance/src/loader/types';
import { lintReport } from '../../../conformance/src/runner/lint';
import { runVectors } from '../../../conformance/src/runner/run';
import { loadExpectations } from '../../../conformance/src/runner/expectations';
import { recordVectorFile } from '../../../conformance/src/differential/recorder';
import { QEMU, ROOT, SMALL_DEVICE } from './qemu-test-support';

/** The recording's expectation file: QEMU 7.2's one known deviation (config_generation), graded informational. */
const EXPECTATIONS = loadExpectations(path.join(ROOT, 'conformance', 'recordings', 'qemu-7.2.expectations.yaml')).set!;

/** Verdicts other than a pass, or informational findings that are all the known config_generation deviation. */
function beyondKnownDeviation(run: Awaited<ReturnType<typeof runVectors>>): string[] {
  return run.results
    .filter(
      (r) =>
        r.verdict !== 'pass' &&
        !(r.verdict === 'informational' && r.findings.every((f) => f.check === 'config_generation')),
    )
    .map((r) => `${r.vector.id}: ${r.verdict}: ${r.findings.map((f) => `${f.check}: ${f.message}`).join('; ')}`);
}

test('the shipped recording of QEMU 7.2 passes on QEMU (exit 0)', async () => {
  const loaded = loadVectors([path.join(ROOT, 'conformance', 'recordings', 'qemu-7.2.yaml')]);
  expect(loaded.problems.map(formatProblem)).toEqual([]);
  const adapter = createQemuAdapter({ located: QEMU });
  try {
    const run = await runVectors(adapter, loaded.vectors, loaded.vectors, {
      expectations: EXPECTATIONS,
    });
    expect(beyondKnownDeviation(run)).toEqual([]);
    expect(run.exitCode).toBe(0);
  } finally {
    await adapter.dispose();
  }
});

test('a fresh recording from QEMU loads, lints clean and passes on QEMU again', async () => {
  const adapter = createQemuAdapter({ located: QEMU });
  try {
    const text = await recordVectorFile(adapter, {
      setup: SMALL_DEVICE,
      seed: 424242,
      operations: 500,
      opsPerVector: 125,
      slug: 'qemu',
      implementation: 'QEMU',
    });
    const loaded = loadVectorText('fresh.yaml', text);
    expect(loaded.problems.map(formatProblem)).toEqual([]);
    const lint = await lintReport(loaded.vectors, (setup, steering) =>
      createModelAdapter({ steering }).openDevice(setup),
    );
    expect(lint.problems.map(formatProblem)).toEqual([]);
    const run = await runVectors(adapter, loaded.vectors, loaded.vectors, {
      expectations: EXPECTATIONS,
    });
    expect(run.results).toHaveLength(4);
    expect(beyondKnownDeviation(run)).toEqual([]);
    expect(run.exitCode).toBe(0);
  } finally {
    await adapter.dispose();
  }
});
