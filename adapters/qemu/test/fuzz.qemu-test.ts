/**
 * `vmemct fuzz` against QEMU's real device, judged without an expectation file: QEMU 7.2 answers
 * every fuzz operation inside the conforming set, so the run finds nothing. The budget here is
 * kept to a few thousand operations for the suite; the 100,000-operation figure is run by hand
 * (`vmemct fuzz --adapter qemu --budget 100000`).
 */
import { createQemuAdapter } from '../src/qemu-adapter';
import { createModelAdapter } from '../../model/src/model-adapter';
import { fuzzDevice } from '../../../conformance/src/fuzz/device-fuzz';
import { QEMU } from './qemu-test-support';

/** Operations of the suite's run. */
const OPERATIONS = 4_000;

test(`fuzzing QEMU finds no difference from the reference model in ${OPERATIONS} operations`, async () => {
  const adapter = createQemuAdapter({ located: QEMU });
  try {
    const report = await fuzzDevice(adapter, {
      reference: createModelAdapter(),
      seed: 7,
      budget: { operations: OPERATIONS },
    });
    expect(report.finding?.summary).toBeUndefined();
    expect(report.operations).toBe(OPERATIONS);
    // The operations reached QEMU: every request type, answers of each kind, host resizes and resets.
    for (const key of [
      'request:PLUG',
      'request:UNPLUG',
      'request:UNPLUG_ALL',
      'request:STATE',
      'op:resize',
      'op:device-reset',
    ])
      expect(report.coverage[key]).toBeGreaterThan(0);
    for (const key of ['outcome:ACK', 'outcome:ERROR', 'outcome:BUSY', 'outcome:no-used-entry'])
      expect(report.coverage[key]).toBeGreaterThan(0);
    process.stdout.write(
      `fuzz against ${adapter.info.implementation}: ${report.operations} operations in ${report.elapsedMs} ms (${Math.round((report.operations * 1000) / report.elapsedMs)} operations/s)\n`,
    );
  } finally {
    await adapter.dispose();
  }
}, 600_000);
