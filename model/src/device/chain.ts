/**
 * Evaluating one descriptor chain: is it a well-formed request at all, and if so, what do the
 * request evaluator (`requests/`) and the device's profile (`choice.ts`) make of it. Pure: reads
 * a view of the device and changes nothing; the device applies the chosen outcome afterwards.
 */
import { VIRTIO_MEM_REQ_STATE, VirtioMemRequestLayout, VirtioMemResponseLayout } from '../../../spec/src/index';
import { NonzeroPadding, VirtioMemRequest, decodeRequest } from '../codec/codec';
import type { ChainProblem, DeviceOutcome, ViolationOutcome } from './outcomes';
import type { DeviceProfile } from './profiles';
import { violationOutcome } from './build-outcome';
import { chooseResponse, chooseViolation, profileRefusesLayout } from './choice';
import { BusyView, busyAnswers } from './busy';
import { DeviceView, evaluateRequest } from './requests/index';

/** A descriptor chain as the device sees it: readable buffers, then writable buffer sizes. */
export interface DescriptorChain {
  readonly readable: readonly Uint8Array[];
  readonly writableSizes: readonly number[];
}

/** The usual chain: the request in one descriptor, a 10-byte response buffer in another. */
export function singleRequestChain(request: Uint8Array, responseSize = VirtioMemResponseLayout.size): DescriptorChain {
  return { readable: [request], writableSizes: [responseSize] };
}

/** The conforming outcomes for a chain, and what this device's profile does with it. */
export interface RequestEvaluation {
  /** The decoded request, when 24 readable bytes were present. */
  readonly request?: VirtioMemRequest;
  /** Why the chain is malformed, when it is. */
  readonly problem?: ChainProblem;
  /** Padding fields of the request holding nonzero bytes. */
  readonly nonzeroPadding: readonly NonzeroPadding[];
  /** Every conforming outcome (never empty). */
  readonly outcomes: readonly DeviceOutcome[];
  /** The outcome this device's profile produces; `class` is 'nonconforming' when outside the set. */
  readonly chosen: DeviceOutcome;
}

/** What the chain evaluation reads of the device besides configuration and blocks. */
export interface ChainView extends DeviceView, BusyView {
  /** The device flagged DEVICE_NEEDS_RESET. */
  readonly needsReset: boolean;
}

const REQ_SIZE = VirtioMemRequestLayout.size;
const RESP_SIZE = VirtioMemResponseLayout.size;

/**
 * Evaluates a chain: the conforming outcomes and the profile's choice. A device that flagged
 * NEEDS_RESET processes nothing; a chain without 24 readable bytes, without 10 writable bytes or
 * with an unknown request type gets the set of ways out (the spec says nothing about such
 * chains); any other chain is a request, evaluated by the evaluator of its type.
 */
export function evaluateChain(view: ChainView, profile: DeviceProfile, chain: DescriptorChain): RequestEvaluation {
  const readableBytes = chain.readable.reduce((n, b) => n + b.length, 0);
  const writable = chain.writableSizes.reduce((n, s) => n + s, 0);
  if (view.needsReset) {
    const outcome: ViolationOutcome = {
      kind: 'protocol-violation',
      handling: 'no-used-entry',
      class: 'unspecified',
      requirements: [],
      rationale: 'the device flagged DEVICE_NEEDS_RESET; it processes nothing until the driver resets it',
    };
    return { nonzeroPadding: [], outcomes: [outcome], chosen: outcome };
  }
  if (readableBytes < REQ_SIZE) return malformed(profile, 'short-request', writable, undefined, []);
  const requestBytes = chain.readable.length === 1 ? chain.readable[0] : concat(chain.readable);
  const decoded = decodeRequest(requestBytes);
  if (!decoded.ok) return malformed(profile, 'short-request', writable, undefined, []);
  const request = decoded.value;
  if (writable < RESP_SIZE) return malformed(profile, 'short-response', writable, request, decoded.nonzeroPadding);
  if (request.type > VIRTIO_MEM_REQ_STATE)
    return malformed(profile, 'unknown-type', writable, request, decoded.nonzeroPadding);

  const assessment = evaluateRequest(view, request, decoded.nonzeroPadding);
  const chosen = profileRefusesLayout(profile, chain.readable[0].length)
    ? violationOutcome(
        profile.malformedChain,
        'nonconforming',
        'the profile requires the request in one descriptor; Message Framing says a device must not assume a descriptor layout',
      )
    : chooseResponse(
        profile,
        assessment,
        busyAnswers(view, profile, assessment.facts.kind, view.config.plugged_size === 0n),
      );
  return { request, nonzeroPadding: decoded.nonzeroPadding, outcomes: assessment.outcomes, chosen };
}

/** The ways out of a chain that is not a well-formed request, graded, and the one the profile takes. */
function malformed(
  profile: DeviceProfile,
  problem: ChainProblem,
  writable: number,
  request: VirtioMemRequest | undefined,
  padding: readonly NonzeroPadding[],
): RequestEvaluation {
  const why: Record<ChainProblem, string> = {
    'short-request': 'fewer than 24 device-readable bytes',
    'short-response': 'fewer than 10 device-writable bytes',
    'unknown-type': `unknown request type ${request?.type}`,
  };
  const outcomes: DeviceOutcome[] = [
    violationOutcome(
      'needs-reset',
      'unspecified',
      `${why[problem]}: the spec does not say; flagging DEVICE_NEEDS_RESET is the generic virtio way out`,
    ),
    ...(writable >= RESP_SIZE
      ? [
          violationOutcome(
            'error-response',
            'unspecified',
            `${why[problem]}: the spec does not say; answering ERROR is one choice`,
          ),
        ]
      : []),
    violationOutcome(
      'used-length-zero',
      'unspecified',
      `${why[problem]}: the spec does not say; returning the chain unused is one choice`,
    ),
    violationOutcome(
      'no-used-entry',
      'discouraged',
      `${why[problem]}: returning nothing without flagging NEEDS_RESET leaves the driver waiting forever`,
    ),
  ];
  return {
    request,
    problem,
    nonzeroPadding: padding,
    outcomes,
    chosen: chooseViolation(profile, problem, writable, outcomes),
  };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
