/**
 * The vector schemas, assembled from the step kinds: a step holds one of the kinds' actions (each
 * with its own schema fragment), an `expect` block whose keys are those the step kinds read, and
 * a note, and (in a multi-device vector) the device it addresses. The envelope (vector, file, setup) and the value building blocks come from spec/.
 */
import { DeviceName, vectorSchemas } from '../../../spec/src/index';
import { EXPECTATION_VALUES } from './expectations';
import { STEP_KINDS } from './registry';

/**
 * Schema of one step. Which action and which expectation keys suit which target and kind is
 * checked by the loader (with messages naming the allowed ones).
 */
export const StepSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...Object.fromEntries(STEP_KINDS.map((k) => [k.key, k.schema])),
    expect: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: Object.fromEntries(Object.entries(EXPECTATION_VALUES).map(([key, def]) => [key, def.schema])),
    },
    note: { type: 'string' },
    // In a multi-device vector: the device the step acts on, by name or 0-based index (absent: every device).
    device: { oneOf: [DeviceName, { type: 'integer', minimum: 0, maximum: 15 }] },
  },
} as const;

const assembled = vectorSchemas(StepSchema);

/** Schema of one vector (`https://vmemct.dev/schemas/vector.json`). */
export const VectorSchema = assembled.VectorSchema;

/** Schema of a vector file (`https://vmemct.dev/schemas/vector-file.json`). */
export const VectorFileSchema = assembled.VectorFileSchema;

/** The vector schemas, ready for `ajv.addSchema` beside spec/'s `ALL_SCHEMAS`. */
export const VECTOR_SCHEMAS = [VectorSchema, VectorFileSchema] as const;
