import {
  StructLayout,
  VirtioPciCapLayout,
  VirtioPciCfgCapLayout,
  VirtioPciCommonCfgLayout,
  VirtioPciNotifyCapLayout,
} from './index';
import { tiles } from '../test/tiles';

describe('virtio-pci layouts (frozen, VIRTIO 1.4 §4.1.4)', () => {
  test.each([
    VirtioPciCapLayout,
    VirtioPciNotifyCapLayout,
    VirtioPciCfgCapLayout,
    VirtioPciCommonCfgLayout,
  ] as StructLayout[])('$name should tile its $size bytes', (layout) => {
    expect(tiles(layout)).toBe(true);
  });

  test('struct virtio_pci_cap should place bar at 4, offset at 8, length at 12; the extensions at 16', () => {
    expect(VirtioPciCapLayout.size).toBe(16);
    expect([
      VirtioPciCapLayout.fields.cfg_type.offset,
      VirtioPciCapLayout.fields.bar.offset,
      VirtioPciCapLayout.fields.offset.offset,
      VirtioPciCapLayout.fields.length.offset,
    ]).toEqual([3, 4, 8, 12]);
    expect(VirtioPciNotifyCapLayout.fields.notify_off_multiplier.offset).toBe(16);
    expect(VirtioPciCfgCapLayout.fields.pci_cfg_data.offset).toBe(16);
  });

  test('struct virtio_pci_common_cfg should have the offsets of the spec', () => {
    expect(VirtioPciCommonCfgLayout.size).toBe(0x38);
    expect(
      Object.fromEntries(Object.entries(VirtioPciCommonCfgLayout.fields).map(([name, f]) => [name, f.offset])),
    ).toEqual({
      device_feature_select: 0x00,
      device_feature: 0x04,
      driver_feature_select: 0x08,
      driver_feature: 0x0c,
      config_msix_vector: 0x10,
      num_queues: 0x12,
      device_status: 0x14,
      config_generation: 0x15,
      queue_select: 0x16,
      queue_size: 0x18,
      queue_msix_vector: 0x1a,
      queue_enable: 0x1c,
      queue_notify_off: 0x1e,
      queue_desc: 0x20,
      queue_driver: 0x28,
      queue_device: 0x30,
    });
  });
});
