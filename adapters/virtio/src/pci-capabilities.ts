/**
 * The virtio-pci capability walk (VIRTIO 1.4 §4.1.4): from a function's PCI configuration space
 * to where each virtio structure lives (BAR, offset, length). The QEMU adapter reads the
 * configuration space over qtest port I/O, the ssh-guest adapter through sysfs inside the guest;
 * both walk it here.
 */
import {
  PCI_CAPABILITY_LIST,
  PCI_CAP_ID_VNDR,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_PCI_CFG,
  VirtioPciCapLayout,
  VirtioPciNotifyCapLayout,
  decodeStruct,
  readLe16,
} from '../../../spec/src/index';

/** One virtio vendor capability as found in configuration space. */
export interface VirtioPciCapability {
  /** Offset of the capability in configuration space. */
  readonly position: number;
  /** One of VIRTIO_PCI_CAP_*. */
  readonly cfgType: number;
  readonly bar: number;
  /** Offset of the structure inside the BAR. */
  readonly offset: number;
  /** Length of the structure. */
  readonly length: number;
}

/** The notification capability, with its multiplier. */
export interface VirtioPciNotifyCapability extends VirtioPciCapability {
  readonly notifyOffMultiplier: number;
}

/**
 * Where a virtio-pci function's structures live: the first capability of each type a modern
 * device must present (§4.1.4: common, notify, ISR and PCI configuration access; the device
 * configuration wherever the device type has one, which virtio-mem does).
 */
export interface VirtioPciLayout {
  readonly commonCfg: VirtioPciCapability;
  readonly notifyCfg: VirtioPciNotifyCapability;
  readonly isrCfg: VirtioPciCapability;
  readonly deviceCfg: VirtioPciCapability;
  readonly pciCfg: VirtioPciCapability;
}

/** What {@link findVirtioPciLayout} found. */
export type VirtioPciLayoutResult =
  | { readonly ok: true; readonly layout: VirtioPciLayout }
  | { readonly ok: false; readonly reason: 'no-capability-list'; readonly detail: string }
  | { readonly ok: false; readonly reason: 'capability-out-of-bounds'; readonly detail: string }
  /** `missing` lists the absent capability types in the order common, notify, ISR, device, PCI configuration access. */
  | {
      readonly ok: false;
      readonly reason: 'missing-capabilities';
      readonly detail: string;
      readonly missing: readonly number[];
    };

/** A capability list has at most this many entries (48 × 4 bytes fill the 192 bytes after the header). */
const MAX_CAPABILITIES = 48;

/** The capability types a {@link VirtioPciLayout} needs, in the order missing ones are reported. */
const NEEDED = [
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_PCI_CFG,
] as const;

/**
 * Walks the capability list of `config` (a function's configuration space from offset 0, normally
 * all 256 bytes) and returns every virtio vendor capability in list order.
 */
export function walkVirtioCapabilities(
  config: Uint8Array,
):
  | { readonly ok: true; readonly capabilities: readonly (VirtioPciCapability | VirtioPciNotifyCapability)[] }
  | Exclude<VirtioPciLayoutResult, { ok: true } | { reason: 'missing-capabilities' }> {
  if (config.length < PCI_CAPABILITY_LIST + 1 || (readLe16(config, PCI_STATUS) & PCI_STATUS_CAP_LIST) === 0) {
    return { ok: false, reason: 'no-capability-list', detail: 'the PCI function has no capability list' };
  }
  const capabilities: (VirtioPciCapability | VirtioPciNotifyCapability)[] = [];
  let position = config[PCI_CAPABILITY_LIST]! & 0xfc;
  for (let hops = 0; position !== 0 && hops < MAX_CAPABILITIES; hops++) {
    if (position + VirtioPciCapLayout.size > config.length)
      return {
        ok: false,
        reason: 'capability-out-of-bounds',
        detail: `capability at 0x${position.toString(16)} runs past config space`,
      };
    const cap = decodeStruct(VirtioPciCapLayout, config, position);
    if (cap.cap_vndr === PCI_CAP_ID_VNDR) {
      const found: VirtioPciCapability = {
        position,
        cfgType: cap.cfg_type,
        bar: cap.bar,
        offset: cap.offset,
        length: cap.length,
      };
      if (cap.cfg_type !== VIRTIO_PCI_CAP_NOTIFY_CFG) capabilities.push(found);
      else if (position + VirtioPciNotifyCapLayout.size > config.length)
        return {
          ok: false,
          reason: 'capability-out-of-bounds',
          detail: `notify capability at 0x${position.toString(16)} runs past config space`,
        };
      else
        capabilities.push({
          ...found,
          notifyOffMultiplier: decodeStruct(VirtioPciNotifyCapLayout, config, position).notify_off_multiplier,
        });
    }
    position = cap.cap_next & 0xfc;
  }
  return { ok: true, capabilities };
}

/** The {@link VirtioPciLayout} of a function from its configuration space, or why there is none. */
export function findVirtioPciLayout(config: Uint8Array): VirtioPciLayoutResult {
  const walked = walkVirtioCapabilities(config);
  if (!walked.ok) return walked;
  const first = (type: number): VirtioPciCapability | undefined => walked.capabilities.find((c) => c.cfgType === type);
  const missing = NEEDED.filter((type) => !first(type));
  if (missing.length > 0)
    return {
      ok: false,
      reason: 'missing-capabilities',
      detail: `virtio-pci capabilities missing: types ${missing.join(', ')}`,
      missing,
    };
  return {
    ok: true,
    layout: {
      commonCfg: first(VIRTIO_PCI_CAP_COMMON_CFG)!,
      notifyCfg: first(VIRTIO_PCI_CAP_NOTIFY_CFG) as VirtioPciNotifyCapability,
      isrCfg: first(VIRTIO_PCI_CAP_ISR_CFG)!,
      deviceCfg: first(VIRTIO_PCI_CAP_DEVICE_CFG)!,
      pciCfg: first(VIRTIO_PCI_CAP_PCI_CFG)!,
    },
  };
}
