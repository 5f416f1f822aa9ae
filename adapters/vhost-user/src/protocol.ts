/**
 * The vhost-user protocol as data: message codes, flags, protocol features and payload layouts
 * (QEMU's docs/interop/vhost-user.rst is the reference), plus vmemct's own control extension.
 *
 * Every layout is declared once here, `as const satisfies` the spec's {@link StructLayout};
 * {@link encodeStruct}/{@link decodeStruct} derive the bytes. Multi-byte fields are little-endian
 * (x86-64 and arm64 hosts; the protocol uses native order). The split-ring structures the vring
 * messages point at are in spec/ (`virtqueue.ts`).
 */
import type { DeviceSetup } from '../../../spec/src/index';
import { decodeStruct, encodeStructInto } from '../../../spec/src/index';
import type { StructLayout, StructValues } from '../../../spec/src/index';

export { decodeStruct };
export type { StructLayout, StructValues };

/** Front-end → back-end requests. */
export const Request = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SEND_RARP: 19,
  NET_SET_MTU: 20,
  SET_BACKEND_REQ_FD: 21,
  IOTLB_MSG: 22,
  SET_VRING_ENDIAN: 23,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  RESET_DEVICE: 34,
  GET_MAX_MEM_SLOTS: 36,
  ADD_MEM_REG: 37,
  REM_MEM_REG: 38,
  SET_STATUS: 39,
  GET_STATUS: 40,
} as const;

/** Back-end → front-end requests (on the back-end channel). */
export const BackendRequest = {
  IOTLB_MSG: 1,
  CONFIG_CHANGE_MSG: 2,
  VRING_HOST_NOTIFIER_MSG: 3,
} as const;

/** Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
export const ProtocolFeature = {
  MQ: 0,
  LOG_SHMFD: 1,
  RARP: 2,
  REPLY_ACK: 3,
  NET_MTU: 4,
  BACKEND_REQ: 5,
  CROSS_ENDIAN: 6,
  CRYPTO_SESSION: 7,
  PAGEFAULT: 8,
  CONFIG: 9,
  BACKEND_SEND_FD: 10,
  HOST_NOTIFIER: 11,
  INFLIGHT_SHMFD: 12,
  RESET_DEVICE: 13,
  INBAND_NOTIFICATIONS: 14,
  CONFIGURE_MEM_SLOTS: 15,
  STATUS: 16,
  /**
   * vmemct's control extension (non-standard; a bit far above the standard ones). A back-end
   * offering it accepts the {@link VmemctRequest} messages: per-connection device set-up, host
   * resize, reset, BUSY injection, suspend and memory-access checks for conformance runs.
   */
  VMEMCT_CONTROL: 63,
} as const;

/** Name of a protocol feature bit (or `bit N`). */
export function protocolFeatureName(bit: number): string {
  const entry = Object.entries(ProtocolFeature).find(([, b]) => b === bit);
  return entry ? entry[0] : `bit ${bit}`;
}

/** The names of the protocol features set in a mask. */
export function protocolFeatureNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) if (mask & (1n << BigInt(bit))) names.push(protocolFeatureName(bit));
  return names;
}

/** A mask with the given protocol feature bits. */
export function protocolMask(...bits: number[]): bigint {
  return bits.reduce((m, b) => m | (1n << BigInt(b)), 0n);
}

/**
 * The standard protocol features vmemct implements, on both sides: the front-end (the adapter)
 * uses them when offered and the back-end (serve-vhost-user) offers them. The control extension
 * adds {@link ProtocolFeature.VMEMCT_CONTROL} on each side.
 */
export const STANDARD_PROTOCOL_FEATURES = protocolMask(
  ProtocolFeature.MQ,
  ProtocolFeature.REPLY_ACK,
  ProtocolFeature.BACKEND_REQ,
  ProtocolFeature.CONFIG,
  ProtocolFeature.RESET_DEVICE,
  ProtocolFeature.CONFIGURE_MEM_SLOTS,
  ProtocolFeature.STATUS,
);

/** Virtio feature bit 30 in GET/SET_FEATURES: the back-end speaks protocol features. */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;
export const PROTOCOL_FEATURES_BIT = 1n << 30n;

