/**
 * PLUG (§5.15.6.3): the evaluator. Finds the facts (range, block state, budget) once and builds
 * the graded set of conforming outcomes from them.
 */
import type { VirtioMemRequest } from '../../codec/codec';
import type { OutcomeEffect, ResponseOutcome } from '../outcomes';
import { responseOutcome } from '../build-outcome';
import { checkRange } from './range';
import { BUSY_RATIONALE, DeviceView, RequestAssessment, RequestFacts } from './request-facts';

/**
 * Evaluates a PLUG request. The device looks only at the type and the payload (dev.plug.1) and
 * ignores payload padding (dev.plug.2). The spec mandates ERROR for an invalid range (dev.plug.3)
 * and for a covered block that is already plugged (dev.plug.4), allows BUSY (dev.plug.5) and
 * requires an ACK to plug every covered block and grow plugged_size (dev.plug.6, dev.plug.7).
 * A plug beyond requested_size is left to the descriptive text (NACK expected), and when it is
 * over budget *and* in the wrong state the spec does not order the two checks.
 * Reads the view only; changes nothing.
 */
export function evaluatePlug(
  view: DeviceView,
  request: VirtioMemRequest,
  payloadPaddingTouched: boolean,
): RequestAssessment {
  const c = view.config;
  const range = checkRange(c, request);
  const alreadyPlugged = range.valid && view.blocks.anySet(range.firstBlock, range.count);
  const overBudget = c.plugged_size + BigInt(request.nb_blocks) * c.block_size > c.requested_size;
  const facts: RequestFacts = {
    kind: 'plug',
    failed: { range: !range.valid, state: alreadyPlugged, budget: overBudget },
    busyAllowed: true,
  };

  const base = ['dev.plug.1', ...(payloadPaddingTouched ? ['dev.plug.2'] : [])];
  const busy = responseOutcome('BUSY', 'permitted', [...base, 'dev.plug.5'], { kind: 'none' }, BUSY_RATIONALE);
  if (!range.valid) {
    return {
      facts,
      outcomes: [
        responseOutcome('ERROR', 'required', [...base, 'dev.plug.3'], { kind: 'none' }, range.problems.join('; ')),
        busy,
      ],
    };
  }
  if (alreadyPlugged) {
    const outcomes: ResponseOutcome[] = [
      responseOutcome(
        'ERROR',
        'required',
        [...base, 'dev.plug.4'],
        { kind: 'none' },
        'a covered block is already plugged',
      ),
    ];
    if (overBudget) {
      outcomes.push(
        responseOutcome(
          'NACK',
          'unspecified',
          [...base, 'dev.plug.4'],
          { kind: 'none' },
          'over budget as well; the spec does not order the budget check against the state check (QEMU checks the budget first)',
        ),
      );
    }
    outcomes.push(busy);
    return { facts, outcomes };
  }
  const effect: OutcomeEffect = { kind: 'plug', firstBlock: range.firstBlock, count: range.count };
  if (overBudget) {
    const alreadyAtTarget = c.plugged_size >= c.requested_size;
    return {
      facts,
      outcomes: [
        responseOutcome(
          'NACK',
          'recommended',
          base,
          { kind: 'none' },
          'the plug would take plugged_size beyond requested_size; the descriptive text says such plugs are rejected',
        ),
        responseOutcome(
          'ERROR',
          'unspecified',
          base,
          { kind: 'none' },
          'ERROR for an over-budget plug is not required by any statement (Firecracker does it; Linux then marks the device broken)',
        ),
        responseOutcome(
          'ACK',
          alreadyAtTarget ? 'discouraged' : 'unspecified',
          [...base, 'dev.plug.6', 'dev.plug.7'],
          effect,
          alreadyAtTarget
            ? 'plugged_size already reaches requested_size; the descriptive text says the device rejects further plugs'
            : 'a plug that overshoots requested_size is not addressed by the spec',
        ),
        busy,
      ],
    };
  }
  return {
    facts,
    outcomes: [
      responseOutcome(
        'ACK',
        'required',
        [...base, 'dev.plug.6', 'dev.plug.7'],
        effect,
        'every covered block was unplugged and inside the budget',
      ),
      busy,
    ],
  };
}
