import { loadVectorText } from '../loader/load';
import { scriptAtProbe } from './script-at-probe';

const vector = (steps: string) => {
  const loaded = loadVectorText(
    'v.yaml',
    `format: vmemct-vectors/1\nvectors:\n  - id: vmem.drv.probe.script\n    title: a probe script\n    requirements: [drv.init.2]\n    target: driver\n    setup: {requested_size: 16MiB}\n    steps:\n${steps}`,
  );
  expect(loaded.problems).toEqual([]);
  return loaded.vectors[0]!;
};

describe('scriptAtProbe', () => {
  test('the inject step right after start is armed at probe, the last of several winning', () => {
    expect(
      scriptAtProbe(
        vector(
          '      - start: true\n      - inject: {response: BUSY, count: 10, types: [UNPLUG_ALL]}\n      - settle: true\n',
        ),
      ),
    ).toEqual({
      response: 'BUSY',
      count: 10,
      types: ['UNPLUG_ALL'],
    });
    const two = vector(
      '      - resize: 0\n      - start: true\n      - inject: {response: NACK, count: 1}\n      - inject: {response: ACK, count: 5, trailer: "de ad"}\n      - settle: true\n',
    );
    expect(scriptAtProbe(two)).toEqual({ response: 'ACK', count: 5, trailer: Uint8Array.from([0xde, 0xad]) });
  });

  test('an inject after another step, or a vector without start, arms nothing', () => {
    expect(
      scriptAtProbe(vector('      - start: true\n      - settle: true\n      - inject: {response: BUSY, count: 1}\n')),
    ).toBeUndefined();
    expect(
      scriptAtProbe(vector('      - start: true\n      - resize: 8MiB\n      - inject: {response: BUSY, count: 1}\n')),
    ).toBeUndefined();
  });
});