/**
 * vmemct's control requests (non-standard, only with {@link ProtocolFeature.VMEMCT_CONTROL}).
 * Codes sit far from the standard ones (ASCII "VM" in the top half). Every one is answered with
 * a {@link VmemctReply}. On a connection that has sent SET_OWNER they act on that connection's
 * device; on a connection without an owner (a control client such as `vmemct vhost-user-ctl`)
 * RESIZE and STATUS act on the whole back-end.
 */
export const VmemctRequest = {
  /** Payload {@link VmemctSetupLayout} plus the plugged runs: replaces the connection's device. */
  SETUP: 0x564d0001,
  /** Payload u64 requested_size: a host-side resize, announced with CONFIG_CHANGE_MSG. */
  RESIZE: 0x564d0002,
  /** Payload u64 count: the next `count` requests that would succeed are answered BUSY. */
  INJECT_BUSY: 0x564d0003,
  /** No payload: a platform reset of the device. */
  SYSTEM_RESET: 0x564d0004,
  /** No payload: suspend to RAM and wake up. */
  SUSPEND_WAKE: 0x564d0005,
  /** Payload {@link VmemctAccessLayout}: may the guest CPU access this range now? */
  CHECK_ACCESS: 0x564d0006,
  /** No payload: the reply's text names the back-end and its device model. */
  INFO: 0x564d0007,
  /** No payload: the reply's text is JSON describing the back-end and its connections. */
  STATUS: 0x564d0008,
  /** Payload u64: 1 — the host makes the device busy; 0 — the host releases it. */
  HOST_BUSY: 0x564d0009,
} as const;

/** Status codes at the start of a {@link VmemctReply}. */
export const VmemctStatus = { OK: 0n, REFUSED: 1n, BAD_MESSAGE: 2n } as const;

/** Header flags. */
export const FLAG_VERSION = 0x1;
export const FLAG_VERSION_MASK = 0x3;
export const FLAG_REPLY = 0x4;
export const FLAG_NEED_REPLY = 0x8;

/** The largest payload either side accepts; anything bigger is a framing error. */
export const MAX_PAYLOAD = 4096;
/** Largest number of fds one message may carry (SET_MEM_TABLE's 8 regions). */
export const MAX_MESSAGE_FDS = 8;
/** Regions SET_MEM_TABLE carries at most. */
export const MEM_TABLE_MAX_REGIONS = 8;
/** The config space size GET_CONFIG may ask for at most. */
export const MAX_CONFIG_SIZE = 256;
/** SET_VRING_KICK/CALL/ERR: bits 0–7 the ring index, bit 8 "no fd". */
export const VRING_INDEX_MASK = 0xffn;
export const VRING_NOFD = 0x100n;

/** The message header. */
export const HeaderLayout = {
  name: 'header',
  size: 12,
  fields: { request: { offset: 0, type: 'u32' }, flags: { offset: 4, type: 'u32' }, size: { offset: 8, type: 'u32' } },
} as const satisfies StructLayout;
export const HEADER_SIZE = HeaderLayout.size;

/** A single u64 (features, acks, counts, status). */
export const U64Layout = {
  name: 'u64',
  size: 8,
  fields: { value: { offset: 0, type: 'u64' } },
} as const satisfies StructLayout;

/** SET_VRING_NUM / SET_VRING_BASE / GET_VRING_BASE / SET_VRING_ENABLE. */
export const VringStateLayout = {
  name: 'vring state',
  size: 8,
  fields: { index: { offset: 0, type: 'u32' }, num: { offset: 4, type: 'u32' } },
} as const satisfies StructLayout;

/** SET_VRING_ADDR: ring addresses in the front-end's address space (user addresses). */
export const VringAddressLayout = {
  name: 'vring address',
  size: 40,
  fields: {
    index: { offset: 0, type: 'u32' },
    flags: { offset: 4, type: 'u32' },
    desc: { offset: 8, type: 'u64' },
    used: { offset: 16, type: 'u64' },
    avail: { offset: 24, type: 'u64' },
    log: { offset: 32, type: 'u64' },
  },
} as const satisfies StructLayout;

/** One memory region: guest-physical address, size, front-end user address, offset in the fd. */
export const MemoryRegionLayout = {
  name: 'memory region',
  size: 32,
  fields: {
    guestAddress: { offset: 0, type: 'u64' },
    size: { offset: 8, type: 'u64' },
    userAddress: { offset: 16, type: 'u64' },
    mmapOffset: { offset: 24, type: 'u64' },
  },
} as const satisfies StructLayout;

