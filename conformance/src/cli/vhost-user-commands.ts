/**
 * `vmemct serve-vhost-user`, `vmemct vhost-user-ctl` and `vmemct vhost-user-check`: the
 * vhost-user back-end serving the model, its host-side control, and the transport checks.
 */
import * as path from 'node:path';
import { BackendStartError, VhostUserBackend } from '../../../adapters/vhost-user-server/src/index';
import { VhostUserFrontEnd } from '../../../adapters/vhost-user/src/frontend';
import { NativeHelperMissingError, vhostNative } from '../../../adapters/vhost-user/src/native';
import { ProtocolFeature, Request, VmemctRequest, VmemctStatus, protocolMask, u64Payload } from '../../../adapters/vhost-user/src/protocol';
import { TransportCheckError, formatCheckResults, runTransportChecks } from '../../../adapters/vhost-user/src/transport-checks';
import { DEVICE_PROFILES, DeviceParamsError, findDeviceProfile } from '../../../model/src/index';
import { formatSize } from '../../../spec/src/index';
import { OptionSpec, parseArgs, positiveInt } from './args';
import { parseSize } from './guest-commands';
import { EXIT_HARNESS_ERROR, EXIT_OK, EXIT_UNEXPECTED, HarnessError, UsageError } from './usage-error';
import type { CliIo } from './main';

const SERVE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  socket: { kind: 'value' },
  'block-size': { kind: 'value' },
  'region-size': { kind: 'value' },
  'requested-size': { kind: 'value' },
  addr: { kind: 'value' },
  'node-id': { kind: 'value' },
  profile: { kind: 'value' },
  quiet: { kind: 'flag' },
};

function requireSocket(command: string, value: string | undefined): string {
  if (value === undefined || value.length === 0) throw new UsageError(`${command}: --socket PATH is required`);
  const resolved = path.resolve(value);
  if (Buffer.byteLength(resolved) > 107) throw new UsageError(`${command}: --socket path is longer than the 107 bytes a unix socket address holds: ${resolved}`);
  return resolved;
}

function native(command: string): ReturnType<typeof vhostNative> {
  try {
    return vhostNative();
  } catch (e) {
    if (e instanceof NativeHelperMissingError) throw new HarnessError(`${command}: ${e.message}`);
    throw e;
  }
}

/**
 * `vmemct serve-vhost-user --socket PATH …`: serves until SIGINT or SIGTERM, then removes the
 * socket and exits 0. Prints one line when it listens; logs connections and malformed input to stderr.
 */
export async function serveVhostUserCommand(args: readonly string[], io: CliIo): Promise<number> {
  const command = 'serve-vhost-user';
  const parsed = parseArgs(command, args, SERVE_OPTIONS);
  if (parsed.positional.length) throw new UsageError(`${command}: unexpected argument '${parsed.positional[0]}'`);
  const socketPath = requireSocket(command, parsed.values.get('socket'));
  const size = (name: string, fallback: bigint): bigint => {
    const text = parsed.values.get(name);
    return text === undefined ? fallback : parseSize(command, name, text);
  };
  const profileName = parsed.values.get('profile') ?? 'spec';
  const profile = findDeviceProfile(profileName);
  if (!profile) throw new UsageError(`${command}: unknown profile '${profileName}' (profiles: ${Object.keys(DEVICE_PROFILES).join(', ')})`);
  const nodeText = parsed.values.get('node-id');
  const nodeId = nodeText === undefined ? 0 : /^[0-9]+$/.test(nodeText) && Number(nodeText) <= 0xffff ? Number(nodeText) : undefined;
  if (nodeId === undefined) throw new UsageError(`${command}: --node-id must be an integer from 0 to 65535 (got '${nodeText}')`);
  const setup = {
    block_size: size('block-size', 2n << 20n),
    region_size: size('region-size', 1n << 30n),
    requested_size: size('requested-size', 0n),
    addr: size('addr', 1n << 32n),
    node_id: nodeId,
    plugged: [],
  };
  if (setup.requested_size > setup.region_size) throw new UsageError(`${command}: --requested-size ${formatSize(setup.requested_size)} exceeds --region-size ${formatSize(setup.region_size)}`);
  const quiet = parsed.flags.has('quiet');
  let backend: VhostUserBackend;
  try {
    backend = await VhostUserBackend.start({
      socketPath,
      setup,
      profile,
      native: native(command),
      log: (line) => {
        if (!quiet) io.stderr(`serve-vhost-user: ${line}\n`);
      },
    });
  } catch (e) {
    if (e instanceof DeviceParamsError) throw new UsageError(`${command}: --${e.field.replace('_', '-')}: ${e.message}`);
    if (e instanceof BackendStartError) throw new HarnessError(`${command}: ${e.message}`);
    throw e;
  }
  // The signal handlers are in place before the listening line: whoever waits for that line may stop the server at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  io.stdout(`serving virtio-mem (${backend.implementation}) on ${socketPath}: block_size ${formatSize(setup.block_size)}, region_size ${formatSize(setup.region_size)} at 0x${setup.addr.toString(16)}, requested_size ${formatSize(setup.requested_size)}\n`);
  await stopped;
  await backend.stop();
  return EXIT_OK;
}

