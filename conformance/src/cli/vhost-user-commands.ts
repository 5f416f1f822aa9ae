/**
 * `vmemct serve-vhost-user`, `vmemct vhost-user-ctl` and `vmemct vhost-user-check`: the
 * vhost-user back-end serving the model, its host-side control, and the transport checks (the
 * `vu.*` suite, conformance/src/suites/vhost-user/, run by the main runner against a strict
 * front-end wired in here).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackendStartError, VhostUserBackend } from '../../../adapters/vhost-user-server/src/index';
import { VhostUserFrontEnd } from '../../../adapters/vhost-user/src/frontend';
import { NativeHelperMissingError, VhostNative, vhostNative } from '../../../adapters/vhost-user/src/native';
import {
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  Request,
  VmemctRequest,
  VmemctStatus,
  protocolMask,
  u64Payload,
} from '../../../adapters/vhost-user/src/protocol';
import { deviceProfileNames, DeviceParamsError, findDeviceProfile } from '../../../model/src/index';
import { formatSize } from '../../../spec/src/index';
import { checkReport, resultsDocument, tapReport } from '../report/reports';
import { junitReport } from '../report/junit';
import { expectationProblems, compileGlob } from '../runner/expectations';
import { runChecks } from '../runner/run';
import { VHOST_USER_SUITE, VhostUserBackendUnderTest, vhostUserCheckTarget } from '../suites/vhost-user/index';
import { OptionSpec, parseArgs, positiveInt, suiteVersion } from './args';
import {
  REPORT_OPTIONS,
  expectationsOption,
  reporterOption,
  timeoutOption,
  warnOnOtherImplementation,
  writeOutput,
} from './run-commands';
import { parseSize } from './guest-commands';
import { EXIT_HARNESS_ERROR, EXIT_OK, EXIT_UNEXPECTED, HarnessError, UsageError, exitCodeOf } from './usage-error';
import type { CliIo } from './main';

/** The options of `vmemct serve-vhost-user`. */
export const SERVE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  socket: { kind: 'value' },
  'block-size': { kind: 'value' },
  'region-size': { kind: 'value' },
  'requested-size': { kind: 'value' },
  addr: { kind: 'value' },
  'node-id': { kind: 'value' },
  profile: { kind: 'value' },
  quiet: { kind: 'flag' },
};

/** The options of `vmemct vhost-user-ctl`. */
export const CTL_OPTIONS: Readonly<Record<string, OptionSpec>> = { socket: { kind: 'value' } };

function requireSocket(command: string, value: string | undefined): string {
  if (value === undefined || value.length === 0) throw new UsageError(`${command}: --socket PATH is required`);
  const resolved = path.resolve(value);
  if (Buffer.byteLength(resolved) > 107)
    throw new UsageError(
      `${command}: --socket path is longer than the 107 bytes a unix socket address holds: ${resolved}`,
    );
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
  if (!profile)
    throw new UsageError(`${command}: unknown profile '${profileName}' (profiles: ${deviceProfileNames()})`);
  const nodeText = parsed.values.get('node-id');
  const nodeId =
    nodeText === undefined ? 0 : /^[0-9]+$/.test(nodeText) && Number(nodeText) <= 0xffff ? Number(nodeText) : undefined;
  if (nodeId === undefined)
    throw new UsageError(`${command}: --node-id must be an integer from 0 to 65535 (got '${nodeText}')`);
  const setup = {
    block_size: size('block-size', 2n << 20n),
    region_size: size('region-size', 1n << 30n),
    requested_size: size('requested-size', 0n),
    addr: size('addr', 1n << 32n),
    node_id: nodeId,
    plugged: [],
  };
  if (setup.requested_size > setup.region_size)
    throw new UsageError(
      `${command}: --requested-size ${formatSize(setup.requested_size)} exceeds --region-size ${formatSize(setup.region_size)}`,
    );
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
    if (e instanceof DeviceParamsError)
      throw new UsageError(`${command}: --${e.field.replace('_', '-')}: ${e.message}`);
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
  io.stdout(
    `serving virtio-mem (${backend.implementation}) on ${socketPath}: block_size ${formatSize(setup.block_size)}, region_size ${formatSize(setup.region_size)} at 0x${setup.addr.toString(16)}, requested_size ${formatSize(setup.requested_size)}\n`,
  );
  await stopped;
  await backend.stop();
  return EXIT_OK;
}

