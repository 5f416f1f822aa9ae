/**
 * `host_busy`: the host makes the device busy (`true`), or releases it (`false`). On QEMU the
 * host is busy while an outgoing migration is active. While the host holds the device busy the
 * runner expects BUSY: an answer BUSY the vector does not list is judged against the conforming
 * set like any other answer (dev.plug.5, dev.unplug.5, dev.unplugall.3) instead of being retried
 * — retrying cannot help until the host releases the device. Once released, the progress rule
 * applies again (dev.suite.1): a device still answering BUSY then fails `progress`.
 *
 * For a driver vector the host does the same while the driver runs: the driver meets BUSY
 * answers it did not ask for, and is not told of the release (it must come back on its own).
 *
 * ```yaml
 * - host_busy: true
 *   expect: {config: {plugged_size: unchanged}, notification: none}
 * ```
 */
import { deviceConfig, deviceNotification } from './observation-checks';
import { defineStepKind, proceed } from './step-kind';
import { sessionMethod } from './session-method';

/** A `host_busy` step: whether the host holds the device busy from now on. */
export interface HostBusyAction {
  readonly kind: 'host-busy';
  readonly busy: boolean;
}

/** The `host_busy` step kind. */
export const hostBusyStep = defineStepKind<HostBusyAction, undefined, undefined>({
  kind: 'host-busy',
  key: 'host_busy',
  schema: { type: 'boolean' },
  capability: 'host-busy',
  normalise: (raw) => ({ kind: 'host-busy', busy: raw as boolean }),
  targets: {
    device: {
      async execute(context, action, step) {
        const hostBusy = sessionMethod(context.session, 'hostBusy', step.index);
        if (hostBusy.kind === 'stop') return hostBusy;
        await hostBusy.value(action.busy);
        context.hostBusy = action.busy;
        return proceed({ transition: 'read', observed: undefined });
      },
      expect: { config: deviceConfig, notification: deviceNotification },
    },
    driver: {
      async execute(context, action, step) {
        const hostBusy = sessionMethod(context.session, 'hostBusy', step.index);
        if (hostBusy.kind === 'stop') return hostBusy;
        await hostBusy.value(action.busy);
        return proceed({ observed: undefined });
      },
      expect: {},
    },
  },
});
