import { VirtqDescLayout as DescriptorLayout, VirtqUsedElemLayout as UsedElementLayout } from '../../../spec/src/index';
import {
  ConfigHeaderLayout,
  HEADER_SIZE,
  HeaderLayout,
  MemoryRegionLayout,
  MemoryTableHeaderLayout,
  ProtocolFeature,
  Request,
  SINGLE_REGION_SIZE,
  StructLayout,
  VMEMCT_MAX_PLUGGED_RUNS,
  VmemctAccessLayout,
  VmemctRequest,
  VmemctSetupLayout,
  VringAddressLayout,
  VringStateLayout,
  decodeStruct,
  decodeVmemctReply,
  encodeStruct,
  frameMessage,
  protocolFeatureNames,
  protocolMask,
  requestName,
  vmemctReplyPayload,
} from './protocol';

/** Every field fits the layout, fields do not overlap, and together they cover every byte. */
function checkLayout(layout: StructLayout): void {
  const width = { u8: 1, u16: 2, u32: 4, u64: 8 } as const;
  const covered = new Array<number>(layout.size).fill(0);
  for (const field of Object.values(layout.fields)) {
    const w = width[field.type];
    expect(field.offset % w).toBe(0);
    expect(field.offset + w).toBeLessThanOrEqual(layout.size);
    for (let i = field.offset; i < field.offset + w; i++) covered[i]++;
  }
  expect(covered.every((n) => n === 1)).toBe(true);
}

describe('vhost-user layouts', () => {
  test('sizes match the protocol (header 12, vring state 8, vring address 40, region 32, config header 12, descriptor 16, used element 8)', () => {
    expect([
      HeaderLayout.size,
      VringStateLayout.size,
      VringAddressLayout.size,
      MemoryRegionLayout.size,
      MemoryTableHeaderLayout.size,
      ConfigHeaderLayout.size,
      DescriptorLayout.size,
      UsedElementLayout.size,
    ]).toEqual([12, 8, 40, 32, 8, 12, 16, 8]);
    expect(SINGLE_REGION_SIZE).toBe(40);
    expect(HEADER_SIZE).toBe(12);
    for (const layout of [
      HeaderLayout,
      VringStateLayout,
      VringAddressLayout,
      MemoryRegionLayout,
      MemoryTableHeaderLayout,
      ConfigHeaderLayout,
      DescriptorLayout,
      UsedElementLayout,
      VmemctSetupLayout,
      VmemctAccessLayout,
    ])
      checkLayout(layout);
  });

  test('encode and decode round-trip, little-endian, with 64-bit values as bigint', () => {
    const values = {
      guestAddress: 0xffff_ffff_ffe0_0000n,
      size: 2n << 20n,
      userAddress: 0x7f00_1234_5000n,
      mmapOffset: 4096n,
    };
    const bytes = encodeStruct(MemoryRegionLayout, values);
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x00, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(decodeStruct(MemoryRegionLayout, bytes)).toEqual(values);
    const d = encodeStruct(DescriptorLayout, { addr: 0x1000n, len: 24, flags: 3, next: 7 });
    expect(decodeStruct(DescriptorLayout, d)).toEqual({ addr: 0x1000n, len: 24, flags: 3, next: 7 });
  });

  test('frames a message as header then payload', () => {
    const framed = frameMessage(Request.SET_FEATURES, 0x9, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    expect(framed.length).toBe(20);
    expect(decodeStruct(HeaderLayout, framed)).toEqual({ request: 2, flags: 9, size: 8 });
    expect([...framed.subarray(12)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('names requests and protocol features, including the vmemct extension', () => {
    expect(requestName(Request.GET_CONFIG)).toBe('GET_CONFIG');
    expect(requestName(VmemctRequest.RESIZE)).toBe('VMEMCT_RESIZE');
    expect(requestName(99)).toBe('request 99');
    expect(protocolFeatureNames(0x8f2bn)).toEqual([
      'MQ',
      'LOG_SHMFD',
      'REPLY_ACK',
      'BACKEND_REQ',
      'PAGEFAULT',
      'CONFIG',
      'BACKEND_SEND_FD',
      'HOST_NOTIFIER',
      'CONFIGURE_MEM_SLOTS',
    ]);
    expect(protocolMask(ProtocolFeature.VMEMCT_CONTROL)).toBe(1n << 63n);
  });

  test('vmemct replies carry a status and text; a reply shorter than the status does not decode', () => {
    expect(decodeVmemctReply(vmemctReplyPayload(1n, 'not a multiple'))).toEqual({ status: 1n, text: 'not a multiple' });
    expect(decodeVmemctReply(Buffer.alloc(7))).toBeUndefined();
    expect(VMEMCT_MAX_PLUGGED_RUNS * 8 + VmemctSetupLayout.size).toBeLessThanOrEqual(4096);
  });
});
