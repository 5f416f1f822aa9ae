/**
 * One driver vector on the guest. Every step runs as part of the vector's epoch, so work the
 * runner has given up on cannot reach the guest once a later vector holds it.
 */
import {
  AdapterError,
  DriverActivity,
  DriverSession,
  ResizeOutcome,
  ResponseInjection,
  SettleLimits,
  UnsupportedSetupError,
} from '../../core/src/contract';
import { sleep } from '../../core/src/sleep';
import { QmpError } from '../../qemu-platform/src/index';
import { GuestDriverControl } from './guest-driver-control';
import { GuestInjectionHost, GuestInjectionSession } from './guest-injection-session';
import { GuestLink } from './guest-link';
import { MemoryFile, UnpluggedWriteWatch } from './guest-memory-file';
import { HostResize, withConfigBeforeResizes } from './resize-history';
import { GuestObserver } from './guest-observer';
import { attemptSuspend } from './guest-suspend';

/** What a session works with: the adapter's parts for the one guest. */
export interface GuestParts {
  readonly link: GuestLink;
  readonly control: GuestDriverControl;
  readonly observer: GuestObserver;
  /** The features the device offers. */
  readonly offered: bigint;
  /** Scripted answers through QEMU's gdbstub (`inject-responses`), when the guest's QEMU has one. */
  readonly injection?: GuestInjectionHost;
  /** The device region's backing file shared with QEMU (`memory-access`), when it is. */
  readonly memory?: MemoryFile & { close(): void };
}

/** A driver session of the `ssh-guest` adapter. */
export class SshGuestDriverSession implements DriverSession {
  private virtioName: string | undefined;
  private closed = false;
  /** Whether `start` has run (the script at probe is armed for the first load only). */
  private started = false;
  private readonly injection: GuestInjectionSession | undefined;
  /** Host resizes since the last settle (see resize-history.ts). */
  private resizes: HostResize[] = [];

  constructor(
    private readonly guest: GuestParts,
    private readonly epoch: number,
    /** Tells the adapter the session has ended. */
    private readonly onClose: () => void,
    /**
     * With scripted answers, the vector's requested_size while the device asks for 0: Linux
     * plugs as soon as it probes, before an `inject` step after `start` could script the
     * answers, so the driver loads with nothing to do and is given the size at the first
     * settle (or reset); a `resize` step replaces it. Until then the configuration reads as the
     * device holds it (requested_size 0).
     */
    private heldRequestedSize?: bigint,
    /**
     * The script of the `inject` steps right after `start` (`DriverOptions.scriptAtProbe`):
     * armed before the first load, so the requests Linux sends as it probes (UNPLUG ALL with memory
     * plugged) get it; the `inject` step that gives it finds it in place and leaves it running.
     */
    private armedAtProbe?: ResponseInjection,
    /** `memory-access`: the guest's writes into unplugged blocks, appended to each settle's events. */
    private readonly writes?: UnpluggedWriteWatch,
  ) {
    this.injection = guest.injection && new GuestInjectionSession(guest.injection, guest.link);
  }

  private run<T>(work: () => Promise<T>): Promise<T> {
    return this.guest.link.epochs.run(this.epoch, work);
  }

  start(): Promise<void> {
    return this.run(async () => {
      await this.guest.link.resume();
      if (this.injection && this.armedAtProbe && !this.started) this.injection.inject(this.armedAtProbe);
      else this.armedAtProbe = undefined;
      this.started = true;
      // Nothing plugged and nothing requested: the driver sends no request as it probes.
      const view = this.injection ? await this.guest.link.hostView() : undefined;
      const quietProbe = view !== undefined && view.size === 0n && view.requestedSize === 0n;
      await this.injection?.beforeLoad();
      await this.guest.control.load();
      await this.injection?.afterLoad(quietProbe);
      this.virtioName = await this.guest.control.boundDevice();
    });
  }

  /**
   * Gives the device the vector's requested_size when the adapter held it at 0 while the driver
   * loaded (see {@link SshGuestDriverSession.constructor}'s `heldRequestedSize`).
   */
  private async releaseRequestedSize(): Promise<void> {
    const size = this.heldRequestedSize;
    if (size === undefined) return;
    this.heldRequestedSize = undefined;
    await this.resizeNoting(size);
  }

  /** Sets requested_size, noting the configuration the host held before (see resize-history.ts). */
  private async resizeNoting(size: bigint): Promise<void> {
    const before = await this.guest.observer.hostConfig();
    const sentAtMs = Date.now();
    await this.guest.link.setRequestedSize(size);
    this.resizes.push({ sentAtMs, before });
  }

