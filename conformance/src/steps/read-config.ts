/**
 * `read_config`: reads the configuration and checks it (and, on a device, its raw bytes, the
 * notification count and the status).
 *
 * ```yaml
 * - read_config: true
 *   expect: {config: {usable_region_size: {min: requested_size, max: region_size}}}
 * ```
 */
import {
  deviceConfig,
  deviceConfigBytes,
  deviceNeedsReset,
  deviceNotification,
  driverConfig,
} from './observation-checks';
import { defineStepKind, proceed } from './step-kind';

/** A `read_config` step. */
export interface ReadConfigAction {
  readonly kind: 'read-config';
}

/** The `read_config` step kind. */
export const readConfigStep = defineStepKind<ReadConfigAction, undefined, undefined>({
  kind: 'read-config',
  key: 'read_config',
  schema: { const: true },
  normalise: () => ({ kind: 'read-config' }),
  targets: {
    device: {
      execute: async () => proceed({ transition: 'read', observed: undefined }),
      expect: {
        config: deviceConfig,
        config_bytes: deviceConfigBytes,
        notification: deviceNotification,
        needs_reset: deviceNeedsReset,
      },
    },
    driver: {
      async execute(context) {
        const config = await context.readConfig();
        return config.kind === 'stop' ? config : proceed({ observed: undefined });
      },
      expect: { config: driverConfig },
    },
  },
});
