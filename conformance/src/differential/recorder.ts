/**
 * The recorder: drives a device through an adapter with the differential machinery's seeded
 * operations ({@link generateOperations}) and writes what the device answered as a vector file —
 * exact expected answers (response, block state, notification, the configuration after every
 * step), the device's own set-up choices (offered features, usable_region_size) and the
 * requirements the oracle cites for the answers. Replayed on the same device the file passes;
 * `vmemct lint` follows its stated answers wherever they are conforming, so a faithful recording
 * of any conforming device lints clean.
 *
 * Each vector is a fresh device built from the same set-up and runs the next `opsPerVector`
 * operations of the one seeded sequence.
 */
import type { Adapter, Chain, DeviceSession, DeviceSetup } from '../../../adapters/core/src/contract';
import {
  BLOCK_STATE_NAMES,
  FEATURE_NAMES,
  FEATURE_MASKS,
  REQUEST_TYPE_NAMES,
  RESPONSE_OUTCOMES,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VirtioMemResponseLayout,
  formatHex,
} from '../../../spec/src/index';
import { VirtioMemConfig, decodeConfig, decodeRequest, peekRequestType } from '../../../model/src/index';
import { Oracle, outcomeLabel } from '../judge/oracle';
import { labelCompletion } from '../steps/request';
import { Operation, generateOperations } from './differential';

/** What to record. */
export interface RecordingPlan {
  /** The device every vector starts from (`usable_region_size` is left to the device and recorded). */
  readonly setup: DeviceSetup;
  readonly seed: number;
  /** Operations in all. */
  readonly operations: number;
  /** Operations per vector (the last vector may hold fewer). */
  readonly opsPerVector: number;
  /** Lower-case name for vector ids, e.g. `qemu` (`vmem.dev.recorded.qemu-<seed>-001`). */
  readonly slug: string;
  /** Who answered, for titles and the file's header, e.g. `QEMU 7.2`. */
  readonly implementation: string;
}

/** A recording failed: the device could not be driven (the message says what happened). */
export class RecordingError extends Error {
  override readonly name = 'RecordingError';
}

/** Told after each recorded vector, for progress reports. */
export type RecordingProgress = (vectorsDone: number, vectorsTotal: number) => void;

/** Records `plan` on `adapter` and returns the vector file's text (YAML). */
export async function recordVectorFile(
  adapter: Adapter,
  plan: RecordingPlan,
  onProgress?: RecordingProgress,
): Promise<string> {
  const lacking = (['host-resize', 'device-reset'] as const).filter((c) => !adapter.info.capabilities.includes(c));
  if (lacking.length > 0)
    throw new RecordingError(
      `${adapter.info.implementation} lacks ${lacking.join(' and ')}, which the operations need`,
    );
  const ops = generateOperations(plan.seed, plan.operations, plan.setup);
  const total = Math.ceil(ops.length / plan.opsPerVector);
  const vectors: string[] = [];
  for (let v = 0; v < total; v++) {
    const first = v * plan.opsPerVector;
    const chunk = ops.slice(first, first + plan.opsPerVector);
    const session = await adapter.openDevice(plan.setup);
    try {
      vectors.push(await recordVector(session, plan, v + 1, first, chunk));
    } finally {
      await session.close();
    }
    onProgress?.(v + 1, total);
  }
  return [fileHeader(plan), ...vectors].join('\n');
}

function fileHeader(plan: RecordingPlan): string {
  const s = plan.setup;
  return [
    `# Recorded by vmemct record: ${plan.implementation}'s answers to ${plan.operations} seeded operations`,
    `# (seed ${plan.seed}, ${plan.opsPerVector} per vector). Exact expected answers: this file passes on the`,
    '# device it was recorded from, and lints clean; another conforming device may answer differently.',
    'format: vmemct-vectors/1',
    'defaults:',
    `  setup: {block_size: ${hex(s.block_size)}, region_size: ${hex(s.region_size)}, addr: ${hex(s.addr)}, requested_size: ${hex(s.requested_size)}, node_id: ${s.node_id}}`,
    'vectors:',
  ].join('\n');
}

/** A bigint as a quoted hex string (YAML would read a bare 0x… as a float-unsafe number). */
function hex(value: bigint): string {
  return `'${formatHex(value)}'`;
}

/** The configuration fields a step may change, as a `config:` expectation. */
function configExpectation(c: VirtioMemConfig): string {
  return `{usable_region_size: ${hex(c.usable_region_size)}, plugged_size: ${hex(c.plugged_size)}, requested_size: ${hex(c.requested_size)}}`;
}

/** The device's notification count, configuration and the step's notification, after a step. */
async function observe(
  session: DeviceSession,
  notificationsBefore: number,
): Promise<{ config: VirtioMemConfig; notifications: number; notified: boolean }> {
  const decoded = decodeConfig(await session.readConfig());
  if (!decoded.ok) throw new RecordingError(`the configuration space is unreadable (${decoded.error.actual} bytes)`);
  const notifications = await session.notificationCount();
  return { config: decoded.value, notifications, notified: notifications > notificationsBefore };
}

