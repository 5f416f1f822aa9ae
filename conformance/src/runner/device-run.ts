/**
 * Runs one device vector against a {@link DeviceSession}: performs each step, observes the
 * device (completion, configuration, notifications, status), and judges what it saw against the
 * vector's expectations, the oracle's conforming set and the configuration invariants.
 */
import type { Chain, DeviceSession, DeviceSetup } from '../../../adapters/core/src/contract';
import {
  BLOCK_STATE_NAMES,
  RESPONSE_CODE_NAMES,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VirtioMemRequestLayout,
  VirtioMemResponseLayout,
  featureMask,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
} from '../../../spec/src/index';
import {
  DeviceOutcome,
  DeviceSnapshot,
  TransitionKind,
  VirtioMemConfig,
  checkConfigInvariants,
  checkTransition,
  decodeConfig,
  describeOutcome,
  encodeLayout,
} from '../../../model/src/index';
import { ExpressionScope, evaluate, scopeOfConfig } from '../vectors/expr';
import type { Expectation, RequestSpec, Step, Vector } from '../vectors/types';
import { Oracle, outcomeLabel } from './oracle';
import { Finding, invariantFinding, verdictOfConformance } from './verdicts';
import { ExpectationChecker, StepAborted, describeSet, hex } from './checks';

/** How many times a BUSY answer is retried before the vector ends `acceptable`. */
export const BUSY_RETRIES = 3;

/** Evaluates a vector's set-up expressions. */
export function evaluateSetup(vector: Vector): DeviceSetup {
  const s = vector.setup;
  const value = (e: Vector['setup']['block_size'], scope: ExpressionScope, what: string): bigint => {
    const r = evaluate(e, scope);
    if (!r.ok) throw new StepAborted(`setup.${what}: ${r.reason}`);
    return r.value;
  };
  const block_size = value(s.block_size, {}, 'block_size');
  const region_size = value(s.region_size, { block_size }, 'region_size');
  const addr = value(s.addr, { block_size, region_size }, 'addr');
  const scope = { block_size, region_size, addr, blocks: block_size > 0n ? region_size / block_size : 0n, region_end: addr + region_size };
  const requested_size = value(s.requested_size, scope, 'requested_size');
  return { block_size, region_size, addr, requested_size, node_id: s.node_id, features: s.features, plugged: s.plugged };
}

