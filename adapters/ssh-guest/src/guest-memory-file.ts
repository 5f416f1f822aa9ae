/**
 * `memory-access` for the guest's real driver: what the guest wrote into the device region, seen
 * by the host in the memory backend's file (`memory-backend-file,mem-path=/dev/shm/…,share=on`,
 * `vmemct guest up --shared-memory`), read directly with no guest involvement.
 *
 * QEMU discards a block when it is unplugged (and at UNPLUG ALL and reset): its pages of the
 * file become holes, which read as zeros. So after a settle, any byte that is not zero inside a
 * block the device holds unplugged was written by the guest after that block's last discard,
 * i.e. while unplugged (drv.op.1). Each such run of 4 KiB pages is reported as a `memory-write`
 * event at the end of the settle's events (the blocks' state then is what the device holds).
 *
 * What this cannot see: a write of zeros, a write into a block that is unplugged and discarded
 * again within one settle, and reads (a read of a hole leaves it zero). Writes into plugged
 * memory are allowed and are not reported. The device's block states are followed from the
 * requests the settle reports as the device answered them (ACKed PLUG, UNPLUG, UNPLUG ALL).
 */
import * as fs from 'node:fs';
import { BlockBitmap } from '../../../model/src/blocks/bitmap';
import { decodeRequest, readResponseType } from '../../../model/src/codec/codec';
import {
  BlockRange,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
} from '../../../spec/src/index';
import { DriverActivity, DriverEvent } from '../../core/src/contract';

/** The page size writes are reported in. */
export const WRITE_PAGE = 4096;

/** Runs of pages holding a non-zero byte in `bytes`, as [offset, length] pairs relative to `bytes`. */
export function nonZeroPages(bytes: Uint8Array, page = WRITE_PAGE): [number, number][] {
  const runs: [number, number][] = [];
  for (let off = 0; off < bytes.length; off += page) {
    const end = Math.min(off + page, bytes.length);
    let dirty = false;
    for (let i = off; i < end; i++)
      if (bytes[i] !== 0) {
        dirty = true;
        break;
      }
    if (!dirty) continue;
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === off) last[1] += end - off;
    else runs.push([off, end - off]);
  }
  return runs;
}

/** The guest's device memory as the host reads it from the backend's file. */
export interface MemoryFile {
  /** Reads `into.length` bytes at `offset` in the region into `into` (bytes past the file's end read as zero). */
  read(offset: bigint, into: Uint8Array): void;
}

/** The backend's file at `path`, opened read-only. */
export function openMemoryFile(path: string): MemoryFile & { close(): void } {
  const fd = fs.openSync(path, 'r');
  return {
    read(offset, into) {
      let done = 0;
      while (done < into.length) {
        const n = fs.readSync(fd, into, done, into.length - done, Number(offset) + done);
        if (n === 0) break;
        done += n;
      }
      into.fill(0, done);
    },
    close: () => fs.closeSync(fd),
  };
}

/** Follows the device's block states over one driver session and finds the guest's writes into unplugged blocks. */
export class UnpluggedWriteWatch {
  private readonly blocks: BlockBitmap;
  private readonly zero: Buffer;
  /** One block's bytes, reused by every scan. */
  private readonly buffer: Buffer;

  constructor(
    private readonly file: MemoryFile,
    private readonly geometry: { readonly memaddr: bigint; readonly blockSize: bigint; readonly maxSize: bigint },
    /** The blocks plugged when the session starts. */
    plugged: readonly BlockRange[],
  ) {
    this.blocks = new BlockBitmap(Number(geometry.maxSize / geometry.blockSize));
    for (const r of plugged) this.blocks.setRange(r.first, r.count);
    this.zero = Buffer.alloc(Number(geometry.blockSize));
    this.buffer = Buffer.alloc(Number(geometry.blockSize));
  }

  /** A system reset: the device unplugs (and discards) everything. */
  reset(): void {
    this.blocks.clearAll();
  }

  /** The settle's activity with the writes found in unplugged blocks appended (after applying its requests). */
  observe(activity: DriverActivity): DriverActivity {
    for (const event of activity.events) if (event.kind === 'request') this.apply(event.exchange);
    const writes = this.unpluggedWrites();
    return writes.length === 0 ? activity : { ...activity, events: [...activity.events, ...writes] };
  }

  private apply(exchange: { readonly request: Uint8Array; readonly response: Uint8Array | null }): void {
    const decoded = decodeRequest(exchange.request);
    if (!decoded.ok || !exchange.response || readResponseType(exchange.response) !== VIRTIO_MEM_RESP_ACK) return;
    const r = decoded.value;
    if (r.type === VIRTIO_MEM_REQ_UNPLUG_ALL) {
      this.blocks.clearAll();
      return;
    }
    const first = Number((r.addr - this.geometry.memaddr) / this.geometry.blockSize);
    if (first < 0 || first + r.nb_blocks > this.blocks.length) return;
    if (r.type === VIRTIO_MEM_REQ_PLUG) this.blocks.setRange(first, r.nb_blocks);
    else if (r.type === VIRTIO_MEM_REQ_UNPLUG) this.blocks.clearRange(first, r.nb_blocks);
  }

  /** `memory-write` events for every run of non-zero pages in the blocks the device holds unplugged. */
  unpluggedWrites(): DriverEvent[] {
    const { memaddr, blockSize } = this.geometry;
    const events: { kind: 'memory-write'; addr: bigint; length: number }[] = [];
    for (let b = 0; b < this.blocks.length; b++) {
      if (this.blocks.get(b)) continue;
      const offset = BigInt(b) * blockSize;
      const bytes = this.buffer;
      this.file.read(offset, bytes);
      if (this.zero.equals(bytes)) continue;
      for (const [at, length] of nonZeroPages(bytes)) {
        const addr = memaddr + offset + BigInt(at);
        const last = events[events.length - 1];
        if (last && last.addr + BigInt(last.length) === addr) last.length += length;
        else events.push({ kind: 'memory-write', addr, length });
      }
    }
    return events;
  }
}

/** What the discovery needs of QMP. */
export interface QmpExecutor {
  execute(command: string, args?: Record<string, unknown>): Promise<unknown>;
}

/**
 * The file backing the device region, when the host can read what the guest writes there: the
 * device's `memdev` is a `memory-backend-file` with `share=on` whose `mem-path` is a regular file
 * of the region's size on this machine. Otherwise why not (the adapter then lacks `memory-access`).
 */
export async function sharedMemoryFile(
  qmp: QmpExecutor,
  device: Readonly<Record<string, unknown>>,
  regionSize: bigint,
): Promise<{ readonly path: string } | { readonly reason: string }> {
  const memdev = device.memdev;
  if (typeof memdev !== 'string') return { reason: 'query-memory-devices names no memdev for the device' };
  const get = async (property: string): Promise<unknown> => {
    try {
      return await qmp.execute('qom-get', { path: memdev, property });
    } catch {
      return undefined;
    }
  };
  const file = await get('mem-path');
  if (typeof file !== 'string' || file === '')
    return {
      reason: `the device's memory backend ${memdev} is not a file (boot with \`vmemct guest up --shared-memory\`)`,
    };
  if ((await get('share')) !== true)
    return { reason: `the device's memory backend file ${file} is not shared (share=on)` };
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
    fs.accessSync(file, fs.constants.R_OK);
  } catch {
    return { reason: `the device's memory backend file ${file} cannot be read on this machine` };
  }
  if (!stat.isFile() || BigInt(stat.size) !== regionSize)
    return { reason: `${file} is not a file of the region's size (${regionSize} bytes)` };
  return { path: file };
}
