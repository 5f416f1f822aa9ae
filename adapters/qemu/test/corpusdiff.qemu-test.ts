import { createQemuAdapter } from '../src/qemu-adapter';
import { createModelAdapter } from '../../model/src/model-adapter';
import { QEMU_PROFILE } from '../../../model/src/index';
import { RecordingAdapter, compareTranscripts } from '../../../conformance/src/differential/differential';
import { runVectors } from '../../../conformance/src/runner/run';
import { QEMU, deviceVectors } from './qemu-test-support';

test('corpus', async () => {
  const q = new RecordingAdapter(createQemuAdapter({ located: QEMU }));
  const m = new RecordingAdapter(createModelAdapter({ profile: QEMU_PROFILE }));
  const vectors = deviceVectors();
  let diffs = 0;
  try {
    for (const v of vectors) {
      q.beginVector(v.id); m.beginVector(v.id);
      const a = await runVectors(q, [v], vectors, {});
      const b = await runVectors(m, [v], vectors, {});
      const d = compareTranscripts(q.transcripts.get(v.id)!, m.transcripts.get(v.id)!);
      if (d || a.results[0]!.verdict !== b.results[0]!.verdict) { diffs++; console.log(v.id, a.results[0]!.verdict, b.results[0]!.verdict, JSON.stringify(d)); }
    }
  } finally { await q.dispose(); }
  console.log('diffs', diffs, 'of', vectors.length);
});
