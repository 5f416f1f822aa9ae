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
}

/** A driver session of the `ssh-guest` adapter. */
export class SshGuestDriverSession implements DriverSession {
  private virtioName: string | undefined;
  private closed = false;
  private readonly injection: GuestInjectionSession | undefined;

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
  ) {
    this.injection = guest.injection && new GuestInjectionSession(guest.injection, guest.link);
  }

  private run<T>(work: () => Promise<T>): Promise<T> {
    return this.guest.link.epochs.run(this.epoch, work);
  }

  start(): Promise<void> {
    return this.run(async () => {
      await this.guest.link.resume();
      await this.injection?.beforeLoad();
      await this.guest.control.load();
      await this.injection?.afterLoad();
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
    await this.guest.link.setRequestedSize(size);
  }

  settle(limits: SettleLimits): Promise<DriverActivity> {
    return this.run(async () => {
      await this.releaseRequestedSize();
      const { observer } = this.guest;
      if (!this.injection) return observer.settle(limits);
      return this.injection.settle(
        limits,
        (l, config) => observer.settle(l, config),
        () => observer.hostConfig(),
      );
    });
  }

  injectResponses(injection: ResponseInjection): Promise<void> {
    return this.run(async () => {
      if (!this.injection) throw new UnsupportedSetupError('the guest was not started with a gdbstub');
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
        await this.guest.link.setRequestedSize(size);
        return { kind: 'applied' };
      } catch (e) {
        // QEMU refusing the size is an answer; a QMP connection that failed is not.
        if (e instanceof QmpError && !/did not answer|connection/.test(e.message))
          return { kind: 'refused', reason: e.message };
        throw e;
      }
    });
  }

  systemReset(): Promise<void> {
    return this.run(async () => {
      // The hook dies with the kernel; scripted answers do not outlive the reboot.
      await this.releaseRequestedSize();
      await this.injection?.reset();
      await this.guest.link.resetMachine(true);
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
      // Linux sends nothing more after an ERROR; a reboot gives the next vector a driver that listens.
      if (ended?.driverBroken) await this.guest.link.resetMachine(false).catch(() => undefined);
      if (this.guest.link.held) void this.guest.link.resume().catch(() => undefined);
    });
  }
}
