/**
 * Builders for the two kinds of {@link DeviceOutcome}, shared by the request evaluators, the chain
 * evaluation and the profile's choice. Internal to the device (not exported from `model/`).
 */
import type { OutcomeEffect, ResponseOutcome, ViolationOutcome } from './outcomes';
import type { ViolationHandling } from './profiles';

/** An outcome in which the device writes a response with code `code`. */
export function responseOutcome(
  code: ResponseOutcome['response'],
  cls: ResponseOutcome['class'],
  requirements: readonly string[],
  effect: OutcomeEffect,
  rationale: string,
): ResponseOutcome {
  return { kind: 'response', response: code, class: cls, requirements, effect, rationale };
}

/** An outcome in which the device handles a chain it cannot process as `handling` says (no requirement applies). */
export function violationOutcome(
  handling: ViolationHandling,
  cls: ViolationOutcome['class'],
  rationale: string,
): ViolationOutcome {
  return { kind: 'protocol-violation', handling, class: cls, requirements: [], rationale };
}
