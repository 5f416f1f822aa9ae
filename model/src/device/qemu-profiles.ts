/**
 * The QEMU device profiles, one per QEMU version the suite runs against: `qemu-7.2` (Debian 12's
 * QEMU) and `qemu-10.0` (bookworm-backports). Every knob cites the function of that version's
 * `hw/virtio/virtio-mem.c` it comes from ({@link DeviceProfile.knobSources}), and each value is
 * checked against the real binary by `npm run test:qemu` (the corpus, the differential check, and
 * each knob in which the versions differ directly: the S3 wake-up and UNPLUG ALL during a migration).
 *
 * Both describe `virtio-mem-pci` on x86-64 q35 with a `memory-backend-ram` backend as the qemu
 * adapter builds it: `unplugged-inaccessible` set explicitly (off unless a vector's set-up offers
 * the feature), so the two versions are compared on the same device although QEMU 8.1 turned the
 * property on by default for new machine types.
 */
import {
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_ACPI_PXM,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  featureMask,
} from '../../../spec/src/index';
import type { DeviceProfile, ProfileKnob } from './profiles';

const MiB = 1n << 20n;

/** Where QEMU 7.2.0's virtio-mem device lives. */
export const QEMU_7_2_SOURCE = 'https://github.com/qemu/qemu/blob/v7.2.0/hw/virtio/virtio-mem.c';
/** Where QEMU 10.0.2's virtio-mem device lives. */
export const QEMU_10_0_SOURCE = 'https://github.com/qemu/qemu/blob/v10.0.2/hw/virtio/virtio-mem.c';

/** The sources of the knobs both versions share, each naming the function that decides it. */
function sharedSources(file: string): Partial<Record<ProfileKnob, string>> {
  return {
    plugCheckOrder: `${file} (virtio_mem_state_change_request: valid range, then the size budget, then the block state)`,
    overBudget: `${file} (virtio_mem_state_change_request: NACK when size + request exceeds requested_size)`,
    usablePolicy: `${file} (virtio_mem_resize_usable_region: requested + VIRTIO_MEM_USABLE_EXTENT of 256 MiB on x86-64, aligned up to block_size, 0 when nothing is requested)`,
    unplugAllUsable: `${file} (virtio_mem_unplug_all ends with virtio_mem_resize_usable_region(..., can_shrink = true))`,
    unknownType: `${file} (virtio_mem_handle_request: virtio_error and virtqueue_detach_element for an unknown type)`,
    malformedChain: `${file} (virtio_mem_handle_request: virtio_error for a short request or response buffer)`,
    layoutStrictness: `${file} (virtio_mem_handle_request gathers the request with iov_to_buf over every readable descriptor)`,
    resizeValidation: `${file} (virtio_mem_set_requested_size: aligned to block_size, at most the backend size; an equal value is accepted)`,
    notifyOnUnchangedResize: `${file} (virtio_mem_set_requested_size calls virtio_notify_config even when the value did not change)`,
    unpluggedInaccessibleRequired: `${file} (virtio_mem_validate_features refuses FEATURES_OK when UNPLUGGED_INACCESSIBLE is offered but not accepted)`,
    unpluggedMemory: `${file} (with dynamic-memslots off the whole backend is one memory region mapped into the guest)`,
    defaultFeatures: `${file} (virtio_mem_get_features: ACPI_PXM, as q35 has NUMA state and ACPI; UNPLUGGED_INACCESSIBLE only with the property on, which the qemu adapter leaves off unless a set-up offers it)`,
  };
}

/** QEMU 7.2 `virtio-mem-pci` on x86-64 with a RAM backend. */
export const QEMU_7_2_PROFILE: DeviceProfile = {
  name: 'qemu-7.2',
  title: 'QEMU 7.2 virtio-mem-pci (x86-64, memory-backend-ram)',
  source: QEMU_7_2_SOURCE,
  // Range first, then the budget, then the block state: an over-budget plug of plugged blocks is NACKed.
  plugCheckOrder: ['range', 'budget', 'state'],
  overBudget: 'NACK',
  // Two 128 MiB Linux memory blocks of margin on x86-64, rounded up to block_size.
  usablePolicy: { kind: 'extent', extent: 256n * MiB, round: 'up' },
  unplugAllUsable: 'recompute',
  unknownType: 'needs-reset',
  malformedChain: 'needs-reset',
  layoutStrictness: 'any-split',
  resizeValidation: { aligned: true, withinRegion: true, mustDiffer: false },
  notifyOnUnchangedResize: true,
  // virtio_mem_system_reset, registered with qemu_register_reset, unplugs everything.
  systemReset: 'unplug-all',
  // unplugged-inaccessible is "auto" for 7.2 machine types, which resolves to off for anonymous
  // RAM; when it is offered, validate_features refuses a driver that does not accept it.
  unpluggedInaccessibleRequired: 'refuse-features-ok',
  // The wake-up from S3 runs every registered reset handler: virtio-mem unplugged everything.
  suspendWithoutPersistence: 'unplug-all',
  // Blocks do not survive a suspend, so there is no persistent suspend to offer (dev.init.4 does not apply).
  platformCanSuspend: false,
  // The whole memory backend is mapped into the guest in 7.2 (no per-block protection, even with
  // unplugged-inaccessible=on); unplugging discards a block's pages, plugging does not clear them.
  unpluggedMemory: 'open',
  // virtio_mem_unplug_all asks virtio_mem_is_busy() first, whether or not anything is plugged.
  unplugAllWhileBusy: 'busy',
  systemResetWhileBusy: 'keep',
  defaultFeatures: featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_ACPI_PXM),
  knobSources: {
    ...sharedSources(QEMU_7_2_SOURCE),
    systemReset: `${QEMU_7_2_SOURCE} (virtio_mem_system_reset, registered with qemu_register_reset, calls virtio_mem_unplug_all)`,
    suspendWithoutPersistence: `${QEMU_7_2_SOURCE} (virtio_mem_system_reset knows no reset type, so the S3 wake-up's device reset unplugs too)`,
    platformCanSuspend: `${QEMU_7_2_SOURCE} (virtio_mem_get_features knows no VIRTIO_MEM_F_PERSISTENT_SUSPEND)`,
    unplugAllWhileBusy: `${QEMU_7_2_SOURCE} (virtio_mem_unplug_all returns -EBUSY while virtio_mem_is_busy(), before looking at the plugged size)`,
    systemResetWhileBusy: `${QEMU_7_2_SOURCE} (virtio_mem_system_reset unplugs through virtio_mem_unplug_all, which refuses while virtio_mem_is_busy(), so the blocks stay plugged)`,
  },
  notes: [
    'BUSY only during migration or host failures; the model produces it when BUSY is injected or the host holds it busy (host-busy).',
    'A malformed chain or unknown type marks the device broken: NEEDS_RESET, no used entry.',
    'config_generation changes only with a configuration-change notification (virtio_notify_config in https://github.com/qemu/qemu/blob/v7.2.0/hw/virtio/virtio.c), not when a request changes plugged_size: a known deviation (dev.virtio.6) the model does not reproduce.',
    "The qemu adapter suspends through q35's ICH9 power-management registers and wakes with QMP system_wakeup; the wake-up unplugs every block (vmem.dev.ambiguity.suspend-without-persistence: informational), and the PERSISTENT_SUSPEND vectors cannot run, as 7.2 never offers the feature.",
  ],
};

