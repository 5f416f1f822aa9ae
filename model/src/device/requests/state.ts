/**
 * STATE (§5.15.6.6): the evaluator. Checks the range and reports the state of the covered blocks.
 */
import type { BlockStateName } from '../../../../spec/src/index';
import type { VirtioMemRequest } from '../../codec/codec';
import type { ResponseOutcome } from '../outcomes';
import { responseOutcome } from '../build-outcome';
import { checkRange } from './range';
import { DeviceView, RequestAssessment, RequestFacts } from './request-facts';

/**
 * Evaluates a STATE request. The device looks only at the type and the payload (dev.state.1)
 * and ignores payload padding (dev.state.2). An invalid range must be answered ERROR
 * (dev.state.3); otherwise the ACK (dev.state.4) reports PLUGGED, UNPLUGGED or MIXED
 * (dev.state.5, dev.state.6, dev.state.7). BUSY is not an answer to STATE. The covered blocks are
 * counted word by word, so a STATE over 65,535 blocks costs no per-block loop.
 * Reads the view only; changes nothing.
 */
export function evaluateState(
  view: DeviceView,
  request: VirtioMemRequest,
  payloadPaddingTouched: boolean,
): RequestAssessment {
  const range = checkRange(view.config, request);
  const facts: RequestFacts = {
    kind: 'state',
    failed: { range: !range.valid, state: false, budget: false },
    busyAllowed: false,
  };
  const base = ['dev.state.1', ...(payloadPaddingTouched ? ['dev.state.2'] : [])];
  if (!range.valid)
    return {
      facts,
      outcomes: [
        responseOutcome('ERROR', 'required', [...base, 'dev.state.3'], { kind: 'none' }, range.problems.join('; ')),
      ],
    };
  const fill = view.blocks.fill(range.firstBlock, range.count);
  const state: BlockStateName = fill === 'all' ? 'PLUGGED' : fill === 'none' ? 'UNPLUGGED' : 'MIXED';
  const stateId = fill === 'all' ? 'dev.state.5' : fill === 'none' ? 'dev.state.6' : 'dev.state.7';
  const ack: ResponseOutcome = {
    ...responseOutcome(
      'ACK',
      'required',
      [...base, 'dev.state.4', stateId],
      { kind: 'none' },
      `the covered blocks are ${state.toLowerCase()}`,
    ),
    state,
  };
  return { facts, outcomes: [ack] };
}
