/**
 * Constants of the virtio-mem device (VIRTIO 1.4 §5.15), spelled as the spec spells them.
 *
 * Feature constants are bit *numbers* (as in the spec, Linux and QEMU), never masks; use
 * {@link featureMask} to turn one into a mask, or {@link FEATURE_MASKS} for the masks by short name.
 */

/** Virtio device ID of the memory device (§5.15.1). */
export const VIRTIO_ID_MEM = 24;

/** PCI vendor ID of every virtio device. */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;

/** Modern virtio-pci device ID: 0x1040 + device ID (§4.1.2). */
export const VIRTIO_MEM_PCI_DEVICE_ID = 0x1040 + VIRTIO_ID_MEM;

/** Index and name of the device's only virtqueue (§5.15.2). */
export const VIRTIO_MEM_GUEST_REQUEST_QUEUE = { index: 0, name: 'guest-request' } as const;

/** Feature bit: `node_id` is an ACPI proximity domain (§5.15.3). */
export const VIRTIO_MEM_F_ACPI_PXM = 0;
/** Feature bit: the driver must not access unplugged memory at all (§5.15.3). */
export const VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE = 1;
/** Feature bit: block states survive suspend/wakeup (§5.15.3, VIRTIO 1.4). */
export const VIRTIO_MEM_F_PERSISTENT_SUSPEND = 2;
/** Generic feature bit: the device is modern (non-legacy) (§6). */
export const VIRTIO_F_VERSION_1 = 32;

/** Request types (`virtio_mem_req.type`, §5.15.6). */
export const VIRTIO_MEM_REQ_PLUG = 0;
export const VIRTIO_MEM_REQ_UNPLUG = 1;
export const VIRTIO_MEM_REQ_UNPLUG_ALL = 2;
export const VIRTIO_MEM_REQ_STATE = 3;

/** Response codes (`virtio_mem_resp.type`, §5.15.6). */
export const VIRTIO_MEM_RESP_ACK = 0;
export const VIRTIO_MEM_RESP_NACK = 1;
export const VIRTIO_MEM_RESP_BUSY = 2;
export const VIRTIO_MEM_RESP_ERROR = 3;

/** Block states in a STATE response (`virtio_mem_resp.u.state.type`, §5.15.6.6). */
export const VIRTIO_MEM_STATE_PLUGGED = 0;
export const VIRTIO_MEM_STATE_UNPLUGGED = 1;
export const VIRTIO_MEM_STATE_MIXED = 2;

/** Largest `nb_blocks` one request can carry (the field is 16 bits wide). */
export const VIRTIO_MEM_MAX_NB_BLOCKS = 0xffff;

/** Generic virtio device status bits (§2.1) that the device model tracks. */
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 64;

/** A named constant: its spec name, value and a short meaning. */
export interface NamedConstant {
  readonly name: string;
  readonly value: number;
  readonly meaning: string;
}

/** Feature bits of the device, with the spec version that introduced each. */
export const FEATURE_BITS: readonly (NamedConstant & { readonly since: string })[] = [
  {
    name: 'VIRTIO_MEM_F_ACPI_PXM',
    value: VIRTIO_MEM_F_ACPI_PXM,
    since: '1.2',
    meaning: 'node_id is valid and is an ACPI proximity domain',
  },
  {
    name: 'VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE',
    value: VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
    since: '1.2',
    meaning: 'the driver must not read unplugged memory, not even inside the usable region',
  },
  {
    name: 'VIRTIO_MEM_F_PERSISTENT_SUSPEND',
    value: VIRTIO_MEM_F_PERSISTENT_SUSPEND,
    since: '1.4',
    meaning: 'plugged blocks keep their state across suspend and wakeup',
  },
  {
    name: 'VIRTIO_F_VERSION_1',
    value: VIRTIO_F_VERSION_1,
    since: '1.0',
    meaning: 'generic: modern device (every virtio-mem implementation is modern-only)',
  },
];

/** Request types, indexed by value. */
export const REQUEST_TYPES: readonly NamedConstant[] = [
  { name: 'VIRTIO_MEM_REQ_PLUG', value: VIRTIO_MEM_REQ_PLUG, meaning: 'plug nb_blocks blocks starting at addr' },
  { name: 'VIRTIO_MEM_REQ_UNPLUG', value: VIRTIO_MEM_REQ_UNPLUG, meaning: 'unplug nb_blocks blocks starting at addr' },
  { name: 'VIRTIO_MEM_REQ_UNPLUG_ALL', value: VIRTIO_MEM_REQ_UNPLUG_ALL, meaning: 'unplug every block of the region' },
  {
    name: 'VIRTIO_MEM_REQ_STATE',
    value: VIRTIO_MEM_REQ_STATE,
    meaning: 'report whether nb_blocks blocks at addr are plugged, unplugged or mixed',
  },
];

