/**
 * The normative statements of the virtio memory device, VIRTIO 1.4 §5.15.
 *
 * Source: `oasis-tcs/virtio-spec` `device-types/mem/description.tex` at tag v1.4-cs01
 * (commit 15f488c1; the last change to the mem section is a1849e3, PERSISTENT_SUSPEND).
 * Each entry is one sentence that contains MUST / MUST NOT / SHOULD / SHOULD NOT / MAY inside a
 * `\drivernormative` or `\devicenormative` block. The list is in document order: 71 statements,
 * 50 for the device and 21 for the driver. Section numbers follow the
 * `\subsection`/`\subsubsection`/`\paragraph` nesting; the requirement blocks are numbered
 * subsections themselves. Summaries are our own paraphrases, not the spec's sentences.
 *
 * IDs are `dev.<topic>.<n>` / `drv.<topic>.<n>`, numbered in document order within each topic.
 * Once published, an ID is never reused for a different statement.
 */

/** Normative levels of a statement, spelled as in the spec. */
export const REQUIREMENT_LEVELS = ['MUST', 'MUST NOT', 'SHOULD', 'SHOULD NOT', 'MAY'] as const;
/** One of {@link REQUIREMENT_LEVELS}. */
export type RequirementLevel = (typeof REQUIREMENT_LEVELS)[number];

/** The sides of the protocol a statement may bind. */
export const REQUIREMENT_SIDES = ['device', 'driver'] as const;
/** One of {@link REQUIREMENT_SIDES}. */
export type RequirementSide = (typeof REQUIREMENT_SIDES)[number];

/** Topics of the statements: the middle part of an ID (`dev.<topic>.<n>`). */
export const REQUIREMENT_TOPICS = ['cfg', 'init', 'op', 'plug', 'unplug', 'unplugall', 'state'] as const;
/** One of {@link REQUIREMENT_TOPICS}. */
export type RequirementTopic = (typeof REQUIREMENT_TOPICS)[number];

/**
 * Adapter capabilities (beyond sending requests and reading config) that checking a statement needs.
 *
 * - `memory-access`: read and write guest-physical memory from the host side (e.g. QEMU qtest).
 * - `system-reset`: reset the whole machine, not just the virtio device.
 * - `device-reset`: reset the virtio device (write 0 to the device status).
 * - `host-resize`: change `requested_size` from the host-management side.
 * - `feature-negotiation`: decline offered feature bits and watch how the device reacts.
 * - `suspend`: put the platform into suspend-to-RAM, wake it, and see whether the guest entered it.
 * - `observe-driver`: run a real driver against a device the harness controls, and record the
 *   requests, feature and status writes and config accesses that the driver makes.
 */
export const REQUIREMENT_CAPABILITIES = [
  'memory-access',
  'system-reset',
  'device-reset',
  'host-resize',
  'feature-negotiation',
  'suspend',
  'observe-driver',
] as const;
/** One of {@link REQUIREMENT_CAPABILITIES}. */
export type RequirementCapability = (typeof REQUIREMENT_CAPABILITIES)[number];

/** One normative statement of VIRTIO 1.4 §5.15. */
export interface Requirement {
  /** Stable ID, e.g. `'dev.plug.3'`. */
  readonly id: string;
  /** VIRTIO 1.4 section of the requirement block, e.g. `'5.15.6.3.2'`. */
  readonly section: string;
  readonly level: RequirementLevel;
  readonly side: RequirementSide;
  readonly topic: RequirementTopic;
  /** Our own one-line paraphrase (at most 160 characters), NOT the spec's sentence. */
  readonly summary: string;
  /** Whether a conformance vector can check it through the protocol (possibly with capabilities). */
  readonly testable: boolean;
  /** Capabilities needed when testable (`[]` = plain requests and config reads). */
  readonly needs: readonly RequirementCapability[];
  /** Present exactly when `testable` is false: why no vector can check it. */
  readonly untestableReason?: string;
}

