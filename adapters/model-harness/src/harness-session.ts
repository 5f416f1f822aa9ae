/**
 * One session of the served model over the harness protocol: the hello, then command after
 * command until the suite closes the stream. Transport-free: it reads and writes lines through
 * a {@link LineChannel}, so stdio, a unix socket and tests' in-memory streams share it.
 *
 * A command the harness cannot decode is answered `ok: false` with the reason (its id when it
 * had one, else `null`); a call whose answer does not decode fails its command the same way.
 * Nothing the suite sends ends the session but the end of its stream.
 */
import { CAPABILITY_NAMES, HARNESS_PROTOCOL } from '../../../spec/src/index';
import type {
  DeviceFactory,
  DeviceProfile,
  DriverSessionCore,
  ModelHost,
  ReferenceDriver,
} from '../../../model/src/index';
import { SPEC_PROFILE } from '../../../model/src/index';
import { CallFailure, HarnessCaller } from './calls';
import { deviceCommand, isDeviceCommand, openServedDevice } from './device-target';
import { driverCommand, isDriverCommand, openServedDriver } from './driver-target';
import {
  CommandOutcome,
  HarnessCommand,
  decodeAnswerLine,
  decodeCommandLine,
  encodeCallLine,
  encodeReplyLine,
} from './messages';

/** Lines in and out (without their newlines). */
export interface LineChannel {
  /** The next line, or undefined at the end of the input. */
  read(): Promise<string | undefined>;
  /** Writes one line. */
  write(line: string): void;
}

/** What a served session is built from. */
export interface ServedModelOptions {
  /** The device profile of device sessions (default `spec`). */
  readonly profile?: DeviceProfile;
  /** The version the hello names (the package version). */
  readonly version: string;
  /** Builds device sessions' devices (default: the model's). */
  readonly deviceFactory?: DeviceFactory;
  /** Builds driver sessions' drivers (default: the reference driver). */
  readonly driverFactory?: () => ReferenceDriver;
  /** Told of each command the harness could not decode or answer (diagnostics, e.g. stderr). */
  readonly log?: (line: string) => void;
}

/**
 * The capabilities the served model declares: all but those the harness protocol cannot carry
 * (a driver session holds one device, so no `multi-device`, and no call reports `node-memory`).
 */
export const SERVED_CAPABILITIES = CAPABILITY_NAMES.filter((c) => c !== 'multi-device' && c !== 'node-memory');

/** The hello the served model writes first. */
export function servedHello(options: ServedModelOptions): Readonly<Record<string, unknown>> {
  const profile = options.profile ?? SPEC_PROFILE;
  return {
    hello: HARNESS_PROTOCOL,
    implementation: `model:${profile.name}`,
    version: options.version,
    targets: { device: [...SERVED_CAPABILITIES], driver: [...SERVED_CAPABILITIES] },
    timeout_multiplier: 1,
  };
}

/** Why a session ended. */
export type SessionEnd = 'end-of-input';

/** Serves one session on `channel` until the suite's stream ends. */
export async function serveHarnessSession(channel: LineChannel, options: ServedModelOptions): Promise<SessionEnd> {
  const log = options.log ?? (() => undefined);
  channel.write(JSON.stringify(servedHello(options)));
  let device: ModelHost | undefined;
  let driver: DriverSessionCore | undefined;
  let ended = false;
  const call: HarnessCaller = async (name, fields) => {
    channel.write(encodeCallLine(name, fields));
    let line: string | undefined;
    do line = await channel.read();
    while (line !== undefined && line.trim() === '');
    if (line === undefined) {
      ended = true;
      throw new CallFailure(`the suite closed the stream instead of answering ${name}`, true);
    }
    const answer = decodeAnswerLine(name, line);
    if (!answer.ok) throw new CallFailure(answer.reason);
    return answer.value;
  };
  const answer = async (command: HarnessCommand): Promise<CommandOutcome> => {
    if (command.op === 'open_device') {
      const opened = openServedDevice(command.params.setup, options.profile ?? SPEC_PROFILE, options.deviceFactory);
      if ('unsupported' in opened) return { kind: 'unsupported', reason: opened.unsupported };
      device = opened.host;
      return { kind: 'ok', fields: {} };
    }
    if (command.op === 'open_driver') {
      driver = openServedDriver(options.driverFactory);
      return { kind: 'ok', fields: {} };
    }
    if (command.op === 'shutdown') return { kind: 'ok', fields: {} };
    if (isDeviceCommand(command)) {
      if (!device) return { kind: 'error', error: `${command.op}: no device is open (send open_device first)` };
      const outcome = await deviceCommand(device, command, call);
      if (command.op === 'close_device') device = undefined;
      return outcome;
    }
    if (isDriverCommand(command)) {
      if (!driver) return { kind: 'error', error: `${command.op}: no driver is open (send open_driver first)` };
      const outcome = await driverCommand(driver, command, call);
      if (command.op === 'close_driver') driver = undefined;
      return outcome;
    }
    return { kind: 'error', error: `${(command as HarnessCommand).op}: not served` };
  };
  for (;;) {
    const line = await channel.read();
    if (line === undefined) return 'end-of-input';
    if (line.trim() === '') continue;
    const decoded = decodeCommandLine(line);
    if (!decoded.ok) {
      log(`refused a command: ${decoded.reason}`);
      channel.write(encodeReplyLine(undefined, decoded.id ?? null, { kind: 'error', error: decoded.reason }));
      continue;
    }
    let outcome: CommandOutcome;
    try {
      outcome = await answer(decoded.value);
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      log(`${decoded.value.op} failed: ${text}`);
      outcome = { kind: 'error', error: `${decoded.value.op}: ${text}` };
    }
    if (ended) return 'end-of-input';
    channel.write(encodeReplyLine(decoded.value.op, decoded.value.id, outcome));
  }
}
