/**
 * The split virtqueue (VIRTIO 1.4 §2.7) as data: the descriptor, the avail and used ring headers
 * and the used element, declared once; the ring sizes and entry offsets follow from them.
 *
 * A split queue of `size` entries is three areas in guest memory: the descriptor table (`size`
 * descriptors), the driver area ("avail": header, `size` heads, optional `used_event`) and the
 * device area ("used": header, `size` used elements, optional `avail_event`). The event fields
 * exist only with VIRTIO_F_EVENT_IDX, which vmemct never negotiates.
 */
import type { StructLayout } from './struct-layout';

/** `struct virtq_desc`: one buffer of a chain (§2.7.5). */
export const VirtqDescLayout = {
  name: 'virtq_desc',
  size: 16,
  fields: {
    /** Guest-physical address of the buffer. */
    addr: { offset: 0, type: 'u64' },
    len: { offset: 8, type: 'u32' },
    /** VIRTQ_DESC_F_* bits. */
    flags: { offset: 12, type: 'u16' },
    /** The next descriptor of the chain, when flags has VIRTQ_DESC_F_NEXT. */
    next: { offset: 14, type: 'u16' },
  },
} as const satisfies StructLayout;

/** The descriptor continues in `next`. */
export const VIRTQ_DESC_F_NEXT = 1;
/** The buffer is device-writable (otherwise device-readable). */
export const VIRTQ_DESC_F_WRITE = 2;
/** The buffer holds a table of indirect descriptors (VIRTIO_F_INDIRECT_DESC; vmemct never uses it). */
export const VIRTQ_DESC_F_INDIRECT = 4;

/** `struct virtq_avail` up to its ring: the driver area's header (§2.7.6). */
export const VirtqAvailHeaderLayout = {
  name: 'virtq_avail',
  size: 4,
  fields: {
    flags: { offset: 0, type: 'u16' },
    /** Where the driver puts the next head (free-running, modulo 2^16). */
    idx: { offset: 2, type: 'u16' },
  },
} as const satisfies StructLayout;

/** Bytes of one avail ring entry (a le16 descriptor head). */
export const VIRTQ_AVAIL_ENTRY_BYTES = 2;

/** `struct virtq_used` up to its ring: the device area's header (§2.7.8). */
export const VirtqUsedHeaderLayout = {
  name: 'virtq_used',
  size: 4,
  fields: {
    flags: { offset: 0, type: 'u16' },
    /** Where the device puts the next used element (free-running, modulo 2^16). */
    idx: { offset: 2, type: 'u16' },
  },
} as const satisfies StructLayout;

/** `struct virtq_used_elem`: a finished chain (§2.7.8). */
export const VirtqUsedElemLayout = {
  name: 'virtq_used_elem',
  size: 8,
  fields: {
    /** Head descriptor of the chain (u32 for padding reasons, says the spec). */
    id: { offset: 0, type: 'u32' },
    /** Bytes the device wrote into the chain's device-writable buffers. */
    len: { offset: 4, type: 'u32' },
  },
} as const satisfies StructLayout;

/** The largest queue size a split queue may have (§2.7: queue size is at most 32768). */
export const VIRTQ_MAX_SIZE = 32768;

/** The ring indices are 16-bit and wrap: `(idx + 1) & VIRTQ_IDX_MASK`. */
export const VIRTQ_IDX_MASK = 0xffff;

/** Bytes of the descriptor table of a queue of `size` entries. */
export function virtqDescTableBytes(size: number): number {
  return VirtqDescLayout.size * size;
}

/** Bytes of the driver area of a queue of `size` entries (with `used_event` when `eventIdx`). */
export function virtqAvailBytes(size: number, eventIdx = false): number {
  return VirtqAvailHeaderLayout.size + VIRTQ_AVAIL_ENTRY_BYTES * size + (eventIdx ? 2 : 0);
}

/** Bytes of the device area of a queue of `size` entries (with `avail_event` when `eventIdx`). */
export function virtqUsedBytes(size: number, eventIdx = false): number {
  return VirtqUsedHeaderLayout.size + VirtqUsedElemLayout.size * size + (eventIdx ? 2 : 0);
}

/** Offset in the driver area of avail ring entry `slot` (`idx % size`). */
export function virtqAvailEntryOffset(slot: number): number {
  return VirtqAvailHeaderLayout.size + VIRTQ_AVAIL_ENTRY_BYTES * slot;
}

/** Offset in the device area of used element `slot` (`idx % size`). */
export function virtqUsedElemOffset(slot: number): number {
  return VirtqUsedHeaderLayout.size + VirtqUsedElemLayout.size * slot;
}

/**
 * The byte a driver of this suite pre-fills device-writable buffers with, at offset `offset` of
 * the chain's writable part (buffers joined in order): never 0x00 or 0xff, and different at
 * neighbouring offsets. A byte that still reads so after the used entry was most likely never
 * written by the device, which lets the runner see a used length larger than what was written
 * (§2.7.8.2).
 */
export function writablePoisonByte(offset: number): number {
  return 0x80 | ((offset * 0x35 + 0x2b) % 0x7f);
}

/** `length` bytes of the writable-buffer pre-fill, starting at writable offset `from`. */
export function writablePoison(length: number, from = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = writablePoisonByte(from + i);
  return out;
}