/** `vmemct vhost-user-ctl --socket PATH resize SIZE | status`. */
export async function vhostUserCtlCommand(args: readonly string[], io: CliIo): Promise<number> {
  const command = 'vhost-user-ctl';
  const parsed = parseArgs(command, args, { socket: { kind: 'value' } });
  const socketPath = requireSocket(command, parsed.values.get('socket'));
  const [action, value, ...rest] = parsed.positional;
  if (rest.length) throw new UsageError(`${command}: unexpected argument '${rest[0]}'`);
  if (action !== 'resize' && action !== 'status') throw new UsageError(`${command}: the action must be 'resize SIZE' or 'status' (got '${action ?? ''}')`);
  if (action === 'resize' && value === undefined) throw new UsageError(`${command}: resize needs a size (e.g. resize 512MiB)`);
  if (action === 'status' && value !== undefined) throw new UsageError(`${command}: status takes no argument`);
  const requested = action === 'resize' ? parseSize(command, 'resize', value!) : 0n;
  let frontEnd: VhostUserFrontEnd;
  try {
    // A resize waits for every connected front-end to acknowledge its notice (2 s each at most).
    frontEnd = VhostUserFrontEnd.connect(native(command), socketPath, { replyTimeoutMs: 30_000 });
  } catch (e) {
    if (e instanceof HarnessError) throw e;
    throw new HarnessError(`${command}: cannot connect to ${socketPath} (${(e as Error).message})`);
  }
  try {
    const features = await frontEnd.queryU64(Request.GET_PROTOCOL_FEATURES);
    if (!(features & protocolMask(ProtocolFeature.VMEMCT_CONTROL))) throw new HarnessError(`${command}: the back-end at ${socketPath} does not offer vmemct's control extension (it is not vmemct serve-vhost-user)`);
    const reply = action === 'resize' ? await frontEnd.vmemct(VmemctRequest.RESIZE, u64Payload(requested)) : await frontEnd.vmemct(VmemctRequest.STATUS);
    if (reply.status === VmemctStatus.OK) {
      io.stdout(`${reply.text}\n`);
      return EXIT_OK;
    }
    io.stderr(`${command}: the back-end refused: ${reply.text}\n`);
    return reply.status === VmemctStatus.REFUSED ? EXIT_UNEXPECTED : EXIT_HARNESS_ERROR;
  } catch (e) {
    if (e instanceof HarnessError) throw e;
    throw new HarnessError(`${command}: ${(e as Error).message}`);
  } finally {
    frontEnd.close();
  }
}

/** `vmemct vhost-user-check --socket PATH [--backend-pid PID] [--json]`. */
export async function vhostUserCheckCommand(args: readonly string[], io: CliIo): Promise<number> {
  const command = 'vhost-user-check';
  const parsed = parseArgs(command, args, { socket: { kind: 'value' }, 'backend-pid': { kind: 'value' }, json: { kind: 'flag' } });
  if (parsed.positional.length) throw new UsageError(`${command}: unexpected argument '${parsed.positional[0]}'`);
  const socketPath = requireSocket(command, parsed.values.get('socket'));
  const pidText = parsed.values.get('backend-pid');
  const backendPid = pidText === undefined ? undefined : positiveInt(command, 'backend-pid', pidText);
  let results;
  try {
    results = await runTransportChecks({ socketPath, backendPid, native: native(command) });
  } catch (e) {
    if (e instanceof TransportCheckError) throw new HarnessError(`${command}: ${e.message}`);
    throw e;
  }
  io.stdout(parsed.flags.has('json') ? `${JSON.stringify(results, null, 2)}\n` : formatCheckResults(results));
  return results.some((r) => r.verdict === 'fail' || r.verdict === 'error') ? EXIT_UNEXPECTED : EXIT_OK;
}
