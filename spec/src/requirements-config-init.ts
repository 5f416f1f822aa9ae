/**
 * Normative statements of VIRTIO 1.4 §5.15.4 and §5.15.5: the configuration layout and device initialisation.
 * Part of the catalogue assembled in order in `requirements.ts` (see there for sources and IDs).
 */
import type { Requirement } from './requirements';

/** Normative statements of VIRTIO 1.4 §5.15.4 and §5.15.5: the configuration layout and device initialisation. */
export const CONFIG_AND_INIT_REQUIREMENTS: readonly Requirement[] = [
  // §5.15.4.1 Driver Requirements: Device configuration layout
  {
    id: 'drv.cfg.1',
    section: '5.15.4.1',
    level: 'MUST NOT',
    side: 'driver',
    topic: 'cfg',
    summary: 'The driver never writes to any field of the device configuration space.',
    testable: true,
    needs: ['observe-driver'],
  },
  {
    // Checked differentially: garbage in `padding` must not change what the driver does.
    id: 'drv.cfg.2',
    section: '5.15.4.1',
    level: 'MUST',
    side: 'driver',
    topic: 'cfg',
    summary: 'The driver attaches no meaning to the config `padding` bytes.',
    testable: true,
    needs: ['observe-driver'],
  },
  {
    // Only effects visible in requests and feature/status writes can be judged (e.g. garbage
    // node_id without the feature must not break probing); guest NUMA placement is not visible.
    id: 'drv.cfg.3',
    section: '5.15.4.1',
    level: 'MUST',
    side: 'driver',
    topic: 'cfg',
    summary: 'The driver disregards `node_id` unless VIRTIO_MEM_F_ACPI_PXM was negotiated.',
    testable: true,
    needs: ['observe-driver'],
  },

  // §5.15.4.2 Device Requirements: Device configuration layout
  {
    // A permission: the verdict only records whether the device does it.
    id: 'dev.cfg.1',
    section: '5.15.4.2',
    level: 'MAY',
    side: 'device',
    topic: 'cfg',
    summary: 'The device is allowed to change `usable_region_size` and `requested_size` at runtime.',
    testable: true,
    needs: ['host-resize'],
  },
  {
    id: 'dev.cfg.2',
    section: '5.15.4.2',
    level: 'MUST NOT',
    side: 'device',
    topic: 'cfg',
    summary: '`block_size`, `node_id`, `addr` and `region_size` stay constant; only a system reset may change them.',
    testable: true,
    needs: [],
  },
  {
    id: 'dev.cfg.3',
    section: '5.15.4.2',
    level: 'MUST',
    side: 'device',
    topic: 'cfg',
    summary: '`plugged_size` always equals the number of plugged blocks times `block_size`.',
    testable: true,
    needs: [],
  },
  {
    id: 'dev.cfg.4',
    section: '5.15.4.2',
    level: 'MUST',
    side: 'device',
    topic: 'cfg',
    summary: '`usable_region_size` is never smaller than `requested_size`.',
    testable: true,
    needs: ['host-resize'],
  },
  {
    id: 'dev.cfg.5',
    section: '5.15.4.2',
    level: 'MUST',
    side: 'device',
    topic: 'cfg',
    summary: '`block_size` is a power of two.',
    testable: true,
    needs: [],
  },
  {
    id: 'dev.cfg.6',
    section: '5.15.4.2',
    level: 'MUST',
    side: 'device',
    topic: 'cfg',
    summary:
      '`addr`, `region_size`, `usable_region_size`, `plugged_size` and `requested_size` are all multiples of `block_size`.',
    testable: true,
    needs: [],
  },
  {
    id: 'dev.cfg.7',
    section: '5.15.4.2',
    level: 'MUST',
    side: 'device',
    topic: 'cfg',
    summary: '`region_size` is zero or positive.',
    testable: false,
    needs: [],
    untestableReason:
      'Vacuous: `region_size` is an unsigned le64, so every value the device can present satisfies it; no observation can fail.',
  },
  {
    id: 'dev.cfg.8',
    section: '5.15.4.2',
    level: 'MUST NOT',
    side: 'device',
    topic: 'cfg',
    summary: '`usable_region_size` shrinks only while an UNPLUG ALL request is processed or during a system reset.',
    testable: true,
    needs: ['host-resize'],
  },
  {
    id: 'dev.cfg.9',
    section: '5.15.4.2',
    level: 'MUST',
    side: 'device',
    topic: 'cfg',
    summary:
      'A change of `usable_region_size` or `requested_size` is announced by a config-change notification, except during UNPLUG ALL.',
    testable: true,
    needs: ['host-resize'],
  },
  {
    id: 'dev.cfg.10',
    section: '5.15.4.2',
    level: 'SHOULD NOT',
    side: 'device',
    topic: 'cfg',
    summary: 'The device avoids a config-change notification whose only cause is a change of `plugged_size`.',
    testable: true,
    needs: [],
  },
  {
    // A permission: the verdict only records whether spurious notifications were seen.
    id: 'dev.cfg.11',
    section: '5.15.4.2',
    level: 'MAY',
    side: 'device',
    topic: 'cfg',
    summary: 'The device may send config-change notifications even when no config field changed.',
    testable: true,
    needs: [],
  },

  // §5.15.5.1 Driver Requirements: Device Initialization
  {
    // The harness cannot know whether the driver "supports" the feature; a refusal is graded.
    id: 'drv.init.1',
    section: '5.15.5.1',
    level: 'SHOULD',
    side: 'driver',
    topic: 'init',
    summary:
      'The driver accepts VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE when the device offers it and the driver can support it.',
    testable: true,
    needs: ['observe-driver'],
  },
  {
    // Present plugged_size > 0 at probe (answer BUSY first to see the retry). "Not in use" is
    // assumed for a fresh boot; a STATE-based resync instead is graded, not failed.
    id: 'drv.init.2',
    section: '5.15.5.1',
    level: 'SHOULD',
    side: 'driver',
    topic: 'init',
    summary:
      'If memory is still plugged at init and not in use, the driver repeats UNPLUG ALL until it is acknowledged.',
    testable: true,
    needs: ['observe-driver'],
  },

  // §5.15.5.2 Device Requirements: Device Initialization
  {
    id: 'dev.init.1',
    section: '5.15.5.2',
    level: 'MAY',
    side: 'device',
    topic: 'init',
    summary: 'The device may stop working when the driver does not accept VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE.',
    testable: true,
    needs: ['feature-negotiation'],
  },
  {
    id: 'dev.init.2',
    section: '5.15.5.2',
    level: 'MUST NOT',
    side: 'device',
    topic: 'init',
    summary: "A device reset leaves every block's plugged/unplugged state as it was.",
    testable: true,
    needs: ['device-reset'],
  },
  {
    // Contents are checkable with memory-access; memory properties (e.g. s390x storage keys) are not.
    id: 'dev.init.3',
    section: '5.15.5.2',
    level: 'MUST NOT',
    side: 'device',
    topic: 'init',
    summary: 'A device reset leaves the contents and memory properties of plugged blocks untouched.',
    testable: true,
    needs: ['device-reset', 'memory-access'],
  },
  {
    // An adapter that can suspend and wake the platform shows that the platform supports it;
    // the vector then checks the offered feature bits.
    id: 'dev.init.4',
    section: '5.15.5.2',
    level: 'SHOULD',
    side: 'device',
    topic: 'init',
    summary:
      'The device offers VIRTIO_MEM_F_PERSISTENT_SUSPEND when the platform can suspend to RAM with blocks plugged.',
    testable: true,
    needs: ['suspend'],
  },
];
