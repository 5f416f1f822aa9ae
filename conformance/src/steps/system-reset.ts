/**
 * `system_reset`: a platform reset (a reboot). A device must come back with nothing plugged
 * (dev.op.6); a driver probes again and must find its footing from the configuration.
 *
 * ```yaml
 * - system_reset: true
 *   expect: {config: {plugged_size: 0}}
 * ```
 */
import { deviceConfig, deviceNeedsReset, deviceNotification, driverConfig } from './observation-checks';
import { defineStepKind, proceed } from './step-kind';
import { sessionMethod } from './session-method';

/** A `system_reset` step. */
export interface SystemResetAction {
  readonly kind: 'system-reset';
}

/** The `system_reset` step kind. */
export const systemResetStep = defineStepKind<SystemResetAction, undefined, undefined>({
  kind: 'system-reset',
  key: 'system_reset',
  schema: { const: true },
  capability: 'system-reset',
  normalise: () => ({ kind: 'system-reset' }),
  targets: {
    device: {
      async execute(context, _action, step) {
        const systemReset = sessionMethod(context.session, 'systemReset', step.index);
        if (systemReset.kind === 'stop') return systemReset;
        await systemReset.value();
        return proceed({ transition: 'system-reset', observed: undefined });
      },
      expect: { config: deviceConfig, notification: deviceNotification, needs_reset: deviceNeedsReset },
    },
    driver: {
      async execute(context, _action, step) {
        const systemReset = sessionMethod(context.session, 'systemReset', step.index);
        if (systemReset.kind === 'stop') return systemReset;
        await systemReset.value();
        context.shadow.firstRequestSeen = false;
        const config = await context.readConfig();
        if (config.kind === 'stop') return config;
        // A reboot starts the driver over; blocks are known again only when the device unplugged them all.
        if (config.value.plugged_size === 0n) context.shadow.blocks.clearAll();
        context.shadow.pluggedAtStart = config.value.plugged_size > 0n;
        return proceed({ observed: undefined });
      },
      expect: { config: driverConfig },
    },
  },
});
