/**
 * Conforming-but-different drivers pass: the whole driver corpus runs against variants of the
 * reference driver that differ where a conforming driver may differ — the backoff after BUSY
 * (a fixed 1 s retry, Linux's 50 s doubling to 300 s, 100 ms doubling) and the way it deals
 * with memory found plugged at start. Each must pass every vector, in strict mode too, or fail
 * exactly the vectors listed for it here, each with the reason. Driver vectors that built in the
 * reference driver's timing would fail the fast variants (issue 15).
 */
import * as path from 'node:path';
import { createModelAdapter } from '../../adapters/model/src/model-adapter';
import { ReferenceDriver, ReferenceDriverOptions } from '../../model/src/index';
import { loadVectors } from '../src/loader/load';
import { formatProblem } from '../src/loader/types';
import { runVectors, selectVectors } from '../src/runner/run';

const loaded = loadVectors([path.join(__dirname, '..', 'vectors')]);
const driverVectors = selectVectors(loaded.vectors, { target: 'driver' });

interface Variant {
  readonly name: string;
  readonly options: ReferenceDriverOptions;
  /** Vectors this variant is known to end unexpected, each with the reason (none for a backoff variant). */
  readonly failsWithReason: Readonly<Record<string, string>>;
}

const VARIANTS: readonly Variant[] = [
  { name: 'default: 50 s after BUSY, doubling up to 300 s', options: {}, failsWithReason: {} },
  {
    name: 'a fixed 1 s retry after BUSY',
    options: { initialBackoffMs: 1000, backoffFactor: 1, maxBackoffMs: 1000 },
    failsWithReason: {},
  },
  {
    name: '100 ms after BUSY, doubling up to 300 s',
    options: { initialBackoffMs: 100, backoffFactor: 2 },
    failsWithReason: {},
  },
  {
    name: '10 ms after BUSY, growing by half up to 5 s',
    options: { initialBackoffMs: 10, backoffFactor: 1.5, maxBackoffMs: 5000 },
    failsWithReason: {},
  },
  {
    name: 'memory found plugged at start resynchronised with STATE instead of UNPLUG ALL, 1 s fixed retry',
    options: { initStrategy: 'state-resync', initialBackoffMs: 1000, backoffFactor: 1 },
    failsWithReason: {
      'vmem.drv.init.plugged-beyond-usable':
        'blocks plugged beyond the usable region can only be cleared with UNPLUG ALL; STATE may not reach them',
      'vmem.drv.init.unplug-all-busy-across-settles':
        'the vector follows drv.init.2 to the letter: it expects UNPLUG ALL to be retried, and STATE cannot see the blocks beyond the usable region',
    },
  },
];

test('the driver corpus loads', () => {
  expect(loaded.problems.map(formatProblem)).toEqual([]);
  expect(driverVectors.length).toBeGreaterThan(60);
});

describe.each(VARIANTS.map((v) => [v.name, v] as const))('a conforming driver variant passes: %s', (_name, variant) => {
  test.each([false, true])('strict %s: only the listed vectors end unexpected', async (strict) => {
    const adapter = createModelAdapter({
      driverFactory: () => new ReferenceDriver(variant.options),
      implementation: `reference-driver:${variant.name}`,
    });
    const run = await runVectors(adapter, driverVectors, loaded.vectors, { strict });
    const unexpected = run.results
      .filter((r) => r.unexpected)
      .map((r) => `${r.vector.id}: ${r.verdict}: ${r.findings.map((f) => `${f.check}: ${f.message}`).join('; ')}`);
    expect(unexpected.map((u) => u.split(':')[0]).sort()).toEqual(Object.keys(variant.failsWithReason).sort());
    if (Object.keys(variant.failsWithReason).length === 0) expect(unexpected).toEqual([]);
    expect(run.results.filter((r) => r.verdict === 'pass').length).toBeGreaterThan(driverVectors.length - 5);
  });
});
