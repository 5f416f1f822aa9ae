import { parse } from 'yaml';
import { capabilitiesFor } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { loadVectorText, loadVectorValue } from '../loader/load';
import { YamlSource } from '../loader/yaml-source';
import { fuzzVectorText, fuzzVectorValue } from './device-case';
import { DEFAULT_FUZZ_SETUP, FUZZ_PLUGGED_AT_START, caseSeed } from './device-fuzz';
import { generateFuzzOperations } from './device-operations';

const META = {
  id: 'vmem.dev.fuzz.same',
  title: 'the same case twice',
  requirements: ['dev.cfg.3'],
  header: ['a', 'b'],
};
const capabilities = capabilitiesFor(createModelAdapter().info, 'device');

describe('a fuzz case built as a value is the case its text holds', () => {
  test.each([
    ['blocks plugged at start', { ...DEFAULT_FUZZ_SETUP, plugged: FUZZ_PLUGGED_AT_START }],
    ['nothing plugged at start', DEFAULT_FUZZ_SETUP],
  ])('%s: the same value, lines and loaded vector, over seeded cases', (_, setup) => {
    const kinds = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const ops = generateFuzzOperations(caseSeed(7, i), 200, setup, { capabilities });
      ops.forEach((op) => kinds.add(op.kind));
      const text = fuzzVectorText(setup, ops, META);
      const built = fuzzVectorValue(setup, ops, META);
      expect(built.value).toEqual(parse(text));
      const source = YamlSource.parse('case.yaml', text).source!;
      expect(built.lines['vectors/0']).toBe(source.lineOf(['vectors', 0]));
      ops.forEach((_, j) =>
        expect(built.lines[`vectors/0/steps/${j}`]).toBe(source.lineOf(['vectors', 0, 'steps', j])),
      );
      const fromText = loadVectorText('case.yaml', text);
      const fromValue = loadVectorValue('case.yaml', built.value, built.lines);
      expect(fromText.problems).toEqual([]);
      expect(fromValue.problems).toEqual([]);
      expect(fromValue.vectors).toEqual(fromText.vectors);
    }
    // Every kind of operation was compared.
    expect([...kinds].sort()).toEqual(
      [
        'device-reset',
        'host-busy',
        'inject-busy',
        'read-memory',
        'request',
        'resize',
        'short-request',
        'system-reset',
        'write-memory',
      ].sort(),
    );
  });
});
