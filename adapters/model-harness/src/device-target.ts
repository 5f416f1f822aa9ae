/**
 * The device target of the served model: the suite is the driver, the harness holds a
 * {@link ModelHost} and answers each device op as the in-process model adapter does (the same
 * host calls, the same refusals in the same words), so transcripts come out identical.
 */
import { DeviceFactory, DeviceProfile, ModelHost, deviceRegisters } from '../../../model/src/index';
import { asyncTransport, virtioHandshake } from '../../virtio/src/index';
import type { HarnessCaller } from './calls';
import type { CommandOutcome, HarnessCommand } from './messages';

/** The device ops, by name. */
export const DEVICE_OPS = [
  'initialise',
  'read_config',
  'read_status',
  'notification_count',
  'submit',
  'close_device',
  'read_config_generation',
  'resize',
  'device_reset',
  'system_reset',
  'inject_busy',
  'host_busy',
  'read_memory',
  'write_memory',
  'suspend',
] as const;

/** A command of the device target (after `open_device`). */
export type DeviceCommand = Extract<HarnessCommand, { op: (typeof DEVICE_OPS)[number] }>;

const ok = (fields: Readonly<Record<string, unknown>> = {}): CommandOutcome => ({ kind: 'ok', fields });
const error = (text: string): CommandOutcome => ({ kind: 'error', error: text });

/** `open_device`: a host built from the set-up, or why the set-up cannot be built (`unsupported`). */
export function openServedDevice(
  setup: Extract<HarnessCommand, { op: 'open_device' }>['params']['setup'],
  profile: DeviceProfile,
  factory?: DeviceFactory,
): { readonly host: ModelHost } | { readonly unsupported: string } {
  const built = ModelHost.create(setup, profile, factory);
  return built.kind === 'refused' ? { unsupported: built.reason } : { host: built.host };
}

/**
 * Runs the virtio handshake over the host's registers; reading the offered features makes the
 * one `accept` call, and the features the suite answers are written.
 */
async function initialise(host: ModelHost, call: HarnessCaller): Promise<CommandOutcome> {
  const registers = asyncTransport(deviceRegisters(host.device));
  let chosen = 0n;
  const transport = {
    ...registers,
    readDeviceFeatures: async (): Promise<bigint> => {
      const offered = await registers.readDeviceFeatures();
      chosen = (await call('accept', { offered })).features;
      return offered;
    },
  };
  const result = await virtioHandshake(transport, () => chosen);
  return ok({
    offered: result.offered,
    accepted: result.accepted,
    features_ok: result.featuresOk,
    status: result.status,
  });
}

/** Places the chain on the host; the writable buffers keep the suite's pre-fill where the device did not write. */
function submit(host: ModelHost, readable: readonly Uint8Array[], writable: readonly Uint8Array[]): CommandOutcome {
  const completion = host.submit({ readable, writableSizes: writable.map((b) => b.length) });
  if (completion.kind !== 'used') return ok({ used: false });
  const total = writable.reduce((n, b) => n + b.length, 0);
  const seen = new Uint8Array(total);
  let at = 0;
  for (const b of writable) {
    seen.set(b, at);
    at += b.length;
  }
  seen.set(completion.written.subarray(0, total));
  return ok({ used: true, length: completion.length, written: seen.slice(0, Math.min(completion.length, total)) });
}

/** Answers one device op on `host`. */
export async function deviceCommand(
  host: ModelHost,
  command: DeviceCommand,
  call: HarnessCaller,
): Promise<CommandOutcome> {
  switch (command.op) {
    case 'initialise':
      return initialise(host, call);
    case 'read_config':
      return ok({ config: host.readConfig() });
    case 'read_status':
      return ok({ status: host.readStatus() });
    case 'notification_count':
      return ok({ count: host.notificationCount });
    case 'submit':
      return submit(host, command.params.readable, command.params.writable);
    case 'close_device':
      return ok();
    case 'read_config_generation':
      return ok({ generation: host.readConfigGeneration() });
    case 'resize': {
      const r = host.resize(command.params.requested_size);
      return ok(r.kind === 'applied' ? { applied: true } : { applied: false, reason: r.reason });
    }
    case 'device_reset':
      host.deviceReset();
      return ok();
    case 'system_reset':
      host.systemReset();
      return ok();
    case 'inject_busy':
      host.injectBusy(command.params.count);
      return ok();
    case 'host_busy':
      host.setHostBusy(command.params.busy);
      return ok();
    case 'read_memory': {
      const r = host.readMemory(command.params.addr, command.params.length);
      return ok(r.ok ? { data: r.data } : { refused: `${r.reason}: ${r.detail}` });
    }
    case 'write_memory': {
      const r = host.writeMemory(command.params.addr, command.params.data);
      return ok(r.ok ? {} : { refused: `${r.reason}: ${r.detail}` });
    }
    case 'suspend': {
      const r = host.suspendAndWake();
      return r.kind === 'refused' ? error(`suspend: ${r.reason}`) : ok();
    }
  }
}

/** Whether `command` is a device op. */
export function isDeviceCommand(command: HarnessCommand): command is DeviceCommand {
  return (DEVICE_OPS as readonly string[]).includes(command.op);
}
