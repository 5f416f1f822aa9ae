/**
 * The `host_busy` step: it reaches the adapter's hostBusy(), and while the host holds the device
 * busy an unlisted BUSY is judged (BUSY is permitted: acceptable), not retried; after the release
 * the progress rule applies again (dev.suite.1).
 */
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { VirtioMemDevice } from '../../../model/src/index';
import { loadVectorText } from '../loader/load';
import { runVectors } from '../runner/run';

function vectorOf(steps: string) {
  const r = loadVectorText(
    'host-busy-inline.yaml',
    `format: vmemct-vectors/1
vectors:
  - id: vmem.dev.test.host-busy
    title: host busy
    requirements: [dev.plug.5]
    target: device
    setup: {requested_size: 8MiB}
    steps:
${steps}`,
  );
  expect(r.problems).toEqual([]);
  return r.vectors;
}

/** A model device that never leaves the host's busy period, whatever the host says. */
class StuckBusy extends VirtioMemDevice {
  override setHostBusy(): void {
    super.setHostBusy(true);
  }
}

async function run(steps: string, stuck = false) {
  const vectors = vectorOf(steps);
  const adapter = stuck
    ? createModelAdapter({ deviceFactory: (params, profile) => new StuckBusy(params, profile) })
    : createModelAdapter();
  return (await runVectors(adapter, vectors, vectors, { busyRetries: 3 })).results[0]!;
}

describe('host_busy', () => {
  test('needs the host-busy capability', () => {
    expect(vectorOf('      - host_busy: true\n')[0]!.needs).toEqual(['host-busy']);
  });

  test('an unlisted BUSY while the host is busy is judged acceptable, not retried into a progress failure', async () => {
    const result = await run(
      ['      - host_busy: true', '      - request: {type: PLUG, addr: addr, nb_blocks: 1}', ''].join('\n'),
    );
    expect(result.verdict).toBe('acceptable');
    expect(result.findings.map((f) => [f.check, f.verdict])).toEqual([['response', 'acceptable']]);
  });

  test('a stated ACK while the host is busy fails the stated expectation', async () => {
    const result = await run(
      [
        '      - host_busy: true',
        '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
        '        expect: {response: ACK}',
        '',
      ].join('\n'),
    );
    expect(result.verdict).toBe('fail');
    expect(result.findings.map((f) => f.check)).toEqual(['response']);
  });

  test('after the release the request is acknowledged; a device still busy then fails progress', async () => {
    const steps = [
      '      - host_busy: true',
      '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
      '        expect: {response: BUSY}',
      '      - host_busy: false',
      '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
      '        expect: {response: ACK}',
      '',
    ].join('\n');
    expect((await run(steps)).verdict).toBe('pass');
    const stuck = await run(steps, true);
    expect(stuck.verdict).toBe('fail');
    expect(stuck.findings.map((f) => [f.step, f.check])).toEqual([[4, 'progress']]);
  });
});
