/**
 * The adapter a run tests: `--adapter NAME` and the options of each adapter, checked (a missing,
 * contradictory or stray option is a usage error, exit 3) and turned into an {@link Adapter}.
 */
import * as path from 'node:path';
import type { Adapter } from '../../../adapters/core/src/contract';
import { ExecHarnessStartError, openExecAdapter } from '../../../adapters/exec/src/exec-adapter';
import type { HarnessTransport } from '../../../adapters/exec/src/exec-adapter';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { createQemuAdapter, qemuConfigurationRefusal } from '../../../adapters/qemu/src/qemu-adapter';
import { QemuMissingError } from '../../../adapters/qemu-platform/src/index';
import { ArgvHostControl } from '../../../adapters/device-session/src/argv-host-control';
import { connectGuestDeviceAdapter } from '../../../adapters/ssh-guest/src/guest-device-connect';
import { bootGroupedGuestDevice } from '../../../adapters/ssh-guest/src/guest-device-groups';
import { bootGroupedGuestDriver } from '../../../adapters/ssh-guest/src/guest-driver-groups';
import { GuestVmError } from '../../../adapters/ssh-guest/src/guest-vm';
import { GuestBuildError } from '../../../adapters/ssh-guest/src/guest-build';
import { SshGuestSetupError, connectSshGuestAdapter } from '../../../adapters/ssh-guest/src/ssh-guest-adapter';
import type { SshGuestOptions } from '../../../adapters/ssh-guest/src/ssh-guest-adapter';
import { VhostUserSetupError, connectVhostUserAdapter } from '../../../adapters/vhost-user/src/vhost-user-adapter';
import { NativeHelperMissingError } from '../../../adapters/vhost-user/src/native';
import { deviceProfileNames, findDeviceProfile } from '../../../model/src/index';
import { MAX_TIMER_MS, OptionSpec, ParsedArgs, positiveInt } from './args';
import { qemuBinaryOption } from './qemu-commands';
import { defaultGuestDir, parseGuestKernel } from './guest-commands';
import { loadHostControlFile } from './host-control-file';
import { HarnessError, UsageError } from './usage-error';

/** Adapters the CLI knows, by name. */
export const ADAPTER_NAMES = ['model', 'qemu', 'ssh-guest', 'vhost-user', 'exec'] as const;

/** The options that choose and configure the adapter of a run. */
export const ADAPTER_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  adapter: { kind: 'value' },
  profile: { kind: 'value' },
  qemu: { kind: 'value' },
  'qemu-version': { kind: 'value' },
  ssh: { kind: 'value' },
  'ssh-key': { kind: 'value' },
  'ssh-known-hosts': { kind: 'value' },
  qmp: { kind: 'value' },
  'qemu-trace': { kind: 'value' },
  'device-id': { kind: 'value' },
  'host-control': { kind: 'value' },
  gdb: { kind: 'value' },
  icount: { kind: 'flag' },
  'boot-guest': { kind: 'flag' },
  kernel: { kind: 'value' },
  socket: { kind: 'value' },
  command: { kind: 'value' },
  arg: { kind: 'list' },
  'harness-log': { kind: 'value' },
  'harness-timeout': { kind: 'value' },
};

/** Options only `--adapter exec` reads (`--socket` is shared with vhost-user). */
const EXEC_OPTIONS = ['command', 'arg', 'harness-log', 'harness-timeout'];

/** How many lines of a harness's stderr a start failure shows. */
const STDERR_LINES_SHOWN = 20;

