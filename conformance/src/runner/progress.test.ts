/**
 * Progress (dev.suite.1): an unlisted BUSY is retried up to the run's bound, and a device still
 * answering BUSY after it fails `progress` — never `acceptable`; a BUSY the vector lists keeps
 * its stated meaning.
 */
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { DescriptorChain, ProcessResult, VirtioMemDevice } from '../../../model/src/index';
import { VIRTIO_MEM_REQ_STATE } from '../../../spec/src/index';
import { requestOf } from '../../test/teeth/mutant-kit';
import { loadVectorText } from '../loader/load';
import type { Vector } from '../loader/types';
import { BUSY_RETRIES } from '../steps/request';
import { runVectors } from './run';

/** A model device that answers BUSY to its first `count` PLUG, UNPLUG and UNPLUG ALL requests that would succeed. */
class BusyFirst extends VirtioMemDevice {
  remaining = 0;
  override processChain(chain: DescriptorChain): ProcessResult {
    const type = requestOf(chain)?.type;
    if (this.remaining > 0 && type !== undefined && type !== VIRTIO_MEM_REQ_STATE) {
      this.remaining--;
      this.injectBusy(1);
    }
    return super.processChain(chain);
  }
}

function busyFirst(count: number) {
  return createModelAdapter({
    deviceFactory: (params, profile) => {
      const device = new BusyFirst(params, profile);
      device.remaining = count;
      return device;
    },
  });
}

function vectorsOf(response: string): Vector[] {
  const r = loadVectorText(
    'progress-inline.yaml',
    `format: vmemct-vectors/1
vectors:
  - id: vmem.dev.test.plug-after-busy
    title: PLUG of one block
    requirements: [dev.plug.6]
    target: device
    setup: {requested_size: 8MiB}
    steps:
      - request: {type: PLUG, addr: addr, nb_blocks: 1}
        expect: {response: ${response}}
      - request: {type: STATE, addr: addr, nb_blocks: 1}
        expect: {response: ACK}
`,
  );
  expect(r.problems).toEqual([]);
  return r.vectors;
}

async function runWith(busyAnswers: number, busyRetries: number | undefined, response = 'ACK') {
  const vectors = vectorsOf(response);
  const run = await runVectors(busyFirst(busyAnswers), vectors, vectors, { busyRetries });
  return { run, result: run.results[0]! };
}

describe('the BUSY retry bound', () => {
  test('bound 0: the first unlisted BUSY fails progress (dev.suite.1) and ends the vector', async () => {
    const { run, result } = await runWith(1, 0);
    expect(result.verdict).toBe('fail');
    expect(result.findings).toEqual([
      expect.objectContaining({
        verdict: 'fail',
        step: 1,
        check: 'progress',
        observed: 'BUSY',
        requirements: ['dev.suite.1'],
        message: expect.stringMatching(/^the device made no progress: it answered BUSY once in a row/),
      }),
    ]);
    expect(run.exitCode).toBe(1);
  });

  test.each([1, 2, 5])('bound %i: that many BUSY answers are retried through; one more fails', async (bound) => {
    const through = await runWith(bound, bound);
    expect(through.result.verdict).toBe('pass');
    expect(through.run.exitCode).toBe(0);
    const beyond = await runWith(bound + 1, bound);
    expect(beyond.result.verdict).toBe('fail');
    expect(beyond.result.findings.map((f) => [f.check, f.message])).toEqual([
      ['progress', expect.stringContaining(`answered BUSY ${bound + 1} times in a row`)],
    ]);
  });

  test(`without a bound the default (${BUSY_RETRIES.default}) applies`, async () => {
    expect((await runWith(BUSY_RETRIES.default, undefined)).result.verdict).toBe('pass');
    expect((await runWith(BUSY_RETRIES.default + 1, undefined)).result.findings[0]?.check).toBe('progress');
  });

  test('a device answering BUSY forever fails, never acceptable', async () => {
    const { result } = await runWith(1_000_000, 3);
    expect(result.verdict).toBe('fail');
    expect(result.findings.map((f) => f.verdict)).not.toContain('acceptable');
  });

  test('a BUSY the vector lists is judged as stated, not retried', async () => {
    const listed = await runWith(1_000_000, 0, '{BUSY: pass, ACK: pass}');
    expect(listed.result.verdict).toBe('pass');
    const only = await runWith(1, 0, 'BUSY');
    expect(only.result.verdict).toBe('pass');
  });
});
