import Ajv2020 from 'ajv/dist/2020';
import {
  ALL_SCHEMAS,
  LAYOUTS,
  REQUIREMENTS,
  VIRTIO_MEM_PCI_DEVICE_ID,
  VIRTIO_ID_MEM,
  buildSpecDocument,
  FEATURE_BITS,
  FEATURE_MASKS,
  FEATURE_NAMES,
  FieldSpec,
  VIRTIO_MEM_KNOWN_FEATURES,
  featureMask,
} from './index';

describe('layouts (frozen)', () => {
  test.each([
    [
      'config',
      56,
      [
        ['block_size', 0, 8],
        ['node_id', 8, 2],
        ['padding', 10, 6],
        ['addr', 16, 8],
        ['region_size', 24, 8],
        ['usable_region_size', 32, 8],
        ['plugged_size', 40, 8],
        ['requested_size', 48, 8],
      ],
    ],
    [
      'request',
      24,
      [
        ['type', 0, 2],
        ['padding', 2, 6],
        ['addr', 8, 8],
        ['nb_blocks', 16, 2],
        ['payload_padding', 18, 6],
      ],
    ],
    [
      'response',
      10,
      [
        ['type', 0, 2],
        ['padding', 2, 6],
        ['state', 8, 2],
      ],
    ],
  ] as const)('%s should be %i bytes with these offsets', (id, size, fields) => {
    const layout = LAYOUTS[id];
    expect(layout.size).toBe(size);
    expect(layout.fields.map((f) => [f.name, f.offset, f.size])).toEqual(fields);
  });

  test.each(Object.values(LAYOUTS))(
    '$structName fields should tile the structure without gaps or overlaps',
    (layout) => {
      let next = 0;
      for (const field of layout.fields) {
        expect(field.offset).toBe(next);
        expect(field.size).toBe(field.kind === 'le16' ? 2 : field.kind === 'le64' ? 8 : field.size);
        next += field.size;
      }
      expect(next).toBe(layout.size);
    },
  );

  test('config fields should record mutability and feature conditions as data', () => {
    const byName: Record<string, FieldSpec> = Object.fromEntries(LAYOUTS.config.fields.map((f) => [f.name, f]));
    expect(byName.node_id.featureCondition).toBe('VIRTIO_MEM_F_ACPI_PXM');
    expect(byName.block_size.mutability).toBe('fixed');
    expect(byName.usable_region_size.mutability).toBe('device-policy');
    expect(byName.plugged_size.mutability).toBe('derived');
    expect(byName.requested_size.mutability).toBe('host');
  });
});

describe('constants', () => {
  test('should identify the device as ID 24, PCI 0x1af4:0x1058', () => {
    expect(VIRTIO_ID_MEM).toBe(24);
    expect(VIRTIO_MEM_PCI_DEVICE_ID).toBe(0x1058);
    expect(FEATURE_BITS.map((f) => [f.name, f.value])).toEqual([
      ['VIRTIO_MEM_F_ACPI_PXM', 0],
      ['VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE', 1],
      ['VIRTIO_MEM_F_PERSISTENT_SUSPEND', 2],
      ['VIRTIO_F_VERSION_1', 32],
    ]);
  });

  test('short feature names and masks should name the same bits as the feature records', () => {
    const byShortName = Object.fromEntries(
      FEATURE_BITS.map((f) => [f.name.replace(/^VIRTIO_(MEM_)?F_/, ''), featureMask(f.value)]),
    );
    expect(FEATURE_MASKS).toEqual(byShortName);
    expect([...FEATURE_NAMES].sort()).toEqual(Object.keys(byShortName).sort());
    expect(VIRTIO_MEM_KNOWN_FEATURES).toBe(0x1_0000_0007n);
  });
});

describe('requirement catalogue', () => {
  test('should hold the 71 statements of §5.15: 50 device, 21 driver', () => {
    expect(REQUIREMENTS).toHaveLength(71);
    expect(REQUIREMENTS.filter((r) => r.side === 'device')).toHaveLength(50);
    expect(REQUIREMENTS.filter((r) => r.side === 'driver')).toHaveLength(21);
  });

  test('should count the levels as the spec does', () => {
    const count = (side: string, level: string) =>
      REQUIREMENTS.filter((r) => r.side === side && r.level === level).length;
    expect(['MUST', 'MUST NOT', 'SHOULD', 'SHOULD NOT', 'MAY'].map((l) => count('driver', l))).toEqual([7, 7, 5, 1, 1]);
    expect(['MUST', 'MUST NOT', 'SHOULD', 'SHOULD NOT', 'MAY'].map((l) => count('device', l))).toEqual([
      32, 6, 2, 1, 9,
    ]);
  });

  test('should have unique IDs numbered 1..n per side and topic, matching side and topic', () => {
    expect(new Set(REQUIREMENTS.map((r) => r.id)).size).toBe(71);
    const groups = new Map<string, number[]>();
    for (const r of REQUIREMENTS) {
      const [prefix, topic, n] = r.id.split('.');
      expect(prefix).toBe(r.side === 'device' ? 'dev' : 'drv');
      expect(topic).toBe(r.topic);
      groups.set(`${prefix}.${topic}`, [...(groups.get(`${prefix}.${topic}`) ?? []), Number(n)]);
    }
    for (const numbers of groups.values()) expect(numbers).toEqual(numbers.map((_, i) => i + 1));
  });

  test('untestable statements should say why; testable ones should not', () => {
    for (const r of REQUIREMENTS) expect(Boolean(r.untestableReason)).toBe(!r.testable);
  });
});

describe('JSON Schemas', () => {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  for (const schema of ALL_SCHEMAS) ajv.addSchema(schema);

  test('every schema should compile', () => {
    for (const schema of ALL_SCHEMAS) expect(() => ajv.getSchema(schema.$id)).not.toThrow();
  });

  test('the catalogue should validate against its schema', () => {
    const validate = ajv.getSchema('https://vmemct.dev/schemas/requirement-catalogue.json')!;
    expect(validate(JSON.parse(JSON.stringify(REQUIREMENTS)))).toBe(true);
  });

  test('the schema should reject a bad record (it has teeth)', () => {
    const validate = ajv.getSchema('https://vmemct.dev/schemas/requirement.json')!;
    const good = JSON.parse(JSON.stringify(REQUIREMENTS[0]));
    expect(validate(good)).toBe(true);
    expect(validate({ ...good, id: 'dev.nope.1' })).toBe(false);
    expect(validate({ ...good, level: 'MUSTN' })).toBe(false);
    expect(validate({ ...good, testable: false, untestableReason: undefined })).toBe(false);
  });

  test('the spec document should validate against its schema', () => {
    const validate = ajv.getSchema('https://vmemct.dev/schemas/spec-document.json')!;
    const ok = validate(JSON.parse(JSON.stringify(buildSpecDocument())));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });
});
