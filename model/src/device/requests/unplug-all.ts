/**
 * UNPLUG ALL (§5.15.6.5): the evaluator. It has no range, state or budget to check.
 */
import { responseOutcome } from '../build-outcome';
import { BUSY_RATIONALE, DeviceView, RequestAssessment, RequestFacts } from './request-facts';

const FACTS: RequestFacts = {
  kind: 'unplug-all',
  failed: { range: false, state: false, budget: false },
  busyAllowed: true,
};

/**
 * Evaluates an UNPLUG ALL request. addr and nb_blocks have no meaning for it: only the type
 * counts (dev.unplugall.1), and payload padding is ignored (dev.unplugall.2). The ACK unplugs
 * every block (dev.unplugall.4, dev.unplugall.5) and may leave usable_region_size anywhere from
 * requested_size to region_size (dev.unplugall.6); BUSY is allowed (dev.unplugall.3); no other
 * failure code is defined. Reads the view only; changes nothing.
 */
export function evaluateUnplugAll(view: DeviceView, payloadPaddingTouched: boolean): RequestAssessment {
  const c = view.config;
  const base = ['dev.unplugall.1', ...(payloadPaddingTouched ? ['dev.unplugall.2'] : [])];
  return {
    facts: FACTS,
    outcomes: [
      responseOutcome(
        'ACK',
        'required',
        [...base, 'dev.unplugall.4', 'dev.unplugall.5', 'dev.unplugall.6'],
        { kind: 'unplug-all', usableMin: c.requested_size, usableMax: c.region_size },
        'every block unplugged; usable_region_size may change before the ACK',
      ),
      responseOutcome('BUSY', 'permitted', [...base, 'dev.unplugall.3'], { kind: 'none' }, BUSY_RATIONALE),
      responseOutcome(
        'ERROR',
        'unspecified',
        base,
        { kind: 'none' },
        'failure codes other than BUSY are not defined for UNPLUG ALL',
      ),
      responseOutcome(
        'NACK',
        'unspecified',
        base,
        { kind: 'none' },
        'failure codes other than BUSY are not defined for UNPLUG ALL',
      ),
    ],
  };
}
