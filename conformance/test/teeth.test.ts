/**
 * "The suite has teeth": deliberately broken variants of the model device (and of the reference
 * driver) are run against the whole vector corpus, and every one of them must be caught — at
 * least one vector must end unexpected. The unmodified model (spec and qemu profiles) is the
 * control: it must pass the same corpus cleanly.
 *
 * The corpus is loaded from conformance/vectors/ at run time, so the matrix follows the corpus as
 * it grows. After the run the mutant → killer-vectors matrix is printed (the vectors that kill each
 * mutant, and how many mutants are killed by 1, 2–4 and 5+ vectors); set VMEMCT_TEETH_REPORT=<file>
 * to write it as JSON as well.
 *
 * Mutants only use the device's public surface: they override public methods (processChain,
 * setRequestedSize, deviceReset, readConfigBytes, writeMemory, notificationCount, …) or wrap
 * their results, or run the model with a profile tweaked into a nonconforming one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createModelAdapter } from '../../adapters/model/src/model-adapter';
import { DEVICE_PROFILES, findDeviceProfile } from '../../model/src/index';
import { loadExpectations } from '../src/runner/expectations';
import { RunResult, runVectors, selectVectors } from '../src/runner/run';
import { loadVectors } from '../src/loader/load';
import { formatProblem, Vector } from '../src/loader/types';

import { DEVICE_MUTANTS } from './teeth/device-mutants';
import { MORE_DEVICE_MUTANTS } from './teeth/device-mutants-more';
import { PROGRESS_DEVICE_MUTANTS } from './teeth/device-mutants-progress';
import { BUSY_DEVICE_MUTANTS } from './teeth/device-mutants-busy';
import { DRIVER_MUTANTS, MULTI_DEVICE_DRIVER_MUTANTS } from './teeth/driver-mutants';
import { MORE_DRIVER_MUTANTS } from './teeth/driver-mutants-more';
import { OBSERVATION_MUTANTS } from './teeth/device-mutants-observation';
import type { Mutant } from './teeth/mutant-kit';

const VECTORS_DIR = path.join(__dirname, '..', 'vectors');

const MUTANTS: readonly Mutant[] = [
  ...DEVICE_MUTANTS,
  ...MORE_DEVICE_MUTANTS,
  ...OBSERVATION_MUTANTS,
  ...PROGRESS_DEVICE_MUTANTS,
  ...BUSY_DEVICE_MUTANTS,
  ...DRIVER_MUTANTS,
  ...MULTI_DEVICE_DRIVER_MUTANTS,
  ...MORE_DRIVER_MUTANTS,
];

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
  readonly killers: readonly {
    readonly id: string;
    readonly verdict: string;
    readonly check: string;
    readonly severity?: string;
  }[];
}

const matrix: MatrixRow[] = [];

/** Killer ids shown per mutant in the summary; the JSON report has them all. */
const SHOWN_KILLERS = 8;

/** How many mutants of a target are killed by 1 vector, by 2–4, and by 5 or more. */
function killSpread(target: 'device' | 'driver'): {
  mutants: number;
  one: number;
  twoToFour: number;
  fiveOrMore: number;
} {
  const rows = matrix.filter((r) => r.target === target && r.killers.length > 0);
  return {
    mutants: matrix.filter((r) => r.target === target).length,
    one: rows.filter((r) => r.killers.length === 1).length,
    twoToFour: rows.filter((r) => r.killers.length >= 2 && r.killers.length <= 4).length,
    fiveOrMore: rows.filter((r) => r.killers.length >= 5).length,
  };
}

/** The mutant → killer-vectors matrix as text: one line per mutant (fewest killers first), then the spread. */
function teethSummary(): string {
  const lines = [...matrix]
    .sort((a, b) => a.killers.length - b.killers.length || a.mutant.localeCompare(b.mutant))
    .map((r) => {
      const shown = r.killers.slice(0, SHOWN_KILLERS).map((k) => k.id);
      const more = r.killers.length > SHOWN_KILLERS ? ` … +${r.killers.length - SHOWN_KILLERS} more` : '';
      return `  ${String(r.killers.length).padStart(3)} ${r.target} ${r.mutant}${r.strict ? ' [strict]' : ''}: ${shown.join(', ') || 'SURVIVED'}${more}`;
    });
  const spread = (['device', 'driver'] as const).map((t) => {
    const s = killSpread(t);
    return `${t}: ${s.mutants} mutants, killed by 1 vector: ${s.one}, by 2–4: ${s.twoToFour}, by 5+: ${s.fiveOrMore}`;
  });
  return ['Teeth: mutant → killing vectors (count, target, mutant: vector ids)', ...lines, ...spread].join('\n');
}

afterAll(() => {
  if (matrix.length > 0) console.log(teethSummary());
  const file = process.env.VMEMCT_TEETH_REPORT;
  if (file) {
    fs.writeFileSync(
      file,
      `${JSON.stringify(
        {
          corpus: { vectors: corpus.length, files: loaded.files.length },
          spread: { device: killSpread('device'), driver: killSpread('driver') },
          mutants: matrix,
        },
        null,
        2,
      )}\n`,
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
        severity: r.severity,
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
    // The run fails (exit 1), and every killing result says how bad it is.
    expect(run.exitCode).toBe(1);
    expect(killers.filter((k) => k.severity === undefined).map((k) => k.id)).toEqual([]);
  });
});

describe('conforming-but-different devices: every model profile passes what its expectation file says', () => {
  const EXPECTATIONS_DIR = path.join(__dirname, '..', 'expectations');
  // Expectation files describe default (non-strict) runs; the spec profile must also pass strict.
  test.each(Object.keys(DEVICE_PROFILES))('%s profile', async (name) => {
    const file = path.join(EXPECTATIONS_DIR, `model-${name}.yaml`);
    const expectations = fs.existsSync(file) ? loadExpectations(file).set : undefined;
    for (const strict of name === 'spec' ? [false, true] : [false]) {
      const run = await runVectors(
        createModelAdapter({ profile: DEVICE_PROFILES[name] }),
        selectVectors(corpus, {}),
        corpus,
        { expectations, strict },
      );
      expect(unexpectedSummary(run)).toEqual([]);
      expect(run.stale).toEqual([]);
      expect(run.exitCode).toBe(0);
    }
  });
});

function unexpectedSummary(run: RunResult): string[] {
  return run.results
    .filter((r) => r.unexpected)
    .map((r) => `${r.vector.id}: ${r.verdict}: ${r.findings.map((f) => `${f.check}: ${f.message}`).join('; ')}`);
}
