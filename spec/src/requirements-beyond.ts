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

/** Statements of the virtio core chapters that virtio-mem vectors check. */
export const CORE_REQUIREMENTS: readonly Requirement[] = [];

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
];