/** Whether a status register shows a running driver: DRIVER_OK set and the device not broken. */
function driverRunning(status: number): boolean {
  return (status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 && (status & VIRTIO_CONFIG_S_NEEDS_RESET) === 0;
}

/** Runs a device vector; returns its findings (an empty list is a pass). */
export async function runDeviceVector(vector: Vector, session: DeviceSession, setup: DeviceSetup): Promise<Finding[]> {
  const run = new DeviceRun(vector, session, setup);
  await run.run();
  return run.findings;
}

class DeviceRun {
  readonly findings: Finding[] = [];
  private readonly check: ExpectationChecker;
  private config!: VirtioMemConfig;
  private oracle!: Oracle;
  private notifications = 0;
  private negotiated = 0n;
  /** Whether the runner, as the driver, has the device running (DRIVER_OK written and accepted). */
  private driverActive = false;
  private readonly reportedInvariants = new Set<string>();

  constructor(
    private readonly vector: Vector,
    private readonly session: DeviceSession,
    private readonly setup: DeviceSetup,
  ) {
    this.check = new ExpectationChecker(this.findings);
  }

  async run(): Promise<void> {
    const steps = this.vector.steps;
    // With an initialise step the vector decides when the driver side starts; steps before it meet a device no driver activated.
    const explicitInit = steps.some((step) => step.action.kind === 'initialise');
    if (!explicitInit) {
      const init = await this.session.initialise((offered) => this.acceptFor(offered));
      this.negotiated = init.accepted;
      this.driverActive = driverRunning(init.status);
      if (!init.featuresOk) {
        this.findings.push({ verdict: 'error', step: 0, check: 'setup', message: `the device refused FEATURES_OK during set-up (offered 0x${init.offered.toString(16)}, accepted 0x${init.accepted.toString(16)})` });
        return;
      }
    }
    this.config = await this.readConfig(0);
    this.notifications = await this.session.notificationCount();
    const expectedPlugged = BigInt(this.setup.plugged.reduce((n, r) => n + r.count, 0)) * this.setup.block_size;
    if (this.config.plugged_size !== expectedPlugged) {
      this.findings.push({
        verdict: 'error',
        step: 0,
        check: 'setup',
        message: `the adapter did not establish the initial plugged blocks: plugged_size reads ${hex(this.config.plugged_size)}, expected ${hex(expectedPlugged)}`,
      });
      return;
    }
    this.oracle = new Oracle(this.config, this.setup.plugged, this.negotiated);
    this.invariants(0, undefined, this.config, 'read', false);
    for (const step of steps) {
      try {
        const stop = await this.step(step);
        if (stop) return;
      } catch (e) {
        if (e instanceof StepAborted) {
          this.findings.push({ verdict: e.verdict, step: step.index, check: e.check, message: e.message });
          return;
        }
        throw e;
      }
    }
  }

  /** Features the runner accepts as the driver: the set-up's list, never more than offered. */
  private acceptFor(offered: bigint): bigint {
    return this.vector.setup.accept === 'offered' ? offered : this.vector.setup.accept & offered;
  }

  private async readConfig(step: number): Promise<VirtioMemConfig> {
    const bytes = await this.session.readConfig();
    const decoded = decodeConfig(bytes);
    if (!decoded.ok) throw new StepAborted(`configuration space unreadable: ${decoded.error.actual} of ${decoded.error.expected} bytes`, 'error', 'config');
    void step;
    return decoded.value;
  }

  /** Performs one step; returns true when the vector must stop here. */
  private async step(step: Step): Promise<boolean> {
    const before = this.config;
    const scope = scopeOfConfig(before);
    const a = step.action;
    const e = step.expect;
    let kind: TransitionKind = 'read';
    switch (a.kind) {
      case 'request': {
        const chain = buildChain(a.request, a.layout, scope);
        const stop = await this.request(step, chain);
        if (stop !== undefined) return stop;
        return false;
      }
      case 'resize': {
        const size = value(a.size, scope, 'resize');
        if (!this.session.resize) throw new StepAborted('the adapter cannot resize', 'unsupported');
        const outcome = await this.session.resize(size);
        if (e.resize) this.check.set(step.index, 'resize', e.resize, outcome.kind, outcome.kind === 'refused' ? outcome.reason : undefined);
        else if (outcome.kind === 'refused') this.findings.push({ verdict: 'fail', step: step.index, check: 'resize', message: `the host refused requested_size ${hex(size)}: ${outcome.reason}`, requirements: ['dev.cfg.1'] });
        kind = 'host-resize';
        break;
      }
      case 'device-reset':
        await this.session.deviceReset!();
        kind = 'device-reset';
        break;
      case 'system-reset':
        await this.session.systemReset!();
        kind = 'system-reset';
        break;
      case 'read-config':
        break;
      case 'initialise': {
        const init = await this.session.initialise((offered) => (a.accept === 'offered' ? offered : a.accept));
        this.negotiated = init.featuresOk ? init.accepted : 0n;
        this.driverActive = driverRunning(init.status);
        if (e.featuresOk) this.check.set(step.index, 'features_ok', e.featuresOk, init.featuresOk ? 'accepted' : 'refused');
        else if (!init.featuresOk) throw new StepAborted('the device refused FEATURES_OK', 'fail', 'features_ok');
        break;
      }
      case 'inject-busy':
        await this.session.injectBusy!(a.count);
        break;
      case 'write-memory': {
        const r = await this.session.writeMemory!(value(a.addr, scope, 'write_memory.addr'), a.data);
        this.memoryResult(step, r.ok, r.ok ? undefined : r.reason, e);
        break;
      }
      case 'read-memory': {
        const r = await this.session.readMemory!(value(a.addr, scope, 'read_memory.addr'), a.length);
        this.memoryResult(step, r.ok, r.ok ? undefined : r.reason, e);
        if (r.ok && e.data) this.check.bytes(step.index, 'data', e.data, r.data);
        break;
      }
      case 'suspend':
        await this.session.suspendAndWake!();
        kind = 'wake';
        break;
      default:
        throw new StepAborted(`'${a.kind}' is not a device step`, 'error');
    }
    await this.observe(step, before, kind, e);
    return false;
  }

  private memoryResult(step: Step, ok: boolean, reason: string | undefined, e: Expectation): void {
    if (e.access) this.check.set(step.index, 'access', e.access, ok ? 'ok' : 'refused', reason);
    else if (!ok) this.findings.push({ verdict: 'fail', step: step.index, check: 'access', message: `memory access refused: ${reason}` });
  }

  /** Sends a request (retrying BUSY answers the vector does not expect). */
  private async request(step: Step, chain: Chain): Promise<boolean | undefined> {
    const before = this.config;
    const e = step.expect;
    for (let attempt = 0; ; attempt++) {
      const evaluation = this.oracle.evaluate(chain);
      const completion = await this.session.submit(chain);
      const status = await this.session.readStatus();
      const observed = this.label(completion, status, requestType(chain));
      const busyUnexpected = observed.label === 'BUSY' && !(e.response?.has('BUSY') ?? false) && evaluation?.outcomes.some((o) => outcomeLabel(o) === 'BUSY');
      if (busyUnexpected) {
        if (attempt < BUSY_RETRIES) continue;
        this.findings.push({
          verdict: 'acceptable',
          step: step.index,
          check: 'response',
          message: `the device answered BUSY ${attempt + 1} times (allowed by the spec); the remaining steps were not run`,
          observed: 'BUSY',
        });
        return true;
      }
      // The oracle's verdict on the observed outcome.
      let matched: DeviceOutcome | undefined;
      if (evaluation) {
        matched = evaluation.outcomes.find((o) => outcomeLabel(o) === observed.label && (o.kind !== 'response' || o.state === undefined || o.state === observed.state));
        if (!matched) {
          this.findings.push({
            verdict: 'fail',
            step: step.index,
            check: 'response',
            message: `the device answered ${observed.text}, which no conforming device answers here`,
            expected: evaluation.outcomes.map(describeOutcome).join(' | '),
            observed: observed.text,
            requirements: [...new Set(evaluation.outcomes.flatMap((o) => o.requirements))],
          });
        } else if (!e.response) {
          const v = verdictOfConformance(matched.class);
          if (v !== 'pass') {
            this.findings.push({ verdict: v, step: step.index, check: 'response', message: `${observed.text}: ${matched.rationale}`, observed: observed.text, requirements: matched.requirements });
          }
        }
      }
      // An answer outside the conforming set is already reported above; the vector's own set is checked otherwise.
      if (e.response && (matched || !evaluation)) this.check.set(step.index, 'response', e.response, observed.label, undefined, matched?.requirements);
      if (e.state !== undefined) {
        if (observed.label !== 'ACK') this.findings.push({ verdict: 'fail', step: step.index, check: 'state', message: `no state to compare: the device answered ${observed.text}`, expected: describeSet(e.state) });
        else this.check.set(step.index, 'state', e.state, observed.state ?? 'nothing');
      }
      const after = await this.readConfig(step.index);
      if (matched) this.oracle.apply(matched, after.usable_region_size);
      else this.oracle.forget();
      const isUnplugAll = evaluation?.request?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && observed.label === 'ACK';
      if (isUnplugAll) {
        if (after.plugged_size !== 0n) {
          this.findings.push({ verdict: 'fail', step: step.index, check: 'config.plugged_size', message: 'UNPLUG ALL was acknowledged but plugged_size is not 0', expected: '0x0', observed: hex(after.plugged_size), requirements: ['dev.unplugall.5'] });
        }
        this.oracle.restoreAllUnplugged(after);
      }
      await this.observe(step, before, isUnplugAll ? 'unplug-all' : 'request', e, after);
      return undefined;
    }
  }

  private label(completion: Awaited<ReturnType<DeviceSession['submit']>>, status: number, requestType: number | undefined): { label: string; state?: string; text: string } {
    if (completion.kind === 'no-used-entry') {
      const label = status & VIRTIO_CONFIG_S_NEEDS_RESET ? 'needs-reset' : 'no-used-entry';
      return { label, text: label === 'needs-reset' ? 'no used entry, DEVICE_NEEDS_RESET set' : 'no used entry' };
    }
    if (completion.length === 0) return { label: 'used-length-zero', text: 'a used entry of length 0' };
    if (completion.length < 2) return { label: `used-length-${completion.length}`, text: `a used entry of length ${completion.length}` };
    const w = completion.written;
    const type = w[0] | (w[1] << 8);
    const name = RESPONSE_CODE_NAMES[type] ?? `type-${type}`;
    if (name === 'ACK' && requestType === VIRTIO_MEM_REQ_STATE && completion.length >= VirtioMemResponseLayout.size) {
      const state = BLOCK_STATE_NAMES[w[8] | (w[9] << 8)] ?? `state-${w[8] | (w[9] << 8)}`;
      return { label: name, state, text: `ACK(${state})` };
    }
    const short = completion.length < VirtioMemResponseLayout.size ? ` (used length ${completion.length})` : '';
    return { label: name, text: `${name}${short}` };
  }

  /** Reads the configuration after a step and checks config, notification, status and invariants. */
  private async observe(step: Step, before: VirtioMemConfig, kind: TransitionKind, e: Expectation, afterRead?: VirtioMemConfig): Promise<void> {
    const driverActiveDuringStep = this.driverActive;
    const after = afterRead ?? (await this.readConfig(step.index));
    const count = await this.session.notificationCount();
    const notified = count > this.notifications;
    this.notifications = count;
    this.config = after;
    if (kind === 'host-resize' || kind === 'device-reset') this.oracle.rebase(after);
    if (kind === 'system-reset' || kind === 'wake') {
      const persistent = kind === 'wake' && (this.negotiated & featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND)) !== 0n;
      if (persistent) this.oracle.rebase(after);
      else this.oracle.afterSystemReset(after, before.plugged_size);
    }
    if (e.notification) this.check.set(step.index, 'notification', e.notification, notified ? 'sent' : 'none');
    if (e.config) this.check.config(step.index, e.config, before, after);
    if (e.configBytes) this.check.bytes(step.index, 'config_bytes', e.configBytes, await this.session.readConfig());
    if (e.needsReset !== undefined) {
      const status = await this.session.readStatus();
      const set = (status & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0;
      if (set !== e.needsReset) this.findings.push({ verdict: 'fail', step: step.index, check: 'needs_reset', message: `DEVICE_NEEDS_RESET is ${set ? 'set' : 'clear'}`, expected: String(e.needsReset), observed: String(set) });
    }
    if (kind === 'device-reset' || kind === 'system-reset') {
      // The runner plays the driver: after a reset (or a reboot) it initialises the device again.
      const init = await this.session.initialise((offered) => this.acceptFor(offered));
      this.negotiated = init.featuresOk ? init.accepted : 0n;
      this.driverActive = driverRunning(init.status);
    }
    this.invariants(step.index, before, after, kind, notified, driverActiveDuringStep);
  }

  private invariants(step: number, before: VirtioMemConfig | undefined, after: VirtioMemConfig, kind: TransitionKind, notified: boolean, driverActive = true): void {
    if (!this.vector.checkInvariants) return;
    const snapAfter: DeviceSnapshot = { config: after, pluggedBlocks: this.oracle?.pluggedBlocks };
    const violations = checkConfigInvariants(snapAfter);
    if (before) {
      const persistentSuspend = (this.negotiated & featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND)) !== 0n;
      violations.push(...checkTransition({ config: before }, snapAfter, kind, notified, { persistentSuspend, driverActive }));
    }
    for (const v of violations) {
      if (this.reportedInvariants.has(v.invariant)) continue;
      this.reportedInvariants.add(v.invariant);
      this.findings.push(invariantFinding(step, v));
    }
  }
}