/** Response codes, indexed by value. */
export const RESPONSE_CODES: readonly NamedConstant[] = [
  { name: 'VIRTIO_MEM_RESP_ACK', value: VIRTIO_MEM_RESP_ACK, meaning: 'the request succeeded' },
  {
    name: 'VIRTIO_MEM_RESP_NACK',
    value: VIRTIO_MEM_RESP_NACK,
    meaning: 'the request was denied (e.g. a plug beyond requested_size)',
  },
  {
    name: 'VIRTIO_MEM_RESP_BUSY',
    value: VIRTIO_MEM_RESP_BUSY,
    meaning: 'the request cannot be processed now; retry later',
  },
  {
    name: 'VIRTIO_MEM_RESP_ERROR',
    value: VIRTIO_MEM_RESP_ERROR,
    meaning: 'the request is malformed or invalid in the current state',
  },
];

/** Block states, indexed by value. */
export const BLOCK_STATES: readonly NamedConstant[] = [
  { name: 'VIRTIO_MEM_STATE_PLUGGED', value: VIRTIO_MEM_STATE_PLUGGED, meaning: 'every requested block is plugged' },
  {
    name: 'VIRTIO_MEM_STATE_UNPLUGGED',
    value: VIRTIO_MEM_STATE_UNPLUGGED,
    meaning: 'every requested block is unplugged',
  },
  {
    name: 'VIRTIO_MEM_STATE_MIXED',
    value: VIRTIO_MEM_STATE_MIXED,
    meaning: 'some requested blocks are plugged and some are not',
  },
];

/** Short names used in vectors, the CLI and reports. */
export type RequestTypeName = 'PLUG' | 'UNPLUG' | 'UNPLUG_ALL' | 'STATE';
/** Short names of the response codes. */
export type ResponseCodeName = 'ACK' | 'NACK' | 'BUSY' | 'ERROR';
/** Short names of the block states. */
export type BlockStateName = 'PLUGGED' | 'UNPLUGGED' | 'MIXED';

/** Short request-type names indexed by the wire value. */
export const REQUEST_TYPE_NAMES: readonly RequestTypeName[] = ['PLUG', 'UNPLUG', 'UNPLUG_ALL', 'STATE'];
/** Short response-code names indexed by the wire value. */
export const RESPONSE_CODE_NAMES: readonly ResponseCodeName[] = ['ACK', 'NACK', 'BUSY', 'ERROR'];
/** Short block-state names indexed by the wire value. */
export const BLOCK_STATE_NAMES: readonly BlockStateName[] = ['PLUGGED', 'UNPLUGGED', 'MIXED'];

/** The short name of a request type value, or undefined when no request type has that value. */
export function requestTypeName(value: number): RequestTypeName | undefined {
  return Number.isInteger(value) ? REQUEST_TYPE_NAMES[value] : undefined;
}

/** Mask of a feature bit number, as a bigint (feature words are 64 bits wide). */
export function featureMask(bit: number): bigint {
  return 1n << BigInt(bit);
}

/**
 * Short feature names, as vectors, the CLI and reports write them: the spec name without its
 * `VIRTIO_F_` / `VIRTIO_MEM_F_` prefix.
 */
export const FEATURE_NAMES = ['VERSION_1', 'ACPI_PXM', 'UNPLUGGED_INACCESSIBLE', 'PERSISTENT_SUSPEND'] as const;
/** One of {@link FEATURE_NAMES}. */
export type FeatureName = (typeof FEATURE_NAMES)[number];

/** Feature masks by short name (the bit numbers are the `VIRTIO_…_F_…` constants above). */
export const FEATURE_MASKS: Readonly<Record<FeatureName, bigint>> = {
  VERSION_1: featureMask(VIRTIO_F_VERSION_1),
  ACPI_PXM: featureMask(VIRTIO_MEM_F_ACPI_PXM),
  UNPLUGGED_INACCESSIBLE: featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE),
  PERSISTENT_SUSPEND: featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND),
};

/**
 * Feature bits 0 to 23 belong to the device type (§6); from 24 up they are reserved for the
 * transport and the queues (VIRTIO_F_VERSION_1 is bit 32). As a mask.
 */
export const DEVICE_TYPE_FEATURES_MASK: bigint = (1n << 24n) - 1n;

/** Every feature bit the device may offer (and the reference driver supports), as one mask. */
export const VIRTIO_MEM_KNOWN_FEATURES: bigint = FEATURE_NAMES.reduce((mask, name) => mask | FEATURE_MASKS[name], 0n);
