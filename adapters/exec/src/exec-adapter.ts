/**
 * The `exec` adapter: runs vectors against an implementation in any language through a harness
 * program that speaks the harness protocol (`vmemct-harness/1`, spec/src/harness-protocol.ts)
 * over stdio or a unix socket.
 *
 * One harness process (or connection) serves the whole run. After a protocol violation, a crash
 * or a timeout the vector gets `error` (or `timeout`) with the reason and the harness's stderr
 * tail, and the next vector starts a fresh harness, which must say the same hello as the first.
 *
 * Capabilities are per target: a device harness declares its own; for a driver harness the
 * suite holds the device, so it provides the device-side capabilities itself and adds the two
 * only the driver can honour (`system-reset` → `reboot`, `suspend` → `may_suspend`).
 */
import type { Adapter, AdapterInfo, Capability, DeviceSetup, DriverOptions, Target } from '../../core/src/contract';
import { AdapterError } from '../../core/src/contract';
import { encodeHello } from '../../../spec/src/index';
import type { HarnessHello } from '../../../spec/src/index';
import { DriverDevice } from '../../model/src/driver-device';
import { HarnessChannel, HarnessLog } from './harness-channel';
import { describeTransport } from './harness-link';
import type { HarnessTransport } from './harness-link';
import { ExecDeviceSession, ExecDriverSession } from './exec-sessions';

export type { HarnessTransport } from './harness-link';

/** Options of the exec adapter. */
export interface ExecAdapterOptions {
  readonly transport: HarnessTransport;
  /** A file every line both ways is appended to (JSON Lines with time and direction). */
  readonly harnessLog?: string;
  /** How long the harness may take for one message, before its timeout_multiplier (default 10,000 ms). */
  readonly harnessTimeoutMs?: number;
  /** How long a harness is given to exit after its input closes, and after SIGTERM (default 2,000 ms). */
  readonly graceMs?: number;
}

/** The default per-message timeout, in milliseconds, before the harness's timeout_multiplier. */
export const DEFAULT_HARNESS_TIMEOUT_MS = 10_000;

/**
 * What the suite provides for a driver harness, because it holds the device: host resizes,
 * the host holding the device busy, scripted answers, initial plugged blocks, the driver's requests and memory writes as it sees
 * them, and the device's own configuration bytes.
 */
export const SUITE_DRIVER_CAPABILITIES: readonly Capability[] = [
  'host-resize',
  'host-busy',
  'inject-responses',
  'initial-plugged',
  'observe-driver',
  'memory-access',
  'read-raw-config',
];

/** Driver capabilities only the harness's driver can provide, when its hello declares them. */
export const HARNESS_DRIVER_CAPABILITIES: readonly Capability[] = ['system-reset', 'suspend'];

/**
 * Why a driver harness cannot run multi-device vectors: the harness protocol opens one device per
 * driver session and has no call for the memory a driver added per NUMA node.
 */
export const HARNESS_MISSING_DRIVER_CAPABILITIES: Readonly<Partial<Record<Capability, string>>> = {
  'multi-device': 'the harness protocol (vmemct-harness/1) gives a driver session exactly one device',
  'node-memory': 'the harness protocol has no call reporting the memory a driver added per NUMA node',
};

/** The harness could not be started or said no valid hello (the CLI exits 2 with this). */
export class ExecHarnessStartError extends Error {
  override readonly name = 'ExecHarnessStartError';
  constructor(
    message: string,
    /** The harness's stderr tail, when it wrote any. */
    readonly diagnostics?: string,
  ) {
    super(message);
  }
}

/** The adapter's description of a harness from its hello. */
export function execAdapterInfo(hello: HarnessHello, location: string): AdapterInfo {
  const targets = (['device', 'driver'] as const).filter((t) => hello.targets[t] !== undefined);
  const perTarget: Partial<Record<Target, readonly Capability[]>> = {};
  if (hello.targets.device) perTarget.device = [...new Set(hello.targets.device)];
  if (hello.targets.driver) {
    const own = hello.targets.driver.filter((c) => HARNESS_DRIVER_CAPABILITIES.includes(c));
    perTarget.driver = [...new Set([...SUITE_DRIVER_CAPABILITIES, ...own])];
  }
  return {
    name: 'exec',
    implementation: `${hello.implementation} ${hello.version}`,
    location,
    targets,
    capabilities: [...new Set([...(perTarget.device ?? []), ...(perTarget.driver ?? [])])],
    targetCapabilities: perTarget,
    timeoutMultiplier: hello.timeout_multiplier ?? 1,
    ...(hello.targets.driver ? { missingCapabilities: HARNESS_MISSING_DRIVER_CAPABILITIES } : {}),
  };
}

/**
 * Starts the harness, reads its hello and returns the adapter.
 * @throws ExecHarnessStartError when the harness cannot start or never says a valid hello.
 */
export async function openExecAdapter(options: ExecAdapterOptions): Promise<Adapter> {
  const log = options.harnessLog ? new HarnessLog(options.harnessLog) : undefined;
  const baseTimeout = options.harnessTimeoutMs ?? DEFAULT_HARNESS_TIMEOUT_MS;
  const graceMs = options.graceMs ?? 2_000;
  const location = describeTransport(options.transport);
  const start = async (timeoutMs: number) => HarnessChannel.open(options.transport, { timeoutMs, graceMs, log });

  let first: Awaited<ReturnType<typeof start>>;
  try {
    first = await start(baseTimeout);
  } catch (error) {
    log?.close();
    const e = error as AdapterError;
    throw new ExecHarnessStartError(`the harness ${location} did not start: ${e.message}`, e.diagnostics);
  }
  const firstHello = JSON.stringify(encodeHello(first.hello));
  const info = execAdapterInfo(first.hello, location);
  const timeoutMs = baseTimeout * info.timeoutMultiplier;
  first.channel.useTimeout(timeoutMs);
  let current: HarnessChannel | undefined = first.channel;
  const retired: Promise<void>[] = [];
  let disposed = false;

  /** The channel for the next vector: the current one if it is healthy and idle, else a fresh harness. */
  const channelForVector = async (): Promise<HarnessChannel> => {
    if (disposed) throw new AdapterError('the exec adapter was disposed');
    if (current && current.broken === undefined && !current.busy) return current;
    const untold = current?.untold;
    if (current) retired.push(current.end());
    current = undefined;
    // A violation no vector saw is not lost in the restart: this vector reports it instead of running.
    if (untold)
      throw new AdapterError(
        `${untold.message} (while no vector was running; this vector did not start)`,
        untold.diagnostics,
      );
    const fresh = await start(timeoutMs);
    const hello = JSON.stringify(encodeHello(fresh.hello));
    if (hello !== firstHello) {
      retired.push(fresh.channel.end());
      throw new AdapterError(`the restarted harness said a different hello: ${hello} (first: ${firstHello})`);
    }
    current = fresh.channel;
    return current;
  };

  return {
    info,
    async openDevice(setup: DeviceSetup) {
      const channel = await channelForVector();
      await channel.command('open_device', { setup });
      return new ExecDeviceSession(channel);
    },
    async openDriver(setup: DeviceSetup, driverOptions: DriverOptions) {
      const device = DriverDevice.open(setup, driverOptions);
      const channel = await channelForVector();
      await channel.command('open_driver', { setup, config_padding: driverOptions.configPadding });
      return new ExecDriverSession(channel, device);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      if (current) retired.push(current.end());
      current = undefined;
      await Promise.all(retired);
      log?.close();
    },
  };
}
