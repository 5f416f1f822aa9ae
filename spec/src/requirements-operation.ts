/**
 * Normative statements of VIRTIO 1.4 §5.15.6.1 and §5.15.6.2: device operation in general.
 * Part of the catalogue assembled in order in `requirements.ts` (see there for sources and IDs).
 */
import type { Requirement } from './requirements';

/** Normative statements of VIRTIO 1.4 §5.15.6.1 and §5.15.6.2: device operation in general. */
export const OPERATION_REQUIREMENTS: readonly Requirement[] = [
  // §5.15.6.1 Driver Requirements: Device Operation
  {
    // Writes leave traces: the harness fills unplugged blocks with a canary after their last
    // UNPLUG and checks it before the block is plugged again. This is only sound while the device
    // side is known not to touch unplugged memory (dev.op.2 allows it to). Changes to memory
    // properties are not observable.
    id: 'drv.op.1',
    section: '5.15.6.1',
    level: 'MUST NOT',
    side: 'driver',
    topic: 'op',
    summary: 'The driver never writes to unplugged blocks or changes their memory properties.',
    testable: true,
    needs: ['observe-driver', 'memory-access'],
  },
  {
    id: 'drv.op.2',
    section: '5.15.6.1',
    level: 'MUST NOT',
    side: 'driver',
    topic: 'op',
    summary:
      'The driver never reads, or queries the memory properties of, unplugged blocks beyond `usable_region_size`.',
    testable: false,
    needs: [],
    untestableReason:
      'Needs a trace of guest CPU/DMA reads and property queries by physical address. Reads leave no trace in memory or in the request stream, and no adapter capability records guest accesses.',
  },
  {
    id: 'drv.op.3',
    section: '5.15.6.1',
    level: 'MUST NOT',
    side: 'driver',
    topic: 'op',
    summary:
      'The driver never uses DMA to read, or to query the properties of, unplugged blocks inside the usable region.',
    testable: false,
    needs: [],
    untestableReason:
      'Other (often passed-through) devices issue those DMA reads; neither the virtio-mem request stream nor any adapter capability observes them.',
  },
  {
    id: 'drv.op.4',
    section: '5.15.6.1',
    level: 'SHOULD NOT',
    side: 'driver',
    topic: 'op',
    summary:
      'Without UNPLUGGED_INACCESSIBLE negotiated, the driver avoids CPU reads/property queries of unplugged blocks inside the usable region.',
    testable: false,
    needs: [],
    untestableReason:
      'CPU reads leave no trace in guest memory or in the request stream; telling them apart would need a guest memory-access trace that no adapter capability provides.',
  },
  {
    id: 'drv.op.5',
    section: '5.15.6.1',
    level: 'MUST NOT',
    side: 'driver',
    topic: 'op',
    summary:
      'With UNPLUGGED_INACCESSIBLE negotiated, the driver never reads any unplugged block or queries its properties.',
    testable: false,
    needs: [],
    untestableReason:
      'Reads and property queries leave no trace in guest memory or in the request stream; no adapter capability traces guest accesses by physical address.',
  },
  {
    id: 'drv.op.6',
    section: '5.15.6.1',
    level: 'MUST NOT',
    side: 'driver',
    topic: 'op',
    summary: 'The driver never requests to unplug blocks whose memory or memory properties are still in use.',
    testable: false,
    needs: [],
    untestableReason:
      '"In use" is guest-internal state (allocator, pinned pages, dumps). Requests show what the driver unplugs, not whether the guest still uses it.',
  },
  {
    id: 'drv.op.7',
    section: '5.15.6.1',
    level: 'SHOULD',
    side: 'driver',
    topic: 'op',
    summary: 'After plugging blocks the driver initialises their memory, because its content is undefined.',
    testable: false,
    needs: [],
    untestableReason:
      'Initialisation happens inside the guest, when the guest chooses (e.g. zeroing on first allocation). Requests do not show it, and a host memory read cannot tell it from leftover content.',
  },
  {
    id: 'drv.op.8',
    section: '5.15.6.1',
    level: 'SHOULD',
    side: 'driver',
    topic: 'op',
    summary: 'The driver reacts to a changed `requested_size` by plugging or unplugging blocks.',
    testable: true,
    needs: ['observe-driver', 'host-resize'],
  },
  {
    // "Can use" is guest-internal; judged through proxies: no plugs outside the usable region,
    // none past `requested_size`, and no plug that is undone at once without a resize.
    id: 'drv.op.9',
    section: '5.15.6.1',
    level: 'SHOULD',
    side: 'driver',
    topic: 'op',
    summary: 'The driver plugs only blocks that it is able to make use of.',
    testable: true,
    needs: ['observe-driver'],
  },
  {
    // A permission: the verdict records how close the driver got to `requested_size`.
    id: 'drv.op.10',
    section: '5.15.6.1',
    level: 'MAY',
    side: 'driver',
    topic: 'op',
    summary:
      'The driver may fall short of `requested_size`, e.g. when it cannot free plugged blocks or alignment stops it using more.',
    testable: true,
    needs: ['observe-driver'],
  },
  {
    // Offer no PERSISTENT_SUSPEND, plug memory, ask the guest to suspend to RAM, and see whether
    // the platform reports a suspended guest.
    id: 'drv.op.11',
    section: '5.15.6.1',
    level: 'MUST NOT',
    side: 'driver',
    topic: 'op',
    summary:
      'Unless VIRTIO_MEM_F_PERSISTENT_SUSPEND was negotiated, the driver keeps the guest from entering deep sleep / suspend-to-RAM.',
    testable: true,
    needs: ['observe-driver', 'suspend'],
  },

  // §5.15.6.2 Device Requirements: Device Operation
  {
    id: 'dev.op.1',
    section: '5.15.6.2',
    level: 'MUST',
    side: 'device',
    topic: 'op',
    summary:
      'Plugged device memory has the same memory properties, with the same semantics, as comparable RAM on that platform.',
    testable: false,
    needs: [],
    untestableReason:
      'Platform memory properties (e.g. s390x storage keys/attributes, protection, usage hints) are used through special CPU instructions that no adapter exposes. The protocol does not define "comparable RAM".',
  },
  {
    // A permission: the verdict records whether unplugged contents changed.
    id: 'dev.op.2',
    section: '5.15.6.2',
    level: 'MAY',
    side: 'device',
    topic: 'op',
    summary:
      'The device may change the contents of unplugged blocks, or reset their properties to platform defaults, at any time.',
    testable: true,
    needs: ['memory-access'],
  },
  {
    // Contents only; memory properties are not observable through any adapter.
    id: 'dev.op.3',
    section: '5.15.6.2',
    level: 'MUST NOT',
    side: 'device',
    topic: 'op',
    summary: 'The device never changes the contents or memory properties of plugged blocks.',
    testable: true,
    needs: ['memory-access'],
  },
  {
    // Reading and writing are checkable; querying/modifying attributes is not.
    id: 'dev.op.4',
    section: '5.15.6.2',
    level: 'MUST',
    side: 'device',
    topic: 'op',
    summary: 'Plugged blocks can be read and written, and their memory attributes queried and modified.',
    testable: true,
    needs: ['memory-access'],
  },
  {
    // feature-negotiation is needed to decline the feature when the device offers it.
    id: 'dev.op.5',
    section: '5.15.6.2',
    level: 'MUST',
    side: 'device',
    topic: 'op',
    summary:
      'Without UNPLUGGED_INACCESSIBLE negotiated, CPU reads/property queries of unplugged blocks inside the usable region work.',
    testable: true,
    needs: ['memory-access', 'feature-negotiation'],
  },
  {
    id: 'dev.op.6',
    section: '5.15.6.2',
    level: 'MAY',
    side: 'device',
    topic: 'op',
    summary: 'The device may change block states during a system reset.',
    testable: true,
    needs: ['system-reset'],
  },
  {
    id: 'dev.op.7',
    section: '5.15.6.2',
    level: 'SHOULD',
    side: 'device',
    topic: 'op',
    summary: 'During a system reset the device unplugs every block.',
    testable: true,
    needs: ['system-reset'],
  },
  {
    // The spec sentence reads "MUST NOT not change"; the intent is clearly MUST NOT change.
    id: 'dev.op.8',
    section: '5.15.6.2',
    level: 'MUST NOT',
    side: 'device',
    topic: 'op',
    summary:
      "With VIRTIO_MEM_F_PERSISTENT_SUSPEND negotiated, suspending and waking up leave every block's state unchanged.",
    testable: true,
    needs: ['suspend'],
  },
];