/** `--command PROGRAM [--arg A]…` or `--socket PATH`: exactly one way to reach the harness. */
export function execTransportOption(parsed: ParsedArgs, command = 'run'): HarnessTransport {
  const program = parsed.values.get('command');
  const socket = parsed.values.get('socket');
  const args = parsed.lists.get('arg') ?? [];
  if (program !== undefined && socket !== undefined)
    throw new UsageError(`${command}: --command and --socket are two ways to reach the harness; give one`);
  if (socket !== undefined) {
    if (args.length > 0) throw new UsageError(`${command}: --arg goes with --command PROGRAM, not --socket`);
    return { kind: 'socket', path: path.resolve(socket) };
  }
  if (program === undefined)
    throw new UsageError(
      `${command}: --adapter exec needs --command PROGRAM [--arg A]… (a harness vmemct starts) or --socket PATH (a harness listening there)`,
    );
  if (program === '') throw new UsageError(`${command}: --command needs a program`);
  return { kind: 'command', program, args };
}

async function openExec(parsed: ParsedArgs, command: string): Promise<Adapter> {
  const transport = execTransportOption(parsed, command);
  const timeoutText = parsed.values.get('harness-timeout');
  const logFile = parsed.values.get('harness-log');
  try {
    return await openExecAdapter({
      transport,
      harnessLog: logFile === undefined ? undefined : path.resolve(logFile),
      harnessTimeoutMs:
        timeoutText === undefined ? undefined : positiveInt(command, 'harness-timeout', timeoutText, MAX_TIMER_MS),
    });
  } catch (e) {
    if (e instanceof ExecHarnessStartError) {
      const tail = e.diagnostics?.trimEnd().split('\n').slice(-STDERR_LINES_SHOWN).join('\n');
      throw new HarnessError(`${command}: ${e.message}${tail ? `\nthe harness's stderr ends with:\n${tail}` : ''}`);
    }
    throw e;
  }
}

const SSH_GUEST_OPTIONS = [
  'ssh',
  'ssh-key',
  'ssh-known-hosts',
  'qmp',
  'qemu-trace',
  'device-id',
  'host-control',
  'gdb',
];

/**
 * `--adapter ssh-guest --target device --boot-guest`: the suite boots the built guest itself
 * (attached: ended with the run), and a guest of another device configuration for each run of
 * vectors that needs one.
 */
async function bootGuestDevice(parsed: ParsedArgs, command: string): Promise<Adapter> {
  const stray = SSH_GUEST_OPTIONS.find((o) => parsed.values.has(o));
  if (stray)
    throw new UsageError(`${command}: --boot-guest boots the guest itself; --${stray} is for a guest already running`);
  const dir = path.resolve(defaultGuestDir(parseGuestKernel(command, parsed.values.get('kernel'))));
  try {
    return await bootGroupedGuestDevice({ dir, runDir: path.join(dir, 'run-boot-guest') }, qemuConfigurationRefusal);
  } catch (e) {
    if (e instanceof SshGuestSetupError || e instanceof GuestVmError || e instanceof GuestBuildError)
      throw new HarnessError(`${command}: ${e.message}`);
    throw e;
  }
}

/**
 * `--adapter ssh-guest --target driver --boot-guest`: the suite boots the built guest itself
 * (attached, with its gdbstub for scripted answers), and a guest per other device set-up driver
 * vectors need; set-ups QEMU refuses are `unsupported` with its rule.
 */
async function bootGuestDriver(parsed: ParsedArgs, command: string): Promise<Adapter> {
  const stray = SSH_GUEST_OPTIONS.find((o) => parsed.values.has(o));
  if (stray)
    throw new UsageError(`${command}: --boot-guest boots the guest itself; --${stray} is for a guest already running`);
  const dir = path.resolve(defaultGuestDir(parseGuestKernel(command, parsed.values.get('kernel'))));
  try {
    return bootGroupedGuestDriver({
      dir,
      runDir: path.join(dir, 'run-boot-guest-driver'),
      log: (line) => process.stderr.write(`vmemct: ${line}\n`),
    });
  } catch (e) {
    if (e instanceof SshGuestSetupError || e instanceof GuestVmError || e instanceof GuestBuildError)
      throw new HarnessError(`${command}: ${e.message}`);
    throw e;
  }
}

/** `--ssh [user@]host[:port]` (user defaults to root, port to 22). */
export function parseSshTarget(text: string): { user: string; host: string; port: number } {
  const m = /^(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?$/.exec(text);
  const port = m?.[3] === undefined ? 22 : Number(m[3]);
  if (!m || port < 1 || port > 65535) throw new UsageError(`run: --ssh must be [user@]host[:port] (got '${text}')`);
  return { user: m[1] ?? 'root', host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

/** `--qmp PATH`, `unix:PATH` or `tcp:HOST:PORT`. */
export function parseQmpAddress(text: string): SshGuestOptions['qmp'] {
  if (text.startsWith('tcp:')) {
    const m = /^tcp:([A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(text);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
      throw new UsageError(`run: --qmp tcp: must be tcp:HOST:PORT (got '${text}')`);
    return { host: m[1]!, port: Number(m[2]) };
  }
  const p = text.startsWith('unix:') ? text.slice('unix:'.length) : text;
  if (p.length === 0) throw new UsageError('run: --qmp needs a socket path');
  return p;
}

/** `--adapter ssh-guest --target device`: the guest agent, with QMP (`--qmp`) or hooks (`--host-control FILE`) as the host. */
async function openGuestDevice(parsed: ParsedArgs, command: string): Promise<Adapter> {
  const sshText = parsed.values.get('ssh');
  if (sshText === undefined)
    throw new UsageError(
      `${command}: --adapter ssh-guest --target device needs --ssh (\`vmemct guest up\` prints it for the guest it boots)`,
    );
  const qmp = parsed.values.get('qmp');
  const hostControlFile = parsed.values.get('host-control');
  if (qmp !== undefined && hostControlFile !== undefined)
    throw new UsageError(
      `${command}: --qmp and --host-control are two ways to reach the host; give --qmp for a QEMU guest, --host-control FILE for another VMM`,
    );
  if (parsed.values.has('qemu-trace'))
    throw new UsageError(`${command}: --qemu-trace is for driver vectors; --target device does not read the trace`);
  if (parsed.values.has('gdb'))
    throw new UsageError(
      `${command}: --gdb is for driver vectors (answers injected into the guest's driver); not --target device`,
    );
  const hostControl =
    hostControlFile === undefined ? undefined : new ArgvHostControl(loadHostControlFile(path.resolve(hostControlFile)));
  const target = parseSshTarget(sshText);
  try {
    return await connectGuestDeviceAdapter({
      ssh: { ...target, key: parsed.values.get('ssh-key'), knownHosts: parsed.values.get('ssh-known-hosts') },
      qmp: qmp === undefined ? undefined : parseQmpAddress(qmp),
      refusal: qemuConfigurationRefusal,
      deviceId: parsed.values.get('device-id'),
      hostControl,
    });
  } catch (e) {
    if (e instanceof SshGuestSetupError) throw new HarnessError(`${command}: ${e.message}`);
    throw e;
  }
}

/** Makes the adapter `--adapter` names (default `model`) from the options of `command` (run, fuzz; named in its errors); usage errors exit 3, an adapter that cannot start exits 2. */
export async function createAdapter(parsed: ParsedArgs, command = 'run'): Promise<Adapter> {
  const name = parsed.values.get('adapter') ?? 'model';
  if (!(ADAPTER_NAMES as readonly string[]).includes(name))
    throw new UsageError(`${command}: unknown adapter '${name}' (adapters: ${ADAPTER_NAMES.join(', ')})`);
  if (name !== 'model' && parsed.values.has('profile'))
    throw new UsageError(`${command}: --profile selects a model profile; it does not apply to --adapter ${name}`);
  const qemuBinary = qemuBinaryOption(command, parsed.values, name);
  const stray = SSH_GUEST_OPTIONS.find((o) => parsed.values.has(o));
  if (name !== 'ssh-guest' && stray) throw new UsageError(`${command}: --${stray} applies to --adapter ssh-guest only`);
  if (name !== 'vhost-user' && name !== 'exec' && parsed.values.has('socket'))
    throw new UsageError(`${command}: --socket PATH applies to --adapter vhost-user and --adapter exec only`);
  const strayExec = EXEC_OPTIONS.find((o) => parsed.values.has(o) || parsed.lists.has(o));
  if (name !== 'exec' && strayExec) throw new UsageError(`${command}: --${strayExec} applies to --adapter exec only`);
  if (name === 'exec') return openExec(parsed, command);
  if (name === 'vhost-user') {
    const socketPath = parsed.values.get('socket');
    if (socketPath === undefined)
      throw new UsageError(
        `${command}: --adapter vhost-user needs --socket PATH (a back-end listening there, e.g. vmemct serve-vhost-user --socket PATH)`,
      );
    try {
      return await connectVhostUserAdapter({ socketPath: path.resolve(socketPath) });
    } catch (e) {
      if (e instanceof VhostUserSetupError || e instanceof NativeHelperMissingError)
        throw new HarnessError(`${command}: ${e.message}`);
      throw e;
    }
  }
  if (parsed.values.has('kernel') && !(name === 'ssh-guest' && parsed.flags.has('boot-guest')))
    throw new UsageError(
      `${command}: --kernel chooses the guest --boot-guest boots (--adapter ssh-guest --boot-guest); a running guest's kernel is the one it booted`,
    );
  if (name !== 'ssh-guest' && parsed.flags.has('boot-guest'))
    throw new UsageError(`${command}: --boot-guest applies to --adapter ssh-guest only`);
  if (name === 'ssh-guest' && parsed.values.get('target') === 'device')
    return parsed.flags.has('boot-guest') ? bootGuestDevice(parsed, command) : openGuestDevice(parsed, command);
  if (parsed.flags.has('icount') && (name !== 'ssh-guest' || parsed.values.get('target') === 'device'))
    throw new UsageError(
      `${command}: --icount applies to --adapter ssh-guest --target driver (a guest booted with guest up --icount)`,
    );
  if (name === 'ssh-guest' && parsed.flags.has('boot-guest')) {
    if (parsed.flags.has('icount'))
      throw new UsageError(
        `${command}: --icount goes with a guest already running; with --boot-guest the guests are booted with icount where a vector needs it`,
      );
    return bootGuestDriver(parsed, command);
  }
  if (name === 'ssh-guest' && parsed.values.has('host-control'))
    throw new UsageError(`${command}: --host-control FILE goes with --adapter ssh-guest --target device`);
  if (name === 'ssh-guest') {
    const missing = ['ssh', 'qmp', 'qemu-trace'].filter((o) => !parsed.values.has(o));
    if (missing.length > 0)
      throw new UsageError(
        `${command}: --adapter ssh-guest needs ${missing.map((o) => `--${o}`).join(', ')} (\`vmemct guest up\` prints them for the guest it boots)`,
      );
    const target = parseSshTarget(parsed.values.get('ssh')!);
    try {
      return await connectSshGuestAdapter({
        ssh: { ...target, key: parsed.values.get('ssh-key'), knownHosts: parsed.values.get('ssh-known-hosts') },
        qmp: parseQmpAddress(parsed.values.get('qmp')!),
        traceLog: path.resolve(parsed.values.get('qemu-trace')!),
        deviceId: parsed.values.get('device-id'),
        gdbSocket: parsed.values.has('gdb') ? path.resolve(parsed.values.get('gdb')!) : undefined,
        icount: parsed.flags.has('icount'),
      });
    } catch (e) {
      if (e instanceof SshGuestSetupError) throw new HarnessError(`${command}: ${e.message}`);
      throw e;
    }
  }
  if (name === 'qemu') {
    try {
      return createQemuAdapter({ binary: qemuBinary });
    } catch (e) {
      if (e instanceof QemuMissingError) throw new HarnessError(`${command}: ${e.message}`);
      throw e;
    }
  }
  const profileName = parsed.values.get('profile') ?? 'spec';
  const profile = findDeviceProfile(profileName);
  if (!profile)
    throw new UsageError(`${command}: unknown profile '${profileName}' (profiles: ${deviceProfileNames()})`);
  return createModelAdapter({ profile });
}
