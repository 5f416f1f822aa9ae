/**
 * The adapter contract: what the runner needs from an implementation under test.
 *
 * An adapter is a small required core (open a device or a driver session, send chains, read
 * the configuration) plus optional capabilities it declares. The runner never calls an optional
 * method an adapter did not declare; a vector that needs a missing capability is reported
 * `unsupported`, never passed.
 *
 * Everything is asynchronous because real targets (QEMU over qtest, a vhost-user back-end, a
 * guest over SSH) are. Values are bytes and bigints: the runner decodes and judges them itself.
 */
import { CAPABILITY_NAMES } from '../../../spec/src/index';
import type { DeviceSetup, HandshakeResult } from '../../../spec/src/index';

/**
 * Optional abilities of an adapter. Vector `needs:` lists use the same names.
 * - `host-resize`: change `requested_size` from the host side.
 * - `device-reset`: a virtio device reset (status ← 0), by default followed by re-initialisation.
 * - `system-reset`: a platform reset (VM reboot) of the device.
 * - `raw-descriptor-layout`: send a request split over descriptors of chosen sizes.
 * - `read-raw-config`: read the 56 configuration bytes exactly as the device exposes them.
 * - `inject-busy`: make the device answer BUSY to the next requests (a test hook of the model).
 * - `host-busy`: the host makes the device busy, then releases it (QEMU: an outgoing migration
 *   kept active, then cancelled; the model: its host-busy state).
 * - `feature-negotiation`: choose the features the driver accepts and watch FEATURES_OK.
 * - `initial-plugged`: start a device with some blocks already plugged.
 * - `memory-access`: read and write guest memory inside the device region.
 * - `suspend`: suspend the platform to RAM and wake it up again.
 * - `observe-driver`: watch a driver's requests and its view of memory (driver targets).
 * - `inject-responses`: answer a driver's next requests with a chosen response (driver targets).
 * - `config-generation`: read the transport's configuration generation (virtio-pci
 *   `config_generation`), so the runner can tell whether it changed with the configuration.
 */
export type Capability = (typeof CAPABILITY_NAMES)[number];

/** Every capability name, in a stable order (for schemas, help and lint). */
export const CAPABILITIES: readonly Capability[] = CAPABILITY_NAMES;

/** Which side of the protocol a vector tests. */
export type Target = 'device' | 'driver';

/**
 * How to build the device (the implementation under test, or the device a driver is tested
 * against): the one set-up record, declared in `spec/` so the model and the back-end share it.
 * `plugged` needs `initial-plugged` when it is not empty.
 */
export type { BlockRange, DeviceSetup } from '../../../spec/src/index';

/** A request chain: device-readable buffers (in order) and the sizes of device-writable ones. */
export interface Chain {
  readonly readable: readonly Uint8Array[];
  readonly writableSizes: readonly number[];
}

/** What came back for one chain. */
export type Completion =
  /**
   * A used entry: the used length the device reported and the first `length` bytes of the
   * writable buffers (joined in order; at most their total size). The adapter pre-fills writable
   * buffers with `writablePoison` (spec/), so a byte the device never wrote reads as poison.
   */
  | { readonly kind: 'used'; readonly length: number; readonly written: Uint8Array }
  /** No used entry within the adapter's bound. */
  | { readonly kind: 'no-used-entry' };

/**
 * Outcome of the feature handshake the adapter runs on the runner's behalf (`accepted` is what
 * the adapter wrote): the one handshake result, declared in `spec/`.
 */
export type { HandshakeResult } from '../../../spec/src/index';

/** A host-side change of requested_size. */
export type ResizeOutcome =
  | { readonly kind: 'applied' }
  /** The host management layer refused the value (e.g. not a multiple of block_size). */
  | { readonly kind: 'refused'; readonly reason: string };

/** A memory access inside the device region. */
export type MemoryAccess =
  { readonly ok: true; readonly data: Uint8Array } | { readonly ok: false; readonly reason: string };

/** A session with one device under test (device vectors). */
export interface DeviceSession {
  /**
   * Runs the virtio handshake (ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queue set-up,
   * DRIVER_OK). `accept` picks the features to write from those offered.
   */
  initialise(accept: (offered: bigint) => bigint): Promise<HandshakeResult>;
  /** The 56 configuration bytes (consistent: read under an unchanged config generation). */
  readConfig(): Promise<Uint8Array>;
  /** Places a chain on the request queue, notifies the device and waits for the used entry. */
  submit(chain: Chain): Promise<Completion>;
  /** Configuration-change notifications received since the session opened. */
  notificationCount(): Promise<number>;
  /** The device status register. */
  readStatus(): Promise<number>;
  /**
   * `config-generation`: the configuration generation now (virtio-pci `config_generation`, 8 bits).
   * The runner reads it right after each {@link readConfig}, so it belongs to the bytes just read.
   */
  readConfigGeneration?(): Promise<number>;
  /** `host-resize`. */
  resize?(requestedSize: bigint): Promise<ResizeOutcome>;
  /** `device-reset`: writes status 0 (the runner re-initialises afterwards, unless the vector's step says not to). */
  deviceReset?(): Promise<void>;
  /** `system-reset`. */
  systemReset?(): Promise<void>;
  /** `inject-busy`: the next `count` requests that would succeed are answered BUSY. */
  injectBusy?(count: number): Promise<void>;
  /**
   * `host-busy`: `true` makes the device busy from the host side and resolves once it is (QEMU:
   * the migration is active); `false` releases it and resolves once it is not. Closing the
   * session releases a device left busy.
   */
  hostBusy?(busy: boolean): Promise<void>;
  /** `memory-access`. */
  readMemory?(addr: bigint, length: number): Promise<MemoryAccess>;
  /** `memory-access`. */
  writeMemory?(addr: bigint, data: Uint8Array): Promise<MemoryAccess>;
  /** `suspend`: suspend to RAM, then wake up. */
  suspendAndWake?(): Promise<void>;
  /** Ends the session and releases everything it holds. Must not throw. */
  close(): Promise<void>;
}

