import type { Adapter, DeviceSetup } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { QEMU_PROFILE, decodeConfig } from '../../../model/src/index';
import { loadVectorText } from '../loader/load';
import { formatProblem } from '../loader/types';
import type { Vector } from '../loader/types';
import { OpenReferenceDevice, lintReport } from './lint';
import { runVectors } from './run';
import { evaluateSetup } from './setup';

const following: OpenReferenceDevice = (setup, steering) => createModelAdapter({ steering }).openDevice(setup);
const ownChoices: OpenReferenceDevice = (setup) => createModelAdapter().openDevice(setup);

/** One device vector with `setup` (flow mapping text) and `steps` (YAML lines, indented by 6). */
function vector(setup: string, steps: string[]): Vector {
  const text = [
    'format: vmemct-vectors/1',
    'vectors:',
    '  - id: vmem.dev.follow.one',
    '    title: a scenario under test',
    '    requirements: [dev.plug.6]',
    '    target: device',
    `    setup: ${setup}`,
    '    steps:',
    ...steps,
    '',
  ].join('\n');
  const loaded = loadVectorText('follow.yaml', text);
  expect(loaded.problems.map(formatProblem)).toEqual([]);
  return loaded.vectors[0]!;
}

async function lint(v: Vector, open: OpenReferenceDevice = following): Promise<string[]> {
  return (await lintReport([v], open)).problems.map(formatProblem);
}

describe('setup: usable_region_size', () => {
  test('is evaluated after requested_size and handed to the adapter', () => {
    const v = vector('{requested_size: 64MiB, usable_region_size: requested_size + 256MiB}', [
      '      - read_config: true',
    ]);
    const evaluated = evaluateSetup(v);
    expect(evaluated.ok && evaluated.setup.usable_region_size).toBe(320n << 20n);
  });

  test.each([
    ['3MiB', 'not a multiple of block_size'],
    ['62MiB', 'below requested_size 0x4000000'],
    ['2GiB', 'exceeds region_size'],
    ['-2MiB', 'usable_region_size -2097152 is negative'],
  ])('%s is a set-up problem naming the field', async (usable, reason) => {
    const v = vector(`{requested_size: 64MiB, usable_region_size: ${usable}}`, ['      - read_config: true']);
    const evaluated = evaluateSetup(v);
    expect(evaluated.ok).toBe(false);
    expect(!evaluated.ok && evaluated.reason).toMatch(/^setup\.usable_region_size: usable_region_size/);
    const problems = await lint(v);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('follow.yaml:3: setup: setup.usable_region_size:');
    expect(problems[0]).toContain(reason);
  });

  test('a usable region that does not cover the plugged blocks is a set-up problem', () => {
    const v = vector('{requested_size: 8MiB, usable_region_size: 8MiB, plugged: [{first: 2, count: 3}]}', [
      '      - read_config: true',
    ]);
    const evaluated = evaluateSetup(v);
    expect(!evaluated.ok && evaluated.reason).toContain('does not cover the plugged block 4');
  });

  test('the model device starts with it, and the vector passes', async () => {
    const v = vector('{requested_size: 64MiB, usable_region_size: 128MiB}', [
      '      - request: {type: PLUG, addr: addr + 100 * block_size, nb_blocks: 1}',
      '        expect: {response: ERROR}',
      '      - request: {type: PLUG, addr: addr + 40 * block_size, nb_blocks: 1}',
      '        expect: {response: ACK, config: {usable_region_size: 128MiB}}',
    ]);
    const run = await runVectors(createModelAdapter(), [v], [v]);
    expect(run.results[0]!.verdict).toBe('pass');
  });

  test('an adapter that cannot impose it runs the vector only when the device chose the same; otherwise unsupported, with the reason', async () => {
    // Like QEMU: the device picks usable_region_size itself (here the qemu profile's 256 MiB margin).
    const choosesItsOwn: Adapter = {
      ...createModelAdapter({ profile: QEMU_PROFILE }),
      openDevice: (setup: DeviceSetup) =>
        createModelAdapter({ profile: QEMU_PROFILE }).openDevice({ ...setup, usable_region_size: undefined }),
    };
    const same = vector('{requested_size: 64MiB, usable_region_size: 320MiB}', ['      - read_config: true']);
    const other = vector('{requested_size: 64MiB, usable_region_size: 64MiB}', ['      - read_config: true']);
    expect((await runVectors(choosesItsOwn, [same], [same])).results[0]!.verdict).toBe('pass');
    const result = (await runVectors(choosesItsOwn, [other], [other])).results[0]!;
    expect(result.verdict).toBe('unsupported');
    expect(result.findings[0]!.message).toBe(
      "the device chose usable_region_size 0x14000000; the vector's set-up states 0x4000000, which this adapter cannot impose",
    );
  });
});