function value(e: Parameters<typeof evaluate>[0], scope: ExpressionScope, what: string): bigint {
  const r = evaluate(e, scope);
  if (!r.ok) throw new StepAborted(r.reason, 'error', what);
  return r.value;
}

/** The request type of a chain, read from its bytes (undefined when shorter than the type field). */
function requestType(chain: Chain): number | undefined {
  const first = chain.readable.find((b) => b.length > 0);
  if (!first) return undefined;
  const second = first.length >= 2 ? first[1] : chain.readable[chain.readable.indexOf(first) + 1]?.[0];
  return second === undefined ? undefined : first[0] | (second << 8);
}

/** Builds the descriptor chain of a request step. */
export function buildChain(spec: RequestSpec, layout: { readonly readable: readonly number[]; readonly writable: readonly number[] } | undefined, scope: ExpressionScope): Chain {
  let bytes: Uint8Array;
  if (spec.form === 'raw') {
    bytes = spec.bytes;
  } else {
    const addr = value(spec.addr, scope, 'request.addr');
    const nb = value(spec.nbBlocks, scope, 'request.nb_blocks');
    if (addr < 0n || addr >= 1n << 64n) throw new StepAborted(`request.addr ${addr} does not fit in 64 bits`, 'error', 'request.addr');
    if (nb < 0n || nb > 0xffffn) throw new StepAborted(`request.nb_blocks ${nb} does not fit in 16 bits`, 'error', 'request.nb_blocks');
    bytes = encodeLayout(VirtioMemRequestLayout, {
      type: spec.type,
      padding: spec.padding ?? new Uint8Array(6),
      addr,
      nb_blocks: Number(nb),
      payload_padding: spec.payloadPadding ?? new Uint8Array(6),
    });
  }
  if (!layout) return { readable: [bytes], writableSizes: [VirtioMemResponseLayout.size] };
  const readable: Uint8Array[] = [];
  let offset = 0;
  for (const size of layout.readable) {
    const part = new Uint8Array(size);
    part.set(bytes.subarray(offset, Math.min(offset + size, bytes.length)));
    readable.push(part);
    offset += size;
  }
  return { readable, writableSizes: layout.writable };
}
