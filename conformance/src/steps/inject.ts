/**
 * `inject`: the device answers the driver's next requests with a chosen response (optionally
 * only requests of some types, optionally with garbage after the type).
 *
 * ```yaml
 * - inject: {response: BUSY, count: 3, types: [PLUG]}
 * ```
 */
import { HexBytes, REQUEST_TYPE_NAMES, RESPONSE_CODE_NAMES } from '../../../spec/src/index';
import { RESPONSE_TRAILER_SIZE } from '../../../model/src/index';
import { defineStepKind, proceed } from './step-kind';
import { sessionMethod } from './session-method';

/** An `inject` step. */
export interface InjectAction {
  readonly kind: 'inject';
  readonly response: 'ACK' | 'NACK' | 'BUSY' | 'ERROR';
  readonly count: number;
  readonly types?: readonly string[];
  readonly trailer?: Uint8Array;
}

/** The `inject` step kind. */
export const injectStep = defineStepKind<InjectAction, never, undefined>({
  kind: 'inject',
  key: 'inject',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['response', 'count'],
    properties: {
      response: { enum: RESPONSE_CODE_NAMES },
      count: { type: 'integer', minimum: 1, maximum: 1000 },
      types: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: REQUEST_TYPE_NAMES } },
      trailer: HexBytes,
    },
  },
  capability: 'inject-responses',
  normalise(raw, site) {
    const i = raw as { response: InjectAction['response']; count: number; types?: string[]; trailer?: string };
    const trailer = i.trailer === undefined ? undefined : site.at('trailer').hex(i.trailer);
    if (trailer && trailer.length > RESPONSE_TRAILER_SIZE)
      return site
        .at('trailer')
        .problem(`at most ${RESPONSE_TRAILER_SIZE} bytes follow the response type (got ${trailer.length})`);
    return { kind: 'inject', response: i.response, count: i.count, types: i.types, trailer };
  },
  targets: {
    driver: {
      async execute(context, action, step) {
        const injectResponses = sessionMethod(context.session, 'injectResponses', step.index);
        if (injectResponses.kind === 'stop') return injectResponses;
        await injectResponses.value({
          response: action.response,
          count: action.count,
          types: action.types,
          trailer: action.trailer,
        });
        return proceed({ observed: undefined });
      },
      expect: {},
    },
  },
});
