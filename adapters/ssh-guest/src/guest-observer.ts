/**
 * What the adapter sees of the driver at work: every request and its answer from QEMU's
 * `virtio_mem_*` trace events, the configuration as the guest reads it (the PCI_CFG window), the
 * device's sizes over QMP and the guest's own view of its memory. `settle` watches these until
 * the driver has converged, stalled or hit a limit.
 */
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  formatHex,
} from '../../../spec/src/index';
import { BlockBitmap } from '../../../model/src/blocks/bitmap';
import { encodeConfig } from '../../../model/src/codec/codec';
import { DriverActivity, DriverEvent, SettleLimits } from '../../core/src/contract';
import { sleep } from '../../core/src/sleep';
import { HostView } from '../../qemu-platform/src/index';
import { ConfigWindow } from './config-window';
import { GuestLink } from './guest-link';
import { TraceFollower, exchangeOf } from './qemu-trace';

/** When a driver counts as settled. */
export interface SettleTiming {
  /** How long the driver must be quiet, once converged, to count as settled. */
  readonly quietMs: number;
  /** How long without any progress before a driver that has not converged counts as stalled. */
  readonly stallMs: number;
  /** Bound on one settle (default 90 s): a 256 GiB region takes minutes to empty under TCG. */
  readonly settleBoundMs?: number;
}

/** Bound on one settle, whatever the runner allows. */
const SETTLE_BOUND_MS = 90_000;
/** Pause between two looks at the trace and the device. */
const POLL_MS = 100;

/** The trace, the config window and the guest's memory view of one guest. */
export class GuestObserver {
  constructor(
    private readonly link: GuestLink,
    private readonly window: ConfigWindow,
    private readonly trace: TraceFollower,
    /** The device's fixed geometry (block size, region), as QMP gave it at set-up. */
    private readonly geometry: HostView,
    private readonly timing: SettleTiming,
  ) {}

  /** Forgets every traced request so far: what follows belongs to the next step. */
  skipTrace(): void {
    this.trace.skipToEnd();
  }

  /** The blocks plugged by the requests the device acknowledged since {@link skipTrace}. */
  acknowledgedBlocks(): BlockBitmap {
    const { memaddr, blockSize, maxSize } = this.geometry;
    this.trace.poll();
    const blocks = new BlockBitmap(Number(maxSize / blockSize));
    for (const t of this.trace.parser.take()) {
      if (t.responseType !== VIRTIO_MEM_RESP_ACK) continue;
      const first = Number((t.addr - memaddr) / blockSize);
      if (t.type === VIRTIO_MEM_REQ_PLUG) blocks.setRange(first, t.nbBlocks);
      else if (t.type === VIRTIO_MEM_REQ_UNPLUG) blocks.clearRange(first, t.nbBlocks);
      else if (t.type === VIRTIO_MEM_REQ_UNPLUG_ALL) blocks.clearAll();
    }
    return blocks;
  }

  /** The 56 configuration bytes as the guest reads them. */
  readConfig(): Promise<Uint8Array> {
    return this.window.readConfig();
  }

  /**
   * The configuration as the host holds it (QMP sizes, the usable region from the trace): used
   * while the guest is held after a reset and cannot read it itself.
   */
  async hostConfig(): Promise<Uint8Array> {
    const d = await this.link.hostView();
    this.trace.poll();
    const usable = this.trace.parser.usableRegionSize ?? d.maxSize;
    return encodeConfig({
      block_size: d.blockSize,
      node_id: d.node,
      addr: d.memaddr,
      region_size: d.maxSize,
      usable_region_size: usable,
      plugged_size: d.size,
      requested_size: d.requestedSize,
    });
  }

  /**
   * Watches the driver until it has converged and gone quiet, stalled, sent `maxRequests` requests or run out of time.
   * `config` is the configuration the driver works against, when the caller has read it (else the guest's view is read).
   */
  async settle(limits: SettleLimits, config?: Uint8Array): Promise<DriverActivity> {
    await this.link.resume();
    const { quietMs, stallMs } = this.timing;
    const bound = Math.min(limits.timeoutMs, this.timing.settleBoundMs ?? SETTLE_BOUND_MS);
    const started = Date.now();
    let lastActivity = started;
    let lastSize = -1n;
    const events: DriverEvent[] = [];
    let requests = 0;
    // The configuration the driver works against in this settle: requested_size and the usable
    // region change only on a host resize, which happens between settles.
    config ??= await this.readConfig();
    for (;;) {
      if (this.trace.poll() > 0) lastActivity = Date.now();
      for (const t of this.trace.parser.take()) {
        events.push({ kind: 'request', exchange: { ...exchangeOf(t), config } });
        requests++;
      }
      const d = await this.link.hostView();
      if (d.size !== lastSize) {
        lastSize = d.size;
        lastActivity = Date.now();
      }
      const now = Date.now();
      const waitedMs = now - started;
      const converged = d.size === d.requestedSize;
      if (requests >= limits.maxRequests)
        return { events, settled: false, stop: `request limit (${limits.maxRequests}) reached`, waitedMs };
      if (converged && !this.trace.parser.awaitingResponse && now - lastActivity >= quietMs)
        return { events, settled: true, stop: `converged; ${await this.guestView()}`, waitedMs };
      if (!converged && now - lastActivity >= stallMs) {
        return {
          events,
          settled: true,
          stop: `quiet for ${stallMs} ms without converging (plugged ${formatHex(d.size)}, requested ${formatHex(d.requestedSize)}; Linux retries a failed request after 50 s); ${await this.guestView()}`,
          waitedMs,
        };
      }
      if (waitedMs >= bound) return { events, settled: false, stop: `still busy after ${bound} ms`, waitedMs };
      await sleep(POLL_MS);
    }
  }

  /** The guest's own view of its memory, for the record. */
  private async guestView(): Promise<string> {
    const text = await this.link.sh(
      "grep MemTotal /proc/meminfo; grep -c 'System RAM (virtio_mem)' /proc/iomem || true",
      'reading the guest memory view',
    );
    const memTotal = /MemTotal:\s+([0-9]+) kB/.exec(text)?.[1];
    const ranges = text.trim().split('\n').pop();
    return `guest MemTotal ${memTotal ?? '?'} kB, ${ranges ?? '?'} virtio_mem RAM range(s) in /proc/iomem`;
  }
}
