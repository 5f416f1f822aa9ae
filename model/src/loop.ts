/**
 * The driver pump: joins the reference driver and the device model through bytes only —
 * configuration bytes, request bytes, response bytes, guest-memory writes and notifications.
 * Virtual time advances on backoffs.
 *
 * It is the one pump: the model adapter's driver target runs it for every `settle`, and the
 * model's own tests run it directly. Hooks let a caller stand between the two sides (answer a
 * request itself, show the driver other configuration bytes, act before a request) without a
 * second loop.
 */
import type { VirtioMemDevice, ProcessResult } from './device/device';
import type { MemoryAccessResult } from './device/memory';
import type { ReferenceDriver, DriverAction } from './driver/driver';
import { VirtioMemResponseLayout } from '../../spec/src/index';

/** A request the driver made. */
export type DriverRequest = Extract<DriverAction, { kind: 'request' }>;

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
  readonly action: Extract<DriverAction, { kind: 'write-memory' }>;
  /** What the device answered. */
  readonly result: MemoryAccessResult;
}

/** Why the loop stopped. */
export type DriverLoopStop =
  | Extract<DriverAction, { kind: 'idle' | 'broken' }>
  /** `maxRequests` were delivered; `pending` is a request the driver made meanwhile (pass it to the next run). */
  | { readonly kind: 'request-limit'; readonly pending?: DriverRequest }
  /** The driver backed off for longer than `maxWaitMs` in total. */
  | { readonly kind: 'wait-limit' };

/** Why the loop stopped and what happened on the way. */
export interface DriverLoopResult {
  readonly stop: DriverLoopStop;
  readonly requests: number;
  /** Virtual milliseconds spent in backoffs. */
  readonly waitedMs: number;
  /** The device's notification count the driver has been told of when the run stopped. */
  readonly notificationsSeen: number;
  /** Every device step, in order (only kept when `keepSteps` is true; requests the `answer` hook took are not device steps). */
  readonly steps: readonly ProcessResult[];
  /** Number of 'write-memory' actions performed (the driver initialising plugged memory, drv.op.7). */
  readonly memoryWrites: number;
  /** Every memory write, in order (only kept when `keepSteps` is true). */
  readonly memoryWriteSteps: readonly MemoryWriteStep[];
}

/**
 * Drives `driver` against `device` until the driver is idle or broken, or a limit is hit.
 * Notifications raised by the device (including during a host resize done in `beforeRequest`)
 * are delivered to the driver before its next action. A 'write-memory' action is performed with
 * {@link VirtioMemDevice.writeMemory} (zeros) and its outcome reported to the driver. The
 * request limit is checked before the driver is asked for its next action, so a run that
 * reaches it leaves the driver where it was.
 * @throws Error when the driver asks to wait for a response it never got (a driver bug).
 */
export function runDriverLoop(
  driver: ReferenceDriver,
  device: VirtioMemDevice,
  options: DriverLoopOptions = {},
  keepSteps = false,
): DriverLoopResult {
  const maxRequests = options.maxRequests ?? 100_000;
  const maxWaitMs = options.maxWaitMs ?? Infinity;
  const configView = options.configView ?? ((bytes: Uint8Array) => bytes);
  const steps: ProcessResult[] = [];
  const memoryWriteSteps: MemoryWriteStep[] = [];
  let requests = 0;
  let waitedMs = 0;
  let memoryWrites = 0;
  let pending = options.pending;
  let seenNotifications = options.notificationsSeen ?? device.notificationCount;
  const result = (stop: DriverLoopStop): DriverLoopResult => ({
    stop,
    requests,
    waitedMs,
    notificationsSeen: seenNotifications,
    steps,
    memoryWrites,
    memoryWriteSteps,
  });
  for (;;) {
    if (device.notificationCount !== seenNotifications) {
      seenNotifications = device.notificationCount;
      driver.onConfigChange();
    }
    if (requests >= maxRequests && !pending) return result({ kind: 'request-limit' });
    const action = pending ?? driver.next();
    pending = undefined;
    switch (action.kind) {
      case 'read-config':
        driver.onConfig(configView(device.readConfigBytes()));
        break;
      case 'request': {
        if (requests >= maxRequests) return result({ kind: 'request-limit', pending: action });
        options.beforeRequest?.(requests, device);
        const config = options.onRequest ? device.readConfigBytes() : undefined;
        let response = options.answer?.(action.bytes);
        if (response === undefined) {
          const step = device.processRequest(action.bytes);
          if (keepSteps) steps.push(step);
          response = step.used && step.used.length >= VirtioMemResponseLayout.size ? step.used.written : null;
        }
        requests++;
        if (config) options.onRequest?.(action.bytes, response, config, waitedMs);
        driver.onResponse(response);
        break;
      }
      case 'write-memory': {
        options.onMemoryWrite?.(action.addr, action.length);
        const written = device.writeMemory(action.addr, new Uint8Array(action.length));
        memoryWrites++;
        if (keepSteps) memoryWriteSteps.push({ afterRequests: requests, action, result: written });
        driver.onMemoryWritten(written.ok);
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
