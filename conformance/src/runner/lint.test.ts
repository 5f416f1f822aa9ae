import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { loadVectorText } from '../loader/load';
import { formatProblem } from '../loader/types';
import { OpenReferenceDevice, lintReport, lintVectors } from './lint';

const reference: OpenReferenceDevice = (setup, steering) => createModelAdapter({ steering }).openDevice(setup);

async function lint(steps: string[], title = 'a scenario under test', target = 'device'): Promise<string[]> {
  const text = [
    'format: vmemct-vectors/1',
    'defaults:',
    '  setup: {requested_size: 64MiB}',
    'vectors:',
    `  - id: vmem.${target === 'device' ? 'dev' : 'drv'}.lint.one`,
    `    title: ${title}`,
    `    requirements: [${target === 'device' ? 'dev.plug.6' : 'drv.op.8'}]`,
    `    target: ${target}`,
    '    steps:',
    ...steps,
    '',
  ].join('\n');
  const loaded = loadVectorText('lint.yaml', text);
  expect(loaded.problems.map(formatProblem)).toEqual([]);
  return (await lintVectors(loaded.vectors, reference)).map(formatProblem);
}

describe('lint: a dry run of the device handlers on the reference model', () => {
  test('a vector whose expectations a conforming device can meet has no problems', async () => {
    expect(
      await lint(['      - request: {type: PLUG, addr: addr, nb_blocks: 1}', '        expect: {response: ACK}']),
    ).toEqual([]);
  });

  test('an outcome graded pass that no conforming device answers is a problem at the step (later steps see the model after the earlier ones)', async () => {
    const problems = await lint([
      '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
      '        expect: {response: ACK}',
      '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
      '        expect: {response: {ACK: pass, ERROR: informational}}',
    ]);
    expect(problems).toEqual([
      expect.stringMatching(
        /^lint\.yaml:12: steps\[1\]\.expect\.response: ACK is not something a conforming device answers here \(conforming: ERROR/,
      ),
    ]);
  });

  test('non-strict and fail grades may name anything', async () => {
    expect(
      await lint([
        '      - request: {type: UNPLUG, addr: addr, nb_blocks: 1}',
        '        expect: {response: {ERROR: pass, NACK: fail, ACK: non-strict}}',
      ]),
    ).toEqual([]);
  });

  test('a step the dry run cannot perform is a problem at that step', async () => {
    expect(
      await lint([
        '      - read_config: true',
        '      - request: {type: PLUG, addr: addr - 5 * region_size, nb_blocks: 1}',
      ]),
    ).toEqual([expect.stringMatching(/^lint\.yaml:11: steps\[1\]: request\.addr -\d+ does not fit in 64 bits/)]);
  });

  test('a title that states a requirement level is a problem; driver vectors are not dry-run', async () => {
    expect(
      await lint(
        ['      - start: true', '      - settle: true', '        expect: {converged: false}'],
        'The driver MUST converge',
        'driver',
      ),
    ).toEqual([
      'lint.yaml:5: title: titles describe the scenario; the requirement level lives in the catalogue (drop MUST/SHOULD/MAY)',
    ]);
  });
});

describe('lint: the dry run has a time budget', () => {
  const text = [
    'format: vmemct-vectors/1',
    'vectors:',
    '  - id: vmem.dev.lint.budget',
    '    title: a scenario under test',
    '    requirements: [dev.plug.6]',
    '    target: device',
    '    setup: {requested_size: 64MiB}',
    '    steps:',
    '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
    '        expect: {response: ERROR}',
    '',
  ].join('\n');

  test('a vector over its budget is reported unfinished, not as a problem (its expectations were not reached)', async () => {
    const { vectors } = loadVectorText('budget.yaml', text);
    const report = await lintReport(vectors, reference, { perVectorMs: -1, totalMs: 10_000 });
    expect(report.problems).toEqual([]);
    expect(report.unfinished).toEqual([
      {
        file: 'budget.yaml',
        line: 3,
        id: 'vmem.dev.lint.budget',
        reason: expect.stringMatching(/^dry run stopped at step 1 of 1: over the budget/),
      },
    ]);
  });

  test('once the total budget is spent, later vectors are not dry-run', async () => {
    const { vectors } = loadVectorText('budget.yaml', text);
    const report = await lintReport(vectors, reference, { perVectorMs: 1000, totalMs: -1 });
    expect(report.unfinished.map((u) => u.reason)).toEqual([
      expect.stringMatching(/^not dry-run: lint's -1 ms budget/),
    ]);
  });

  test('within the budget the same vector is a problem', async () => {
    const { vectors } = loadVectorText('budget.yaml', text);
    const report = await lintReport(vectors, reference);
    expect(report.unfinished).toEqual([]);
    expect(report.problems).toHaveLength(1);
  });
});
