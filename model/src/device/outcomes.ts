/**
 * What a device may do with one request: the set of conforming outcomes, each justified by
 * requirement IDs and graded by how the spec regards it.
 */
import type { BlockStateName, ResponseCodeName } from '../../../spec/src/index';
import type { ViolationHandling } from './profiles';

/**
 * How the spec regards an outcome.
 * - `required`: a MUST leaves no other answer (apart from `permitted` alternatives).
 * - `recommended`: what the spec's descriptive text (or a SHOULD) expects where no MUST applies.
 * - `permitted`: an alternative a MAY allows (e.g. BUSY).
 * - `unspecified`: the spec is silent; implementations differ.
 * - `discouraged`: not forbidden by a MUST, but against a SHOULD or the descriptive text.
 * - `nonconforming`: breaks a MUST (only a profile's own choice can be this; never in the set).
 */
export type ConformanceClass =
  'required' | 'recommended' | 'permitted' | 'unspecified' | 'discouraged' | 'nonconforming';

/** What an outcome does to the device state. */
export type OutcomeEffect =
  | { readonly kind: 'none' }
  | { readonly kind: 'plug'; readonly firstBlock: number; readonly count: number }
  | { readonly kind: 'unplug'; readonly firstBlock: number; readonly count: number }
  /** Every block unplugged; usable_region_size ends as a multiple of block_size within [min, max]. */
  | { readonly kind: 'unplug-all'; readonly usableMin: bigint; readonly usableMax: bigint };

/** The device writes a 10-byte response. */
export interface ResponseOutcome {
  readonly kind: 'response';
  readonly response: ResponseCodeName;
  /** The block state reported, for an acknowledged STATE request. */
  readonly state?: BlockStateName;
  readonly class: ConformanceClass;
  /** Requirement IDs that mandate, allow or bear on this outcome. */
  readonly requirements: readonly string[];
  readonly effect: OutcomeEffect;
  /** One line: why this outcome is (or is not) conforming. */
  readonly rationale: string;
}

/** The device does not answer with a response (the spec says nothing about such chains). */
export interface ViolationOutcome {
  readonly kind: 'protocol-violation';
  readonly handling: ViolationHandling;
  readonly class: ConformanceClass;
  readonly requirements: readonly string[];
  readonly rationale: string;
}

/** One thing a device may do with a request. */
export type DeviceOutcome = ResponseOutcome | ViolationOutcome;

/** Why a chain is not a well-formed request. */
export type ChainProblem = 'short-request' | 'short-response' | 'unknown-type';

/** Returns a short label for an outcome, e.g. `ACK(PLUGGED)` or `needs-reset`. */
export function describeOutcome(outcome: DeviceOutcome): string {
  if (outcome.kind === 'protocol-violation') return outcome.handling;
  return outcome.state ? `${outcome.response}(${outcome.state})` : outcome.response;
}

/** True when two outcomes are observably the same (same response and state, or same handling). */
export function sameObservable(a: DeviceOutcome, b: DeviceOutcome): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'protocol-violation') return a.handling === (b as ViolationOutcome).handling;
  const other = b as ResponseOutcome;
  return a.response === other.response && a.state === other.state;
}
