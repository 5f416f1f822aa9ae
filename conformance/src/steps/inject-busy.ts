/**
 * `inject_busy`: the device answers BUSY to the next requests that would otherwise succeed
 * (a test hook of the model).
 *
 * ```yaml
 * - inject_busy: 2
 * ```
 */
import { defineStepKind, proceed } from './step-kind';
import { sessionMethod } from './session-method';

/** An `inject_busy` step: how many requests are answered BUSY. */
export interface InjectBusyAction {
  readonly kind: 'inject-busy';
  readonly count: number;
}

/** The `inject_busy` step kind. */
export const injectBusyStep = defineStepKind<InjectBusyAction, undefined>({
  kind: 'inject-busy',
  key: 'inject_busy',
  schema: { type: 'integer', minimum: 1, maximum: 1000 },
  capability: 'inject-busy',
  normalise: (raw) => ({ kind: 'inject-busy', count: raw as number }),
  targets: {
    device: {
      async execute(context, action, step) {
        const inject = sessionMethod(context.session, 'injectBusy', step.index);
        if (inject.kind === 'stop') return inject;
        await inject.value(action.count);
        return proceed({ transition: 'read', observed: undefined });
      },
      expect: {},
    },
  },
});
