/**
 * The driver pump: joins the reference driver and a device through bytes only — configuration
 * bytes, request bytes, response bytes, guest-memory writes and notifications. Virtual time
 * advances on backoffs.
 *
 * It is written once, as a generator ({@link driverPumpSteps}) that yields the device operations
 * the driver needs (read the configuration, send a request, write guest memory) and receives
 * their answers, each saying whether a configuration-change notification arrived. Two runners
 * drive it: {@link runDriverPump} over a synchronous {@link SyncDriverDevicePort} and
 * {@link runDriverPumpAsync} over an asynchronous {@link DriverDevicePort} (a device reached
 * through a protocol). {@link runDriverLoop} is the synchronous runner over the model device,
 * with hooks that let a caller stand between the two sides (answer a request itself, show the
 * driver other configuration bytes, act before a request) without a second loop.
 */
import type { VirtioMemDevice, ProcessResult } from './device/device';
import type { MemoryAccessResult } from './device/memory';
import type { ReferenceDriver, DriverAction } from './driver/driver';
import { VirtioMemResponseLayout } from '../../spec/src/index';

/** A request the driver made. */
export type DriverRequest = Extract<DriverAction, { kind: 'request' }>;

/** A guest-memory write the driver asked for. */
export type DriverMemoryWrite = Extract<DriverAction, { kind: 'write-memory' }>;

/** One device operation the pump asks for, as {@link driverPumpSteps} yields it. */
export type DriverDeviceOp =
  /** Read the 56 configuration bytes as the driver sees them. */
  | { readonly kind: 'read-config' }
  /**
   * Deliver the driver's request. `index`: requests delivered before it in this run; `atMs`: the
   * virtual milliseconds the driver had waited in this run before sending it.
   */
  | { readonly kind: 'request'; readonly action: DriverRequest; readonly index: number; readonly atMs: number }
  /** Write `action.length` zero bytes at `action.addr`. `afterRequests`: requests delivered before it in this run. */
  | { readonly kind: 'write-memory'; readonly action: DriverMemoryWrite; readonly afterRequests: number };

/** The answer to a 'read-config' operation. */
export interface ConfigAnswer {
  readonly config: Uint8Array;
  /** A configuration-change notification arrived since the pump was last told. */
  readonly configChanged: boolean;
}

/** The answer to a 'request' operation. */
export interface ResponseAnswer {
  /** The response bytes, or null when the device gave none. */
  readonly response: Uint8Array | null;
  readonly configChanged: boolean;
}

/** The answer to a 'write-memory' operation. */
export interface MemoryWriteAnswer {
  /** Whether the device let the driver write there. */
  readonly ok: boolean;
  readonly configChanged: boolean;
}

/** Any answer the pump receives. */
export type DriverDeviceAnswer = ConfigAnswer | ResponseAnswer | MemoryWriteAnswer;

/** A device as the pump reaches it, when each operation completes later (a device behind a protocol). */
export interface DriverDevicePort {
  readConfig(): Promise<ConfigAnswer>;
  request(op: Extract<DriverDeviceOp, { kind: 'request' }>): Promise<ResponseAnswer>;
  writeMemory(op: Extract<DriverDeviceOp, { kind: 'write-memory' }>): Promise<MemoryWriteAnswer>;
}

/** A {@link DriverDevicePort} whose operations complete at once (a model device in-process). */
export type SyncDriverDevicePort = {
  readonly [K in keyof DriverDevicePort]: (
    ...args: Parameters<DriverDevicePort[K]>
  ) => Awaited<ReturnType<DriverDevicePort[K]>>;
};

/** Limits of one pump run. */
export interface DriverPumpLimits {
  /** Stop once this many requests were delivered (a guard against non-converging drivers). Default 100,000. */
  readonly maxRequests?: number;
  /** Stop once the driver has waited longer than this many virtual milliseconds in backoffs. Default: no limit. */
  readonly maxWaitMs?: number;
  /** A request the driver made before an earlier run stopped at its limit: delivered first, so no request is stranded. */
  readonly pending?: DriverRequest;
  /** A configuration-change notification the driver has not been told of yet (delivered before its first action). */
  readonly configChanged?: boolean;
}

/** Why the pump stopped. */
export type DriverLoopStop =
  | Extract<DriverAction, { kind: 'idle' | 'broken' }>
  /** `maxRequests` were delivered; `pending` is a request the driver made meanwhile (pass it to the next run). */
  | { readonly kind: 'request-limit'; readonly pending?: DriverRequest }
  /** The driver backed off for longer than `maxWaitMs` in total. */
  | { readonly kind: 'wait-limit' };

