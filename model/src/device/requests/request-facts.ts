/**
 * What a request evaluator returns: the facts it found about one well-formed request and the
 * graded set of conforming outcomes built from them. The device's profile then chooses from the
 * same facts and the same set (`../choice.ts`), so there is one decision procedure per request.
 */
import type { VirtioMemConfig } from '../../codec/codec';
import type { BlockBitmap } from '../../blocks/bitmap';
import type { ResponseOutcome } from '../outcomes';
import type { PlugCheck } from '../profiles';

/** What an evaluator reads of the device: the configuration and the block states, never written. */
export interface DeviceView {
  readonly config: VirtioMemConfig;
  readonly blocks: Pick<BlockBitmap, 'anySet' | 'allSet' | 'fill'>;
}

/** The request types the evaluators know (the spec's four). */
export type RequestKind = 'plug' | 'unplug' | 'unplug-all' | 'state';

/**
 * The facts about one request that the spec's rules and every profile read.
 * - `range`: the range check failed (unaligned addr, nb_blocks 0, outside the usable region).
 * - `state`: some covered block already is in the state the request asks for (PLUG, UNPLUG;
 *   only judged when the range is valid).
 * - `budget`: PLUG only, plugged_size + nb_blocks × block_size > requested_size (judged whatever
 *   the range, since some devices check it first).
 */
export interface RequestFacts {
  readonly kind: RequestKind;
  /** Which checks fail for this request. The order a device runs them in is its profile's choice. */
  readonly failed: Readonly<Record<PlugCheck, boolean>>;
  /** Whether BUSY is one of the conforming answers (every request type but STATE). */
  readonly busyAllowed: boolean;
}

/** An evaluator's answer: the facts and the graded set of conforming outcomes (never empty). */
export interface RequestAssessment {
  readonly facts: RequestFacts;
  readonly outcomes: readonly ResponseOutcome[];
}

/** The rationale of the permitted BUSY answer (dev.plug.5, dev.unplug.5, dev.unplugall.3). */
export const BUSY_RATIONALE = 'the device may answer BUSY when it cannot process the request now';
