/**
 * One booted guest at a time, keyed by the device configuration it was booted with: the part
 * the device target's and the driver target's per-configuration guests share
 * (guest-device-groups.ts, guest-driver-groups.ts). Asking for another key ends the guest held
 * and boots one for it, so consecutive vectors of one configuration share a boot; a key whose
 * boot failed is not booted again; work runs one open at a time (a vector abandoned at its
 * timeout may still be booting); once disposed, a boot that completes ends its guest at once.
 */
import { AdapterError } from '../../core/src/contract';

/** Something the slot can end. */
export interface StoppableGuest {
  /** Ends the guest. Never throws. */
  stop(): Promise<void>;
}

/** The guest held and its key. */
interface Held<G> {
  readonly key: string;
  readonly guest: G;
}

/** One guest at a time, by configuration key. */
export class GuestSlot<G extends StoppableGuest> {
  private held: Held<G> | undefined;
  /** Keys whose guest did not boot, with the reason. */
  private readonly failed = new Map<string, string>();
  /** Opens run one after the other. */
  private queue: Promise<unknown> = Promise.resolve();
  private disposedFlag = false;
  /** How many guests this slot booted. */
  boots = 0;

  /** Whether {@link dispose} was called. */
  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** The key of the guest held, if any. */
  get key(): string | undefined {
    return this.held?.key;
  }

  /** Runs `work` after every earlier one has ended (settled either way). */
  serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Holds a guest booted elsewhere (the first guest of a run) under `key`. */
  adopt(key: string, guest: G): void {
    this.held = { key, guest };
  }

  /**
   * The guest of `key`: the one held, or (after ending the one held) a guest `boot` makes. A
   * failed boot is an {@link AdapterError}, and so is every later ask for that key.
   */
  async take(key: string, boot: () => Promise<G>): Promise<G> {
    if (this.disposedFlag) throw new AdapterError('the guests were ended');
    const failure = this.failed.get(key);
    if (failure !== undefined) throw new AdapterError(`the guest with ${key} did not boot: ${failure}`);
    if (this.held?.key === key) return this.held.guest;
    await this.release();
    try {
      this.boots++;
      const guest = await boot();
      if (this.disposedFlag) {
        await guest.stop();
        throw new Error('the adapter was disposed during the boot');
      }
      this.held = { key, guest };
      return guest;
    } catch (e) {
      this.failed.set(key, (e as Error).message);
      throw new AdapterError(`booting a guest with ${key} failed: ${(e as Error).message}`);
    }
  }

  /** Ends the guest held, if any. */
  async release(): Promise<void> {
    const held = this.held;
    this.held = undefined;
    await held?.guest.stop();
  }

  /** Ends the guest held; a boot under way ends its guest when it completes. */
  async dispose(): Promise<void> {
    this.disposedFlag = true;
    await this.release();
  }
}
