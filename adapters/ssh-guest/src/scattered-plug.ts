/**
 * Blocks plugged at start in scattered runs (`initial-plugged` beyond a prefix) for the guest's
 * real driver. Linux plugs from the start of the region, so it cannot be asked for block 7
 * alone; QEMU can, when the request says so. The set-up therefore lets a driver instance plug,
 * and rewrites each of its PLUG requests on the way (address and nb_blocks, through the
 * gdbstub hook on `virtio_mem_send_request`) so QEMU plugs the blocks the vector names. That
 * instance's view is then wrong, so it is never used: its memory stays offline and it is
 * unloaded; the driver under test is a fresh load that meets the state QEMU holds.
 *
 * The plan is pure: which requested sizes the host steps through (one run of blocks per step,
 * so every request of a step lands inside one run), where each PLUG goes, and whether the
 * device ended with exactly the vector's blocks.
 */
import { BlockRange, VIRTIO_MEM_REQ_PLUG, formatHex } from '../../../spec/src/index';
import type { VirtioMemRequest } from '../../../model/src/codec/codec';
import { BlockBitmap } from '../../../model/src/blocks/bitmap';

/** One step of the set-up: the host asks for `totalBlocks`; the driver's new PLUGs go to `range`. */
export interface ScatterStep {
  readonly range: BlockRange;
  /** Blocks requested once this step's run is plugged (the runs so far, summed). */
  readonly totalBlocks: number;
}

/** The steps that plug `plugged` run by run (runs merged and ordered first). */
export function scatterSteps(plugged: readonly BlockRange[]): ScatterStep[] {
  const runs = mergedRuns(plugged);
  let total = 0;
  return runs.map((range) => {
    total += range.count;
    return { range, totalBlocks: total };
  });
}

/** `ranges` ordered, with overlapping and touching runs joined; empty runs dropped. */
export function mergedRuns(ranges: readonly BlockRange[]): BlockRange[] {
  const sorted = ranges.filter((r) => r.count > 0).sort((a, b) => a.first - b.first);
  const out: { first: number; count: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.first <= last.first + last.count) last.count = Math.max(last.count, r.first + r.count - last.first);
    else out.push({ first: r.first, count: r.count });
  }
  return out;
}

/** Where one PLUG of the driver goes instead, or why it cannot be placed. */
export type PlugTarget =
  | { readonly ok: true; readonly addr: bigint; readonly nbBlocks: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Places the driver's PLUG requests of one step after another inside the step's run: the
 * first `n` blocks the driver asks for become the run's first `n`, and so on.
 */
export class PlugPlacement {
  private step: ScatterStep | undefined;
  /** Blocks of the current run already given out. */
  private used = 0;

  constructor(private readonly geometry: { readonly memaddr: bigint; readonly blockSize: bigint }) {}

  /** Starts a step: the next PLUGs fill `step.range`. */
  begin(step: ScatterStep): void {
    this.step = step;
    this.used = 0;
  }

  /** Blocks of the current step's run not yet given out. */
  get left(): number {
    return this.step ? this.step.range.count - this.used : 0;
  }

  /** Where the driver's `request` goes. Only PLUGs are placed; any other request is refused. */
  place(request: Pick<VirtioMemRequest, 'type' | 'addr' | 'nb_blocks'>): PlugTarget {
    if (request.type !== VIRTIO_MEM_REQ_PLUG)
      return { ok: false, reason: `the driver sent request type ${request.type} while plugging the set-up's blocks` };
    const step = this.step;
    if (!step) return { ok: false, reason: 'the driver sent a PLUG before the set-up asked for blocks' };
    if (request.nb_blocks <= 0 || request.nb_blocks > this.left)
      return {
        ok: false,
        reason: `the driver's PLUG of ${request.nb_blocks} blocks at ${formatHex(request.addr)} does not fit the ${this.left} blocks left of the run at block ${step.range.first}`,
      };
    const first = step.range.first + this.used;
    this.used += request.nb_blocks;
    return {
      ok: true,
      addr: this.geometry.memaddr + BigInt(first) * this.geometry.blockSize,
      nbBlocks: request.nb_blocks,
    };
  }
}

/**
 * How the blocks the device holds differ from `wanted`, or undefined when they are the same:
 * the blocks missing and the blocks extra, as runs.
 */
export function pluggedStateDifference(wanted: readonly BlockRange[], held: BlockBitmap): string | undefined {
  const want = new BlockBitmap(held.length);
  for (const r of mergedRuns(wanted)) want.setRange(r.first, r.count);
  if (want.equals(held)) return undefined;
  const missing = want.clone();
  const extra = held.clone();
  for (const r of held.runs()) missing.clearRange(r.first, r.count);
  for (const r of want.runs()) extra.clearRange(r.first, r.count);
  const show = (b: BlockBitmap): string =>
    b
      .runs()
      .map((r) => `${r.first}+${r.count}`)
      .join(', ') || 'none';
  return `the vector names blocks ${show(want)}; the device holds ${show(held)} (missing ${show(missing)}, extra ${show(extra)})`;
}

/**
 * Why `plugged` cannot be made on QEMU for a vector whose device starts with `requestedBlocks`
 * requested, or undefined. Blocks at or beyond requested_size lie outside the usable region of
 * the vector's device (usable_region_size = requested_size when the set-up does not say), but
 * QEMU's usable region always reaches 256 MiB past requested_size and shrinks only at a reset or
 * UNPLUG ALL, which would unplug them: the state the vector names cannot be built.
 */
export function scatterRefusal(plugged: readonly BlockRange[], requestedBlocks: number): string | undefined {
  const end = plugged.reduce((e, r) => Math.max(e, r.first + r.count), 0);
  if (end <= requestedBlocks) return undefined;
  return `the vector plugs blocks up to ${end - 1}, beyond its usable region (${requestedBlocks} blocks); QEMU keeps its usable region at least 256 MiB past requested_size and shrinks it only by unplugging everything`;
}
