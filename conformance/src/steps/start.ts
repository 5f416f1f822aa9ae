/**
 * `start`: the driver probes the device (brings the driver up) and negotiates features. It
 * should accept UNPLUGGED_INACCESSIBLE when offered (drv.init.1).
 *
 * ```yaml
 * - start: true
 *   expect: {accepted_features: {includes: [VERSION_1]}}
 * - start: true
 *   expect: {persistent_suspend: {accepted: pass, declined: acceptable}}   # graded, not required
 * ```
 */
import {
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  featureMask,
  formatHex,
} from '../../../spec/src/index';
import { judgeOutcome } from '../judge/checks';
import type { Finding } from '../judge/verdicts';
import { driverConfig } from './observation-checks';
import { defineStepKind, proceed } from './step-kind';

const UNPLUGGED_INACCESSIBLE = featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
const PERSISTENT_SUSPEND = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);

/** A `start` step. */
export interface StartAction {
  readonly kind: 'start';
}

/** The `start` step kind. */
export const startStep = defineStepKind<StartAction, never, { readonly negotiated: bigint }>({
  kind: 'start',
  key: 'start',
  schema: { const: true },
  normalise: () => ({ kind: 'start' }),
  targets: {
    driver: {
      async execute(context, _action, step) {
        await context.session.start();
        const negotiated = await context.session.acceptedFeatures();
        context.negotiated = negotiated;
        const offered = await context.session.offeredFeatures();
        const once: Finding[] =
          (offered & UNPLUGGED_INACCESSIBLE) !== 0n && (negotiated & UNPLUGGED_INACCESSIBLE) === 0n
            ? [
                {
                  verdict: 'non-strict' as const,
                  step: step.index,
                  check: 'driver:accept-unplugged-inaccessible',
                  message: 'the device offered UNPLUGGED_INACCESSIBLE and the driver did not accept it',
                  requirements: ['drv.init.1'],
                },
              ]
            : [];
        // A driver accepts a subset of what the device offered (virtio feature negotiation).
        const unoffered = negotiated & ~offered;
        if (unoffered !== 0n)
          once.push({
            verdict: 'fail',
            step: step.index,
            check: 'driver:unoffered-features',
            message: `the driver accepted feature bits ${formatHex(unoffered)} the device did not offer`,
            expected: `a subset of ${formatHex(offered)}`,
            observed: formatHex(negotiated),
          });
        return proceed({ observed: { negotiated }, once });
      },
      expect: {
        accepted_features: (stated, o, step) => {
          const missing = stated.includes & ~o.negotiated;
          const extra = stated.excludes & o.negotiated;
          if (!missing && !extra) return proceed([]);
          return proceed([
            {
              verdict: 'fail',
              step,
              check: 'accepted_features',
              message: 'accepted features differ',
              expected: `includes ${formatHex(stated.includes)}, excludes ${formatHex(stated.excludes)}`,
              observed: formatHex(o.negotiated),
            },
          ]);
        },
        // No statement obliges a driver to accept an offered feature: a vector grades the choice.
        persistent_suspend: (stated, o, step) => {
          const accepted = (o.negotiated & PERSISTENT_SUSPEND) !== 0n;
          return proceed(
            judgeOutcome(
              step,
              'persistent_suspend',
              stated,
              accepted ? 'accepted' : 'declined',
              `negotiated ${formatHex(o.negotiated)}`,
            ),
          );
        },
        config: driverConfig,
      },
    },
  },
});
