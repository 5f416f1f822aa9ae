/**
 * A harness error after the device already failed is a consequence of that failure: the vector is
 * `fail` (exit 1), its findings keep what was found before the adapter gave up, and the error is
 * placed at the step where it happened.
 */
import type { Adapter, DeviceSession } from '../../../adapters/core/src/contract';
import { AdapterError } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { loadVectorText } from '../loader/load';
import type { Vector } from '../loader/types';
import { runVectors } from './run';

/** The model adapter, with sessions whose `failingSubmit`-th submit throws an adapter error. */
function failingAt(failingSubmit: number): Adapter {
  const model = createModelAdapter();
  return {
    ...model,
    async openDevice(setup) {
      const session = await model.openDevice(setup);
      let submits = 0;
      const wrapped: DeviceSession = Object.create(session) as DeviceSession;
      wrapped.submit = async (chain) => {
        if (++submits === failingSubmit) throw new AdapterError('the back-end hung up');
        return session.submit(chain);
      };
      return wrapped;
    },
  };
}

function vector(firstExpect: string): Vector[] {
  const loaded = loadVectorText(
    'inline.yaml',
    `format: vmemct-vectors/1
vectors:
  - id: vmem.dev.test.consequence
    title: two plugs
    requirements: [dev.plug.6]
    target: device
    setup: {requested_size: 8MiB}
    steps:
      - request: {type: PLUG, addr: addr, nb_blocks: 1}
        expect: {response: ${firstExpect}}
      - request: {type: PLUG, addr: addr + block_size, nb_blocks: 1}
        expect: {response: ACK}
`,
  );
  expect(loaded.problems).toEqual([]);
  return loaded.vectors;
}

test('an adapter error after a failed step: fail, with both findings, the error at its step', async () => {
  const vectors = vector('NACK');
  const run = await runVectors(failingAt(2), vectors, vectors);
  const [result] = run.results;
  expect(result.verdict).toBe('fail');
  expect(result.findings.map((f) => [f.verdict, f.step, f.check])).toEqual([
    ['fail', 1, 'response'],
    ['error', 2, 'adapter'],
  ]);
  expect(run.exitCode).toBe(1);
});

test('an adapter error with no failure before it stays a harness error (exit 2)', async () => {
  const vectors = vector('ACK');
  const run = await runVectors(failingAt(2), vectors, vectors);
  const [result] = run.results;
  expect(result.verdict).toBe('error');
  expect(result.findings.map((f) => [f.verdict, f.step, f.check])).toEqual([['error', 2, 'adapter']]);
  expect(run.exitCode).toBe(2);
});
