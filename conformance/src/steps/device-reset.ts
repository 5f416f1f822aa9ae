/**
 * `device_reset`: the runner, as the driver, resets the device (status ← 0) and initialises it
 * again.
 *
 * ```yaml
 * - device_reset: true
 *   expect: {config: {plugged_size: 0}}
 * ```
 */
import { deviceConfig, deviceNeedsReset, deviceNotification } from './observation-checks';
import { defineStepKind, proceed } from './step-kind';
import { sessionMethod } from './session-method';

/** A `device_reset` step. */
export interface DeviceResetAction {
  readonly kind: 'device-reset';
}

/** The `device_reset` step kind. */
export const deviceResetStep = defineStepKind<DeviceResetAction, undefined>({
  kind: 'device-reset',
  key: 'device_reset',
  schema: { const: true },
  capability: 'device-reset',
  normalise: () => ({ kind: 'device-reset' }),
  targets: {
    device: {
      async execute(context, _action, step) {
        const reset = sessionMethod(context.session, 'deviceReset', step.index);
        if (reset.kind === 'stop') return reset;
        await reset.value();
        return proceed({ transition: 'device-reset', observed: undefined });
      },
      expect: { config: deviceConfig, notification: deviceNotification, needs_reset: deviceNeedsReset },
    },
  },
});
