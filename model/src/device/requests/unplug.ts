/**
 * UNPLUG (§5.15.6.4): the evaluator. Finds the facts (range, block state) once and builds the
 * graded set of conforming outcomes from them. There is no budget: an unplug below
 * requested_size is still acknowledged.
 */
import type { VirtioMemRequest } from '../../codec/codec';
import { responseOutcome } from '../build-outcome';
import { checkRange } from './range';
import { BUSY_RATIONALE, DeviceView, RequestAssessment, RequestFacts } from './request-facts';

/**
 * Evaluates an UNPLUG request. The device looks only at the type and the payload (dev.unplug.1)
 * and ignores payload padding (dev.unplug.2). The spec mandates ERROR for an invalid range
 * (dev.unplug.3) and for a covered block that is already unplugged (dev.unplug.4), allows BUSY
 * (dev.unplug.5) and requires an ACK to unplug every covered block and shrink plugged_size
 * (dev.unplug.6, dev.unplug.7). Reads the view only; changes nothing.
 */
export function evaluateUnplug(
  view: DeviceView,
  request: VirtioMemRequest,
  payloadPaddingTouched: boolean,
): RequestAssessment {
  const range = checkRange(view.config, request);
  const alreadyUnplugged = range.valid && !view.blocks.allSet(range.firstBlock, range.count);
  const facts: RequestFacts = {
    kind: 'unplug',
    failed: { range: !range.valid, state: alreadyUnplugged, budget: false },
    busyAllowed: true,
  };

  const base = ['dev.unplug.1', ...(payloadPaddingTouched ? ['dev.unplug.2'] : [])];
  const busy = responseOutcome('BUSY', 'permitted', [...base, 'dev.unplug.5'], { kind: 'none' }, BUSY_RATIONALE);
  if (!range.valid) {
    return {
      facts,
      outcomes: [
        responseOutcome('ERROR', 'required', [...base, 'dev.unplug.3'], { kind: 'none' }, range.problems.join('; ')),
        busy,
      ],
    };
  }
  if (alreadyUnplugged) {
    return {
      facts,
      outcomes: [
        responseOutcome(
          'ERROR',
          'required',
          [...base, 'dev.unplug.4'],
          { kind: 'none' },
          'a covered block is already unplugged',
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
        [...base, 'dev.unplug.6', 'dev.unplug.7'],
        { kind: 'unplug', firstBlock: range.firstBlock, count: range.count },
        'every covered block was plugged',
      ),
      busy,
    ],
  };
}