async function recordVector(
  session: DeviceSession,
  plan: RecordingPlan,
  number: number,
  first: number,
  ops: readonly Operation[],
): Promise<string> {
  const acceptAll = (offered: bigint): bigint => offered;
  const init = await session.initialise(acceptAll);
  if (!init.featuresOk)
    throw new RecordingError(`the device refused FEATURES_OK (offered 0x${init.offered.toString(16)})`);
  let seen = await observe(session, 0);
  const initial = seen.config;
  const oracle = new Oracle(initial, [], init.accepted);
  const requirements = new Set<string>();
  const steps: string[] = [];
  for (const op of ops) {
    const before = seen.notifications;
    if (op.kind === 'request') {
      const chain: Chain = { readable: [op.bytes], writableSizes: [VirtioMemResponseLayout.size] };
      const evaluation = oracle.evaluate(chain);
      const completion = await session.submit(chain);
      const observed = labelCompletion(completion, await session.readStatus(), peekRequestType(chain.readable));
      seen = await observe(session, before);
      const matched = evaluation?.outcomes.find(
        (o) =>
          outcomeLabel(o) === observed.label &&
          (o.kind !== 'response' || o.state === undefined || o.state === observed.state),
      );
      for (const id of matched?.requirements ?? []) requirements.add(id);
      if (matched) oracle.apply(matched, seen.config.usable_region_size);
      else oracle.forget();
      if (evaluation?.request?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && observed.label === 'ACK')
        oracle.restoreAllUnplugged(seen.config);
      const expect = [
        (RESPONSE_OUTCOMES as readonly string[]).includes(observed.label) ? `response: ${observed.label}` : undefined,
        observed.state && (BLOCK_STATE_NAMES as readonly string[]).includes(observed.state)
          ? `state: ${observed.state}`
          : undefined,
        `config: ${configExpectation(seen.config)}`,
        `notification: ${seen.notified ? 'sent' : 'none'}`,
      ].filter((e) => e !== undefined);
      steps.push(`      - request: ${requestFields(op.bytes)}`, `        expect: {${expect.join(', ')}}`);
    } else if (op.kind === 'resize') {
      const outcome = await session.resize!(op.size);
      seen = await observe(session, before);
      if (outcome.kind === 'applied') requirements.add('dev.cfg.4');
      oracle.rebase(seen.config);
      steps.push(
        `      - resize: ${hex(op.size)}`,
        `        expect: {resize: ${outcome.kind}, config: ${configExpectation(seen.config)}, notification: ${seen.notified ? 'sent' : 'none'}}`,
      );
    } else {
      await session.deviceReset!();
      seen = await observe(session, before);
      requirements.add('dev.init.2');
      oracle.rebase(seen.config);
      steps.push(
        '      - device_reset: true',
        `        expect: {config: ${configExpectation(seen.config)}, notification: ${seen.notified ? 'sent' : 'none'}}`,
      );
      // As the runner does after a reset: the driver initialises the device again.
      await session.initialise(acceptAll);
      seen = { ...seen, notifications: await session.notificationCount() };
    }
  }
  const offered = FEATURE_NAMES.filter((name) => (init.offered & FEATURE_MASKS[name]) !== 0n);
  const cited = [...requirements].filter((id) => id.startsWith('dev.')).sort();
  const last = first + ops.length - 1;
  return [
    `  - id: vmem.dev.recorded.${plan.slug}-${plan.seed}-${String(number).padStart(3, '0')}`,
    `    title: ${JSON.stringify(`${plan.implementation} answers operations ${first} to ${last} of seed ${plan.seed} as recorded`)}`,
    `    requirements: [${(cited.length > 0 ? cited : ['dev.cfg.3']).join(', ')}]`,
    '    target: device',
    '    tags: [recorded]',
    `    setup: {usable_region_size: ${hex(initial.usable_region_size)}, features: [${offered.join(', ')}]}`,
    '    steps:',
    ...steps,
  ].join('\n');
}

/** A request's fields as a `request:` step value (type by name when it has one, padding only when nonzero). */
function requestFields(bytes: Uint8Array): string {
  const decoded = decodeRequest(bytes);
  if (!decoded.ok) return `{raw: '${Buffer.from(bytes).toString('hex')}'}`;
  const r = decoded.value;
  const type = REQUEST_TYPE_NAMES[r.type] ?? String(r.type);
  const fields = [`type: ${type}`, `addr: ${hex(r.addr)}`, `nb_blocks: ${r.nb_blocks}`];
  const nonzero = (b: Uint8Array): boolean => b.some((x) => x !== 0);
  if (nonzero(r.padding)) fields.push(`padding: '${Buffer.from(r.padding).toString('hex')}'`);
  if (nonzero(r.payload_padding)) fields.push(`payload_padding: '${Buffer.from(r.payload_padding).toString('hex')}'`);
  return `{${fields.join(', ')}}`;
}
