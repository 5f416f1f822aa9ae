/**
 * The device's registers as the guest sees them, read from inside the guest without the driver:
 * through the virtio-pci PCI_CFG capability (virtio 1.x §4.1.4.9), a window in the function's
 * PCI configuration space that the guest's sysfs `config` file reaches with `dd`. The shell text
 * and its parsing are in `pci-config.ts`; this class runs them over the guest link.
 */
import { VirtioMemConfigLayout } from '../../../spec/src/index';
import { AdapterError } from '../../core/src/contract';
import { ConfigSnapshotReader, readConsistentConfig } from '../../virtio/src/index';
import { GuestLink } from './guest-link';
import {
  VirtioPciLayout,
  checkedSysfsDevice,
  configSnapshotReads,
  leValue,
  offeredFeaturesScript,
  parseHexDump,
  parseVirtioCaps,
  parseWindowOutput,
  windowReadScript,
} from './pci-config';

const CONFIG_SIZE = VirtioMemConfigLayout.size;
/** How often a snapshot is read again when `config_generation` changed while it was read. */
const SNAPSHOT_ATTEMPTS = 5;

/** Opening the window: done, or why this PCI function has none that can be read. */
export type OpenedConfigWindow =
  { readonly kind: 'opened'; readonly window: ConfigWindow } | { readonly kind: 'unreadable'; readonly reason: string };

/** The PCI_CFG window of the guest's virtio-mem PCI function. */
export class ConfigWindow {
  private constructor(
    private readonly link: GuestLink,
    /** The function's sysfs folder (`/sys/bus/pci/devices/…`). */
    readonly pciDevice: string,
    private readonly layout: VirtioPciLayout,
  ) {}

  /** Reads the virtio capabilities of the function at sysfs path `sysfsDevice`. */
  static async open(link: GuestLink, sysfsDevice: string): Promise<OpenedConfigWindow> {
    const pciDevice = checkedSysfsDevice(sysfsDevice);
    const configHex = await link.sh(`od -An -tx1 -v ${pciDevice}/config`, 'reading PCI config space');
    try {
      return { kind: 'opened', window: new ConfigWindow(link, pciDevice, parseVirtioCaps(parseHexDump(configHex))) };
    } catch (e) {
      return { kind: 'unreadable', reason: `${pciDevice}: ${(e as Error).message}` };
    }
  }

  /** The 64 feature bits the device offers (`device_feature`, both halves). */
  async offeredFeatures(): Promise<bigint> {
    const features = parseWindowOutput(
      await this.link.sh(offeredFeaturesScript(this.pciDevice, this.layout), 'reading device features'),
      [
        { bar: 0, offset: 0, length: 4 },
        { bar: 0, offset: 0, length: 4 },
      ],
    );
    return leValue(features[0]!) | (leValue(features[1]!) << 32n);
  }

  /** The 56 configuration bytes, read between two equal `config_generation` values. */
  async readConfig(): Promise<Uint8Array> {
    const reads = configSnapshotReads(this.layout, CONFIG_SIZE);
    const script = windowReadScript(this.pciDevice, this.layout.pciCfg, reads);
    const reader: ConfigSnapshotReader = {
      readSnapshot: async () => {
        // One script: generation, the configuration in dwords, generation.
        const values = parseWindowOutput(await this.link.sh(script, 'reading the device configuration'), reads);
        const bytes = new Uint8Array(CONFIG_SIZE);
        values.slice(1, -1).forEach((v, i) => bytes.set(v.subarray(0, Math.min(4, CONFIG_SIZE - i * 4)), i * 4));
        return { generationBefore: values[0]![0]!, bytes, generationAfter: values[values.length - 1]![0]! };
      },
    };
    const read = await readConsistentConfig(reader, SNAPSHOT_ATTEMPTS);
    if (read.kind === 'kept-changing')
      throw new AdapterError(
        'the configuration kept changing while it was read (config_generation differed five times)',
      );
    return read.bytes;
  }
}
