/**
 * When the device answers BUSY: an injected BUSY (a test hook: the next N requests that would
 * succeed) or a host-made busy period (QEMU answers BUSY while a migration is active). BUSY is a
 * permitted answer to PLUG, UNPLUG and UNPLUG ALL (dev.plug.5, dev.unplug.5, dev.unplugall.3),
 * never to STATE; the request checks still run first, so a request that fails them gets its
 * ERROR or NACK even while busy. Pure.
 */
import type { DeviceProfile } from './profiles';
import type { RequestKind } from './requests/index';

/** What the chain evaluation reads of the busy state. */
export interface BusyView {
  /** An injected BUSY is waiting to be used up. */
  readonly busyPending: boolean;
  /** The host holds the device busy. */
  readonly hostBusy: boolean;
}

/**
 * Whether the busy state makes the device answer BUSY to a request of `kind` that passed its
 * checks. While the host holds the device busy every such request is answered BUSY, except an
 * UNPLUG ALL with nothing plugged (`nothingPlugged`: plugged_size is 0), which the profile decides (`unplugAllWhileBusy`: there is
 * nothing to unplug, so a device may ACK it at once; dev.unplugall.3 still permits BUSY).
 */
export function busyAnswers(
  view: BusyView,
  profile: DeviceProfile,
  kind: RequestKind,
  nothingPlugged: boolean,
): boolean {
  if (view.busyPending) return true;
  if (!view.hostBusy) return false;
  if (kind === 'unplug-all' && nothingPlugged) return profile.unplugAllWhileBusy === 'busy';
  return true;
}

/**
 * Whether a system reset unplugs every block (dev.op.7, a SHOULD): the profile's `systemReset`,
 * unless the host holds the device busy and the profile's `systemResetWhileBusy` keeps the
 * blocks (QEMU unplugs on reset through UNPLUG ALL's busy check, which refuses during a migration).
 */
export function systemResetUnplugs(profile: DeviceProfile, view: BusyView): boolean {
  if (profile.systemReset !== 'unplug-all') return false;
  return !(view.hostBusy && profile.systemResetWhileBusy === 'keep');
}

/** The device's busy state: injected BUSY answers left, and whether the host holds it busy. */
export class BusyState {
  private injected = 0;
  private host = false;

  /** What the chain evaluation reads (a copy). */
  get view(): BusyView {
    return { busyPending: this.injected > 0, hostBusy: this.host };
  }

  /** An injected BUSY is waiting to be used up (read without a copy by the fast path). */
  get busyPending(): boolean {
    return this.injected > 0;
  }

  /** The host holds the device busy. */
  get hostBusy(): boolean {
    return this.host;
  }

  /** The next `count` requests that would succeed are answered BUSY. */
  inject(count: number): void {
    this.injected = count;
  }

  /** The host makes the device busy (`true`) or releases it (`false`). */
  setHost(busy: boolean): void {
    this.host = busy;
  }

  /** The device answered BUSY: an injected BUSY is used up unless the host's busy period made it. */
  answeredBusy(): void {
    if (!this.host && this.injected > 0) this.injected--;
  }

  /** A device or system reset drops injected BUSY answers; the host's busy period goes on. */
  reset(): void {
    this.injected = 0;
  }
}
