/**
 * The back-end's request queue as the front-end describes it (SET_VRING_NUM, _ADDR, _BASE,
 * _ENABLE, _KICK, _CALL, _ERR, GET_VRING_BASE) and its processing: on every kick the chains the
 * driver made available are taken with the virtio layer's {@link DeviceSplitQueue}, handed to the
 * device one at a time, and completed; the call eventfd is signalled once per batch.
 *
 * The device has one queue (index 0). Ring addresses arrive as front-end user addresses and are
 * translated through the memory table when the queue is opened.
 *
 * A hostile front-end cannot stall the server through the queue: kick, call and error fds must be
 * eventfds (anything else is refused), the call fd is signalled without blocking, a kick fd that
 * fails ends only its connection, and one walk takes at most {@link CHAINS_PER_TURN} chains
 * before it yields the event loop to the other connections.
 */
import * as fs from 'node:fs';
import { VIRTQ_MAX_SIZE, virtqAvailBytes, virtqDescTableBytes, virtqUsedBytes } from '../../../spec/src/index';
import { DeviceSplitQueue, SplitQueuePosition } from '../../virtio/src/index';
import type { GuestMemory } from '../../vhost-user/src/guest-memory';
import type { VhostNative, WatchHandle } from '../../vhost-user/src/native';
import {
  Message,
  Request,
  U64Layout,
  VRING_INDEX_MASK,
  VRING_NOFD,
  VringAddressLayout,
  VringStateLayout,
  decodeStruct,
  encodeStruct,
} from '../../vhost-user/src/protocol';
import type { VhostUserDevice } from './device';
import { OK, HandlerReply, refusal, takeFd } from './messages';

/**
 * Chains one connection's queue processes before it yields the event loop (round-robin with the
 * other connections and their messages); the rest are processed on a later turn. 64 model
 * requests take well under a millisecond, so a flooding front-end delays others by about that.
 */
export const CHAINS_PER_TURN = 64;

/** The link target of an eventfd in /proc/self/fd. */
const EVENTFD_LINK = 'anon_inode:[eventfd]';

