/**
 * Transcripts: every call the runner makes on an adapter's sessions, and what came back, as
 * text — for comparing two implementations (QEMU and a model profile, a device over vhost-user
 * or over the harness protocol and the in-process model) vector by vector over the corpus.
 *
 * {@link RecordingAdapter} wraps an adapter; each session it opens records through one table per
 * session kind ({@link DEVICE_CALLS}, {@link DRIVER_CALLS}): how a call and its result read as
 * text. A driver's `settle` also records each event of its activity as an entry of its own, so
 * the first difference names the request it is in.
 */
import { DEVICE_TYPE_FEATURES_MASK, FEATURE_MASKS } from '../../../spec/src/index';
import type {
  Adapter,
  Completion,
  DeviceSession,
  DeviceSetup,
  DriverEvent,
  DriverOptions,
  DriverSession,
  HandshakeResult,
  NamedDeviceSetup,
} from '../../../adapters/core/src/contract';

/** One call on a recorded session and what came back. */
export interface Recorded {
  readonly call: string;
  readonly result: string;
}

/** The handshake both sides of a comparison use: VERSION_1 and every device-specific feature offered. */
export function acceptDeviceFeatures(offered: bigint): bigint {
  return offered & (FEATURE_MASKS.VERSION_1 | DEVICE_TYPE_FEATURES_MASK);
}

/** Text of a completion: used length and bytes, or its absence. */
export function describeCompletion(c: Completion): string {
  return c.kind === 'used' ? `used ${c.length} [${hex(c.written)}]` : 'no used entry';
}

/** Text of a handshake: what matters for equality (transport features a real device adds are masked). */
export function describeInitialisation(init: HandshakeResult): string {
  return `offered 0x${acceptDeviceFeatures(init.offered).toString(16)} accepted 0x${init.accepted.toString(16)} features_ok ${init.featuresOk} status ${init.status}`;
}