/** What one pump run did, whatever the device. */
export interface DriverPumpResult {
  readonly stop: DriverLoopStop;
  readonly requests: number;
  /** Virtual milliseconds spent in backoffs. */
  readonly waitedMs: number;
  /** Number of 'write-memory' actions performed (the driver initialising plugged memory, drv.op.7). */
  readonly memoryWrites: number;
}

/**
 * The pump as a sequence of device operations: runs `driver` until it is idle or broken, or a
 * limit is hit. A notification reported by an answer (or `limits.configChanged`) is delivered to
 * the driver before its next action. The request limit is checked before the driver is asked
 * for its next action, so a run that reaches it leaves the driver where it was.
 * @throws Error when the driver asks to wait for a response it never got (a driver bug).
 */
export function* driverPumpSteps(
  driver: ReferenceDriver,
  limits: DriverPumpLimits = {},
): Generator<DriverDeviceOp, DriverPumpResult, DriverDeviceAnswer> {
  const maxRequests = limits.maxRequests ?? 100_000;
  const maxWaitMs = limits.maxWaitMs ?? Infinity;
  let requests = 0;
  let waitedMs = 0;
  let memoryWrites = 0;
  let pending = limits.pending;
  let configChanged = limits.configChanged ?? false;
  const result = (stop: DriverLoopStop): DriverPumpResult => ({ stop, requests, waitedMs, memoryWrites });
  for (;;) {
    if (configChanged) {
      configChanged = false;
      driver.onConfigChange();
    }
    if (requests >= maxRequests && !pending) return result({ kind: 'request-limit' });
    const action = pending ?? driver.next();
    pending = undefined;
    switch (action.kind) {
      case 'read-config': {
        const answer = (yield { kind: 'read-config' }) as ConfigAnswer;
        configChanged = answer.configChanged;
        driver.onConfig(answer.config);
        break;
      }
      case 'request': {
        if (requests >= maxRequests) return result({ kind: 'request-limit', pending: action });
        const answer = (yield { kind: 'request', action, index: requests, atMs: waitedMs }) as ResponseAnswer;
        requests++;
        configChanged = answer.configChanged;
        driver.onResponse(answer.response);
        break;
      }
      case 'write-memory': {
        const answer = (yield { kind: 'write-memory', action, afterRequests: requests }) as MemoryWriteAnswer;
        memoryWrites++;
        configChanged = answer.configChanged;
        driver.onMemoryWritten(answer.ok);
        break;
      }
      case 'wait':
        waitedMs += action.delayMs;
        if (waitedMs > maxWaitMs) return result({ kind: 'wait-limit' });
        driver.onTimer();
        break;
      case 'awaiting-response':
        throw new Error('the reference driver lost track of its outstanding request');
      case 'idle':
      case 'broken':
        return result(action);
    }
  }
}

/** Performs one operation on a port whose operations may complete later or at once. */
function perform<R>(port: SyncDriverDevicePort | DriverDevicePort, op: DriverDeviceOp): R {
  switch (op.kind) {
    case 'read-config':
      return port.readConfig() as R;
    case 'request':
      return port.request(op) as R;
    case 'write-memory':
      return port.writeMemory(op) as R;
  }
}

/** Runs the pump ({@link driverPumpSteps}) over a synchronous device port. */
export function runDriverPump(
  driver: ReferenceDriver,
  port: SyncDriverDevicePort,
  limits: DriverPumpLimits = {},
): DriverPumpResult {
  const steps = driverPumpSteps(driver, limits);
  let next = steps.next();
  while (!next.done) next = steps.next(perform<DriverDeviceAnswer>(port, next.value));
  return next.value;
}

/** Runs the same pump over an asynchronous device port. */
export async function runDriverPumpAsync(
  driver: ReferenceDriver,
  port: DriverDevicePort,
  limits: DriverPumpLimits = {},
): Promise<DriverPumpResult> {
  const steps = driverPumpSteps(driver, limits);
  let next = steps.next();
  while (!next.done) next = steps.next(await perform<Promise<DriverDeviceAnswer>>(port, next.value));
  return next.value;
}

/** A synchronous port seen through the asynchronous interface (each operation settles at once). */
export function asyncDevicePort(port: SyncDriverDevicePort): DriverDevicePort {
  return {
    readConfig: async () => port.readConfig(),
    request: async (op) => port.request(op),
    writeMemory: async (op) => port.writeMemory(op),
  };
}

