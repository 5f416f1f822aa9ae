/**
 * `request`: the runner, as the driver, places one request on the device's queue and judges the
 * answer against the oracle's conforming set and the vector's own expectations.
 *
 * ```yaml
 * - request: {type: PLUG, addr: addr, nb_blocks: 1}
 *   expect: {response: ACK, config: {plugged_size: block_size}}
 * ```
 */
import type { Chain, Completion } from '../../../adapters/core/src/contract';
import {
  BLOCK_STATE_NAMES,
  Expression,
  HexBytes,
  REQUEST_TYPE_NAMES,
  RESPONSE_CODE_NAMES,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VirtioMemRequestLayout,
  VirtioMemResponseLayout,
  formatHex,
} from '../../../spec/src/index';
import {
  DeviceOutcome,
  describeOutcome,
  encodeLayout,
  peekRequestType,
  readResponseState,
  readResponseType,
} from '../../../model/src/index';
import { ExpressionScope, scopeOfConfig } from '../loader/expr';
import type { RequestSpec } from '../loader/types';
import { describeSet, judgeOutcome } from '../judge/checks';
import { outcomeLabel } from '../judge/oracle';
import { Finding, verdictOfConformance } from '../judge/verdicts';
import { judgeUsedLength } from '../judge/virtio-core-checks';
import { deviceConfig, deviceNeedsReset, deviceNotification } from './observation-checks';
import { StepOutcome, defineStepKind, proceed, stopWith } from './step-kind';
import { valueOf } from './values';

/**
 * How many times the runner retries a request the device answered BUSY when the vector does not
 * list BUSY for it: `default` unless the run says otherwise (`--busy-retries`), at most `max`. A
 * device still answering BUSY after that makes no progress (dev.suite.1: BUSY is temporary).
 */
export const BUSY_RETRIES = { default: 3, max: 1000 } as const;

/** `once`, `2 times`, `0 times`. */
function times(n: number): string {
  return n === 1 ? 'once' : `${n} times`;
}

/** Sizes of the descriptors a request is split over. */
export interface DescriptorLayout {
  readonly readable: readonly number[];
  readonly writable: readonly number[];
}

/** A `request` step. */
export interface RequestAction {
  readonly kind: 'request';
  readonly request: RequestSpec;
  readonly layout?: DescriptorLayout;
}

/** What a request step saw. */
interface RequestObserved {
  /** `ACK`, `NACK`, `needs-reset`, `used-length-zero`, … */
  readonly label: string;
  /** The block state an ACKed STATE request reported. */
  readonly state?: string;
  readonly text: string;
  /** Whether the oracle knew the conforming set. */
  readonly evaluated: boolean;
  /** The conforming outcome the answer matched, if any. */
  readonly matched?: DeviceOutcome;
}

const RequestSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { oneOf: [{ enum: REQUEST_TYPE_NAMES }, { type: 'integer', minimum: 0, maximum: 65535 }] },
    addr: Expression,
    nb_blocks: Expression,
    padding: HexBytes,
    payload_padding: HexBytes,
    raw: HexBytes,
    layout: {
      type: 'object',
      additionalProperties: false,
      required: ['readable', 'writable'],
      properties: {
        readable: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'integer', minimum: 0, maximum: 4096 } },
        writable: { type: 'array', minItems: 0, maxItems: 16, items: { type: 'integer', minimum: 0, maximum: 4096 } },
      },
    },
  },
} as const;

interface RawRequest {
  type?: string | number;
  addr?: string | number;
  nb_blocks?: string | number;
  padding?: string;
  payload_padding?: string;
  raw?: string;
  layout?: DescriptorLayout;
}