  settle(limits: SettleLimits): Promise<DriverActivity> {
    return this.run(async () => {
      await this.releaseRequestedSize();
      const { observer } = this.guest;
      const activity = !this.injection
        ? await observer.settle(limits)
        : await this.injection.settle(
            limits,
            (l, config) => observer.settle(l, config),
            () => observer.hostConfig(),
          );
      const timed = withConfigBeforeResizes(activity, this.resizes);
      this.resizes = [];
      return this.writes ? this.writes.observe(timed) : timed;
    });
  }

  injectResponses(injection: ResponseInjection): Promise<void> {
    return this.run(async () => {
      if (!this.injection) throw new UnsupportedSetupError('the guest was not started with a gdbstub');
      this.injection.checkSupported();
      const armed = this.armedAtProbe;
      this.armedAtProbe = undefined;
      // Replacing the armed script would give its answers again: the probe may have used some.
      if (armed && sameInjection(armed, injection)) return;
      this.injection.inject(injection);
    });
  }

  readConfig(): Promise<Uint8Array> {
    return this.run(() => (this.guest.link.held ? this.guest.observer.hostConfig() : this.guest.observer.readConfig()));
  }

  acceptedFeatures(): Promise<bigint> {
    return this.run(async () => {
      await this.guest.link.resume();
      this.virtioName ??= await this.guest.control.boundDevice();
      return this.guest.control.acceptedFeatures(this.virtioName);
    });
  }

  async offeredFeatures(): Promise<bigint> {
    return this.guest.offered;
  }

  resize(size: bigint): Promise<ResizeOutcome> {
    return this.run(async () => {
      this.heldRequestedSize = undefined;
      try {
        await this.resizeNoting(size);
        return { kind: 'applied' };
      } catch (e) {
        // QEMU refusing the size is an answer; a QMP connection that failed is not.
        if (e instanceof QmpError && !/did not answer|connection/.test(e.message))
          return { kind: 'refused', reason: e.message };
        throw e;
      }
    });
  }

  /** `host-busy`: QEMU answers BUSY while an outgoing migration runs; the driver is not told of the release. */
  hostBusy(busy: boolean): Promise<void> {
    return this.run(() => this.guest.link.setHostBusy(busy));
  }

  systemReset(): Promise<void> {
    return this.run(async () => {
      // The hook dies with the kernel; scripted answers do not outlive the reboot.
      await this.releaseRequestedSize();
      await this.injection?.reset();
      await this.guest.link.resetMachine(true);
      // QEMU unplugs (and discards) every block at a reset.
      this.writes?.reset();
      this.virtioName = undefined;
    });
  }

  /** `suspend`: S3 in the guest, woken by `system_wakeup` when the driver lets it sleep (see guest-suspend.ts). */
  requestSuspend(): Promise<{ allowed: boolean; detail: string }> {
    return this.run(async () => {
      await this.releaseRequestedSize();
      const { link } = this.guest;
      await link.resume();
      const attempt = await attemptSuspend({
        run: (command, what, timeoutMs) => link.run(command, what, timeoutMs),
        runState: () => link.runState(),
        wakeUp: () => link.wakeUp(),
        plugged: async () => (await link.hostView()).size,
        sleep,
      });
      switch (attempt.kind) {
        case 'allowed':
          return { allowed: true, detail: attempt.detail };
        case 'refused':
          return { allowed: false, detail: attempt.detail };
        case 'unsupported':
          throw new UnsupportedSetupError(attempt.reason);
        case 'failed':
          throw new AdapterError(`suspend: ${attempt.message}`);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The gdbstub is released even by a session the runner gave up on: the next vector runs without breakpoints.
    const ended = await this.injection?.end();
    if (this.epoch !== this.guest.link.epochs.current) return;
    await this.run(async () => {
      this.onClose();
      // A device left busy would answer the next vector's drain BUSY.
      if (this.guest.link.hostBusy) await this.guest.link.setHostBusy(false);
      // Linux sends nothing more after an ERROR; a reboot gives the next vector a driver that listens.
      if (ended?.driverBroken) await this.guest.link.resetMachine(false).catch(() => undefined);
      if (this.guest.link.held) void this.guest.link.resume().catch(() => undefined);
    });
  }
}

/** Whether two scripts give the same answers to the same requests. */
export function sameInjection(a: ResponseInjection, b: ResponseInjection): boolean {
  const bytes = (t?: Uint8Array): string => (t ? Buffer.from(t).toString('hex') : '');
  const types = (t?: readonly string[]): string => (t ? t.join(',') : '*');
  return (
    a.response === b.response &&
    a.count === b.count &&
    types(a.types) === types(b.types) &&
    bytes(a.trailer) === bytes(b.trailer)
  );
}
