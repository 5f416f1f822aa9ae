/**
 * Joins the reference driver and the device model through bytes only: configuration bytes,
 * request bytes, response bytes, guest-memory writes and notifications. Virtual time advances
 * on backoffs.
 */
import type { VirtioMemDevice, ProcessResult } from './device/device';
import type { MemoryAccessResult } from './device/memory';
import type { ReferenceDriver, DriverAction } from './driver/driver';

/** Limits and hooks of {@link runDriverLoop}. */
export interface DriverLoopOptions {
  /** Stop after this many requests (a guard against non-converging drivers). Default 100,000. */
  readonly maxRequests?: number;
  /** Called before each request is delivered; may resize, reset or inject BUSY on the device. */
  readonly beforeRequest?: (requestIndex: number, device: VirtioMemDevice) => void;
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

/** Why the loop stopped and what happened on the way. */
export interface DriverLoopResult {
  readonly stop: Extract<DriverAction, { kind: 'idle' | 'broken' }> | { readonly kind: 'request-limit' };
  readonly requests: number;
  /** Virtual milliseconds spent in backoffs. */
  readonly waitedMs: number;
  /** Every device step, in order (only kept when `keepSteps` is true). */
  readonly steps: readonly ProcessResult[];
  /** Number of 'write-memory' actions performed (the driver initialising plugged memory, drv.op.7). */
  readonly memoryWrites: number;
  /** Every memory write, in order (only kept when `keepSteps` is true). */
  readonly memoryWriteSteps: readonly MemoryWriteStep[];
}

/**
 * Drives `driver` against `device` until the driver is idle or broken, or the request limit is hit.
 * Notifications raised by the device (including during a host resize done in `beforeRequest`)
 * are delivered to the driver. A 'write-memory' action is performed with
 * {@link VirtioMemDevice.writeMemory} (zeros) and its outcome reported to the driver.
 */
export function runDriverLoop(driver: ReferenceDriver, device: VirtioMemDevice, options: DriverLoopOptions = {}, keepSteps = false): DriverLoopResult {
  const maxRequests = options.maxRequests ?? 100_000;
  const steps: ProcessResult[] = [];
  const memoryWriteSteps: MemoryWriteStep[] = [];
  let requests = 0;
  let waitedMs = 0;
  let memoryWrites = 0;
  const result = (stop: DriverLoopResult['stop']): DriverLoopResult => ({ stop, requests, waitedMs, steps, memoryWrites, memoryWriteSteps });
  let seenNotifications = device.notificationCount;
  const deliverNotifications = (): void => {
    if (device.notificationCount !== seenNotifications) {
      seenNotifications = device.notificationCount;
      driver.onConfigChange();
    }
  };
  for (;;) {
    deliverNotifications();
    const action = driver.next();
    switch (action.kind) {
      case 'read-config':
        driver.onConfig(device.readConfigBytes());
        break;
      case 'request': {
        if (requests >= maxRequests) return result({ kind: 'request-limit' });
        options.beforeRequest?.(requests, device);
        const step = device.processRequest(action.bytes);
        requests++;
        if (keepSteps) steps.push(step);
        driver.onResponse(step.used && step.used.length >= 10 ? step.used.written : null);
        break;
      }
      case 'write-memory': {
        const written = device.writeMemory(action.addr, new Uint8Array(action.length));
        memoryWrites++;
        if (keepSteps) memoryWriteSteps.push({ afterRequests: requests, action, result: written });
        driver.onMemoryWritten(written.ok);
        break;
      }
      case 'wait':
        waitedMs += action.delayMs;
        driver.onTimer();
        break;
      case 'awaiting-response':
        throw new Error('driver loop lost track of an outstanding request');
      case 'idle':
      case 'broken':
        return result(action);
    }
  }
}