/** One request a driver sent, as the device saw it, and what the device answered. */
export interface DriverExchange {
  readonly request: Uint8Array;
  /** The response bytes the driver received, or null when none was given. */
  readonly response: Uint8Array | null;
  /** The configuration when the device processed the request, if the adapter knows it. */
  readonly config?: Uint8Array;
  /**
   * When the device took the request, in milliseconds on the session's clock: virtual time for
   * the model (it advances only while the driver backs off), wall time for a real guest. One
   * clock per session, never going backwards, so the gap between two requests is the time the
   * driver let pass between them. Absent when the adapter cannot time requests; checks that need
   * it (`retry_delay`) then report `unsupported` instead of judging.
   */
  readonly atMs?: number;
}

/** Something a driver did that was not a request. */
export type DriverEvent =
  | { readonly kind: 'request'; readonly exchange: DriverExchange }
  | { readonly kind: 'memory-write'; readonly addr: bigint; readonly length: number }
  | { readonly kind: 'config-write'; readonly offset: number; readonly length: number };

/** What the driver did during one `settle`. */
export interface DriverActivity {
  readonly events: readonly DriverEvent[];
  /** Whether the driver went quiet (idle or gave up) within the bound. */
  readonly settled: boolean;
  /** Why it stopped, in the adapter's words (e.g. "converged", "broken: ERROR twice"). */
  readonly stop: string;
  /** Time the driver spent waiting (virtual for the model), in milliseconds. */
  readonly waitedMs: number;
}

/** Limits of one `settle`. */
export interface SettleLimits {
  readonly maxRequests: number;
  readonly timeoutMs: number;
}

/** A scripted response for a driver's next requests. */
export interface ResponseInjection {
  readonly response: 'BUSY' | 'NACK' | 'ERROR' | 'ACK';
  readonly count: number;
  /** Only requests of these types are answered this way (default: every type). */
  readonly types?: readonly string[];
  /** Bytes written after the type (garbage in the padding or state), 8 bytes at most. */
  readonly trailer?: Uint8Array;
}

/** A session with one driver under test, attached to a device the adapter controls (driver vectors). */
export interface DriverSession {
  /** Lets the driver probe the device (bring the driver up). */
  start(): Promise<void>;
  /** Lets the driver run until it is quiet or a limit is hit, and reports what it did. */
  settle(limits: SettleLimits): Promise<DriverActivity>;
  /** The device's 56 configuration bytes now. */
  readConfig(): Promise<Uint8Array>;
  /** Features the driver accepted. */
  acceptedFeatures(): Promise<bigint>;
  /** Features the device offered to the driver. */
  offeredFeatures(): Promise<bigint>;
  /** `host-resize`. */
  resize?(requestedSize: bigint): Promise<ResizeOutcome>;
  /** `inject-responses`. */
  injectResponses?(injection: ResponseInjection): Promise<void>;
  /** `system-reset`: reboot; the driver probes again. */
  systemReset?(): Promise<void>;
  /**
   * `host-busy`: `true` makes the device busy from the host side (it answers PLUG, UNPLUG and
   * UNPLUG ALL with BUSY) and resolves once it is; `false` releases it, without telling the driver
   * (it comes back on its own). Closing the session releases a device left busy.
   */
  hostBusy?(busy: boolean): Promise<void>;
  /** `suspend`: asks the guest to suspend to RAM; reports whether the driver allowed it. */
  requestSuspend?(): Promise<{ readonly allowed: boolean; readonly detail: string }>;
  /**
   * `node-memory`: the memory the driver has added to the system from the virtio-mem devices it
   * manages, per NUMA node (node id → bytes; a node it added nothing to may be absent). It is the
   * whole system's view, whichever device's session is asked.
   */
  nodeMemory?(): Promise<ReadonlyMap<number, bigint>>;
  close(): Promise<void>;
}

/** One device of a multi-device driver vector: its name (as reports show it), set-up and options. */
export interface NamedDeviceSetup {
  readonly name: string;
  readonly setup: DeviceSetup;
  readonly options: DriverOptions;
}

