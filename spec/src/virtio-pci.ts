/**
 * The virtio-pci transport (VIRTIO 1.4 §4.1) as data: the vendor capability that locates each
 * virtio structure in a BAR, the common configuration structure, the capability types, and the
 * few PCI header registers a virtio-pci driver touches.
 *
 * The PCI IDs of the virtio-mem function are in `constants.ts` ({@link VIRTIO_PCI_VENDOR_ID},
 * {@link VIRTIO_MEM_PCI_DEVICE_ID}).
 */
import type { StructLayout } from './struct-layout';

/** Bytes of a PCI function's configuration space (conventional PCI; the capabilities live here). */
export const PCI_CONFIG_SPACE_BYTES = 256;
/** Offset of the vendor ID (le16) and the device ID (le16) right after it. */
export const PCI_VENDOR_ID = 0x00;
/** Offset of the command register (le16). */
export const PCI_COMMAND = 0x04;
/** Command bit: the function answers memory-space accesses (its memory BARs are live). */
export const PCI_COMMAND_MEMORY = 0x2;
/** Command bit: the function may master the bus (DMA: the device reads the rings). */
export const PCI_COMMAND_MASTER = 0x4;
/** Offset of the status register (le16). */
export const PCI_STATUS = 0x06;
/** Status bit: the function has a capability list at {@link PCI_CAPABILITY_LIST}. */
export const PCI_STATUS_CAP_LIST = 0x10;
/** Offset of the first base address register (six le32 BARs follow). */
export const PCI_BASE_ADDRESS_0 = 0x10;
/** Offset of the pointer to the first capability (u8; the low two bits are reserved). */
export const PCI_CAPABILITY_LIST = 0x34;
/** Capability ID of a vendor-specific capability: every virtio-pci capability is one. */
export const PCI_CAP_ID_VNDR = 0x09;

/** `cfg_type` values of `struct virtio_pci_cap` (§4.1.4). */
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_PCI_CFG = 5;
export const VIRTIO_PCI_CAP_SHARED_MEMORY_CFG = 8;
export const VIRTIO_PCI_CAP_VENDOR_CFG = 9;

/** `struct virtio_pci_cap`: where one virtio structure lives (§4.1.4). */
export const VirtioPciCapLayout = {
  name: 'virtio_pci_cap',
  size: 16,
  fields: {
    /** {@link PCI_CAP_ID_VNDR}. */
    cap_vndr: { offset: 0, type: 'u8' },
    /** Config-space offset of the next capability (0 ends the list). */
    cap_next: { offset: 1, type: 'u8' },
    cap_len: { offset: 2, type: 'u8' },
    /** One of VIRTIO_PCI_CAP_*. */
    cfg_type: { offset: 3, type: 'u8' },
    /** The BAR (0–5) holding the structure. */
    bar: { offset: 4, type: 'u8' },
    /** Tells apart several capabilities of one type (shared memory); otherwise 0. */
    id: { offset: 5, type: 'u8' },
    /** `u8 padding[2]`. */
    padding: { offset: 6, type: 'u16' },
    /** Offset of the structure inside the BAR. */
    offset: { offset: 8, type: 'u32' },
    /** Length of the structure in bytes. */
    length: { offset: 12, type: 'u32' },
  },
} as const satisfies StructLayout;

/** `struct virtio_pci_notify_cap`: the notification capability carries a multiplier (§4.1.4.4). */
export const VirtioPciNotifyCapLayout = {
  name: 'virtio_pci_notify_cap',
  size: 20,
  fields: {
    ...VirtioPciCapLayout.fields,
    /** A queue's notify address is BAR + offset + queue_notify_off × this. */
    notify_off_multiplier: { offset: 16, type: 'u32' },
  },
} as const satisfies StructLayout;

/**
 * `struct virtio_pci_cfg_cap`: the PCI configuration access window (§4.1.4.9). The driver writes
 * `bar`, `offset` and `length` (1, 2 or 4) into the capability, then reads or writes
 * `pci_cfg_data` to reach that BAR location without mapping the BAR.
 */
export const VirtioPciCfgCapLayout = {
  name: 'virtio_pci_cfg_cap',
  size: 20,
  fields: {
    ...VirtioPciCapLayout.fields,
    /** `u8 pci_cfg_data[4]`: the data of the access. */
    pci_cfg_data: { offset: 16, type: 'u32' },
  },
} as const satisfies StructLayout;

/**
 * `struct virtio_pci_common_cfg` as VIRTIO 1.0 defines it (§4.1.4.3); later versions append
 * fields (queue_notify_data, queue_reset, admin queues) that vmemct does not use.
 */
export const VirtioPciCommonCfgLayout = {
  name: 'virtio_pci_common_cfg',
  size: 56,
  fields: {
    /** Selects which 32 feature bits `device_feature` shows (0: bits 0–31, 1: bits 32–63). */
    device_feature_select: { offset: 0x00, type: 'u32' },
    device_feature: { offset: 0x04, type: 'u32' },
    /** Selects which 32 feature bits `driver_feature` takes. */
    driver_feature_select: { offset: 0x08, type: 'u32' },
    driver_feature: { offset: 0x0c, type: 'u32' },
    config_msix_vector: { offset: 0x10, type: 'u16' },
    num_queues: { offset: 0x12, type: 'u16' },
    /** The device status register (VIRTIO_CONFIG_S_*; writing 0 resets the device). */
    device_status: { offset: 0x14, type: 'u8' },
    /** Changes whenever the device configuration may have changed. */
    config_generation: { offset: 0x15, type: 'u8' },
    /** The queue the queue_* fields below refer to. */
    queue_select: { offset: 0x16, type: 'u16' },
    queue_size: { offset: 0x18, type: 'u16' },
    queue_msix_vector: { offset: 0x1a, type: 'u16' },
    queue_enable: { offset: 0x1c, type: 'u16' },
    queue_notify_off: { offset: 0x1e, type: 'u16' },
    /** Guest-physical address of the descriptor table. */
    queue_desc: { offset: 0x20, type: 'u64' },
    /** Guest-physical address of the driver area (avail ring). */
    queue_driver: { offset: 0x28, type: 'u64' },
    /** Guest-physical address of the device area (used ring). */
    queue_device: { offset: 0x30, type: 'u64' },
  },
} as const satisfies StructLayout;

/** Offsets in the common configuration, by field name (from {@link VirtioPciCommonCfgLayout}). */
export type VirtioPciCommonCfgField = keyof (typeof VirtioPciCommonCfgLayout)['fields'];

/** ISR status bit: a used buffer was added to a queue (§4.1.4.5). */
export const VIRTIO_PCI_ISR_QUEUE = 0x1;
/** ISR status bit: the device configuration changed. */
export const VIRTIO_PCI_ISR_CONFIG = 0x2;
/** `*_msix_vector` value: no MSI-X vector (interrupts go through the ISR). */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;
