/**
 * Checkers of the expectation keys that read the common observation of a step (configuration,
 * notification, status), shared by the step kinds that admit them.
 */
import { VIRTIO_CONFIG_S_NEEDS_RESET } from '../../../spec/src/index';
import { judgeBytes, judgeConfig, judgeOutcome } from '../judge/checks';
import type { Checker, DeviceObservation, DriverObservation } from './step-kind';
import { proceed } from './step-kind';

/** `config`: the configuration after a device step. */
export const deviceConfig: Checker<'config', DeviceObservation> = (stated, o, step) =>
  judgeConfig(step, stated, o.before, o.after);

/** `config_bytes`: the 56 configuration bytes after a device step. */
export const deviceConfigBytes: Checker<'config_bytes', DeviceObservation> = async (stated, o, step) =>
  proceed(judgeBytes(step, 'config_bytes', stated, await o.readRawConfig()));

/** `notification`: whether a configuration-change notification arrived during the step. */
export const deviceNotification: Checker<'notification', DeviceObservation> = (stated, o, step) =>
  proceed(judgeOutcome(step, 'notification', stated, o.notified ? 'sent' : 'none'));

/** `needs_reset`: whether DEVICE_NEEDS_RESET is set after the step. */
export const deviceNeedsReset: Checker<'needs_reset', DeviceObservation> = async (stated, o, step) => {
  const set = ((await o.readStatus()) & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0;
  if (set === stated) return proceed([]);
  return proceed([
    {
      verdict: 'fail',
      step,
      check: 'needs_reset',
      message: `DEVICE_NEEDS_RESET is ${set ? 'set' : 'clear'}`,
      expected: String(stated),
      observed: String(set),
    },
  ]);
};

/** `config`: the configuration after a driver step. */
export const driverConfig: Checker<'config', DriverObservation> = async (stated, o, step) => {
  const after = await o.configAfter();
  return after.kind === 'stop' ? after : judgeConfig(step, stated, o.before, after.value);
};
