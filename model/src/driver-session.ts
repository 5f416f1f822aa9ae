/**
 * What a settle-by-settle driver session holds, whatever reaches the device: the reference
 * driver (a fresh one after a reboot), a request left pending when a settle hit its request
 * limit, the session's virtual clock, the notifications the driver was told of — and the words
 * for why a settle stopped. The in-process model adapter runs its settles with
 * {@link runDriverLoop} over the model device; the served harness runs them with
 * {@link runDriverPumpAsync} over the protocol ({@link DriverSessionCore.settleOver}).
 */
import type { ReferenceDriver } from './driver/driver';
import { runDriverPumpAsync } from './loop';
import type { DriverDevicePort, DriverLoopStop, DriverPumpLimits, DriverPumpResult, DriverRequest } from './loop';

/** Limits of one settle. */
export interface DriverSettleLimits {
  /** Requests the driver may send in this settle. */
  readonly maxRequests: number;
  /** Virtual milliseconds the driver may spend backing off in this settle. */
  readonly timeoutMs: number;
}

/** How one settle ended, in the words reports show. */
export interface SettleOutcome {
  /** Whether the driver went quiet (idle or gave up) within the limits. */
  readonly settled: boolean;
  /** Why it stopped, e.g. `idle: converged`, `broken: ERROR`, `request limit (100) reached`. */
  readonly stop: string;
  /** Virtual milliseconds the driver spent backing off in this settle. */
  readonly waitedMs: number;
}

/** Words for why a settle stopped, as reports show them. */
export function describeStop(
  stop: DriverLoopStop,
  limits: DriverSettleLimits,
  waitedMs: number,
): { readonly settled: boolean; readonly stop: string } {
  switch (stop.kind) {
    case 'idle':
      return { settled: true, stop: `idle: ${stop.reason}` };
    case 'broken':
      return { settled: true, stop: `broken: ${stop.reason}` };
    case 'request-limit':
      return { settled: false, stop: `request limit (${limits.maxRequests}) reached` };
    case 'wait-limit':
      return { settled: false, stop: `still backing off after ${waitedMs} ms (limit ${limits.timeoutMs} ms)` };
  }
}

/** The state of one driver session between settles. */
export class DriverSessionCore {
  private current: ReferenceDriver;
  /** A request the driver produced when a settle hit its limit; the next settle sends it first. */
  private pending?: DriverRequest;
  private clock = 0;

  /**
   * @param makeDriver builds the driver (again after a reboot).
   * @param notificationsSeen the device's notification count the driver starts out told of
   *   (for a caller that counts the device's notifications itself, as the in-process adapter does).
   */
  constructor(
    private readonly makeDriver: () => ReferenceDriver,
    public notificationsSeen = 0,
  ) {
    this.current = makeDriver();
  }

  /** The driver under test now. */
  get driver(): ReferenceDriver {
    return this.current;
  }

  /**
   * The session's virtual clock in milliseconds: it advances only while the driver backs off
   * (requests take no time), so request time stamps show exactly the delays the driver chose.
   */
  get clockMs(): number {
    return this.clock;
  }

  /** The pump limits of the next settle (its request and time limits, the request left pending). */
  pumpLimits(limits: DriverSettleLimits, configChanged = false): DriverPumpLimits {
    return { maxRequests: limits.maxRequests, maxWaitMs: limits.timeoutMs, pending: this.pending, configChanged };
  }

  /**
   * Records how a settle's pump run ended (the request left pending, the clock, the notifications
   * told when the run reports them) and describes it.
   */
  finishSettle(
    run: DriverPumpResult & { readonly notificationsSeen?: number },
    limits: DriverSettleLimits,
  ): SettleOutcome {
    this.pending = run.stop.kind === 'request-limit' ? run.stop.pending : undefined;
    if (run.notificationsSeen !== undefined) this.notificationsSeen = run.notificationsSeen;
    // A backoff cut short by the settle's time limit counts up to the limit only.
    this.clock += Math.min(run.waitedMs, limits.timeoutMs);
    return { waitedMs: run.waitedMs, ...describeStop(run.stop, limits, run.waitedMs) };
  }

  /**
   * One settle over an asynchronous device port. The port sees each request's `atMs` on the
   * session's clock (the settle's start plus the driver's backoffs so far).
   * @param configChanged a configuration-change notification the driver has not been told of yet.
   */
  async settleOver(port: DriverDevicePort, limits: DriverSettleLimits, configChanged: boolean): Promise<SettleOutcome> {
    const startMs = this.clock;
    const run = await runDriverPumpAsync(
      this.current,
      {
        readConfig: () => port.readConfig(),
        request: (op) => port.request({ ...op, atMs: startMs + op.atMs }),
        writeMemory: (op) => port.writeMemory(op),
      },
      this.pumpLimits(limits, configChanged),
    );
    return this.finishSettle(run, limits);
  }

  /** A reboot: a fresh driver, nothing pending; the clock goes on. */
  reboot(notificationsSeen = 0): void {
    this.current = this.makeDriver();
    this.pending = undefined;
    this.notificationsSeen = notificationsSeen;
  }

  /** Whether the driver lets the guest suspend to RAM now, and why (drv.op.11). */
  maySuspend(): { readonly allowed: boolean; readonly detail: string } {
    const verdict = this.current.maySuspend();
    return { allowed: verdict.allowed, detail: verdict.reason };
  }
}
