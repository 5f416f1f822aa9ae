import Ajv2020 from 'ajv/dist/2020';
import {
  ALL_SCHEMAS,
  ALL_REQUIREMENTS,
  CORE_REQUIREMENTS,
  REQUIREMENTS,
  SUITE_REQUIREMENTS,
  requirementSource,
} from './index';

describe('statements beyond §5.15', () => {
  const beyond = [...CORE_REQUIREMENTS, ...SUITE_REQUIREMENTS];

  test('core statements come from the core chapters (§2–§4) and say so', () => {
    expect(CORE_REQUIREMENTS.length).toBeGreaterThan(0);
    for (const r of CORE_REQUIREMENTS) {
      expect(requirementSource(r)).toBe('core');
      expect(r.topic).toBe('virtio');
      expect(Number(r.section.split('.')[0])).toBeGreaterThanOrEqual(2);
      expect(Number(r.section.split('.')[0])).toBeLessThanOrEqual(4);
    }
  });

  test('suite expectations say they are the suite’s own', () => {
    for (const r of SUITE_REQUIREMENTS) expect(requirementSource(r)).toBe('suite');
  });

  test('should have unique IDs numbered 1..n per side and topic, matching side and topic', () => {
    const ids = ALL_REQUIREMENTS.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    const groups = new Map<string, number[]>();
    for (const r of beyond) {
      const [prefix, topic, n] = r.id.split('.');
      expect(prefix).toBe(r.side === 'device' ? 'dev' : 'drv');
      expect(topic).toBe(r.topic);
      groups.set(`${prefix}.${topic}`, [...(groups.get(`${prefix}.${topic}`) ?? []), Number(n)]);
    }
    for (const numbers of groups.values()) expect(numbers).toEqual(numbers.map((_, i) => i + 1));
  });

  test('core statements are in document order (section numbers never go back)', () => {
    const key = (s: string) => s.split('.').map(Number);
    for (let i = 1; i < CORE_REQUIREMENTS.length; i++) {
      const [a, b] = [key(CORE_REQUIREMENTS[i - 1]!.section), key(CORE_REQUIREMENTS[i]!.section)];
      const cmp = a.findIndex((x, j) => x !== b[j]);
      if (cmp >= 0) expect(a[cmp]!).toBeLessThan(b[cmp] ?? Infinity);
    }
  });

  test('the §5.15 list stays the 71 statements; ALL_REQUIREMENTS adds exactly the others', () => {
    expect(REQUIREMENTS).toHaveLength(71);
    expect(ALL_REQUIREMENTS).toHaveLength(71 + beyond.length);
    expect(REQUIREMENTS.some((r) => requirementSource(r) !== 'mem')).toBe(false);
  });

  test('summaries are paraphrases of at most 160 characters; untestable ones say why', () => {
    for (const r of beyond) {
      expect(r.summary.length).toBeLessThanOrEqual(160);
      expect(Boolean(r.untestableReason)).toBe(!r.testable);
    }
  });

  test('every statement validates against the requirement schema (which rejects a section outside the spec)', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    for (const schema of ALL_SCHEMAS) ajv.addSchema(schema);
    const validate = ajv.getSchema('https://vmemct.dev/schemas/requirement-catalogue.json')!;
    expect(validate(JSON.parse(JSON.stringify(ALL_REQUIREMENTS)))).toBe(true);
    const one = ajv.getSchema('https://vmemct.dev/schemas/requirement.json')!;
    expect(one({ ...CORE_REQUIREMENTS[0], section: 'x.1' })).toBe(false);
    expect(one({ ...CORE_REQUIREMENTS[0], source: 'elsewhere' })).toBe(false);
  });

  test('the used-length, generation and NEEDS_RESET statements carry the sections they come from', () => {
    const at = (id: string) => ALL_REQUIREMENTS.find((r) => r.id === id);
    expect(at('dev.virtio.1')).toMatchObject({ section: '2.1.2', level: 'MUST' });
    expect(at('dev.virtio.2')).toMatchObject({ section: '2.2.2', level: 'SHOULD' });
    expect(at('dev.virtio.5')).toMatchObject({ section: '2.7.8.2', level: 'MUST' });
    expect(at('dev.virtio.6')).toMatchObject({ section: '4.1.4.3.1', level: 'MUST', needs: ['config-generation'] });
  });
});