/** Options a driver session is opened with. */
export interface DriverOptions {
  /** Garbage for the config padding bytes (drv.cfg.2), if the adapter can set it. */
  readonly configPadding?: Uint8Array;
  /**
   * The script of the `inject` steps that directly follow the vector's first `start`. A real
   * driver acts while it probes (Linux sends UNPLUG ALL at once when memory is plugged), before
   * those steps could reach it; an adapter with `inject-responses` arms this script before it
   * loads the driver, and the `inject` step that gave it then finds it in place.
   */
  readonly scriptAtProbe?: ResponseInjection;
  /**
   * The action of each of the vector's steps, in order (its kind and fields). For adapters that
   * choose the platform a vector runs on by what the vector will do: e.g. a guest whose timers
   * run fast for a vector that waits on the driver's own retry timer. Read-only.
   */
  readonly stepActions?: readonly StepActionOutline[];
  /**
   * A multi-device vector's devices (`devices:`), as {@link Adapter.openDrivers} will be given
   * them: what an adapter groups and prepares such a vector by (its single `setup` is only the
   * defaults the devices are laid over).
   */
  readonly devices?: readonly NamedDeviceSetup[];
}

/** A step's action as {@link DriverOptions.stepActions} gives it: its kind, and its fields. */
export interface StepActionOutline {
  readonly kind: string;
}

/** What an adapter is and what it can do. */
export interface AdapterInfo {
  /** Short name (`model`, `qemu`, …). */
  readonly name: string;
  /** The implementation under test, as reports should name it (e.g. `model:spec`, `QEMU 7.2.0`). */
  readonly implementation: string;
  /** Where the implementation was found, when that tells two of them apart (e.g. the QEMU binary's path). */
  readonly location?: string;
  readonly targets: readonly Target[];
  readonly capabilities: readonly Capability[];
  /**
   * The capabilities per target, when they differ between targets (a harness may implement
   * `system-reset` for its device but not its driver). When present, the runner uses the list of
   * the vector's target instead of {@link capabilities}.
   */
  readonly targetCapabilities?: Partial<Readonly<Record<Target, readonly Capability[]>>>;
  /** How much slower than the model this target is; per-vector timeouts are multiplied by it. */
  readonly timeoutMultiplier: number;
  /**
   * Why the adapter lacks a capability, when it can say (a host-control file without the hook, a
   * VMM the suite did not start): the runner adds it to the `unsupported` verdict.
   */
  readonly missingCapabilities?: Readonly<Partial<Record<Capability, string>>>;
}

/** The capabilities an adapter offers for vectors of `target`: its per-target list when it has one, else its list. */
export function capabilitiesFor(info: AdapterInfo, target: Target): readonly Capability[] {
  return info.targetCapabilities?.[target] ?? info.capabilities;
}

/** An implementation under test. */
export interface Adapter {
  readonly info: AdapterInfo;
  /** Opens a fresh device (device vectors). */
  openDevice(setup: DeviceSetup): Promise<DeviceSession>;
  /** Opens a fresh driver attached to a device built from `setup` (driver vectors). */
  openDriver?(setup: DeviceSetup, options: DriverOptions): Promise<DriverSession>;
  /**
   * The group of a vector's set-up when running vectors of one group one after the other saves
   * work (one guest boot per device configuration), else undefined. The runner then runs each
   * group together, groups in the order of their first vector; results stay in corpus order.
   */
  scheduleKey?(target: Target, setup: DeviceSetup, options: DriverOptions): string | undefined;
  /**
   * Makes ready what a vector's set-up needs before its timeout starts (a guest booted for its
   * device configuration), so a slow boot is not charged to the vector. Must not throw: a
   * failure is reported when the vector opens.
   */
  prepare?(target: Target, setup: DeviceSetup, options: DriverOptions): Promise<void>;
  /**
   * `multi-device`: opens one driver managing several devices at once, one built from each
   * set-up; returns one session per device, in the order given (each resizes, reads and settles
   * its own device; the driver behind them is shared).
   */
  openDrivers?(devices: readonly NamedDeviceSetup[]): Promise<readonly DriverSession[]>;
  /** Releases everything the adapter holds (processes, sockets). Must not throw. */
  dispose(): Promise<void>;
}

/** Thrown by an adapter when it cannot do what was asked; the runner reports `error`. */
export class AdapterError extends Error {
  override readonly name: string = 'AdapterError';
  /** Diagnostics worth attaching to the vector's result (e.g. a process's stderr). */
  readonly diagnostics?: string;
  constructor(message: string, diagnostics?: string) {
    super(message);
    this.diagnostics = diagnostics;
  }
}

/**
 * Thrown by an adapter when the target stopped answering (a guest that hangs, a back-end that
 * never replies); the runner reports `timeout`, as it does for its own per-vector bound.
 */
export class AdapterTimeoutError extends AdapterError {
  override readonly name = 'AdapterTimeoutError';
}

/** Thrown by an adapter when a setup value is outside what it can build (reported `unsupported`). */
export class UnsupportedSetupError extends Error {
  override readonly name = 'UnsupportedSetupError';
}