/** SET_MEM_TABLE starts with this, then `regions` × {@link MemoryRegionLayout}. */
export const MemoryTableHeaderLayout = {
  name: 'memory table',
  size: 8,
  fields: { regions: { offset: 0, type: 'u32' }, padding: { offset: 4, type: 'u32' } },
} as const satisfies StructLayout;

/** ADD_MEM_REG / REM_MEM_REG: 8 bytes of padding, then one region. */
export const SINGLE_REGION_SIZE = 8 + MemoryRegionLayout.size;

/** A region as the front-end shares it (its fd goes along separately; mmap offset 0). */
export interface RegionAddresses {
  readonly guestAddress: bigint;
  readonly size: bigint;
  readonly userAddress: bigint;
}

/** SET_MEM_TABLE's payload for these regions (at most {@link MEM_TABLE_MAX_REGIONS}). */
export function memoryTablePayload(regions: readonly RegionAddresses[]): Buffer {
  const payload = Buffer.alloc(MemoryTableHeaderLayout.size + regions.length * MemoryRegionLayout.size);
  encodeStruct(MemoryTableHeaderLayout, { regions: regions.length }, payload);
  regions.forEach((r, i) =>
    encodeStruct(
      MemoryRegionLayout,
      regionFields(r),
      payload,
      MemoryTableHeaderLayout.size + i * MemoryRegionLayout.size,
    ),
  );
  return payload;
}

/** ADD_MEM_REG / REM_MEM_REG payload: 8 bytes of padding, then the region. */
export function singleRegionPayload(region: RegionAddresses): Buffer {
  const payload = Buffer.alloc(SINGLE_REGION_SIZE);
  encodeStruct(MemoryRegionLayout, regionFields(region), payload, SINGLE_REGION_SIZE - MemoryRegionLayout.size);
  return payload;
}

function regionFields(r: RegionAddresses): StructValues<typeof MemoryRegionLayout> {
  return { guestAddress: r.guestAddress, size: r.size, userAddress: r.userAddress, mmapOffset: 0n };
}

/** GET_CONFIG / SET_CONFIG start with this, then `size` config bytes. */
export const ConfigHeaderLayout = {
  name: 'config',
  size: 12,
  fields: { offset: { offset: 0, type: 'u32' }, size: { offset: 4, type: 'u32' }, flags: { offset: 8, type: 'u32' } },
} as const satisfies StructLayout;

/** VMEMCT SETUP, followed by `pluggedRuns` × {@link BlockRunLayout}. */
export const VmemctSetupLayout = {
  name: 'vmemct setup',
  size: 56,
  fields: {
    blockSize: { offset: 0, type: 'u64' },
    regionSize: { offset: 8, type: 'u64' },
    addr: { offset: 16, type: 'u64' },
    requestedSize: { offset: 24, type: 'u64' },
    features: { offset: 32, type: 'u64' },
    /** Bit 0: `features` is given (otherwise the profile's default). */
    flags: { offset: 40, type: 'u32' },
    nodeId: { offset: 44, type: 'u32' },
    pluggedRuns: { offset: 48, type: 'u32' },
    padding: { offset: 52, type: 'u32' },
  },
} as const satisfies StructLayout;
export const VMEMCT_SETUP_FEATURES_GIVEN = 1;
/** Runs of initially plugged blocks a SETUP may carry. */
export const VMEMCT_MAX_PLUGGED_RUNS = Math.floor((MAX_PAYLOAD - VmemctSetupLayout.size) / 8);

/** One run of plugged blocks in a SETUP. */
export const BlockRunLayout = {
  name: 'block run',
  size: 8,
  fields: { first: { offset: 0, type: 'u32' }, count: { offset: 4, type: 'u32' } },
} as const satisfies StructLayout;

/** The VMEMCT SETUP payload for a set-up record: the fixed part, then its plugged runs. */
export function encodeVmemctSetup(setup: DeviceSetup): Buffer {
  const payload = Buffer.alloc(VmemctSetupLayout.size + setup.plugged.length * BlockRunLayout.size);
  encodeStruct(
    VmemctSetupLayout,
    {
      blockSize: setup.block_size,
      regionSize: setup.region_size,
      addr: setup.addr,
      requestedSize: setup.requested_size,
      features: setup.features ?? 0n,
      flags: setup.features === undefined ? 0 : VMEMCT_SETUP_FEATURES_GIVEN,
      nodeId: setup.node_id,
      pluggedRuns: setup.plugged.length,
    },
    payload,
  );
  setup.plugged.forEach((r, i) =>
    encodeStruct(
      BlockRunLayout,
      { first: r.first, count: r.count },
      payload,
      VmemctSetupLayout.size + i * BlockRunLayout.size,
    ),
  );
  return payload;
}

