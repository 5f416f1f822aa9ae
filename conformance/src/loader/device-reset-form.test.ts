import { loadVectorText } from './load';
import { formatProblem } from './types';

const file = (steps: string[]): string =>
  [
    'format: vmemct-vectors/1',
    'vectors:',
    '  - id: vmem.dev.test.reset-form',
    '    title: a device reset without re-initialisation',
    '    requirements: [dev.virtio.4]',
    '    target: device',
    '    steps:',
    ...steps.map((s) => `      - ${s}`),
    '',
  ].join('\n');

describe('device_reset forms', () => {
  test('true and {reinitialise: true} re-initialise; {reinitialise: false} does not', () => {
    const { vectors, problems } = loadVectorText(
      't.yaml',
      file(['device_reset: true', 'device_reset: {reinitialise: true}', 'device_reset: {reinitialise: false}']),
    );
    expect(problems).toEqual([]);
    expect(vectors[0]!.steps.map((s) => s.action)).toEqual([
      { kind: 'device-reset', reinitialise: true },
      { kind: 'device-reset', reinitialise: true },
      { kind: 'device-reset', reinitialise: false },
    ]);
    expect(vectors[0]!.needs).toContain('device-reset');
  });

  test('any other value is refused, naming the line', () => {
    const { problems } = loadVectorText('t.yaml', file(['device_reset: {reinit: false}']));
    expect(problems.map(formatProblem).join('\n')).toMatch(/^t\.yaml:8: /);
  });

  test('a request between a reset without re-initialisation and the next initialise is refused', () => {
    const { problems } = loadVectorText(
      't.yaml',
      file([
        'device_reset: {reinitialise: false}',
        'request: {type: STATE, addr: addr, nb_blocks: 1}',
        'initialise: {accept: offered}',
        'request: {type: STATE, addr: addr, nb_blocks: 1}',
      ]),
    );
    expect(problems.map(formatProblem)).toEqual([
      expect.stringMatching(
        /^t\.yaml:9: .*no driver is active here: step 1 reset the device without re-initialising it/,
      ),
    ]);
  });
});
