/**
 * `adapters/model-harness/`: the reference model served over the harness protocol
 * (`vmemct serve-harness`), for the device and the driver target, over stdio or a unix socket.
 */
export * from './harness-session';
export * from './serve';
export { CallFailure } from './calls';
export type { HarnessCaller } from './calls';