/** The set-up record a VMEMCT SETUP payload carries, or why the payload is malformed. */
export function decodeVmemctSetup(
  payload: Uint8Array,
): { readonly ok: true; readonly setup: DeviceSetup } | { readonly ok: false; readonly problem: string } {
  const size = payload.length;
  if (size < VmemctSetupLayout.size)
    return { ok: false, problem: `payload of ${size} bytes is shorter than ${VmemctSetupLayout.size}` };
  const s = decodeStruct(VmemctSetupLayout, payload);
  if (size !== VmemctSetupLayout.size + s.pluggedRuns * BlockRunLayout.size)
    return { ok: false, problem: `payload of ${size} bytes for ${s.pluggedRuns} plugged runs` };
  const plugged = Array.from({ length: s.pluggedRuns }, (_, i) => {
    const r = decodeStruct(BlockRunLayout, payload, VmemctSetupLayout.size + i * BlockRunLayout.size);
    return { first: r.first, count: r.count };
  });
  return {
    ok: true,
    setup: {
      block_size: s.blockSize,
      region_size: s.regionSize,
      addr: s.addr,
      requested_size: s.requestedSize,
      node_id: s.nodeId,
      features: s.flags & VMEMCT_SETUP_FEATURES_GIVEN ? s.features : undefined,
      plugged,
    },
  };
}

/** VMEMCT CHECK_ACCESS. */
export const VmemctAccessLayout = {
  name: 'vmemct access',
  size: 24,
  fields: {
    addr: { offset: 0, type: 'u64' },
    length: { offset: 8, type: 'u64' },
    write: { offset: 16, type: 'u32' },
    padding: { offset: 20, type: 'u32' },
  },
} as const satisfies StructLayout;

/** Encodes a layout's values (missing fields are zero) into a new Buffer, or into `into` at `at`. */
export function encodeStruct<L extends StructLayout>(
  layout: L,
  values: Partial<StructValues<L>>,
  into?: Buffer,
  at = 0,
): Buffer {
  const out = into ?? Buffer.alloc(layout.size);
  encodeStructInto(layout, values, out, at);
  return out;
}

/** One complete message. */
export interface Message {
  readonly request: number;
  readonly flags: number;
  readonly payload: Buffer;
  /** The fds that came with it; the receiver owns them and must close the ones it keeps no use for. */
  readonly fds: number[];
}

/** Header and payload in one buffer, as one sendmsg carries them. */
export function frameMessage(request: number, flags: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(HEADER_SIZE + payload.length);
  encodeStruct(HeaderLayout, { request, flags, size: payload.length }, out);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** A u64 payload. */
export function u64Payload(value: bigint | number): Buffer {
  return encodeStruct(U64Layout, { value: BigInt(value) });
}

/** A vmemct reply payload: status, then UTF-8 text. */
export function vmemctReplyPayload(status: bigint, text: string): Buffer {
  return Buffer.concat([u64Payload(status), Buffer.from(text, 'utf8')]);
}

/** A decoded vmemct reply. */
export interface VmemctReply {
  readonly status: bigint;
  readonly text: string;
}

/** Decodes a vmemct reply payload; undefined when it is shorter than the status. */
export function decodeVmemctReply(payload: Uint8Array): VmemctReply | undefined {
  if (payload.length < 8) return undefined;
  return { status: decodeStruct(U64Layout, payload).value, text: Buffer.from(payload.subarray(8)).toString('utf8') };
}

/** Name of a front-end request code (or `request N`). */
export function requestName(code: number): string {
  const entry =
    Object.entries(Request).find(([, c]) => c === code) ?? Object.entries(VmemctRequest).find(([, c]) => c === code);
  if (!entry) return `request ${code}`;
  return code in VMEMCT_NAMES ? `VMEMCT_${entry[0]}` : entry[0];
}

const VMEMCT_NAMES: Readonly<Record<number, true>> = Object.fromEntries(
  Object.values(VmemctRequest).map((c) => [c, true]),
);
