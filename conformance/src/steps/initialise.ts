/**
 * `initialise`: the runner, as the driver, runs the feature handshake with chosen features. A
 * vector with this step starts with a device no driver has activated.
 *
 * ```yaml
 * - initialise: {accept: [VERSION_1]}
 *   expect: {features_ok: accepted}
 * ```
 */
import { FeatureList } from '../../../spec/src/index';
import { judgeOutcome } from '../judge/checks';
import { judgeFeaturesOkRefusal } from '../judge/virtio-core-checks';
import { deviceConfig, deviceNeedsReset } from './observation-checks';
import { featureSet } from './site';
import { defineStepKind, proceed, stopWith } from './step-kind';

/** An `initialise` step: the features the driver accepts (all offered, or exactly these). */
export interface InitialiseAction {
  readonly kind: 'initialise';
  readonly accept: 'offered' | bigint;
}

/** The `initialise` step kind. */
export const initialiseStep = defineStepKind<InitialiseAction, { readonly featuresOk: boolean }>({
  kind: 'initialise',
  key: 'initialise',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { accept: { oneOf: [{ const: 'offered' }, FeatureList] } },
  },
  capability: 'feature-negotiation',
  normalise(raw) {
    const accept = (raw as { accept?: 'offered' | string[] }).accept;
    return {
      kind: 'initialise',
      accept: accept === undefined || accept === 'offered' ? 'offered' : featureSet(accept),
    };
  },
  targets: {
    device: {
      async execute(context, action, step) {
        const init = await context.initialise((offered) => (action.accept === 'offered' ? offered : action.accept));
        // Without a stated `features_ok` a refusal is judged as the core and §5.15 grade it (features_ok).
        if (!step.expect.featuresOk && !init.featuresOk) return stopWith(judgeFeaturesOkRefusal(init, step.index));
        return proceed({ transition: 'read', observed: { featuresOk: init.featuresOk } });
      },
      expect: {
        features_ok: (stated, o, step) =>
          proceed(judgeOutcome(step, 'features_ok', stated, o.featuresOk ? 'accepted' : 'refused')),
        config: deviceConfig,
        needs_reset: deviceNeedsReset,
      },
    },
  },
});