/** The `request` step kind. */
export const requestStep = defineStepKind<RequestAction, RequestObserved>({
  kind: 'request',
  key: 'request',
  schema: RequestSchema,
  implies: (action) => (action.layout ? ['raw-descriptor-layout'] : []),
  normalise(raw, site) {
    const r = raw as RawRequest;
    if (r.raw !== undefined) {
      const extra = (['type', 'addr', 'nb_blocks', 'padding', 'payload_padding'] as const).filter(
        (k) => r[k] !== undefined,
      );
      if (extra.length > 0) return site.problem(`a raw request gives its bytes only; remove ${extra.join(', ')}`);
      const bytes = site.at('raw').hex(r.raw);
      return bytes && { kind: 'request', request: { form: 'raw', bytes }, layout: r.layout };
    }
    if (r.type === undefined)
      return site.problem("a request needs 'type' (PLUG, UNPLUG, UNPLUG_ALL, STATE or a number) or 'raw' bytes");
    const addr = r.addr === undefined ? undefined : site.at('addr').expr(r.addr);
    const nbBlocks = r.nb_blocks === undefined ? undefined : site.at('nb_blocks').expr(r.nb_blocks);
    const padding = r.padding === undefined ? undefined : site.at('padding').hex(r.padding, 6);
    const payloadPadding =
      r.payload_padding === undefined ? undefined : site.at('payload_padding').hex(r.payload_padding, 6);
    const request: RequestSpec = {
      form: 'fields',
      type: typeof r.type === 'number' ? r.type : (REQUEST_TYPE_NAMES as readonly string[]).indexOf(r.type),
      addr: addr ?? { kind: 'number', value: 0n },
      nbBlocks: nbBlocks ?? { kind: 'number', value: 0n },
      padding,
      payloadPadding,
    };
    return { kind: 'request', request, layout: r.layout };
  },
  targets: {
    device: {
      async execute(context, action, step) {
        const built = buildChain(action.request, action.layout, scopeOfConfig(context.config), step.index);
        if (built.kind === 'stop') return built;
        const chain = built.value;
        const statedResponse = step.expect.response;
        const findings: Finding[] = [];
        for (let attempt = 0; ; attempt++) {
          const evaluation = context.oracle.evaluate(chain);
          if (attempt === 0 && evaluation) context.observer?.requestEvaluated?.(step, evaluation);
          const completion = await context.session.submit(chain);
          const status = await context.session.readStatus();
          const observed = labelCompletion(completion, status, peekRequestType(chain.readable));
          // While the host holds the device busy, BUSY is what the host asked for: judged, not retried.
          const busyUnexpected =
            observed.label === 'BUSY' &&
            !context.hostBusy &&
            !(statedResponse?.has('BUSY') ?? false) &&
            evaluation?.outcomes.some((o) => outcomeLabel(o) === 'BUSY');
          if (busyUnexpected) {
            if (attempt < context.busyRetries) continue;
            // dev.suite.1: BUSY is temporary; a device that keeps answering it is of no use.
            return stopWith({
              verdict: 'fail',
              step: step.index,
              check: 'progress',
              message: `the device made no progress: it answered BUSY ${times(attempt + 1)} in a row (an unlisted BUSY is retried ${times(context.busyRetries)}); the remaining steps were not run`,
              expected: `an answer other than BUSY within ${context.busyRetries} retries`,
              observed: 'BUSY',
              requirements: ['dev.suite.1'],
            });
          }
          // The oracle's verdict on the observed outcome.
          let matched: DeviceOutcome | undefined;
          if (evaluation) {
            matched = evaluation.outcomes.find(
              (o) =>
                outcomeLabel(o) === observed.label &&
                (o.kind !== 'response' || o.state === undefined || o.state === observed.state),
            );
            if (!matched) {
              findings.push({
                verdict: 'fail',
                step: step.index,
                check: 'response',
                message: `the device answered ${observed.text}, which no conforming device answers here`,
                expected: evaluation.outcomes.map(describeOutcome).join(' | '),
                observed: observed.text,
                requirements: [...new Set(evaluation.outcomes.flatMap((o) => o.requirements))],
              });
            } else if (!statedResponse) {
              const v = verdictOfConformance(matched.class);
              if (v !== 'pass')
                findings.push({
                  verdict: v,
                  step: step.index,
                  check: 'response',
                  message: `${observed.text}: ${matched.rationale}`,
                  observed: observed.text,
                  requirements: matched.requirements,
                });
            }
          }
          findings.push(...judgeUsedLength(completion, chain, step.index));
          const after = await context.readConfig();
          if (after.kind === 'stop') return after;
          if (matched) context.oracle.apply(matched, after.value.usable_region_size);
          else context.oracle.forget();
          const isUnplugAll = evaluation?.request?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && observed.label === 'ACK';
          if (isUnplugAll) {
            if (after.value.plugged_size !== 0n) {
              findings.push({
                verdict: 'fail',
                step: step.index,
                check: 'config.plugged_size',
                message: 'UNPLUG ALL was acknowledged but plugged_size is not 0',
                expected: '0x0',
                observed: formatHex(after.value.plugged_size),
                requirements: ['dev.unplugall.5'],
              });
            }
            context.oracle.restoreAllUnplugged(after.value);
          }
          return proceed({
            transition: isUnplugAll ? 'unplug-all' : 'request',
            observed: { ...observed, evaluated: evaluation !== undefined, matched },
            findings,
            configAfter: after.value,
          });
        }
      },
      expect: {
        // An answer outside the conforming set is already reported by the step; the vector's own set is checked otherwise.
        response: (stated, o, step) =>
          proceed(
            o.matched || !o.evaluated
              ? judgeOutcome(step, 'response', stated, o.label, undefined, o.matched?.requirements)
              : [],
          ),
        state: (stated, o, step) =>
          proceed(
            o.label !== 'ACK'
              ? [
                  {
                    verdict: 'fail',
                    step,
                    check: 'state',
                    message: `no state to compare: the device answered ${o.text}`,
                    expected: describeSet(stated),
                  },
                ]
              : judgeOutcome(step, 'state', stated, o.state ?? 'nothing'),
          ),
        config: deviceConfig,
        notification: deviceNotification,
        needs_reset: deviceNeedsReset,
      },
    },
  },
});

