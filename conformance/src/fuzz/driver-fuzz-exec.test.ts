/**
 * Driver fuzzing through the harness protocol: the example Python driver (examples/driver-python)
 * run by the exec adapter. Its seeded deviation (a BUSY-answered request retried at once) must be
 * found and written as a vector; with the deviation switched off, the same budget finds nothing.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openExecAdapter } from '../../../adapters/exec/src/exec-adapter';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import type { Adapter } from '../../../adapters/core/src/contract';
import { loadVectorText } from '../loader/load';
import { runVectors } from '../runner/run';
import { fuzzDriver } from './driver-fuzz';

const EXAMPLE = path.join(__dirname, '..', '..', '..', 'examples', 'driver-python');
const DEVIATION = 'RETRY_BUSY_WITHOUT_BACKOFF = True';
const hasPython = spawnSync('python3', ['--version']).status === 0;

async function withPythonDriver<T>(dir: string, use: (adapter: Adapter) => Promise<T>): Promise<T> {
  const adapter = await openExecAdapter({
    transport: { kind: 'command', program: 'python3', args: [path.join(dir, 'vmem_driver.py')] },
  });
  try {
    return await use(adapter);
  } finally {
    await adapter.dispose();
  }
}

async function verdictOf(adapter: Adapter, yaml: string): Promise<string> {
  const loaded = loadVectorText('found.yaml', yaml);
  expect(loaded.problems).toEqual([]);
  return (await runVectors(adapter, loaded.vectors, loaded.vectors)).results[0]!.verdict;
}

(hasPython ? describe : describe.skip)('driver fuzzing of the example Python driver (exec)', () => {
  test('finds the seeded deviation (BUSY retried at once) and writes a vector that fails on it and passes on the reference driver', async () => {
    const report = await withPythonDriver(EXAMPLE, (adapter) =>
      fuzzDriver(adapter, { seed: 1, budget: { operations: 1500 }, reference: createModelAdapter() }),
    );
    expect(report.finding).toBeDefined();
    const finding = report.finding!;
    expect(finding.requirements).toEqual(['drv.suite.2']);
    expect(finding.summary).toMatch(/^fail at step \d+: retry_delay: /);
    expect(finding.operationsAfterShrink).toBeLessThanOrEqual(3);
    expect(await withPythonDriver(EXAMPLE, (adapter) => verdictOf(adapter, finding.vectorYaml))).toBe('fail');
    expect(await verdictOf(createModelAdapter(), finding.vectorYaml)).toBe('pass');
  });

  test('with the deviation switched off the same budget finds nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-pydriver-'));
    try {
      for (const file of ['vmem_driver.py', 'virtio_mem_driver.py'])
        fs.copyFileSync(path.join(EXAMPLE, file), path.join(dir, file));
      const driver = path.join(dir, 'virtio_mem_driver.py');
      const source = fs.readFileSync(driver, 'utf8');
      expect(source).toContain(DEVIATION);
      fs.writeFileSync(driver, source.replace(DEVIATION, 'RETRY_BUSY_WITHOUT_BACKOFF = False'));
      const report = await withPythonDriver(dir, (adapter) =>
        fuzzDriver(adapter, { seed: 1, budget: { operations: 1500 }, strict: true }),
      );
      expect(report.finding).toBeUndefined();
      expect(report.operations).toBeGreaterThanOrEqual(1500);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
