/**
 * What the device's profile does with a chain, chosen from what the evaluators found: for a
 * well-formed request, the facts and the graded set of one request evaluator (`requests/`); for
 * a chain it cannot process, the set of ways out. The profile never re-checks the request: it
 * only orders the checks that failed, so the conforming set and the choice cannot disagree about
 * the facts. A choice outside the set is reported as a `nonconforming` outcome.
 */
import type { ResponseCodeName } from '../../../spec/src/index';
import { VirtioMemRequestLayout, VirtioMemResponseLayout } from '../../../spec/src/index';
import type { ChainProblem, DeviceOutcome, ResponseOutcome } from './outcomes';
import type { DeviceProfile, PlugCheck } from './profiles';
import type { RequestAssessment, RequestFacts } from './requests/index';
import { responseOutcome } from './build-outcome';

/** Every device checks UNPLUG and STATE in this order; only the PLUG order differs between profiles. */
const FIXED_CHECK_ORDER: readonly PlugCheck[] = ['range', 'state'];

/**
 * The response code the profile answers, from the facts alone: the first failing check in the
 * profile's order decides (range and state fail with ERROR, the budget with the profile's
 * `overBudget` unless it accepts such plugs); when none fails, an injected BUSY is used up if
 * one is pending and the request type allows BUSY, and otherwise the answer is ACK.
 */
export function profileAnswer(profile: DeviceProfile, facts: RequestFacts, busyPending: boolean): ResponseCodeName {
  const order = facts.kind === 'plug' ? profile.plugCheckOrder : FIXED_CHECK_ORDER;
  for (const check of order) {
    if (!facts.failed[check]) continue;
    if (check !== 'budget') return 'ERROR';
    if (profile.overBudget !== 'accept') return profile.overBudget;
  }
  return busyPending && facts.busyAllowed ? 'BUSY' : 'ACK';
}

/**
 * The outcome the profile produces for an evaluated request: the member of the graded set with
 * the profile's answer, or, when the set has none, a `nonconforming` outcome naming the answers
 * the spec allows and the requirements behind them.
 */
export function chooseResponse(
  profile: DeviceProfile,
  assessment: RequestAssessment,
  busyPending: boolean,
): DeviceOutcome {
  const answer = profileAnswer(profile, assessment.facts, busyPending);
  const found = assessment.outcomes.find((o) => o.response === answer);
  if (found) return found;
  const allowed = assessment.outcomes.filter((o): o is ResponseOutcome => o.class !== 'permitted');
  const expected = allowed.map((o) => o.response).join(' or ');
  const requirements = [...new Set(allowed.flatMap((o) => o.requirements))];
  return responseOutcome(
    answer,
    'nonconforming',
    requirements,
    { kind: 'none' },
    `profile '${profile.name}' answers ${answer} where the spec allows ${expected}`,
  );
}

/**
 * The way out the profile takes for a chain it cannot process (`outcomes` is the set of ways
 * out): its `unknownType` or `malformedChain` handling, where an ERROR response falls back to a
 * used length of 0 when the response buffer has no room for one.
 */
export function chooseViolation(
  profile: DeviceProfile,
  problem: ChainProblem,
  writableBytes: number,
  outcomes: readonly DeviceOutcome[],
): DeviceOutcome {
  let handling = problem === 'unknown-type' ? profile.unknownType : profile.malformedChain;
  if (handling === 'error-response' && writableBytes < VirtioMemResponseLayout.size) handling = 'used-length-zero';
  return outcomes.find((o) => o.kind === 'protocol-violation' && o.handling === handling) ?? outcomes[0];
}

/**
 * Whether the profile refuses the request's descriptor layout (`layoutStrictness`): Message
 * Framing says a device must not assume one, so a refusal is nonconforming.
 * @param firstReadableBytes the size of the first device-readable buffer.
 */
export function profileRefusesLayout(profile: DeviceProfile, firstReadableBytes: number): boolean {
  return (
    (profile.layoutStrictness !== 'any-split' && firstReadableBytes < VirtioMemRequestLayout.size) ||
    (profile.layoutStrictness === 'exact-24' && firstReadableBytes !== VirtioMemRequestLayout.size)
  );
}