/** All 71 normative statements of §5.15, in spec document order. */
export const REQUIREMENTS: readonly Requirement[] = [
  // §5.15.4.1 Driver Requirements: Device configuration layout
  {
    id: 'drv.cfg.1', section: '5.15.4.1', level: 'MUST NOT', side: 'driver', topic: 'cfg',
    summary: 'The driver never writes to any field of the device configuration space.',
    testable: true, needs: ['observe-driver'],
  },
  {
    // Checked differentially: garbage in `padding` must not change what the driver does.
    id: 'drv.cfg.2', section: '5.15.4.1', level: 'MUST', side: 'driver', topic: 'cfg',
    summary: 'The driver attaches no meaning to the config `padding` bytes.',
    testable: true, needs: ['observe-driver'],
  },
  {
    // Only effects visible in requests and feature/status writes can be judged (e.g. garbage
    // node_id without the feature must not break probing); guest NUMA placement is not visible.
    id: 'drv.cfg.3', section: '5.15.4.1', level: 'MUST', side: 'driver', topic: 'cfg',
    summary: 'The driver disregards `node_id` unless VIRTIO_MEM_F_ACPI_PXM was negotiated.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.4.2 Device Requirements: Device configuration layout
  {
    // A permission: the verdict only records whether the device does it.
    id: 'dev.cfg.1', section: '5.15.4.2', level: 'MAY', side: 'device', topic: 'cfg',
    summary: 'The device is allowed to change `usable_region_size` and `requested_size` at runtime.',
    testable: true, needs: ['host-resize'],
  },
  {
    id: 'dev.cfg.2', section: '5.15.4.2', level: 'MUST NOT', side: 'device', topic: 'cfg',
    summary: '`block_size`, `node_id`, `addr` and `region_size` stay constant; only a system reset may change them.',
    testable: true, needs: [],
  },
  {
    id: 'dev.cfg.3', section: '5.15.4.2', level: 'MUST', side: 'device', topic: 'cfg',
    summary: '`plugged_size` always equals the number of plugged blocks times `block_size`.',
    testable: true, needs: [],
  },
  {
    id: 'dev.cfg.4', section: '5.15.4.2', level: 'MUST', side: 'device', topic: 'cfg',
    summary: '`usable_region_size` is never smaller than `requested_size`.',
    testable: true, needs: ['host-resize'],
  },
  {
    id: 'dev.cfg.5', section: '5.15.4.2', level: 'MUST', side: 'device', topic: 'cfg',
    summary: '`block_size` is a power of two.',
    testable: true, needs: [],
  },
  {
    id: 'dev.cfg.6', section: '5.15.4.2', level: 'MUST', side: 'device', topic: 'cfg',
    summary: '`addr`, `region_size`, `usable_region_size`, `plugged_size` and `requested_size` are all multiples of `block_size`.',
    testable: true, needs: [],
  },
  {
    id: 'dev.cfg.7', section: '5.15.4.2', level: 'MUST', side: 'device', topic: 'cfg',
    summary: '`region_size` is zero or positive.',
    testable: false, needs: [],
    untestableReason:
      'Vacuous: `region_size` is an unsigned le64, so every value the device can present satisfies it; no observation can fail.',
  },
  {
    id: 'dev.cfg.8', section: '5.15.4.2', level: 'MUST NOT', side: 'device', topic: 'cfg',
    summary: '`usable_region_size` shrinks only while an UNPLUG ALL request is processed or during a system reset.',
    testable: true, needs: ['host-resize'],
  },
  {
    id: 'dev.cfg.9', section: '5.15.4.2', level: 'MUST', side: 'device', topic: 'cfg',
    summary: 'A change of `usable_region_size` or `requested_size` is announced by a config-change notification, except during UNPLUG ALL.',
    testable: true, needs: ['host-resize'],
  },
  {
    id: 'dev.cfg.10', section: '5.15.4.2', level: 'SHOULD NOT', side: 'device', topic: 'cfg',
    summary: 'The device avoids a config-change notification whose only cause is a change of `plugged_size`.',
    testable: true, needs: [],
  },
  {
    // A permission: the verdict only records whether spurious notifications were seen.
    id: 'dev.cfg.11', section: '5.15.4.2', level: 'MAY', side: 'device', topic: 'cfg',
    summary: 'The device may send config-change notifications even when no config field changed.',
    testable: true, needs: [],
  },

  // §5.15.5.1 Driver Requirements: Device Initialization
  {
    // The harness cannot know whether the driver "supports" the feature; a refusal is graded.
    id: 'drv.init.1', section: '5.15.5.1', level: 'SHOULD', side: 'driver', topic: 'init',
    summary: 'The driver accepts VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE when the device offers it and the driver can support it.',
    testable: true, needs: ['observe-driver'],
  },
  {
    // Present plugged_size > 0 at probe (answer BUSY first to see the retry). "Not in use" is
    // assumed for a fresh boot; a STATE-based resync instead is graded, not failed.
    id: 'drv.init.2', section: '5.15.5.1', level: 'SHOULD', side: 'driver', topic: 'init',
    summary: 'If memory is still plugged at init and not in use, the driver repeats UNPLUG ALL until it is acknowledged.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.5.2 Device Requirements: Device Initialization
  {
    id: 'dev.init.1', section: '5.15.5.2', level: 'MAY', side: 'device', topic: 'init',
    summary: 'The device may stop working when the driver does not accept VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE.',
    testable: true, needs: ['feature-negotiation'],
  },
  {
    id: 'dev.init.2', section: '5.15.5.2', level: 'MUST NOT', side: 'device', topic: 'init',
    summary: "A device reset leaves every block's plugged/unplugged state as it was.",
    testable: true, needs: ['device-reset'],
  },
  {
    // Contents are checkable with memory-access; memory properties (e.g. s390x storage keys) are not.
    id: 'dev.init.3', section: '5.15.5.2', level: 'MUST NOT', side: 'device', topic: 'init',
    summary: 'A device reset leaves the contents and memory properties of plugged blocks untouched.',
    testable: true, needs: ['device-reset', 'memory-access'],
  },
  {
    // An adapter that can suspend and wake the platform shows that the platform supports it;
    // the vector then checks the offered feature bits.
    id: 'dev.init.4', section: '5.15.5.2', level: 'SHOULD', side: 'device', topic: 'init',
    summary: 'The device offers VIRTIO_MEM_F_PERSISTENT_SUSPEND when the platform can suspend to RAM with blocks plugged.',
    testable: true, needs: ['suspend'],
  },

  // §5.15.6.1 Driver Requirements: Device Operation
  {
    // Writes leave traces: the harness fills unplugged blocks with a canary after their last
    // UNPLUG and checks it before the block is plugged again. This is only sound while the device
    // side is known not to touch unplugged memory (dev.op.2 allows it to). Changes to memory
    // properties are not observable.
    id: 'drv.op.1', section: '5.15.6.1', level: 'MUST NOT', side: 'driver', topic: 'op',
    summary: 'The driver never writes to unplugged blocks or changes their memory properties.',
    testable: true, needs: ['observe-driver', 'memory-access'],
  },
  {
    id: 'drv.op.2', section: '5.15.6.1', level: 'MUST NOT', side: 'driver', topic: 'op',
    summary: 'The driver never reads, or queries the memory properties of, unplugged blocks beyond `usable_region_size`.',
    testable: false, needs: [],
    untestableReason:
      'Needs a trace of guest CPU/DMA reads and property queries by physical address. Reads leave no trace in memory or in the request stream, and no adapter capability records guest accesses.',
  },
  {
    id: 'drv.op.3', section: '5.15.6.1', level: 'MUST NOT', side: 'driver', topic: 'op',
    summary: 'The driver never uses DMA to read, or to query the properties of, unplugged blocks inside the usable region.',
    testable: false, needs: [],
    untestableReason:
      'Other (often passed-through) devices issue those DMA reads; neither the virtio-mem request stream nor any adapter capability observes them.',
  },
  {
    id: 'drv.op.4', section: '5.15.6.1', level: 'SHOULD NOT', side: 'driver', topic: 'op',
    summary: 'Without UNPLUGGED_INACCESSIBLE negotiated, the driver avoids CPU reads/property queries of unplugged blocks inside the usable region.',
    testable: false, needs: [],
    untestableReason:
      'CPU reads leave no trace in guest memory or in the request stream; telling them apart would need a guest memory-access trace that no adapter capability provides.',
  },
  {
    id: 'drv.op.5', section: '5.15.6.1', level: 'MUST NOT', side: 'driver', topic: 'op',
    summary: 'With UNPLUGGED_INACCESSIBLE negotiated, the driver never reads any unplugged block or queries its properties.',
    testable: false, needs: [],
    untestableReason:
      'Reads and property queries leave no trace in guest memory or in the request stream; no adapter capability traces guest accesses by physical address.',
  },
  {
    id: 'drv.op.6', section: '5.15.6.1', level: 'MUST NOT', side: 'driver', topic: 'op',
    summary: 'The driver never requests to unplug blocks whose memory or memory properties are still in use.',
    testable: false, needs: [],
    untestableReason:
      '"In use" is guest-internal state (allocator, pinned pages, dumps). Requests show what the driver unplugs, not whether the guest still uses it.',
  },
  {
    id: 'drv.op.7', section: '5.15.6.1', level: 'SHOULD', side: 'driver', topic: 'op',
    summary: 'After plugging blocks the driver initialises their memory, because its content is undefined.',
    testable: false, needs: [],
    untestableReason:
      'Initialisation happens inside the guest, when the guest chooses (e.g. zeroing on first allocation). Requests do not show it, and a host memory read cannot tell it from leftover content.',
  },
  {
    id: 'drv.op.8', section: '5.15.6.1', level: 'SHOULD', side: 'driver', topic: 'op',
    summary: 'The driver reacts to a changed `requested_size` by plugging or unplugging blocks.',
    testable: true, needs: ['observe-driver', 'host-resize'],
  },
  {
    // "Can use" is guest-internal; judged through proxies: no plugs outside the usable region,
    // none past `requested_size`, and no plug that is undone at once without a resize.
    id: 'drv.op.9', section: '5.15.6.1', level: 'SHOULD', side: 'driver', topic: 'op',
    summary: 'The driver plugs only blocks that it is able to make use of.',
    testable: true, needs: ['observe-driver'],
  },
  {
    // A permission: the verdict records how close the driver got to `requested_size`.
    id: 'drv.op.10', section: '5.15.6.1', level: 'MAY', side: 'driver', topic: 'op',
    summary: 'The driver may fall short of `requested_size`, e.g. when it cannot free plugged blocks or alignment stops it using more.',
    testable: true, needs: ['observe-driver'],
  },
  {
    // Offer no PERSISTENT_SUSPEND, plug memory, ask the guest to suspend to RAM, and see whether
    // the platform reports a suspended guest.
    id: 'drv.op.11', section: '5.15.6.1', level: 'MUST NOT', side: 'driver', topic: 'op',
    summary: 'Unless VIRTIO_MEM_F_PERSISTENT_SUSPEND was negotiated, the driver keeps the guest from entering deep sleep / suspend-to-RAM.',
    testable: true, needs: ['observe-driver', 'suspend'],
  },

  // §5.15.6.2 Device Requirements: Device Operation
  {
    id: 'dev.op.1', section: '5.15.6.2', level: 'MUST', side: 'device', topic: 'op',
    summary: 'Plugged device memory has the same memory properties, with the same semantics, as comparable RAM on that platform.',
    testable: false, needs: [],
    untestableReason:
      'Platform memory properties (e.g. s390x storage keys/attributes, protection, usage hints) are used through special CPU instructions that no adapter exposes. The protocol does not define "comparable RAM".',
  },
  {
    // A permission: the verdict records whether unplugged contents changed.
    id: 'dev.op.2', section: '5.15.6.2', level: 'MAY', side: 'device', topic: 'op',
    summary: 'The device may change the contents of unplugged blocks, or reset their properties to platform defaults, at any time.',
    testable: true, needs: ['memory-access'],
  },
  {
    // Contents only; memory properties are not observable through any adapter.
    id: 'dev.op.3', section: '5.15.6.2', level: 'MUST NOT', side: 'device', topic: 'op',
    summary: 'The device never changes the contents or memory properties of plugged blocks.',
    testable: true, needs: ['memory-access'],
  },
  {
    // Reading and writing are checkable; querying/modifying attributes is not.
    id: 'dev.op.4', section: '5.15.6.2', level: 'MUST', side: 'device', topic: 'op',
    summary: 'Plugged blocks can be read and written, and their memory attributes queried and modified.',
    testable: true, needs: ['memory-access'],
  },
  {
    // feature-negotiation is needed to decline the feature when the device offers it.
    id: 'dev.op.5', section: '5.15.6.2', level: 'MUST', side: 'device', topic: 'op',
    summary: 'Without UNPLUGGED_INACCESSIBLE negotiated, CPU reads/property queries of unplugged blocks inside the usable region work.',
    testable: true, needs: ['memory-access', 'feature-negotiation'],
  },
  {
    id: 'dev.op.6', section: '5.15.6.2', level: 'MAY', side: 'device', topic: 'op',
    summary: 'The device may change block states during a system reset.',
    testable: true, needs: ['system-reset'],
  },
  {
    id: 'dev.op.7', section: '5.15.6.2', level: 'SHOULD', side: 'device', topic: 'op',
    summary: 'During a system reset the device unplugs every block.',
    testable: true, needs: ['system-reset'],
  },
  {
    // The spec sentence reads "MUST NOT not change"; the intent is clearly MUST NOT change.
    id: 'dev.op.8', section: '5.15.6.2', level: 'MUST NOT', side: 'device', topic: 'op',
    summary: "With VIRTIO_MEM_F_PERSISTENT_SUSPEND negotiated, suspending and waking up leave every block's state unchanged.",
    testable: true, needs: ['suspend'],
  },

  // §5.15.6.3.1 Driver Requirements: PLUG request
  {
    id: 'drv.plug.1', section: '5.15.6.3.1', level: 'MUST', side: 'driver', topic: 'plug',
    summary: 'The driver judges a PLUG response by its `type` field alone.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.6.3.2 Device Requirements: PLUG request
  {
    id: 'dev.plug.1', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'A PLUG outcome depends only on `type` and the request-specific data (header padding is ignored).',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.2', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'A PLUG outcome does not depend on the padding after `nb_blocks`.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.3', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'PLUG gets VIRTIO_MEM_RESP_ERROR if `addr` is not `block_size`-aligned, `nb_blocks` is 0, or a block lies outside the usable region.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.4', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'PLUG gets VIRTIO_MEM_RESP_ERROR if any block it covers is plugged already.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.5', section: '5.15.6.3.2', level: 'MAY', side: 'device', topic: 'plug',
    summary: 'The device may answer PLUG with VIRTIO_MEM_RESP_BUSY when it cannot process it right now.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.6', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'Once all covered blocks are plugged, the device answers VIRTIO_MEM_RESP_ACK.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.7', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'After a successful PLUG, `plugged_size` includes the newly plugged blocks.',
    testable: true, needs: [],
  },

  // §5.15.6.4.1 Driver Requirements: UNPLUG request
  {
    id: 'drv.unplug.1', section: '5.15.6.4.1', level: 'MUST', side: 'driver', topic: 'unplug',
    summary: 'The driver judges an UNPLUG response by its `type` field alone.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.6.4.2 Device Requirements: UNPLUG request
  {
    id: 'dev.unplug.1', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'An UNPLUG outcome depends only on `type` and the request-specific data (header padding is ignored).',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.2', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'An UNPLUG outcome does not depend on the padding after `nb_blocks`.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.3', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'UNPLUG gets VIRTIO_MEM_RESP_ERROR if `addr` is not `block_size`-aligned, `nb_blocks` is 0, or a block lies outside the usable region.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.4', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'UNPLUG gets VIRTIO_MEM_RESP_ERROR if any block it covers is unplugged already.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.5', section: '5.15.6.4.2', level: 'MAY', side: 'device', topic: 'unplug',
    summary: 'The device may answer UNPLUG with VIRTIO_MEM_RESP_BUSY when it cannot process it right now.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.6', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'Once all covered blocks are unplugged, the device answers VIRTIO_MEM_RESP_ACK.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.7', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'After a successful UNPLUG, `plugged_size` no longer counts the unplugged blocks.',
    testable: true, needs: [],
  },

  // §5.15.6.5.1 Driver Requirements (the spec titles it "UNPLUG request"): UNPLUG ALL request
  {
    id: 'drv.unplugall.1', section: '5.15.6.5.1', level: 'MUST', side: 'driver', topic: 'unplugall',
    summary: 'The driver judges an UNPLUG ALL response by its `type` field alone.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.6.5.2 Device Requirements (the spec titles it "UNPLUG request"): UNPLUG ALL request
  {
    id: 'dev.unplugall.1', section: '5.15.6.5.2', level: 'MUST', side: 'device', topic: 'unplugall',
    summary: 'An UNPLUG ALL outcome depends only on the request `type`; `addr`, `nb_blocks` and all padding are ignored.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplugall.2', section: '5.15.6.5.2', level: 'MUST', side: 'device', topic: 'unplugall',
    summary: 'An UNPLUG ALL outcome does not depend on the padding in the request-specific part.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplugall.3', section: '5.15.6.5.2', level: 'MAY', side: 'device', topic: 'unplugall',
    summary: 'The device may answer UNPLUG ALL with VIRTIO_MEM_RESP_BUSY when it cannot process it right now.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplugall.4', section: '5.15.6.5.2', level: 'MUST', side: 'device', topic: 'unplugall',
    summary: 'Once every block is unplugged, the device answers UNPLUG ALL with VIRTIO_MEM_RESP_ACK.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplugall.5', section: '5.15.6.5.2', level: 'MUST', side: 'device', topic: 'unplugall',
    summary: 'When UNPLUG ALL is acknowledged, `plugged_size` is 0.',
    testable: true, needs: [],
  },
  {
    // A permission: the verdict records whether the usable region changed (with no notification).
    id: 'dev.unplugall.6', section: '5.15.6.5.2', level: 'MAY', side: 'device', topic: 'unplugall',
    summary: 'The device may change (typically shrink) `usable_region_size` before it acknowledges UNPLUG ALL.',
    testable: true, needs: [],
  },

  // §5.15.6.6.1 Driver Requirements: STATE request
  {
    id: 'drv.state.1', section: '5.15.6.6.1', level: 'MUST', side: 'driver', topic: 'state',
    summary: 'From a STATE response the driver uses only `type` and the state field; padding is disregarded.',
    testable: true, needs: ['observe-driver'],
  },
  {
    id: 'drv.state.2', section: '5.15.6.6.1', level: 'MUST', side: 'driver', topic: 'state',
    summary: 'The driver disregards the state field unless the STATE response type is VIRTIO_MEM_RESP_ACK.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.6.6.2 Device Requirements: STATE request
  {
    id: 'dev.state.1', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'A STATE outcome depends only on `type` and the request-specific data (header padding is ignored).',
    testable: true, needs: [],
  },
  {
    id: 'dev.state.2', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'A STATE outcome does not depend on the padding after `nb_blocks`.',
    testable: true, needs: [],
  },
  {
    id: 'dev.state.3', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'STATE gets VIRTIO_MEM_RESP_ERROR if `addr` is not `block_size`-aligned, `nb_blocks` is 0, or a block lies outside the usable region.',
    testable: true, needs: [],
  },
  {
    // The sentence itself is unconditional; read with dev.state.3 it covers every request that is
    // not rejected with ERROR.
    id: 'dev.state.4', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: "The device answers STATE with VIRTIO_MEM_RESP_ACK and reports the covered blocks' state.",
    testable: true, needs: [],
  },
  {
    id: 'dev.state.5', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'STATE reports VIRTIO_MEM_STATE_PLUGGED when every covered block is plugged.',
    testable: true, needs: [],
  },
  {
    id: 'dev.state.6', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'STATE reports VIRTIO_MEM_STATE_UNPLUGGED when every covered block is unplugged.',
    testable: true, needs: [],
  },
  {
    id: 'dev.state.7', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'STATE reports VIRTIO_MEM_STATE_MIXED when the covered blocks are partly plugged and partly unplugged.',
    testable: true, needs: [],
  },
];