/** Text of one thing a driver did during a settle, with every byte and time it carries. */
export function describeDriverEvent(e: DriverEvent): string {
  if (e.kind === 'memory-write') return `memory-write 0x${e.addr.toString(16)} length ${e.length}`;
  if (e.kind === 'config-write') return `config-write offset ${e.offset} length ${e.length}`;
  const x = e.exchange;
  return [
    `request [${hex(x.request)}]`,
    `response ${x.response === null ? 'none' : `[${hex(x.response)}]`}`,
    `config ${x.config === undefined ? 'unknown' : `[${hex(x.config)}]`}`,
    `at ${x.atMs === undefined ? 'unknown' : `${x.atMs} ms`}`,
  ].join(' ');
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function none(): string {
  return '';
}

/** How one method's calls are recorded: the call and its result as text, and entries the result holds. */
type CallRecord<F> = F extends (...args: infer A) => Promise<infer R>
  ? {
      readonly call: (...args: A) => string;
      readonly result: (value: R) => string;
      /** Entries recorded after the call's own (a settle's events). */
      readonly details?: (value: R) => readonly Recorded[];
    }
  : never;

/** A session kind's recording table: one entry per method but `close`, which passes through unrecorded. */
type CallTable<S> = { readonly [K in Exclude<keyof S, 'close'>]-?: CallRecord<NonNullable<S[K]>> };

/** The methods of a session kind a recording can record (and leave out, see {@link RecordingOptions}). */
export type RecordedMethod = Exclude<keyof DeviceSession | keyof DriverSession, 'close'>;

/** How every call of a device session is recorded. */
export const DEVICE_CALLS: CallTable<DeviceSession> = {
  initialise: { call: () => 'initialise', result: describeInitialisation },
  readConfig: { call: () => 'readConfig', result: hex },
  readConfigGeneration: { call: () => 'readConfigGeneration', result: String },
  submit: {
    call: (chain) => `submit ${chain.readable.map(hex).join('|')} → ${chain.writableSizes.join(',')}`,
    result: describeCompletion,
  },
  notificationCount: { call: () => 'notificationCount', result: String },
  readStatus: { call: () => 'readStatus', result: String },
  resize: { call: (size) => `resize 0x${size.toString(16)}`, result: (r) => r.kind },
  deviceReset: { call: () => 'deviceReset', result: none },
  systemReset: { call: () => 'systemReset', result: none },
  injectBusy: { call: (count) => `injectBusy ${count}`, result: none },
  hostBusy: { call: (busy) => `hostBusy ${busy}`, result: none },
  readMemory: {
    call: (addr, length) => `readMemory 0x${addr.toString(16)} ${length}`,
    result: (r) => (r.ok ? hex(r.data) : 'refused'),
  },
  writeMemory: {
    call: (addr, data) => `writeMemory 0x${addr.toString(16)} ${data.length}`,
    result: (r) => (r.ok ? 'ok' : 'refused'),
  },
  suspendAndWake: { call: () => 'suspendAndWake', result: none },
};

/** How every call of a driver session is recorded; a settle's events follow it, one entry each. */
export const DRIVER_CALLS: CallTable<DriverSession> = {
  start: { call: () => 'start', result: none },
  settle: {
    call: (limits) => `settle max ${limits.maxRequests} requests, ${limits.timeoutMs} ms`,
    result: (a) =>
      `settled ${a.settled} stop ${JSON.stringify(a.stop)} waited ${a.waitedMs} ms, ${a.events.length} events`,
    details: (a) => a.events.map((e, i) => ({ call: `  event ${i}`, result: describeDriverEvent(e) })),
  },
  readConfig: { call: () => 'readConfig', result: hex },
  acceptedFeatures: { call: () => 'acceptedFeatures', result: (f) => `0x${f.toString(16)}` },
  offeredFeatures: { call: () => 'offeredFeatures', result: (f) => `0x${f.toString(16)}` },
  resize: { call: (size) => `resize 0x${size.toString(16)}`, result: (r) => r.kind },
  injectResponses: {
    call: (i) =>
      `injectResponses ${i.response} ×${i.count} types ${i.types?.join(',') ?? 'any'} trailer [${i.trailer ? hex(i.trailer) : ''}]`,
    result: none,
  },
  systemReset: { call: () => 'systemReset', result: none },
  hostBusy: { call: (busy) => `hostBusy ${busy}`, result: none },
  requestSuspend: { call: () => 'requestSuspend', result: (r) => `allowed ${r.allowed}: ${r.detail}` },
  nodeMemory: {
    call: () => 'nodeMemory',
    result: (m) =>
      [...m]
        .sort(([a], [b]) => a - b)
        .map(([node, bytes]) => `node ${node} 0x${bytes.toString(16)}`)
        .join(', '),
  },
};

/**
 * Records `session`'s calls into `log` through `table`; methods the session lacks, or `omit`
 * names, stay absent. `device` (a multi-device vector's device name) heads every call's text.
 */
function recordSession<S extends { close(): Promise<void> }>(
  session: S,
  table: CallTable<S>,
  log: Recorded[],
  omit: ReadonlySet<string>,
  device?: string,
): S {
  const wrapped: Record<string, unknown> = { close: () => session.close() };
  const entries = Object.entries(table) as [string, CallRecord<(...args: unknown[]) => Promise<unknown>>][];
  for (const [name, how] of entries) {
    const method = (session as unknown as Record<string, unknown>)[name];
    if (typeof method !== 'function' || omit.has(name)) continue;
    wrapped[name] = async (...args: unknown[]): Promise<unknown> => {
      const call = device === undefined ? how.call(...args) : `[${device}] ${how.call(...args)}`;
      try {
        const value: unknown = await method.apply(session, args);
        log.push({ call, result: how.result(value) }, ...(how.details?.(value) ?? []));
        return value;
      } catch (e) {
        log.push({ call, result: `threw ${(e as Error).name}` });
        throw e;
      }
    };
  }
  return wrapped as unknown as S;
}

/** What a recording leaves out. */
export interface RecordingOptions {
  /**
   * Methods the recorded sessions do not offer, so the runner does without them on this side
   * (e.g. `readConfigGeneration` when the other side lacks it or deviates in it knowingly).
   */
  readonly omit?: readonly RecordedMethod[];
}

/**
 * Wraps an adapter so every device and driver session records its calls and results (per vector
 * id, set with {@link RecordingAdapter.beginVector}), for comparing two implementations over the
 * corpus. Opening a session is recorded too, with its set-up.
 */
export class RecordingAdapter implements Adapter {
  readonly transcripts = new Map<string, Recorded[]>();
  private current: Recorded[] = [];
  private readonly omit: ReadonlySet<string>;

  constructor(
    private readonly inner: Adapter,
    options: RecordingOptions = {},
  ) {
    this.omit = new Set(options.omit ?? []);
    if (inner.openDriver)
      this.openDriver = async (setup: DeviceSetup, driverOptions: DriverOptions) => {
        const padding = driverOptions.configPadding ? ` padding [${hex(driverOptions.configPadding)}]` : '';
        const log = this.current;
        const session = await this.opened(`openDriver ${describeSetup(setup)}${padding}`, () =>
          inner.openDriver!(setup, driverOptions),
        );
        return recordSession(session, DRIVER_CALLS, log, this.omit);
      };
    if (inner.openDrivers)
      this.openDrivers = async (devices: readonly NamedDeviceSetup[]) => {
        const log = this.current;
        const described = devices.map((d) => `[${d.name}] ${describeSetup(d.setup)}`).join('; ');
        const sessions = await this.opened(`openDrivers ${described}`, () => inner.openDrivers!(devices));
        return sessions.map((session, i) => recordSession(session, DRIVER_CALLS, log, this.omit, devices[i]!.name));
      };
  }

  get info() {
    return this.inner.info;
  }

  /** Starts the transcript of the next vector. */
  beginVector(id: string): void {
    this.current = [];
    this.transcripts.set(id, this.current);
  }

  async openDevice(setup: DeviceSetup): Promise<DeviceSession> {
    const log = this.current;
    const session = await this.opened(`openDevice ${describeSetup(setup)}`, () => this.inner.openDevice(setup));
    return recordSession(session, DEVICE_CALLS, log, this.omit);
  }

  /** Opens a multi-device driver session, when the inner adapter can (set in the constructor). */
  readonly openDrivers?: (devices: readonly NamedDeviceSetup[]) => Promise<readonly DriverSession[]>;

  /** Opens a driver session, when the inner adapter can (set in the constructor). */
  readonly openDriver?: (setup: DeviceSetup, options: DriverOptions) => Promise<DriverSession>;

  /** Records the opening of a session and whether it threw. */
  private async opened<S>(call: string, open: () => Promise<S>): Promise<S> {
    const log = this.current;
    try {
      const session = await open();
      log.push({ call, result: 'opened' });
      return session;
    } catch (e) {
      log.push({ call, result: `threw ${(e as Error).name}` });
      throw e;
    }
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

/** A set-up as text, every field of it. */
function describeSetup(s: DeviceSetup): string {
  return JSON.stringify(s, (_, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
}

/** The first difference between two transcripts of the same vector, or undefined. */
export function compareTranscripts(
  left: readonly Recorded[],
  right: readonly Recorded[],
): { index: number; left?: Recorded; right?: Recorded } | undefined {
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const l = left[i];
    const r = right[i];
    if (!l || !r || l.call !== r.call || l.result !== r.result) return { index: i, left: l, right: r };
  }
  return undefined;
}
