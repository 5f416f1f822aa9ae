import { VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_CAP_PCI_CFG } from '../../../spec/src/index';
import { qemuVirtioMemPciConfig } from '../test/qemu-virtio-mem-config';
import { findVirtioPciLayout, walkVirtioCapabilities } from './index';

const config = qemuVirtioMemPciConfig;

describe('virtio-pci capability walk', () => {
  test("should find QEMU's five virtio structures in BAR 4", () => {
    const found = findVirtioPciLayout(config());
    if (!found.ok) throw new Error(found.detail);
    expect(found.layout).toEqual({
      commonCfg: { position: 0x40, cfgType: 1, bar: 4, offset: 0, length: 0x1000 },
      notifyCfg: { position: 0x70, cfgType: 2, bar: 4, offset: 0x3000, length: 0x1000, notifyOffMultiplier: 4 },
      isrCfg: { position: 0x50, cfgType: 3, bar: 4, offset: 0x1000, length: 0x1000 },
      deviceCfg: { position: 0x60, cfgType: 4, bar: 4, offset: 0x2000, length: 0x1000 },
      pciCfg: { position: 0x84, cfgType: 5, bar: 0, offset: 0, length: 0 },
    });
  });

  test('should report a function without a capability list', () => {
    const bytes = config();
    bytes[6] = 0;
    expect(findVirtioPciLayout(bytes)).toMatchObject({ ok: false, reason: 'no-capability-list' });
  });

  test('should report missing structures by type and a capability running past the space', () => {
    const bytes = config();
    bytes[0x70] = 0x05; // the notify capability becomes another vendor's
    bytes[0x85] = 0x00; // and the list ends at the PCI_CFG capability
    expect(findVirtioPciLayout(bytes)).toEqual({
      ok: false,
      reason: 'missing-capabilities',
      detail: 'virtio-pci capabilities missing: types 1, 2, 3, 4',
      missing: [1, 2, 3, 4],
    });
    const short = config().slice(0, 0x90);
    expect(walkVirtioCapabilities(short)).toEqual({
      ok: false,
      reason: 'capability-out-of-bounds',
      detail: 'capability at 0x84 runs past config space',
    });
  });

  test('should stop a looping list after 48 capabilities', () => {
    const bytes = config();
    bytes[0x41] = 0x84; // common → PCI_CFG → notify → … → common again
    const walked = walkVirtioCapabilities(bytes);
    if (!walked.ok) throw new Error(walked.detail);
    expect(walked.capabilities).toHaveLength(48);
    expect(walked.capabilities.filter((c) => c.cfgType === VIRTIO_PCI_CAP_PCI_CFG).length).toBeGreaterThan(1);
    expect(walked.capabilities.find((c) => c.cfgType === VIRTIO_PCI_CAP_NOTIFY_CFG)).toHaveProperty(
      'notifyOffMultiplier',
      4,
    );
  });
});
