/**
 * Joins the reference driver and the device model through bytes only: configuration bytes,
 * request bytes, response bytes and notifications. Virtual time advances on backoffs.
 */
import type { VirtioMemDevice, ProcessResult } from './device/device';
import type { ReferenceDriver, DriverAction } from './driver/driver';

/** Limits and hooks of {@link runDriverLoop}. */
export interface DriverLoopOptions {
  /** Stop after this many requests (a guard against non-converging drivers). Default 100,000. */
  readonly maxRequests?: number;
  /** Called before each request is delivered; may resize, reset or inject BUSY on the device. */
  readonly beforeRequest?: (requestIndex: number, device: VirtioMemDevice) => void;
}

/** Why the loop stopped and what happened on the way. */
export interface DriverLoopResult {
  readonly stop: Extract<DriverAction, { kind: 'idle' | 'broken' }> | { readonly kind: 'request-limit' };
  readonly requests: number;
  /** Virtual milliseconds spent in backoffs. */
  readonly waitedMs: number;
  /** Every device step, in order (only kept when `keepSteps` is true). */
  readonly steps: readonly ProcessResult[];
}

/**
 * Drives `driver` against `device` until the driver is idle or broken, or the request limit is hit.
 * Notifications raised by the device (including during a host resize done in `beforeRequest`)
 * are delivered to the driver.
 */
export function runDriverLoop(driver: ReferenceDriver, device: VirtioMemDevice, options: DriverLoopOptions = {}, keepSteps = false): DriverLoopResult {
  const maxRequests = options.maxRequests ?? 100_000;
  const steps: ProcessResult[] = [];
  let requests = 0;
  let waitedMs = 0;
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
        if (requests >= maxRequests) return { stop: { kind: 'request-limit' }, requests, waitedMs, steps };
        options.beforeRequest?.(requests, device);
        const result = device.processRequest(action.bytes);
        requests++;
        if (keepSteps) steps.push(result);
        driver.onResponse(result.used && result.used.length >= 10 ? result.used.written : null);
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
        return { stop: action, requests, waitedMs, steps };
    }
  }
}
