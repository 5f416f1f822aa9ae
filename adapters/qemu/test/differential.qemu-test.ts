import { createQemuAdapter } from '../src/qemu-adapter';
import { createModelAdapter } from '../../model/src/model-adapter';
import { QEMU_PROFILE } from '../../../model/src/index';
import { compareSessions, generateOperations, formatMismatch } from '../../../conformance/src/differential/differential';
import { QEMU, SMALL_DEVICE } from './qemu-test-support';

test('random', async () => {
  const q = createQemuAdapter({ located: QEMU });
  const m = createModelAdapter({ profile: QEMU_PROFILE });
  const seed = Number(process.env.SEED ?? 1);
  const n = Number(process.env.N ?? 2000);
  const ops = generateOperations(seed, n, SMALL_DEVICE);
  const t = Date.now();
  try {
    const r = await compareSessions(await q.openDevice(SMALL_DEVICE), await m.openDevice(SMALL_DEVICE), ops);
    console.log(r ? formatMismatch(r, 'qemu', 'model', seed) : `match ${n} in ${Date.now() - t} ms`);
  } finally {
    await q.dispose();
  }
});
