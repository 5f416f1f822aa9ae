/**
 * QEMU against the model's `qemu` profile, byte for byte: a seeded random sequence of 10,000
 * operations, and the transcripts of the whole device corpus. Set VMEMCT_DIFF_SEED to replay a
 * reported seed.
 */
import { createQemuAdapter } from '../src/qemu-adapter';
import { createModelAdapter } from '../../model/src/model-adapter';
import { QEMU_PROFILE } from '../../../model/src/index';
import {
  RecordingAdapter,
  compareSessions,
  compareTranscripts,
  formatMismatch,
  generateOperations,
} from '../../../conformance/src/differential/differential';
import { runVectors } from '../../../conformance/src/runner/run';
import { QEMU, SMALL_DEVICE, deviceVectors } from './qemu-test-support';

const SEED = Number(process.env.VMEMCT_DIFF_SEED ?? 20261124);
/** About 87 % of operations are requests: 12,500 operations carry more than 10,000 requests. */
const OPERATIONS = 12_500;

test(`a seeded sequence of ${OPERATIONS} operations (over 10,000 requests) gives identical responses and configurations on QEMU and the qemu profile`, async () => {
  const ops = generateOperations(SEED, OPERATIONS, SMALL_DEVICE);
  const requests = ops.filter((op) => op.kind === 'request').length;
  expect(requests).toBeGreaterThanOrEqual(10_000);
  expect(ops.filter((op) => op.kind === 'resize').length).toBeGreaterThan(500);
  const qemu = createQemuAdapter({ located: QEMU });
  const model = createModelAdapter({ profile: QEMU_PROFILE });
  try {
    const mismatch = await compareSessions(
      await qemu.openDevice(SMALL_DEVICE),
      await model.openDevice(SMALL_DEVICE),
      ops,
    );
    if (mismatch) throw new Error(formatMismatch(mismatch, 'QEMU', 'model:qemu', SEED));
  } finally {
    await qemu.dispose();
  }
});

test('every device vector QEMU can run leaves the same transcript on QEMU and the qemu profile', async () => {
  const vectors = deviceVectors();
  const qemu = new RecordingAdapter(createQemuAdapter({ located: QEMU }));
  const model = new RecordingAdapter(createModelAdapter({ profile: QEMU_PROFILE }));
  const differences: string[] = [];
  let compared = 0;
  try {
    for (const vector of vectors) {
      qemu.beginVector(vector.id);
      model.beginVector(vector.id);
      const onQemu = (await runVectors(qemu, [vector], vectors, {})).results[0]!;
      if (onQemu.verdict === 'unsupported') continue;
      const onModel = (await runVectors(model, [vector], vectors, {})).results[0]!;
      compared++;
      const diff = compareTranscripts(qemu.transcripts.get(vector.id)!, model.transcripts.get(vector.id)!);
      if (diff)
        differences.push(
          `${vector.id} call ${diff.index}: QEMU ${JSON.stringify(diff.left)} / model ${JSON.stringify(diff.right)}`,
        );
      else if (onQemu.verdict !== onModel.verdict)
        differences.push(`${vector.id}: verdict ${onQemu.verdict} on QEMU, ${onModel.verdict} on the model`);
    }
  } finally {
    await qemu.dispose();
  }
  expect(differences).toEqual([]);
  expect(compared).toBeGreaterThan(200);
});
