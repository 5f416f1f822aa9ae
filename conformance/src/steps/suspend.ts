/**
 * `suspend`: suspend to RAM and wake up. On a device it checks what survives the sleep; on a
 * driver the guest asks to suspend and the driver must refuse unless PERSISTENT_SUSPEND was
 * negotiated (drv.op.11; the statement has no exception for "nothing plugged").
 *
 * ```yaml
 * - suspend: true
 *   expect: {suspend: refused}     # driver vectors
 * ```
 */
import { VIRTIO_MEM_F_PERSISTENT_SUSPEND, featureMask } from '../../../spec/src/index';
import { judgeOutcome } from '../judge/checks';
import { deviceConfig, deviceNotification, driverConfig } from './observation-checks';
import { defineStepKind, proceed } from './step-kind';
import { sessionMethod } from './session-method';

const PERSISTENT_SUSPEND = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);

/** A `suspend` step. */
export interface SuspendAction {
  readonly kind: 'suspend';
}

/** The `suspend` step kind. */
export const suspendStep = defineStepKind<
  SuspendAction,
  undefined,
  { readonly allowed: boolean; readonly detail: string }
>({
  kind: 'suspend',
  key: 'suspend',
  schema: { const: true },
  capability: 'suspend',
  normalise: () => ({ kind: 'suspend' }),
  targets: {
    device: {
      async execute(context, _action, step) {
        const suspendAndWake = sessionMethod(context.session, 'suspendAndWake', step.index);
        if (suspendAndWake.kind === 'stop') return suspendAndWake;
        await suspendAndWake.value();
        return proceed({ transition: 'wake', observed: undefined });
      },
      expect: { config: deviceConfig, notification: deviceNotification },
    },
    driver: {
      async execute(context, _action, step) {
        const requestSuspend = sessionMethod(context.session, 'requestSuspend', step.index);
        if (requestSuspend.kind === 'stop') return requestSuspend;
        const verdict = await requestSuspend.value();
        const findings =
          verdict.allowed && (context.negotiated & PERSISTENT_SUSPEND) === 0n
            ? [
                {
                  verdict: 'fail' as const,
                  step: step.index,
                  check: 'driver:suspend',
                  message:
                    context.config.plugged_size > 0n
                      ? 'the driver let the guest suspend with memory plugged although PERSISTENT_SUSPEND was not negotiated'
                      : 'the driver let the guest suspend although PERSISTENT_SUSPEND was not negotiated (nothing plugged is no exception)',
                  requirements: ['drv.op.11'],
                },
              ]
            : [];
        return proceed({ observed: verdict, findings });
      },
      expect: {
        suspend: (stated, o, step) =>
          proceed(judgeOutcome(step, 'suspend', stated, o.allowed ? 'allowed' : 'refused', o.detail)),
        config: driverConfig,
      },
    },
  },
});
