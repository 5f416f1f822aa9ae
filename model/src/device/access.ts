/**
 * Which guest CPU accesses to the device memory are allowed (§5.15.6.1, §5.15.6.2). The bytes
 * themselves are stored by `memory.ts`; this module only judges. Pure: reads a view of the
 * device and changes nothing.
 */
import { VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE, featureMask, formatHex } from '../../../spec/src/index';
import type { BlockBitmap } from '../blocks/bitmap';
import type { VirtioMemConfig } from '../codec/codec';
import type { MemoryAccessFailure, MemoryAccessResult } from './memory';
import type { DeviceProfile } from './profiles';

/** What the access judgement reads of the device. */
export interface AccessView {
  readonly config: VirtioMemConfig;
  readonly blocks: Pick<BlockBitmap, 'length' | 'findNext'>;
  /** Features negotiated with the driver (UNPLUGGED_INACCESSIBLE matters). */
  readonly negotiatedFeatures: bigint;
  /** Whether the device refuses accesses to unplugged blocks at all. */
  readonly unpluggedMemory: DeviceProfile['unpluggedMemory'];
}

/** A refused access. */
export type AccessRefusal = MemoryAccessResult & { readonly ok: false };

/**
 * Why an access to [addr, addr + length) is refused, or undefined when it is allowed. The range
 * must lie inside the whole blocks of the region ('outside-region'); then each block it touches
 * is judged in ascending order and the first that fails decides: an unplugged block beyond
 * usable_region_size is 'beyond-usable' (drv.op.2, drv.op.1), any other unplugged block is
 * 'inaccessible' when VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE was negotiated (drv.op.5, drv.op.1).
 * A profile with `open` unplugged memory refuses only accesses outside the region.
 */
export function judgeAccess(
  view: AccessView,
  addr: bigint,
  length: number,
  what: 'read' | 'write',
): AccessRefusal | undefined {
  const c = view.config;
  const end = addr + BigInt(length);
  const fail = (reason: MemoryAccessFailure, detail: string): AccessRefusal => ({ ok: false, reason, detail });
  // Only whole blocks are memory: a tail of region_size that is not a multiple of block_size (dev.cfg.6) is not.
  const regionEnd = c.addr + BigInt(view.blocks.length) * c.block_size;
  if (addr < c.addr || end > regionEnd) {
    return fail(
      'outside-region',
      `${what} of [${formatHex(addr)}, ${formatHex(end)}) reaches outside the device region [${formatHex(c.addr)}, ${formatHex(regionEnd)})`,
    );
  }
  if (length === 0 || view.unpluggedMemory === 'open') return undefined;
  const first = Number((addr - c.addr) / c.block_size);
  const stop = Number((end - 1n - c.addr) / c.block_size) + 1;
  const usableBlocks = Math.min(Number(c.usable_region_size / c.block_size), view.blocks.length);
  const inaccessible = (view.negotiatedFeatures & featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE)) !== 0n;
  // The first unplugged block that fails: with UNPLUGGED_INACCESSIBLE every unplugged block
  // fails; without it only those beyond the usable region do.
  const failing = view.blocks.findNext(false, inaccessible ? first : Math.max(first, usableBlocks), stop);
  if (failing === -1) return undefined;
  const blockAddr = formatHex(c.addr + BigInt(failing) * c.block_size);
  if (failing >= usableBlocks) {
    return fail(
      'beyond-usable',
      `${what} touches unplugged block ${failing} at ${blockAddr}, beyond usable_region_size ${formatHex(c.usable_region_size)} (drv.op.${what === 'read' ? 2 : 1})`,
    );
  }
  return fail(
    'inaccessible',
    `${what} touches unplugged block ${failing} at ${blockAddr} and VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE was negotiated (drv.op.${what === 'read' ? 5 : 1})`,
  );
}
