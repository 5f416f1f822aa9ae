/**
 * The step-kind registry: one module per step kind (see step-kind.ts for what a kind declares)
 * and what is built from them (registry.ts, schema.ts).
 */
export * from './step-kind';
export * from './registry';
export * from './schema';
export { EXPECTATION_VALUES } from './expectations';
export type { Expectation, ExpectKey, ExpectValue } from './expectations';