/** Limits and hooks of {@link runDriverLoop}. */
export interface DriverLoopOptions {
  /** Stop once this many requests were delivered (a guard against non-converging drivers). Default 100,000. */
  readonly maxRequests?: number;
  /** Stop once the driver has waited longer than this many virtual milliseconds in backoffs. Default: no limit. */
  readonly maxWaitMs?: number;
  /** A request the driver made before an earlier run stopped at its limit: delivered first, so no request is stranded. */
  readonly pending?: DriverRequest;
  /**
   * The device's notification count the driver was last told of (default: the count now, so
   * notifications raised before the run are the caller's to deliver). A caller that runs the
   * pump in steps passes the previous run's `notificationsSeen`, so a notification raised
   * between two runs (a host resize) reaches the driver.
   */
  readonly notificationsSeen?: number;
  /** Called before each request is delivered; may resize, reset or inject BUSY on the device. */
  readonly beforeRequest?: (requestIndex: number, device: VirtioMemDevice) => void;
  /**
   * Answers a request instead of the device (a scripted response): the response bytes, `null`
   * for none, or `undefined` to let the device answer as usual.
   */
  readonly answer?: (request: Uint8Array) => Uint8Array | null | undefined;
  /** The configuration bytes as the driver reads them (default: as the device exposes them). */
  readonly configView?: (config: Uint8Array) => Uint8Array;
  /**
   * Told of every request delivered: its bytes, the answer, the configuration when the device took
   * it, and when it was delivered: the virtual milliseconds the driver had waited in this run before it.
   */
  readonly onRequest?: (request: Uint8Array, response: Uint8Array | null, config: Uint8Array, atMs: number) => void;
  /** Told of every guest-memory write the driver makes (before it is performed). */
  readonly onMemoryWrite?: (addr: bigint, length: number) => void;
}

/** One guest-memory write the loop performed for the driver. */
export interface MemoryWriteStep {
  /** Number of requests delivered before this write. */
  readonly afterRequests: number;
  /** The driver's action (address, length, purpose). */
  readonly action: DriverMemoryWrite;
  /** What the device answered. */
  readonly result: MemoryAccessResult;
}

/** Why the loop stopped and what happened on the way. */
export interface DriverLoopResult extends DriverPumpResult {
  /** The device's notification count the driver has been told of when the run stopped. */
  readonly notificationsSeen: number;
  /** Every device step, in order (only kept when `keepSteps` is true; requests the `answer` hook took are not device steps). */
  readonly steps: readonly ProcessResult[];
  /** Every memory write, in order (only kept when `keepSteps` is true). */
  readonly memoryWriteSteps: readonly MemoryWriteStep[];
}

/**
 * Drives `driver` against the model `device` until the driver is idle or broken, or a limit is
 * hit ({@link runDriverPump} over the device). Notifications raised by the device (including
 * during a host resize done in `beforeRequest`) are delivered to the driver before its next
 * action. A 'write-memory' action is performed with {@link VirtioMemDevice.writeMemory} (zeros)
 * and its outcome reported to the driver.
 * @throws Error when the driver asks to wait for a response it never got (a driver bug).
 */
export function runDriverLoop(
  driver: ReferenceDriver,
  device: VirtioMemDevice,
  options: DriverLoopOptions = {},
  keepSteps = false,
): DriverLoopResult {
  const configView = options.configView ?? ((bytes: Uint8Array) => bytes);
  const steps: ProcessResult[] = [];
  const memoryWriteSteps: MemoryWriteStep[] = [];
  let seen = options.notificationsSeen ?? device.notificationCount;
  /** Whether the device raised a notification since the driver was last told; marks it told. */
  const notified = (): boolean => {
    const changed = device.notificationCount !== seen;
    seen = device.notificationCount;
    return changed;
  };
  const port: SyncDriverDevicePort = {
    readConfig: () => ({ config: configView(device.readConfigBytes()), configChanged: notified() }),
    request: ({ action, index, atMs }) => {
      options.beforeRequest?.(index, device);
      const config = options.onRequest ? device.readConfigBytes() : undefined;
      let response = options.answer?.(action.bytes);
      if (response === undefined) {
        const step = device.processRequest(action.bytes);
        if (keepSteps) steps.push(step);
        response = step.used && step.used.length >= VirtioMemResponseLayout.size ? step.used.written : null;
      }
      if (config) options.onRequest?.(action.bytes, response, config, atMs);
      return { response, configChanged: notified() };
    },
    writeMemory: ({ action, afterRequests }) => {
      options.onMemoryWrite?.(action.addr, action.length);
      const written = device.writeMemory(action.addr, new Uint8Array(action.length));
      if (keepSteps) memoryWriteSteps.push({ afterRequests, action, result: written });
      return { ok: written.ok, configChanged: notified() };
    },
  };
  const run = runDriverPump(driver, port, {
    maxRequests: options.maxRequests,
    maxWaitMs: options.maxWaitMs,
    pending: options.pending,
    configChanged: notified(),
  });
  return { ...run, notificationsSeen: seen, steps, memoryWriteSteps };
}
