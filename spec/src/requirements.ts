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
import { CONFIG_AND_INIT_REQUIREMENTS } from './requirements-config-init';
import { OPERATION_REQUIREMENTS } from './requirements-operation';
import { REQUEST_REQUIREMENTS } from './requirements-requests';
import type { CAPABILITY_NAMES } from './vector-schemas';
import { CORE_REQUIREMENTS, SUITE_REQUIREMENTS } from './requirements-beyond';

/** Normative levels of a statement, spelled as in the spec. */
export const REQUIREMENT_LEVELS = ['MUST', 'MUST NOT', 'SHOULD', 'SHOULD NOT', 'MAY'] as const;
/** One of {@link REQUIREMENT_LEVELS}. */
export type RequirementLevel = (typeof REQUIREMENT_LEVELS)[number];

/** The sides of the protocol a statement may bind. */
export const REQUIREMENT_SIDES = ['device', 'driver'] as const;
/** One of {@link REQUIREMENT_SIDES}. */
export type RequirementSide = (typeof REQUIREMENT_SIDES)[number];

/** Topics of the statements: the middle part of an ID (`dev.<topic>.<n>`). */
export const REQUIREMENT_TOPICS = [
  'cfg',
  'init',
  'op',
  'plug',
  'unplug',
  'unplugall',
  'state',
  // Beyond §5.15 (requirements-beyond.ts): the virtio core chapters, and this suite's own expectations.
  'virtio',
  'suite',
] as const;
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
 * - `config-generation`: read the transport's configuration generation along with the configuration.
 */
export const REQUIREMENT_CAPABILITIES = [
  'memory-access',
  'system-reset',
  'device-reset',
  'host-resize',
  'feature-negotiation',
  'suspend',
  'observe-driver',
  'config-generation',
] as const satisfies readonly (typeof CAPABILITY_NAMES)[number][];
/** One of {@link REQUIREMENT_CAPABILITIES}: a subset of the adapter capabilities vectors may need. */
export type RequirementCapability = (typeof REQUIREMENT_CAPABILITIES)[number];

/** Where a statement comes from (see {@link Requirement.source}). */
export const REQUIREMENT_SOURCES = ['mem', 'core', 'suite'] as const;
/** One of {@link REQUIREMENT_SOURCES}. */
export type RequirementSource = (typeof REQUIREMENT_SOURCES)[number];

/** One statement a vector or a check can cite: normative in VIRTIO 1.4 (§5.15 or the core chapters), or the suite's own. */
export interface Requirement {
  /** Stable ID, e.g. `'dev.plug.3'`. */
  readonly id: string;
  /** VIRTIO 1.4 section of the requirement block, e.g. `'5.15.6.3.2'`. */
  readonly section: string;
  readonly level: RequirementLevel;
  readonly side: RequirementSide;
  readonly topic: RequirementTopic;
  /**
   * Where the statement comes from: `mem` (VIRTIO 1.4 §5.15, the default), `core` (the virtio core
   * chapters) or `suite` (an expectation of this suite beyond the letter of the specification).
   */
  readonly source?: RequirementSource;
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
  ...CONFIG_AND_INIT_REQUIREMENTS,
  ...OPERATION_REQUIREMENTS,
  ...REQUEST_REQUIREMENTS,
];

/**
 * Every statement vectors and checks may cite: the 71 of §5.15, then the virtio core statements
 * and the suite's own expectations (requirements-beyond.ts).
 */
export const ALL_REQUIREMENTS: readonly Requirement[] = [...REQUIREMENTS, ...CORE_REQUIREMENTS, ...SUITE_REQUIREMENTS];

/** Where a statement comes from: its `source`, `mem` when unstated. */
export function requirementSource(r: Requirement): RequirementSource {
  return r.source ?? 'mem';
}
