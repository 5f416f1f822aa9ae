/**
 * The driver's requests as QEMU's virtio-mem device saw them, from QEMU's `virtio_mem_*` trace
 * events (log back-end, `-D FILE -trace enable=virtio_mem_*`). QEMU 7.2 prints, per request:
 *
 *     virtio_mem_plug_request addr=0x100000000 nb_blocks=32
 *     virtio_mem_send_response type=0
 *
 * (`unplug_request`, `unplug_all_request` and `state_request` + `state_response state=N` alike).
 * The trace carries the fields QEMU decoded, not the raw bytes: padding is rebuilt as zeros and a
 * request QEMU rejected before decoding (a short buffer) leaves no line.
 *
 * With `-msg timestamp=on` the log back-end prefixes each line with the thread id and the wall
 * time, `1234@1670000000.123456:virtio_mem_plug_request …`; a request then carries the time QEMU
 * took it (`atMs`), which the `retry_delay` check needs. Without the prefix requests are untimed.
 */
import * as fs from 'node:fs';
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
} from '../../../spec/src/index';
import { encodeRequest, encodeResponse } from '../../../model/src/codec/codec';
import type { DriverExchange } from '../../core/src/contract';

/** One request with the answer QEMU gave (null when the trace shows none). */
export interface TracedRequest {
  readonly type: number;
  readonly addr: bigint;
  readonly nbBlocks: number;
  readonly responseType: number | null;
  readonly state: number | null;
  /** Wall time QEMU logged the request at, in milliseconds since the epoch (only with `-msg timestamp=on`). */
  readonly atMs?: number;
}

const REQUEST_EVENTS: Readonly<Record<string, number>> = {
  virtio_mem_plug_request: VIRTIO_MEM_REQ_PLUG,
  virtio_mem_unplug_request: VIRTIO_MEM_REQ_UNPLUG,
  virtio_mem_unplug_all_request: VIRTIO_MEM_REQ_UNPLUG_ALL,
  virtio_mem_state_request: VIRTIO_MEM_REQ_STATE,
};

const LINE = /(virtio_mem_[a-z_]+)(?:\s+(.*))?$/;
/** The `-msg timestamp=on` prefix: thread id, seconds and microseconds of the wall clock. */
const STAMP = /^[0-9]+@([0-9]+)\.([0-9]{6}):virtio_mem_/;

function field(args: string, name: string): string | undefined {
  return new RegExp(`(?:^|\\s)${name}=(0x[0-9a-fA-F]+|[0-9]+)`).exec(args)?.[1];
}

/** Turns trace lines into requests; feed it lines in order, take completed requests. */
export class TraceParser {
  private pending: { type: number; addr: bigint; nbBlocks: number; state: number | null; atMs?: number } | undefined;
  private readonly done: TracedRequest[] = [];
  private usable: bigint | undefined;

  /** The last usable_region_size QEMU reported resizing to, if any was seen. */
  get usableRegionSize(): bigint | undefined {
    return this.usable;
  }

  /** Consumes one line (lines that are not virtio-mem request events are ignored). */
  feed(line: string): void {
    const trimmed = line.trim();
    const m = LINE.exec(trimmed);
    if (!m) return;
    const stamp = STAMP.exec(trimmed);
    const event = m[1]!;
    const args = m[2] ?? '';
    const requestType = REQUEST_EVENTS[event];
    if (requestType !== undefined) {
      this.finishPending(null);
      const addr = field(args, 'addr');
      const nb = field(args, 'nb_blocks');
      this.pending = {
        type: requestType,
        addr: addr !== undefined ? BigInt(addr) : 0n,
        nbBlocks: nb !== undefined ? Number(nb) : 0,
        state: null,
        atMs: stamp ? Number(stamp[1]) * 1000 + Number(stamp[2]) / 1000 : undefined,
      };
    } else if (event === 'virtio_mem_resized_usable_region') {
      // QEMU 7.2 prints "old_size=0x0new_size=0x14000000" (no space between the fields).
      const usable = /new_size=(0x[0-9a-fA-F]+)/.exec(args)?.[1];
      if (usable !== undefined) this.usable = BigInt(usable);
    } else if (event === 'virtio_mem_state_response' && this.pending) {
      const state = field(args, 'state');
      if (state !== undefined) this.pending.state = Number(state);
    } else if (event === 'virtio_mem_send_response' && this.pending) {
      const type = field(args, 'type');
      this.finishPending(type !== undefined ? Number(type) : null);
    }
  }

  private finishPending(responseType: number | null): void {
    if (!this.pending) return;
    this.done.push({ ...this.pending, responseType });
    this.pending = undefined;
  }

  /** Whether a request has been seen whose answer has not. */
  get awaitingResponse(): boolean {
    return this.pending !== undefined;
  }

  /** The requests completed since the last call. */
  take(): TracedRequest[] {
    return this.done.splice(0);
  }
}

/** The request and response bytes of a traced request (padding as zeros). */
export function exchangeOf(traced: TracedRequest): DriverExchange {
  const request = encodeRequest({ type: traced.type, addr: traced.addr, nb_blocks: traced.nbBlocks });
  const response =
    traced.responseType === null ? null : encodeResponse({ type: traced.responseType, state: traced.state ?? 0 });
  return traced.atMs === undefined ? { request, response } : { request, response, atMs: traced.atMs };
}

/** Follows a growing trace file from a position (the file is QEMU's; it is only read). */
export class TraceFollower {
  private position: number;
  private partial = '';
  readonly parser = new TraceParser();

  /**
   * Reads `file` up to its current end: earlier requests belong to someone else and are
   * dropped, but the device state they imply (the usable region) is kept.
   */
  constructor(readonly file: string) {
    this.position = 0;
    this.poll();
    this.parser.take();
  }

  private static sizeOf(file: string): number {
    try {
      return fs.statSync(file).size;
    } catch {
      return 0;
    }
  }

  /** Skips everything written so far. */
  skipToEnd(): void {
    this.position = TraceFollower.sizeOf(this.file);
    this.partial = '';
    this.parser.take();
  }

  /** Reads what was appended since the last call; returns the number of new lines. */
  poll(): number {
    const size = TraceFollower.sizeOf(this.file);
    if (size < this.position) {
      // Truncated or replaced (a new QEMU): start over.
      this.position = 0;
      this.partial = '';
    }
    if (size === this.position) return 0;
    const fd = fs.openSync(this.file, 'r');
    try {
      const buffer = Buffer.alloc(size - this.position);
      const read = fs.readSync(fd, buffer, 0, buffer.length, this.position);
      this.position += read;
      const text = this.partial + buffer.subarray(0, read).toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) this.parser.feed(line);
      return lines.length;
    } finally {
      fs.closeSync(fd);
    }
  }
}