/** QEMU 10.0 `virtio-mem-pci` on x86-64 with a RAM backend. */
export const QEMU_10_0_PROFILE: DeviceProfile = {
  ...QEMU_7_2_PROFILE,
  name: 'qemu-10.0',
  title: 'QEMU 10.0 virtio-mem-pci (x86-64, memory-backend-ram)',
  source: QEMU_10_0_SOURCE,
  // Only qemu_devices_reset() resets (a dedicated Resettable) unplug; a device reset keeps the blocks.
  systemReset: 'unplug-all',
  // The wake-up from S3 is a RESET_TYPE_WAKEUP, on which virtio-mem keeps every block (with or
  // without PERSISTENT_SUSPEND negotiated).
  suspendWithoutPersistence: 'keep',
  // x86 q35 with S3 enabled can suspend with plugged blocks, and QEMU offers PERSISTENT_SUSPEND.
  platformCanSuspend: true,
  // Since 8.1 UNPLUG ALL with nothing plugged succeeds even while migration makes the device busy.
  unplugAllWhileBusy: 'ack-when-empty',
  systemResetWhileBusy: 'keep',
  defaultFeatures:
    featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_ACPI_PXM) | featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND),
  knobSources: {
    ...sharedSources(QEMU_10_0_SOURCE),
    systemReset: `${QEMU_10_0_SOURCE} (virtio_mem_system_reset_hold, a Resettable registered with qemu_register_resettable, calls virtio_mem_unplug_all; a plain device reset no longer does)`,
    suspendWithoutPersistence: `${QEMU_10_0_SOURCE} (virtio_mem_system_reset_hold returns early for RESET_TYPE_WAKEUP)`,
    platformCanSuspend: `${QEMU_10_0_SOURCE} (virtio_mem_get_features offers VIRTIO_MEM_F_PERSISTENT_SUSPEND when qemu_wakeup_suspend_enabled())`,
    unplugAllWhileBusy: `${QEMU_10_0_SOURCE} (virtio_mem_unplug_all asks virtio_mem_is_busy() only when some memory is plugged)`,
    systemResetWhileBusy: `${QEMU_10_0_SOURCE} (virtio_mem_system_reset_hold unplugs through virtio_mem_unplug_all, which refuses while virtio_mem_is_busy() when memory is plugged)`,
    defaultFeatures: `${QEMU_10_0_SOURCE} (virtio_mem_get_features: ACPI_PXM, and PERSISTENT_SUSPEND as q35 supports S3 wake-up; UNPLUGGED_INACCESSIBLE only with the property on, which the qemu adapter leaves off unless a set-up offers it)`,
  },
  notes: [
    'BUSY only during migration or host failures; the model produces it when BUSY is injected or the host holds it busy (host-busy).',
    'A malformed chain or unknown type marks the device broken: NEEDS_RESET, no used entry.',
    'config_generation still changes only with a configuration-change notification (virtio_notify_config in https://github.com/qemu/qemu/blob/v10.0.2/hw/virtio/virtio.c): the same known deviation (dev.virtio.6) as 7.2, which the model does not reproduce.',
    "unplugged-inaccessible defaults to on for 8.1+ machine types; the qemu adapter sets it explicitly (off unless the vector's set-up offers the feature), so the default offer here leaves it out, as 7.2's 'auto' did for anonymous RAM.",
    "The qemu adapter suspends through q35's ICH9 power-management registers and wakes with QMP system_wakeup; the wake-up keeps every block, with PERSISTENT_SUSPEND negotiated (the vmem.dev.suspend.persistent-* vectors) or not (vmem.dev.ambiguity.suspend-without-persistence passes, where 7.2 unplugs).",
  ],
};
