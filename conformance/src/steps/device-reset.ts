/**
 * `device_reset`: the runner, as the driver, resets the device (status ← 0) and, unless the
 * vector says otherwise, initialises it again.
 *
 * ```yaml
 * - device_reset: true
 *   expect: {config: {plugged_size: 0}}
 * - device_reset: {reinitialise: false}   # steps meet a device with status 0 until an initialise step
 * ```
 */
import { deviceConfig, deviceNeedsReset, deviceNotification } from './observation-checks';
import { defineStepKind, proceed } from './step-kind';
import { sessionMethod } from './session-method';

/** A `device_reset` step. */
export interface DeviceResetAction {
  readonly kind: 'device-reset';
  /** Whether the runner runs the handshake again right after the reset (`device_reset: true`). */
  readonly reinitialise: boolean;
}

/** The `device_reset` step kind. */
export const deviceResetStep = defineStepKind<DeviceResetAction, undefined>({
  kind: 'device-reset',
  key: 'device_reset',
  schema: {
    oneOf: [
      { const: true },
      {
        type: 'object',
        additionalProperties: false,
        required: ['reinitialise'],
        properties: { reinitialise: { type: 'boolean' } },
      },
    ],
  },
  capability: 'device-reset',
  normalise: (raw) => ({
    kind: 'device-reset',
    reinitialise: raw === true || (raw as { reinitialise: boolean }).reinitialise,
  }),
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
