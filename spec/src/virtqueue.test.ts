import {
  VirtqAvailHeaderLayout,
  VirtqDescLayout,
  VirtqUsedElemLayout,
  VirtqUsedHeaderLayout,
  decodeStruct,
  encodeStructInto,
  virtqAvailBytes,
  virtqAvailEntryOffset,
  virtqDescTableBytes,
  virtqUsedBytes,
  virtqUsedElemOffset,
} from './index';
import { tiles } from '../test/tiles';

describe('split virtqueue layouts (frozen, VIRTIO 1.4 §2.7)', () => {
  test.each([
    [VirtqDescLayout, 16, { addr: 0, len: 8, flags: 12, next: 14 }],
    [VirtqAvailHeaderLayout, 4, { flags: 0, idx: 2 }],
    [VirtqUsedHeaderLayout, 4, { flags: 0, idx: 2 }],
    [VirtqUsedElemLayout, 8, { id: 0, len: 4 }],
  ] as const)('$name should be %i bytes with these offsets', (layout, size, offsets) => {
    expect(layout.size).toBe(size);
    expect(Object.fromEntries(Object.entries(layout.fields).map(([name, f]) => [name, f.offset]))).toEqual(offsets);
    expect(tiles(layout)).toBe(true);
  });

  test('should size the three areas of a queue of 256', () => {
    expect(virtqDescTableBytes(256)).toBe(4096);
    expect(virtqAvailBytes(256)).toBe(516);
    expect(virtqAvailBytes(256, true)).toBe(518);
    expect(virtqUsedBytes(256)).toBe(2052);
    expect(virtqUsedBytes(256, true)).toBe(2054);
    expect(virtqAvailEntryOffset(3)).toBe(10);
    expect(virtqUsedElemOffset(3)).toBe(28);
  });

  test('should encode and decode a descriptor little-endian', () => {
    const bytes = new Uint8Array(20);
    encodeStructInto(VirtqDescLayout, { addr: 0x1122334455667788n, len: 0x99aabbcc, flags: 3, next: 0x0102 }, bytes, 4);
    expect([...bytes.subarray(4, 20)]).toEqual([
      0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xcc, 0xbb, 0xaa, 0x99, 3, 0, 2, 1,
    ]);
    expect(decodeStruct(VirtqDescLayout, bytes, 4)).toEqual({
      addr: 0x1122334455667788n,
      len: 0x99aabbcc,
      flags: 3,
      next: 0x0102,
    });
    expect(() => decodeStruct(VirtqDescLayout, bytes, 5)).toThrow(RangeError);
  });
});