/** How the runner names what came back for a chain (the recorder states what it saw in the same words). */
export function labelCompletion(
  completion: Completion,
  status: number,
  requestType: number | undefined,
): { label: string; state?: string; text: string } {
  if (completion.kind === 'no-used-entry') {
    const label = status & VIRTIO_CONFIG_S_NEEDS_RESET ? 'needs-reset' : 'no-used-entry';
    return { label, text: label === 'needs-reset' ? 'no used entry, DEVICE_NEEDS_RESET set' : 'no used entry' };
  }
  if (completion.length === 0) return { label: 'used-length-zero', text: 'a used entry of length 0' };
  if (completion.length < 2)
    return { label: `used-length-${completion.length}`, text: `a used entry of length ${completion.length}` };
  const type = readResponseType(completion.written) ?? 0;
  const name = RESPONSE_CODE_NAMES[type] ?? `type-${type}`;
  if (name === 'ACK' && requestType === VIRTIO_MEM_REQ_STATE && completion.length >= VirtioMemResponseLayout.size) {
    const code = readResponseState(completion.written) ?? 0;
    const state = BLOCK_STATE_NAMES[code] ?? `state-${code}`;
    return { label: name, state, text: `ACK(${state})` };
  }
  const short = completion.length < VirtioMemResponseLayout.size ? ` (used length ${completion.length})` : '';
  return { label: name, text: `${name}${short}` };
}

/** Builds the descriptor chain of a request step (`step` numbers the finding when it cannot). */
export function buildChain(
  spec: RequestSpec,
  layout: DescriptorLayout | undefined,
  scope: ExpressionScope,
  step: number,
): StepOutcome<Chain> {
  let bytes: Uint8Array;
  if (spec.form === 'raw') {
    bytes = spec.bytes;
  } else {
    const addr = valueOf(spec.addr, scope, 'request.addr', step);
    if (addr.kind === 'stop') return addr;
    const nb = valueOf(spec.nbBlocks, scope, 'request.nb_blocks', step);
    if (nb.kind === 'stop') return nb;
    if (addr.value < 0n || addr.value >= 1n << 64n)
      return stopWith({
        verdict: 'error',
        step,
        check: 'request.addr',
        message: `request.addr ${addr.value} does not fit in 64 bits`,
      });
    if (nb.value < 0n || nb.value > 0xffffn)
      return stopWith({
        verdict: 'error',
        step,
        check: 'request.nb_blocks',
        message: `request.nb_blocks ${nb.value} does not fit in 16 bits`,
      });
    bytes = encodeLayout(VirtioMemRequestLayout, {
      type: spec.type,
      padding: spec.padding ?? new Uint8Array(6),
      addr: addr.value,
      nb_blocks: Number(nb.value),
      payload_padding: spec.payloadPadding ?? new Uint8Array(6),
    });
  }
  if (!layout) return proceed({ readable: [bytes], writableSizes: [VirtioMemResponseLayout.size] });
  const readable: Uint8Array[] = [];
  let offset = 0;
  for (const size of layout.readable) {
    const part = new Uint8Array(size);
    part.set(bytes.subarray(offset, Math.min(offset + size, bytes.length)));
    readable.push(part);
    offset += size;
  }
  return proceed({ readable, writableSizes: layout.writable });
}
