/**
 * "The suite has teeth": deliberately broken variants of the model device (and of the reference
 * driver) are run against the whole vector corpus, and every one of them must be caught — at
 * least one vector must end unexpected. The unmodified model (spec and qemu profiles) is the
 * control: it must pass the same corpus cleanly.
 *
 * The corpus is loaded from conformance/vectors/ at run time, so the matrix follows the corpus as
 * it grows. Set VMEMCT_TEETH_REPORT=<file> to write the mutant → killer-vectors matrix as JSON.
 *
 * Mutants only use the device's public surface: they override public methods (processChain,
 * setRequestedSize, deviceReset, readConfigBytes, writeMemory, notificationCount, …) or wrap
 * their results, or run the model with a profile tweaked into a nonconforming one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createModelAdapter } from '../../adapters/model/src/model-adapter';
import { findDeviceProfile } from '../../model/src/index';
import { RunResult, runVectors, selectVectors } from '../src/runner/run';
import { loadVectors } from '../src/loader/load';
import { formatProblem, Vector } from '../src/loader/types';

import { DEVICE_MUTANTS } from './teeth/device-mutants';
import { PROGRESS_DEVICE_MUTANTS } from './teeth/device-mutants-progress';
import { DRIVER_MUTANTS } from './teeth/driver-mutants';
import type { Mutant } from './teeth/mutant-kit';

const VECTORS_DIR = path.join(__dirname, '..', 'vectors');

const MUTANTS: readonly Mutant[] = [...DEVICE_MUTANTS, ...PROGRESS_DEVICE_MUTANTS, ...DRIVER_MUTANTS];

// ------------------------------------------------------------------------------------------------

const loaded = loadVectors([VECTORS_DIR]);
const corpus: readonly Vector[] = loaded.vectors;
const byTarget = (target: 'device' | 'driver'): Vector[] => selectVectors(corpus, { target });

/** Ids the unmodified model ends unexpected with, per target and strictness (subtracted from killers). */
const baselineUnexpected = new Map<string, Set<string>>();

async function baseline(target: 'device' | 'driver', strict: boolean): Promise<Set<string>> {
  const key = `${target}:${strict}`;
  let ids = baselineUnexpected.get(key);
  if (!ids) {
    const run = await runVectors(createModelAdapter(), byTarget(target), corpus, { strict });
    ids = new Set(run.results.filter((r) => r.unexpected).map((r) => r.vector.id));
    baselineUnexpected.set(key, ids);
  }
  return ids;
}

interface MatrixRow {
  readonly mutant: string;
  readonly target: 'device' | 'driver';
  readonly strict: boolean;
  readonly vectorsRun: number;
  readonly killers: readonly { readonly id: string; readonly verdict: string; readonly check: string }[];
}

const matrix: MatrixRow[] = [];

afterAll(() => {
  const file = process.env.VMEMCT_TEETH_REPORT;
  if (file) {
    fs.writeFileSync(
      file,
      `${JSON.stringify({ corpus: { vectors: corpus.length, files: loaded.files.length }, mutants: matrix }, null, 2)}\n`,
    );
  }
});

describe('the corpus', () => {
  test('loads without problems', () => {
    expect(loaded.problems.map(formatProblem)).toEqual([]);
    expect(corpus.length).toBeGreaterThan(0);
  });
});

describe('control: the unmodified model passes the whole corpus', () => {
  const all = (): Vector[] => selectVectors(corpus, {});

  test('spec profile: zero unexpected, exit 0', async () => {
    const run = await runVectors(createModelAdapter(), all(), corpus);
    expect(unexpectedSummary(run)).toEqual([]);
    expect(run.stale).toEqual([]);
    expect(run.exitCode).toBe(0);
  });

  test('qemu profile: zero unexpected, exit 0', async () => {
    const qemu = findDeviceProfile('qemu');
    expect(qemu).toBeDefined();
    const run = await runVectors(createModelAdapter({ profile: qemu }), all(), corpus);
    expect(unexpectedSummary(run)).toEqual([]);
    expect(run.exitCode).toBe(0);
  });
});

describe('the suite has teeth: every mutant is caught by at least one vector', () => {
  test.each(MUTANTS.map((m) => [m.name, m] as const))('%s', async (_name, mutant) => {
    const selected = byTarget(mutant.target);
    const clean = await baseline(mutant.target, mutant.strict);
    const run = await runVectors(createModelAdapter(mutant.adapter), selected, corpus, { strict: mutant.strict });
    const killers = run.results
      .filter((r) => r.unexpected && !clean.has(r.vector.id))
      .map((r) => ({
        id: r.vector.id,
        verdict: r.verdict,
        check: r.findings.find((f) => f.verdict === r.verdict)?.check ?? '',
      }));
    matrix.push({
      mutant: mutant.name,
      target: mutant.target,
      strict: mutant.strict,
      vectorsRun: selected.length,
      killers,
    });

    const status =
      killers.length > 0
        ? `killed by ${killers.map((k) => `${k.id} [${k.verdict}: ${k.check}]`).join(', ')}`
        : `SURVIVED: none of ${selected.length} ${mutant.target} vectors (strict: ${mutant.strict}) ended unexpected`;
    expect(status).toMatch(/^killed by /);
    // Caught by a conformance finding, not merely by crashing the harness.
    const conformanceKill = killers.some((k) => k.verdict === 'fail' || k.verdict === 'non-strict');
    expect(conformanceKill ? 'conformance finding' : `only harness verdicts: ${status}`).toBe('conformance finding');
  });
});

function unexpectedSummary(run: RunResult): string[] {
  return run.results
    .filter((r) => r.unexpected)
    .map((r) => `${r.vector.id}: ${r.verdict}: ${r.findings.map((f) => `${f.check}: ${f.message}`).join('; ')}`);
}