/** Why `fd` is not of the kind `expected` names (`eventfd`, `socket`), or undefined when it is. */
export function wrongFdKind(fd: number, expected: 'eventfd' | 'socket'): string | undefined {
  let target: string;
  try {
    target = fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch (e) {
    return `its kind cannot be read (${(e as Error).message})`;
  }
  const kind = target === EVENTFD_LINK ? 'eventfd' : target.replace(/:\[\d+\]$/, '');
  return kind === expected ? undefined : `it is ${kind}, not ${expected === 'eventfd' ? 'an eventfd' : 'a socket'}`;
}

/** What the queue needs from the connection that owns it. */
export interface VringHost {
  readonly native: VhostNative;
  readonly memory: GuestMemory;
  readonly device: VhostUserDevice;
  /** Whether the connection has ended (its memory is unmapped then). */
  readonly ended: boolean;
  /** Logs a problem with this connection. */
  problem(text: string): void;
  /** Runs `work` after everything queued on the connection before it. */
  serialised(work: () => Promise<void> | void): Promise<void>;
  /** Whether configuration changes are waiting to be announced. */
  readonly announcing: boolean;
  /** Announces them (CONFIG_CHANGE_MSG) and waits for the front-end's acks. */
  announce(): Promise<void>;
  /** Ends the connection (a kick or call fd that cannot be used). */
  end(reason: string): Promise<void>;
}

/** The request queue: its description, its fds and the position the device reached. */
export class Vring {
  private num = 0;
  private desc?: bigint;
  private avail?: bigint;
  private used?: bigint;
  /** The ring indices the device side reached (SET_VRING_BASE sets both, GET_VRING_BASE reports nextAvail). */
  private position: SplitQueuePosition = { nextAvail: 0, nextUsed: 0 };
  private enabled = false;
  private kickFd = -1;
  private callFd = -1;
  private errFd = -1;
  private kickWatch?: WatchHandle;
  /** A later turn's walk is scheduled (the last walk stopped at its budget). */
  private continuing = false;

  constructor(private readonly host: VringHost) {}

  /** SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE and GET_VRING_BASE (payload size already checked). */
  state(m: Message): HandlerReply {
    const s = decodeStruct(VringStateLayout, m.payload);
    const missing = this.missing(s.index);
    if (missing) return refusal(missing);
    switch (m.request) {
      case Request.SET_VRING_NUM:
        if (s.num === 0 || s.num > VIRTQ_MAX_SIZE || (s.num & (s.num - 1)) !== 0)
          return refusal(`queue size ${s.num} is not a power of two up to ${VIRTQ_MAX_SIZE}`);
        this.num = s.num;
        return OK;
      case Request.SET_VRING_BASE:
        if (s.num > 0xffff) return refusal(`base ${s.num} exceeds 16 bits`);
        this.position = { nextAvail: s.num, nextUsed: s.num };
        return OK;
      case Request.SET_VRING_ENABLE:
        this.enabled = s.num !== 0;
        if (this.enabled) this.kicked();
        return OK;
      default: {
        // GET_VRING_BASE stops the ring.
        const base = this.position.nextAvail;
        this.stop();
        this.closeQuietly(this.kickFd);
        this.kickFd = -1;
        return { reply: encodeStruct(VringStateLayout, { index: 0, num: base }) };
      }
    }
  }

  /** SET_VRING_ADDR (payload size already checked). */
  address(m: Message): HandlerReply {
    const a = decodeStruct(VringAddressLayout, m.payload);
    const missing = this.missing(a.index);
    if (missing) return refusal(missing);
    this.desc = a.desc;
    this.avail = a.avail;
    this.used = a.used;
    return OK;
  }

  /** SET_VRING_KICK, SET_VRING_CALL and SET_VRING_ERR: an eventfd, or none with the no-fd flag. */
  eventFd(m: Message): HandlerReply {
    const value = decodeStruct(U64Layout, m.payload).value;
    const missing = this.missing(Number(value & VRING_INDEX_MASK));
    if (missing) return refusal(missing);
    let fd = -1;
    if (!(value & VRING_NOFD)) {
      const taken = takeFd(m);
      if (typeof taken === 'string') return refusal(taken);
      fd = taken;
    } else if (m.fds.length) {
      return refusal(`the no-fd flag is set but ${m.fds.length} fd(s) came`);
    }
    const wrongKind = fd >= 0 ? wrongFdKind(fd, 'eventfd') : undefined;
    if (wrongKind) {
      this.closeQuietly(fd);
      return refusal(`fd refused: ${wrongKind}`);
    }
    if (m.request === Request.SET_VRING_KICK) {
      this.stop();
      this.closeQuietly(this.kickFd);
      this.kickFd = -1;
      if (fd >= 0) {
        try {
          this.kickWatch = this.host.native.watch(fd, (events) => this.kicked(events));
        } catch (e) {
          this.closeQuietly(fd);
          return refusal(`the kick fd cannot be watched: ${(e as Error).message}`);
        }
      }
      this.kickFd = fd;
    } else if (m.request === Request.SET_VRING_CALL) {
      this.closeQuietly(this.callFd);
      this.callFd = fd;
    } else {
      this.closeQuietly(this.errFd);
      this.errFd = fd;
    }
    return OK;
  }

  /** Stops watching the kick fd (the queue is not processed until a new kick fd comes). */
  stop(): void {
    if (this.kickWatch) this.host.native.unwatch(this.kickWatch);
    this.kickWatch = undefined;
  }

  /** Forgets everything: stops, closes its fds and returns to the state before any set-up (a reset). */
  reset(): void {
    this.stop();
    for (const fd of [this.kickFd, this.callFd, this.errFd]) if (fd >= 0) this.closeQuietly(fd);
    this.kickFd = this.callFd = this.errFd = -1;
    this.num = 0;
    this.desc = this.avail = this.used = undefined;
    this.position = { nextAvail: 0, nextUsed: 0 };
    this.enabled = false;
  }

  /** Why vring `index` cannot be addressed, or undefined. */
  private missing(index: number): string | undefined {
    const count = this.host.device.queueCount;
    if (index < count) return undefined;
    return `vring ${index} does not exist (${this.host.device.name} has ${count === 1 ? 'one queue' : `${count} queues`})`;
  }

  /** The kick fd is readable (or failed: `events` -1): drain it and walk the queue. */
  private kicked(events = 0): void {
    try {
      if (events < 0) throw new Error('poll error');
      if (this.kickFd >= 0) this.host.native.drain(this.kickFd);
    } catch (e) {
      // Only this connection ends; the watch is stopped so a broken fd cannot spin the loop.
      this.stop();
      void this.host.end(`the kick fd failed: ${(e as Error).message}`);
      return;
    }
    void this.host.serialised(() => this.process());
  }

  /**
   * Handles every chain the front-end made available, in order. Shared memory that cannot be
   * accessed (the front-end shrank its memfd under the mapping: SIGBUS, caught by the native
   * helper) makes the device fail the queue instead of ending the server.
   */
  private async process(): Promise<void> {
    try {
      await this.walk();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EFAULT') throw e;
      this.host.problem(`the ring cannot be processed: ${(e as Error).message}; the device is marked NEEDS_RESET`);
      this.host.device.failQueue();
    }
  }

  private async walk(): Promise<void> {
    const queue = this.open();
    if (!queue) return;
    const device = this.host.device;
    let signalled = false;
    let more = false;
    for (let taken = 0; ; taken++) {
      if (taken >= CHAINS_PER_TURN) {
        more = true;
        break;
      }
      const popped = queue.pop();
      if (popped.kind === 'empty') break;
      if (popped.kind === 'malformed') {
        this.host.problem(`chain at descriptor ${popped.head}: ${popped.problem}; the device is marked NEEDS_RESET`);
        device.failQueue();
        break;
      }
      const chain = popped.chain;
      const completion = device.processChain({
        readable: chain.readable,
        writableSizes: chain.writable.map((w) => w.len),
      });
      if (completion.kind === 'used') {
        queue.complete(chain, completion.written, completion.length);
        signalled = true;
      }
      // The notification goes out (and is acknowledged) before the used entry is signalled.
      if (this.host.announcing) await this.host.announce();
      // The connection may have ended meanwhile (its memory is unmapped then).
      if (this.host.ended) return;
    }
    if (signalled && this.callFd >= 0 && !this.host.native.signal(this.callFd)) {
      await this.host.end('the call fd cannot take a notification (its count is full)');
      return;
    }
    if (more) this.continueLater();
  }

  /** Walks the rest of the queue on a later event-loop turn, after the other connections' work. */
  private continueLater(): void {
    if (this.continuing) return;
    this.continuing = true;
    setImmediate(() => {
      this.continuing = false;
      if (!this.host.ended) void this.host.serialised(() => this.process());
    });
  }

  /** The queue over the shared memory, when it is enabled and its three areas are shared. */
  private open(): DeviceSplitQueue | undefined {
    if (
      this.host.ended ||
      !this.enabled ||
      this.num === 0 ||
      this.desc === undefined ||
      this.avail === undefined ||
      this.used === undefined
    )
      return undefined;
    const memory = this.host.memory;
    const avail = memory.userToGuest(this.avail, BigInt(virtqAvailBytes(this.num)));
    const used = memory.userToGuest(this.used, BigInt(virtqUsedBytes(this.num)));
    const desc = memory.userToGuest(this.desc, BigInt(virtqDescTableBytes(this.num)));
    const queue =
      avail !== undefined && used !== undefined && desc !== undefined
        ? DeviceSplitQueue.open(memory, this.num, { desc, avail, used }, this.position, this.host.device.chainLimits)
        : undefined;
    if (queue === undefined || typeof queue === 'string') {
      this.host.problem('the vring addresses are not inside the shared memory; the queue is not processed');
      return undefined;
    }
    return queue;
  }

  private closeQuietly(fd: number): void {
    if (fd < 0) return;
    try {
      this.host.native.close(fd);
    } catch {
      /* already closed */
    }
  }
}
