/**
 * The driver target of the served model: the suite is the device, the harness runs the
 * reference driver through the model's asynchronous driver pump, whose device operations are
 * calls to the suite (`read_config`, `request`, `write_memory`). Request times (`at_ms`) are the
 * session's virtual clock ({@link DriverSessionCore}).
 */
import { DriverSessionCore, ReferenceDriver } from '../../../model/src/index';
import type { DriverDevicePort } from '../../../model/src/index';
import type { HarnessCaller } from './calls';
import type { CommandOutcome, HarnessCommand } from './messages';

/** The driver ops after `open_driver`, by name. */
export const DRIVER_OPS = ['start', 'settle', 'close_driver', 'reboot', 'may_suspend'] as const;

/** A command of the driver target (after `open_driver`). */
export type DriverCommand = Extract<HarnessCommand, { op: (typeof DRIVER_OPS)[number] }>;

/** Whether `command` is a driver op. */
export function isDriverCommand(command: HarnessCommand): command is DriverCommand {
  return (DRIVER_OPS as readonly string[]).includes(command.op);
}

const ok = (fields: Readonly<Record<string, unknown>> = {}): CommandOutcome => ({ kind: 'ok', fields });

/** `open_driver`: a fresh driver session (the set-up and the padding are the suite's: it holds the device). */
export function openServedDriver(makeDriver: () => ReferenceDriver = () => new ReferenceDriver()): DriverSessionCore {
  return new DriverSessionCore(makeDriver);
}

/** The suite's device as the pump's port: every operation is a call. */
function suitePort(call: HarnessCaller): DriverDevicePort {
  return {
    readConfig: async () => {
      const a = await call('read_config', {});
      return { config: a.config, configChanged: a.config_changed };
    },
    request: async (op) => {
      const a = await call('request', { bytes: op.action.bytes, at_ms: op.atMs });
      return { response: a.response, configChanged: a.config_changed };
    },
    writeMemory: async (op) => {
      const a = await call('write_memory', { addr: op.action.addr, length: op.action.length });
      return { ok: a.ok, configChanged: a.config_changed };
    },
  };
}

/** Answers one driver op on `session`. */
export async function driverCommand(
  session: DriverSessionCore,
  command: DriverCommand,
  call: HarnessCaller,
): Promise<CommandOutcome> {
  switch (command.op) {
    case 'start':
      return ok({ accepted: session.driver.negotiate(command.params.offered) });
    case 'settle': {
      const { max_requests, timeout_ms, config_changed } = command.params;
      const outcome = await session.settleOver(
        suitePort(call),
        { maxRequests: max_requests, timeoutMs: timeout_ms },
        config_changed,
      );
      return ok({ settled: outcome.settled, stop: outcome.stop, waited_ms: outcome.waitedMs });
    }
    case 'close_driver':
      return ok();
    case 'reboot':
      session.reboot();
      return ok();
    case 'may_suspend': {
      const verdict = session.maySuspend();
      return ok({ allowed: verdict.allowed, detail: verdict.detail });
    }
  }
}
