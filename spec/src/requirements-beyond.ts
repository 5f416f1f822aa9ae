/**
 * Statements a virtio-mem implementation is judged by beyond the 71 of VIRTIO 1.4 §5.15:
 *
 * - **core**: normative statements of the virtio core chapters (§2 basic facilities, §3 device
 *   initialisation, §4.1 virtio over PCI) that every virtio device or driver keeps, and that a
 *   virtio-mem request, configuration read or reset can show being broken. IDs are
 *   `dev.virtio.<n>` / `drv.virtio.<n>`. Summaries are our own paraphrases.
 * - **suite**: expectations of this suite that the specification does not state as such but
 *   that any useful implementation meets (a device that answers BUSY for ever conforms to the
 *   letter of §5.15 and is useless). IDs are `dev.suite.<n>` / `drv.suite.<n>`; `section` names
 *   the part of the specification the expectation rests on.
 *
 * Like the §5.15 catalogue, an ID once published is never reused for a different statement.
 */
import type { Requirement } from './requirements';

/**
 * Statements of the virtio core chapters that virtio-mem vectors check, in document order.
 * Source: `oasis-tcs/virtio-spec` at tag v1.4-cs01 (commit 15f488c1): `content.tex` (§2 basic
 * facilities), `split-ring.tex` (§2.7 split virtqueues) and `transport-pci.tex` (§4.1).
 */
export const CORE_REQUIREMENTS: readonly Requirement[] = [
  {
    // content.tex, Device Requirements: Device Status Field (the DEVICENEEDSRESET label).
    id: 'dev.virtio.1',
    section: '2.1.2',
    level: 'MUST',
    side: 'device',
    topic: 'virtio',
    source: 'core',
    summary:
      'A device that sets DEVICE_NEEDS_RESET while DRIVER_OK is set follows it with a configuration-change notification.',
    testable: true,
    needs: [],
  },
  {
    // content.tex, Device Requirements: Feature Bits, first paragraph.
    id: 'dev.virtio.2',
    section: '2.2.2',
    level: 'SHOULD',
    side: 'device',
    topic: 'virtio',
    source: 'core',
    summary:
      'The device accepts any valid subset of its offered features that the driver accepts; if it cannot, it must not set FEATURES_OK.',
    testable: true,
    needs: ['feature-negotiation'],
  },
  {
    // content.tex, Device Requirements: Feature Bits, last paragraph.
    id: 'dev.virtio.3',
    section: '2.2.2',
    level: 'SHOULD NOT',
    side: 'device',
    topic: 'virtio',
    source: 'core',
    summary:
      'Once a feature set was accepted with FEATURES_OK, the device does not refuse the same set again after a device or system reset.',
    testable: true,
    needs: ['device-reset'],
  },
  {
    // content.tex, Device Requirements: Device Reset, first sentence.
    id: 'dev.virtio.4',
    section: '2.4.1',
    level: 'MUST',
    side: 'device',
    topic: 'virtio',
    source: 'core',
    summary: 'After a reset the device status reads 0, until the driver initialises the device again.',
    testable: true,
    needs: ['device-reset'],
  },
  {
    // split-ring.tex, Device Requirements: The Virtqueue Used Ring, second sentence.
    id: 'dev.virtio.5',
    section: '2.7.8.2',
    level: 'MUST',
    side: 'device',
    topic: 'virtio',
    source: 'core',
    summary:
      'The used length never exceeds what the device wrote: at least `len` bytes from the first writable buffer are written before the used index moves.',
    testable: true,
    needs: [],
  },
  {
    // transport-pci.tex, Device Requirements: Common configuration structure layout.
    id: 'dev.virtio.6',
    section: '4.1.4.3.1',
    level: 'MUST',
    side: 'device',
    topic: 'virtio',
    source: 'core',
    summary:
      'When a configuration value the driver reads has changed since its previous configuration read, `config_generation` has changed too.',
    testable: true,
    needs: ['config-generation'],
  },
];

/** Expectations of this suite beyond the letter of the specification. */
export const SUITE_REQUIREMENTS: readonly Requirement[] = [
  {
    // BUSY is a temporary answer (§5.15.6.2: the device is busy, the driver retries later). The
    // runner retries an unlisted BUSY a bounded number of times; a device still answering BUSY
    // after that makes no progress.
    id: 'dev.suite.1',
    section: '5.15.6.2',
    level: 'MUST',
    side: 'device',
    topic: 'suite',
    source: 'suite',
    summary: 'A device that answers BUSY stops doing so within a bounded number of retries: BUSY is temporary.',
    testable: true,
    needs: [],
  },
  {
    // The device answers BUSY when a request "can currently not be processed" (§5.15.6.3.2,
    // §5.15.6.4.2, §5.15.6.5.2): the same request may succeed later. A driver that stops for good
    // after BUSY, waiting for a configuration change that need not come, never reaches
    // requested_size although nothing stops it. How long it waits is its own choice.
    id: 'drv.suite.1',
    section: '5.15.6.3.2',
    level: 'MUST',
    side: 'driver',
    topic: 'suite',
    source: 'suite',
    summary:
      'After a BUSY answer the driver tries the request again later, without waiting for a configuration change.',
    testable: true,
    needs: ['observe-driver'],
  },
  {
    // BUSY means "not now": a retry at once is answered BUSY again and only loads the device
    // (and the guest's CPU). Any delay will do — Linux waits 50 s, doubling up to 300 s — so the
    // vectors ask for a small one (10 ms) and leave the policy to the driver. A configuration
    // change in between cuts the wait short.
    id: 'drv.suite.2',
    section: '5.15.6.3.2',
    level: 'MUST',
    side: 'driver',
    topic: 'suite',
    source: 'suite',
    summary:
      'After a BUSY answer the driver lets some time pass before its next request, unless the configuration changed.',
    testable: true,
    needs: ['observe-driver'],
  },
  {
    // A device NACKs a PLUG it will not grant (e.g. beyond requested_size); nothing makes it grant
    // the same plug before its configuration changes, so asking again only spins (Linux retries a
    // NACKed plug at once). drv.op.10 lets the driver fall short instead.
    id: 'drv.suite.3',
    section: '5.15.6.1',
    level: 'MUST',
    side: 'driver',
    topic: 'suite',
    source: 'suite',
    summary: 'After a NACKed PLUG the driver sends no further PLUG until the device configuration has changed.',
    testable: true,
    needs: ['observe-driver'],
  },
];
