/**
 * The configuration each traced request was taken under, when a host resize came between the
 * request and the settle that reports it. On a real guest `start` loads the driver, which acts at
 * once: a request it sends before a following `resize` step is reported by the next settle, but
 * the device took it under the requested_size before the resize. The session notes the
 * configuration the host held just before each resize and the wall time it sent it; a request
 * QEMU stamped before that time carries that configuration.
 */
import { DriverActivity } from '../../core/src/contract';

/** One host resize: when it was sent (wall ms) and the configuration the host held before it. */
export interface HostResize {
  readonly sentAtMs: number;
  readonly before: Uint8Array;
}

/** `activity` with each request stamped before a resize given the configuration before the first such resize. */
export function withConfigBeforeResizes(activity: DriverActivity, resizes: readonly HostResize[]): DriverActivity {
  if (resizes.length === 0) return activity;
  const events = activity.events.map((event) => {
    if (event.kind !== 'request' || event.exchange.atMs === undefined) return event;
    const at = event.exchange.atMs;
    const resize = resizes.find((r) => at < r.sentAtMs);
    return resize ? { ...event, exchange: { ...event.exchange, config: resize.before } } : event;
  });
  return { ...activity, events };
}