/** `vmemct vhost-user-ctl --socket PATH resize SIZE | status`. */
export async function vhostUserCtlCommand(args: readonly string[], io: CliIo): Promise<number> {
  const command = 'vhost-user-ctl';
  const parsed = parseArgs(command, args, CTL_OPTIONS);
  const socketPath = requireSocket(command, parsed.values.get('socket'));
  const [action, value, ...rest] = parsed.positional;
  if (rest.length) throw new UsageError(`${command}: unexpected argument '${rest[0]}'`);
  if (action !== 'resize' && action !== 'status')
    throw new UsageError(`${command}: the action must be 'resize SIZE' or 'status' (got '${action ?? ''}')`);
  if (action === 'resize' && value === undefined)
    throw new UsageError(`${command}: resize needs a size (e.g. resize 512MiB)`);
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
    if (!(features & protocolMask(ProtocolFeature.VMEMCT_CONTROL)))
      throw new HarnessError(
        `${command}: the back-end at ${socketPath} does not offer vmemct's control extension (it is not vmemct serve-vhost-user)`,
      );
    const reply =
      action === 'resize'
        ? await frontEnd.vmemct(VmemctRequest.RESIZE, u64Payload(requested))
        : await frontEnd.vmemct(VmemctRequest.STATUS);
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

/** The options of `vmemct vhost-user-check`. */
export const CHECK_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  socket: { kind: 'value' },
  'backend-pid': { kind: 'value' },
  filter: { kind: 'list' },
  ...REPORT_OPTIONS,
};

/** The largest process id Linux hands out (`pid_max` is at most 2^22). */
const MAX_PID = 4_194_304;

/** A check that takes longer than this is a `timeout` (unless --timeout says otherwise). */
const CHECK_TIMEOUT_MS = 60_000;

/**
 * `--json` without a value (as the command took it before it wrote results files) means `--json -`:
 * the results document on stdout.
 */
function bareJsonMeansStdout(args: readonly string[]): string[] {
  return args.flatMap((arg, i) =>
    arg === '--json' && (i === args.length - 1 || args[i + 1]!.startsWith('--')) ? ['--json', '-'] : [arg],
  );
}

/** What the back-end is, for reports: its own INFO (vmemct's extension), its program, or its socket. */
function implementationOf(socketPath: string, backendPid: number | undefined, info: string | undefined): string {
  if (info) return info;
  if (backendPid !== undefined) {
    try {
      return path.basename(fs.readlinkSync(`/proc/${backendPid}/exe`));
    } catch {
      try {
        return fs.readFileSync(`/proc/${backendPid}/comm`, 'utf8').trim();
      } catch {
        /* not ours to read: fall back to the socket */
      }
    }
  }
  return `vhost-user back-end at ${socketPath}`;
}

/** A probe connection: what the back-end offers and what it is. @throws HarnessError when it does not answer. */
export async function probeVhostUserBackend(
  command: string,
  vhost: VhostNative,
  socketPath: string,
  backendPid: number | undefined,
): Promise<VhostUserBackendUnderTest> {
  let frontEnd: VhostUserFrontEnd;
  try {
    frontEnd = VhostUserFrontEnd.connect(vhost, socketPath);
  } catch (e) {
    throw new HarnessError(`${command}: cannot connect to ${socketPath}: ${(e as Error).message}`);
  }
  try {
    const offeredFeatures = await frontEnd.queryU64(Request.GET_FEATURES);
    const offeredProtocolFeatures =
      offeredFeatures & PROTOCOL_FEATURES_BIT ? await frontEnd.queryU64(Request.GET_PROTOCOL_FEATURES) : 0n;
    let info: string | undefined;
    if (offeredProtocolFeatures & protocolMask(ProtocolFeature.VMEMCT_CONTROL)) {
      const reply = await frontEnd.vmemct(VmemctRequest.INFO);
      if (reply.status === VmemctStatus.OK) info = reply.text;
    }
    return {
      socketPath,
      backendPid,
      implementation: implementationOf(socketPath, backendPid, info),
      offeredFeatures,
      offeredProtocolFeatures,
      connect: () => VhostUserFrontEnd.connect(vhost, socketPath, { strict: true }),
    };
  } catch (e) {
    throw new HarnessError(
      `${command}: ${socketPath} does not answer as a vhost-user back-end: ${(e as Error).message}`,
    );
  } finally {
    frontEnd.close();
  }
}

