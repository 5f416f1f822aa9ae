/**
 * JSON Schemas (draft 2020-12 subset that Ajv 8 validates without plugins) for the data the
 * project publishes and reads. Tests compile each with Ajv and validate the real data against it.
 * Every enumeration comes from the `as const` list its TypeScript type is derived from, so a
 * value added to a list reaches both.
 */
import { REQUEST_TYPE_NAMES } from './constants';
import { FIELD_KINDS, FIELD_MUTABILITIES, LAYOUT_IDS } from './layouts';
import {
  REQUIREMENT_CAPABILITIES,
  REQUIREMENT_LEVELS,
  REQUIREMENT_SIDES,
  REQUIREMENT_SOURCES,
  REQUIREMENT_TOPICS,
} from './requirements';
import { ExpectationFileSchema, ResultsSchema } from './vector-schemas';

/** Schema of one requirement record. */
export const RequirementSchema = {
  $id: 'https://vmemct.dev/schemas/requirement.json',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'section', 'level', 'side', 'topic', 'summary', 'testable', 'needs'],
  properties: {
    id: { type: 'string', pattern: `^(dev|drv)\\.(${REQUIREMENT_TOPICS.join('|')})\\.[1-9][0-9]*$` },
    // §5.15 for the virtio-mem statements; the core chapters (§2, §3, §4) for the others.
    section: { type: 'string', pattern: '^[1-9][0-9]*(\\.[0-9]+)+$' },
    level: { enum: REQUIREMENT_LEVELS },
    side: { enum: REQUIREMENT_SIDES },
    topic: { enum: REQUIREMENT_TOPICS },
    source: { enum: REQUIREMENT_SOURCES },
    summary: { type: 'string', minLength: 10, maxLength: 200 },
    testable: { type: 'boolean' },
    needs: {
      type: 'array',
      uniqueItems: true,
      items: { enum: REQUIREMENT_CAPABILITIES },
    },
    untestableReason: { type: 'string', minLength: 10 },
  },
  // An untestable statement must say why.
  if: { properties: { testable: { const: false } } },
  then: { required: ['untestableReason'], properties: { untestableReason: { type: 'string' } } },
} as const;

/** Schema of the requirement catalogue: an array of requirement records. */
export const RequirementCatalogueSchema = {
  $id: 'https://vmemct.dev/schemas/requirement-catalogue.json',
  type: 'array',
  minItems: 1,
  items: { $ref: 'https://vmemct.dev/schemas/requirement.json' },
} as const;

const FieldSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'specPath', 'offset', 'size', 'kind', 'mutability', 'description'],
  properties: {
    name: { type: 'string', pattern: '^[a-z_]+$' },
    specPath: { type: 'string' },
    offset: { type: 'integer', minimum: 0 },
    size: { type: 'integer', minimum: 1 },
    kind: { enum: FIELD_KINDS },
    mutability: { enum: FIELD_MUTABILITIES },
    featureCondition: { type: 'string' },
    meaningfulFor: { type: 'array', items: { enum: REQUEST_TYPE_NAMES } },
    description: { type: 'string' },
  },
} as const;

const NamedConstantSchema = {
  type: 'object',
  required: ['name', 'value', 'meaning'],
  properties: {
    name: { type: 'string' },
    value: { type: 'integer', minimum: 0 },
    meaning: { type: 'string' },
    since: { type: 'string' },
  },
  additionalProperties: false,
} as const;

/** Schema of `vmemct spec --json`: the whole protocol as one document. */
export const SpecDocumentSchema = {
  $id: 'https://vmemct.dev/schemas/spec-document.json',
  type: 'object',
  additionalProperties: false,
  required: [
    'specVersion',
    'section',
    'deviceId',
    'pci',
    'queues',
    'features',
    'requestTypes',
    'responseCodes',
    'blockStates',
    'layouts',
    'requirements',
    'beyond',
  ],
  properties: {
    specVersion: { const: '1.4' },
    section: { const: '5.15' },
    deviceId: { const: 24 },
    pci: {
      type: 'object',
      additionalProperties: false,
      required: ['vendorId', 'deviceId'],
      properties: {
        vendorId: { type: 'string', pattern: '^0x[0-9a-f]{4}$' },
        deviceId: { type: 'string', pattern: '^0x[0-9a-f]{4}$' },
      },
    },
    queues: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['index', 'name'],
        properties: { index: { type: 'integer' }, name: { type: 'string' } },
      },
    },
    features: { type: 'array', items: NamedConstantSchema },
    requestTypes: { type: 'array', items: NamedConstantSchema },
    responseCodes: { type: 'array', items: NamedConstantSchema },
    blockStates: { type: 'array', items: NamedConstantSchema },
    layouts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'structName', 'section', 'size', 'fields'],
        properties: {
          id: { enum: LAYOUT_IDS },
          structName: { type: 'string' },
          section: { type: 'string' },
          size: { type: 'integer' },
          fields: { type: 'array', items: FieldSchema },
        },
      },
    },
    requirements: { $ref: 'https://vmemct.dev/schemas/requirement-catalogue.json' },
    beyond: { $ref: 'https://vmemct.dev/schemas/requirement-catalogue.json' },
  },
} as const;

/**
 * Every schema spec/ defines by itself, ready for `ajv.addSchema`. The vector and vector-file
 * schemas are assembled from the step kinds in conformance/src/steps/schema.ts.
 */
export const ALL_SCHEMAS = [
  RequirementSchema,
  RequirementCatalogueSchema,
  SpecDocumentSchema,
  ExpectationFileSchema,
  ResultsSchema,
] as const;