describe('lint follows the vector', () => {
  test('a stated conforming response the spec profile would not choose is what the reference device answers', async () => {
    // BUSY is always allowed; after it the block is still unplugged, so UNPLUG is answered ERROR.
    const v = vector('{requested_size: 64MiB}', [
      '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
      '        expect: {response: BUSY}',
      '      - request: {type: UNPLUG, addr: addr, nb_blocks: 1}',
      '        expect: {response: ERROR}',
    ]);
    expect(await lint(v)).toEqual([]);
    // A device making its own choice plugs the block, and then ERROR is no conforming answer.
    expect(await lint(v, ownChoices)).toEqual([
      'follow.yaml:11: steps[1].expect.response: ERROR is not something a conforming device answers here (conforming: ACK, BUSY)',
    ]);
  });

  test('usable_region_size stated after a resize is the reference device’s choice when it conforms', async () => {
    // QEMU grows the usable region 256 MiB past requested_size; a PLUG there is then in range.
    const v = vector('{}', [
      '      - resize: 64MiB',
      '        expect: {config: {usable_region_size: 320MiB}}',
      '      - request: {type: PLUG, addr: addr + 100 * block_size, nb_blocks: 1}',
      '        expect: {response: ACK}',
    ]);
    expect(await lint(v)).toEqual([]);
    const problems = await lint(v, ownChoices);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^follow\.yaml:11: steps\[1\]\.expect\.response: ACK is not something a conforming device answers here \(conforming: ERROR/,
    );
  });

  test('blocks a system reset is stated to keep stay plugged on the reference device (a SHOULD, not a MUST)', async () => {
    const v = vector('{requested_size: 64MiB, plugged: [{first: 0, count: 2}]}', [
      '      - system_reset: true',
      '        expect: {config: {plugged_size: unchanged}}',
      '      - request: {type: UNPLUG, addr: addr, nb_blocks: 1}',
      '        expect: {response: ACK}',
    ]);
    expect(await lint(v)).toEqual([]);
    const problems = await lint(v, ownChoices);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^follow\.yaml:11: steps\[1\]\.expect\.response: ACK is not something a conforming device answers here/,
    );
  });

  test('a stated usable_region_size no device may choose is not followed', async () => {
    // A resize never shrinks usable_region_size (dev.cfg.8): stating 0 after growing is ignored, so the STATE stays in range.
    const v = vector('{}', [
      '      - resize: 64MiB',
      '      - resize: 2MiB',
      '        expect: {config: {usable_region_size: 0}}',
      '      - request: {type: STATE, addr: addr + 20 * block_size, nb_blocks: 1}',
      '        expect: {response: ACK, state: UNPLUGGED}',
    ]);
    expect(await lint(v)).toEqual([]);
  });

  test('a stated outcome no conforming device gives is still a problem, and the run goes on from a conforming one', async () => {
    const v = vector('{requested_size: 64MiB}', [
      '      - request: {type: UNPLUG, addr: addr, nb_blocks: 1}',
      '        expect: {response: NACK}',
      '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
      '        expect: {response: ACK}',
    ]);
    expect(await lint(v)).toEqual([
      'follow.yaml:9: steps[0].expect.response: NACK is not something a conforming device answers here (conforming: ERROR, BUSY)',
    ]);
  });

  test('the config the dry run reaches is the one the vector states', async () => {
    const device = await following(
      { block_size: 2n << 20n, region_size: 1n << 30n, addr: 4n << 30n, requested_size: 0n, node_id: 0, plugged: [] },
      { chooseUsable: () => 512n << 20n },
    );
    await device.initialise((offered) => offered);
    await device.resize!(64n << 20n);
    const config = decodeConfig(await device.readConfig());
    expect(config.ok && config.value.usable_region_size).toBe(512n << 20n);
  });
});