/** The inodes of the unix sockets bound to `socketPath`, from /proc/net/unix. */
function socketInodes(socketPath: string): Set<string> {
  const inodes = new Set<string>();
  let table = '';
  try {
    table = fs.readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return inodes;
  }
  const wanted = path.resolve(socketPath);
  for (const line of table.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns.length >= 8 && path.resolve(columns.slice(7).join(' ')) === wanted) inodes.add(columns[6]!);
  }
  return inodes;
}

/**
 * `--backend-pid` names the process whose fds the fd-hygiene check counts: it must exist and hold
 * the listening socket, or the check would judge some other process (bad usage, exit 3).
 */
function checkBackendPid(command: string, pid: number, socketPath: string): void {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `${command}: --backend-pid: no process ${pid}`
        : `${command}: --backend-pid: cannot read the fds of process ${pid} (${(e as Error).message})`,
    );
  }
  const inodes = socketInodes(socketPath);
  if (inodes.size === 0) return; // not listening yet, or no /proc/net/unix: the connection attempt will say
  const holds = fds.some((fd) => {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      return inode !== undefined && inodes.has(inode);
    } catch {
      return false;
    }
  });
  if (!holds) throw new UsageError(`${command}: --backend-pid: process ${pid} does not hold the socket ${socketPath}`);
}

/**
 * `vmemct vhost-user-check --socket PATH [--backend-pid PID]` and the run options it shares with
 * `vmemct run` (`--filter`, `--expectations`, `--strict`, `--reporter`, `--junit`, `--json`,
 * `--timeout`): the `vu.*` suite through the main runner.
 */
export async function vhostUserCheckCommand(args: readonly string[], io: CliIo): Promise<number> {
  const command = 'vhost-user-check';
  const parsed = parseArgs(command, bareJsonMeansStdout(args), CHECK_OPTIONS);
  if (parsed.positional.length) throw new UsageError(`${command}: unexpected argument '${parsed.positional[0]}'`);
  const socketPath = requireSocket(command, parsed.values.get('socket'));
  const pidText = parsed.values.get('backend-pid');
  const backendPid = pidText === undefined ? undefined : positiveInt(command, 'backend-pid', pidText, MAX_PID);
  if (backendPid !== undefined) checkBackendPid(command, backendPid, socketPath);
  const reporter = reporterOption(command, parsed);
  const timeoutMs = timeoutOption(command, parsed, CHECK_TIMEOUT_MS);
  const suite = VHOST_USER_SUITE;
  const filters = parsed.lists.get('filter')?.map(compileGlob);
  const selected = filters ? suite.checks.filter((c) => filters.some((re) => re.test(c.id))) : suite.checks;
  if (selected.length === 0)
    throw new UsageError(
      `${command}: the filters select no check (checks: ${suite.checks.map((c) => c.id).join(', ')})`,
    );
  const expectations = expectationsOption(command, parsed, (set) => expectationProblems(set, suite.checks, 'check'));
  const backend = await probeVhostUserBackend(command, native(command), socketPath, backendPid);
  const target = vhostUserCheckTarget(backend);
  warnOnOtherImplementation(io, expectations, backend.implementation);
  const startedAt = new Date();
  const strict = parsed.flags.has('strict');
  const run = await runChecks(target, suite.name, selected, suite.checks, { strict, timeoutMs, expectations });
  const json = parsed.values.get('json');
  if (json !== undefined) {
    const options = {
      adapter: 'vhost-user',
      suite: suite.name,
      socket: socketPath,
      backendPid: backendPid ?? null,
      strict,
      filters: parsed.lists.get('filter') ?? [],
      timeoutMs,
    };
    const doc = resultsDocument(run, {
      adapter: target.info,
      version: suiteVersion(),
      vectors: [],
      checks: suite.checks,
      expectations: expectations?.file,
      startedAt,
      options,
    });
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    if (json === '-') io.stdout(text);
    else writeOutput(command, 'json', json, text);
  }
  const junit = parsed.values.get('junit');
  if (junit !== undefined)
    writeOutput(command, 'junit', junit, junitReport(run, `vmemct ${suite.name} ${backend.implementation}`));
  if (json !== '-') io.stdout(reporter === 'tap' ? tapReport(run) : checkReport(run));
  if (run.testedNothing)
    io.stderr(
      `vmemct: none of the ${run.results.length} selected checks could run against ${backend.implementation} (all unsupported): nothing was tested\n`,
    );
  return exitCodeOf(run.exitCode);
}
