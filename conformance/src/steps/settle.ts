/**
 * `settle`: lets the driver run until it is quiet (or a limit is hit) and checks every request
 * and memory write it made on the way (driver-checks.ts), then what the vector states about the
 * whole exchange.
 *
 * ```yaml
 * - settle: true
 *   expect: {converged: true, first_request: [UNPLUG_ALL, STATE]}
 * ```
 */
import { REQUEST_TYPE_NAMES, formatHex } from '../../../spec/src/index';
import { decodeRequest } from '../../../model/src/index';
import type { VirtioMemConfig } from '../../../model/src/index';
import type { DriverExchange } from '../../../adapters/core/src/contract';
import {
  applyDriverRequest,
  busyRetries,
  checkRetryDelay,
  checkDriverConfigWrite,
  checkDriverRequest,
  checkDriverWrite,
  nackedPlugRepeats,
} from '../judge/driver-checks';
import type { Finding } from '../judge/verdicts';
import { driverConfig } from './observation-checks';
import { defineStepKind, proceed } from './step-kind';

/**
 * Default limits of a `settle` step. The time bound is a safety net, not a statement about the
 * driver: a day, so that any backoff policy a driver may choose gets through a vector's BUSY
 * answers (on the model the time is virtual and costs nothing; a live guest caps it further).
 */
export const DEFAULT_SETTLE = { maxRequests: 100_000, timeoutMs: 86_400_000 };

/** A `settle` step. */
export interface SettleAction {
  readonly kind: 'settle';
  readonly maxRequests?: number;
  readonly timeoutMs?: number;
}

/** What a settle step saw. */
interface SettleObserved {
  readonly settled: boolean;
  /** Why the driver stopped, in the adapter's words. */
  readonly stop: string;
  /** The request types the driver sent, in order (`malformed` for undecodable ones). */
  readonly requests: readonly string[];
  /** The requests themselves, with answers and time stamps, in order. */
  readonly exchanges: readonly DriverExchange[];
  /** The configuration after the driver went quiet. */
  readonly config: VirtioMemConfig;
}

function fail(
  step: number,
  check: string,
  message: string,
  expected?: string,
  observed?: string,
  requirements?: string[],
): Finding[] {
  return [{ verdict: 'fail', step, check, message, expected, observed, requirements }];
}

/** The `settle` step kind. */
export const settleStep = defineStepKind<SettleAction, never, SettleObserved>({
  kind: 'settle',
  key: 'settle',
  schema: {
    oneOf: [
      { const: true },
      {
        type: 'object',
        additionalProperties: false,
        properties: {
          max_requests: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
          // A Node.js timer holds at most 2^31 - 1 ms; a longer one would fire at once.
          timeout_ms: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
        },
      },
    ],
  },
  normalise(raw) {
    const s = raw === true ? {} : (raw as { max_requests?: number; timeout_ms?: number });
    return { kind: 'settle', maxRequests: s.max_requests, timeoutMs: s.timeout_ms };
  },
  targets: {
    driver: {
      async execute(context, action, step) {
        const activity = await context.session.settle({
          maxRequests: action.maxRequests ?? DEFAULT_SETTLE.maxRequests,
          timeoutMs: action.timeoutMs ?? DEFAULT_SETTLE.timeoutMs,
        });
        const requests: string[] = [];
        const exchanges: DriverExchange[] = [];
        const once: Finding[] = [];
        for (const ev of activity.events) {
          if (ev.kind === 'request') {
            exchanges.push(ev.exchange);
            const d = decodeRequest(ev.exchange.request);
            requests.push(d.ok ? (REQUEST_TYPE_NAMES[d.value.type] ?? `type-${d.value.type}`) : 'malformed');
            once.push(...checkDriverRequest(context.config, context.shadow, ev.exchange, step.index));
            applyDriverRequest(context.config, context.shadow, ev.exchange);
          } else if (ev.kind === 'memory-write') {
            once.push(...checkDriverWrite(context.config, context.shadow, ev, step.index));
          } else {
            once.push(...checkDriverConfigWrite(ev, step.index));
          }
        }
        const config = await context.readConfig();
        if (config.kind === 'stop') return config;
        return proceed({
          observed: { settled: activity.settled, stop: activity.stop, requests, exchanges, config: config.value },
          once,
        });
      },
      expect: {
        settled: (stated, o, step) =>
          proceed(
            stated !== o.settled
              ? fail(
                  step,
                  'settled',
                  `the driver ${o.settled ? 'went quiet' : 'did not go quiet'} (${o.stop})`,
                  String(stated),
                  String(o.settled),
                )
              : [],
          ),
        converged: (stated, o, step) => {
          const converged = o.config.plugged_size === o.config.requested_size;
          if (converged === stated) return proceed([]);
          return proceed(
            fail(
              step,
              'converged',
              `plugged_size ${formatHex(o.config.plugged_size)}, requested_size ${formatHex(o.config.requested_size)} (${o.stop})`,
              stated ? 'plugged_size = requested_size' : 'plugged_size ≠ requested_size',
              formatHex(o.config.plugged_size),
              ['drv.op.8'],
            ),
          );
        },
        first_request: (stated, o, step) => {
          const first = o.requests[0] ?? 'none';
          return proceed(
            stated.includes(first)
              ? []
              : fail(step, 'first_request', 'unexpected first request', stated.join(' | '), first),
          );
        },
        requests: (stated, o, step) => {
          const n = o.requests.length;
          const outside = (stated.min !== undefined && n < stated.min) || (stated.max !== undefined && n > stated.max);
          return proceed(
            outside
              ? fail(
                  step,
                  'requests',
                  `the driver sent ${n} requests`,
                  `${stated.min ?? 0}..${stated.max ?? '∞'}`,
                  String(n),
                )
              : [],
          );
        },
        request_types: (stated, o, step) => {
          const seen = new Set(o.requests);
          const missing = stated.includes.filter((t) => !seen.has(t));
          const extra = stated.excludes.filter((t) => seen.has(t));
          if (!missing.length && !extra.length) return proceed([]);
          return proceed(
            fail(
              step,
              'request_types',
              `request types seen: ${[...seen].join(', ') || 'none'}`,
              `includes ${stated.includes.join(', ') || '-'}; excludes ${stated.excludes.join(', ') || '-'}`,
              [...seen].join(', '),
            ),
          );
        },
        retry_delay: (stated, o, step) => proceed(checkRetryDelay(stated.minMs, o.exchanges, step)),
        busy_retries: (stated, o, step) => {
          const { busy, retried } = busyRetries(o.exchanges);
          const outside =
            (stated.min !== undefined && retried < stated.min) || (stated.max !== undefined && retried > stated.max);
          return proceed(
            outside
              ? fail(
                  step,
                  'busy_retries',
                  `the driver retried ${retried} of ${busy} BUSY answers (${o.stop})`,
                  `${stated.min ?? 0}..${stated.max ?? '∞'} retries`,
                  String(retried),
                  ['drv.suite.1'],
                )
              : [],
          );
        },
        nack_repeats: (stated, o, step) => {
          const repeats = nackedPlugRepeats(o.exchanges);
          return proceed(
            repeats > stated.max
              ? fail(
                  step,
                  'nack_repeats',
                  `the driver sent ${repeats} PLUG requests after a NACKed PLUG without a configuration change`,
                  `at most ${stated.max}`,
                  String(repeats),
                  ['drv.suite.3'],
                )
              : [],
          );
        },
        config: driverConfig,
      },
    },
  },
});
