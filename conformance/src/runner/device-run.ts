/**
 * Runs one device vector against a {@link DeviceSession}: performs each step through its step
 * kind's device handler, observes the device after it (configuration, notifications, status),
 * applies the checkers of the expectations the step states, and checks the configuration
 * invariants. A step either continues or stops the vector with a finding.
 */
import type { DeviceSession, DeviceSetup, HandshakeResult } from '../../../adapters/core/src/contract';
import {
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  featureMask,
  formatHex,
} from '../../../spec/src/index';
import {
  DeviceParamsError,
  DeviceSnapshot,
  TransitionKind,
  VirtioMemConfig,
  checkConfigInvariants,
  checkTransition,
  decodeConfig,
} from '../../../model/src/index';
import type { Step, Vector } from '../loader/types';
import { deviceHandlerOf } from '../steps/registry';
import {
  DeviceObservation,
  DeviceRunObserver,
  DeviceStepContext,
  StepOutcome,
  proceed,
  stopWith,
} from '../steps/step-kind';
import { applyCheckers } from '../steps/apply-checkers';
import { BUSY_RETRIES } from '../steps/request';
import { Oracle } from '../judge/oracle';
import { Finding, invariantFinding } from '../judge/verdicts';
import {
  GenerationSample,
  judgeConfigGeneration,
  judgeFeaturesOkRefusal,
  judgeNeedsResetNotification,
  judgeStatusAfterReset,
} from '../judge/virtio-core-checks';

/** Whether a status register shows a running driver: DRIVER_OK set and the device not broken. */
function driverRunning(status: number): boolean {
  return (status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 && (status & VIRTIO_CONFIG_S_NEEDS_RESET) === 0;
}

/**
 * Whether a vector starts with a device no driver activated: it has an `initialise` step that is
 * not preceded by a `device_reset` that leaves re-initialisation to the vector. Then the vector
 * decides when the driver side starts; otherwise the runner initialises the device first.
 */
export function startsWithoutDriver(steps: readonly Step[]): boolean {
  for (const step of steps) {
    if (step.action.kind === 'initialise') return true;
    if (step.action.kind === 'device-reset' && !step.action.reinitialise) return false;
  }
  return false;
}

/** Options of a device run. */
export interface DeviceRunOptions {
  /** Watches the run (lint's dry run collects the oracle's conforming sets through it). */
  readonly observer?: DeviceRunObserver;
  /**
   * Whether the adapter declares `config-generation`: the runner then reads the generation with
   * every configuration read and judges it (dev.virtio.6). Default: whenever the session has the method.
   */
  readonly configGeneration?: boolean;
  /** How many times an unlisted BUSY is retried (default {@link BUSY_RETRIES}`.default`). */
  readonly busyRetries?: number;
}

/** Runs a device vector; returns its findings (an empty list is a pass). */
export async function runDeviceVector(
  vector: Vector,
  session: DeviceSession,
  setup: DeviceSetup,
  options: DeviceRunOptions = {},
): Promise<Finding[]> {
  const run = new DeviceRun(vector, session, setup, options);
  await run.run();
  return run.findings;
}

/** One device vector's run: the state the steps share (the context each handler sees). */
export class DeviceRun implements DeviceStepContext {
  /** What the run found so far. */
  readonly findings: Finding[] = [];
  /** The configuration as last observed (before the step being run). */
  config!: VirtioMemConfig;
  /** The model device kept in step with the device under test. */
  oracle!: Oracle;
  private notifications = 0;
  private negotiated = 0n;
  /** Whether the runner, as the driver, has the device running (DRIVER_OK written and accepted). */
  private driverActive = false;
  private currentStep = 0;
  private readonly reportedInvariants = new Set<string>();
  /** The status register as last observed (after set-up, then after every step). */
  private status = 0;
  /** The features of the last negotiation the device accepted (a refusal of the same set after a reset is dev.virtio.3). */
  private lastAccepted: bigint | undefined;
  /** The configuration bytes last read and the generation read with them (dev.virtio.6). */
  private generationSample: GenerationSample | undefined;
  /** Reads `config_generation`, when the adapter offers it. */
  private readonly readGeneration: (() => Promise<number>) | undefined;
  /** Watches the run (lint's dry run). */
  readonly observer?: DeviceRunObserver;
  /** How many times an unlisted BUSY is retried before the vector fails for lack of progress (dev.suite.1). */
  readonly busyRetries: number;
  /** Whether the host holds the device busy (set by `host_busy` steps). */
  hostBusy = false;

  constructor(
    readonly vector: Vector,
    readonly session: DeviceSession,
    private readonly setup: DeviceSetup,
    options: DeviceRunOptions = {},
  ) {
    this.observer = options.observer;
    this.busyRetries = options.busyRetries ?? BUSY_RETRIES.default;
    const method = session.readConfigGeneration;
    const judgeGeneration = options.configGeneration ?? true;
    this.readGeneration = judgeGeneration && typeof method === 'function' ? () => method.call(session) : undefined;
  }

  /** Runs every step, until one stops the vector. */
  async run(): Promise<void> {
    const steps = this.vector.steps;
    if (!startsWithoutDriver(steps)) {
      const init = await this.initialise((offered) => this.acceptFor(offered));
      if (!init.featuresOk) {
        // A refused FEATURES_OK is the device's answer, judged like any other (features_ok).
        const finding = judgeFeaturesOkRefusal(init, 0);
        this.findings.push({ ...finding, message: `${finding.message}; the vector's steps were not run` });
        return;
      }
    } else this.status = await this.session.readStatus();
    const initial = await this.readConfig();
    if (initial.kind === 'stop') {
      this.findings.push(initial.finding);
      return;
    }
    this.config = initial.value;
    this.notifications = await this.session.notificationCount();
    const expectedPlugged = BigInt(this.setup.plugged.reduce((n, r) => n + r.count, 0)) * this.setup.block_size;
    if (this.config.plugged_size !== expectedPlugged) {
      this.findings.push({
        verdict: 'error',
        step: 0,
        check: 'setup',
        message: `the adapter did not establish the initial plugged blocks: plugged_size reads ${formatHex(this.config.plugged_size)}, expected ${formatHex(expectedPlugged)}`,
      });
      return;
    }
    // usable_region_size is the device's choice: an adapter that cannot impose it (QEMU) runs the vector only when the device chose the same.
    const statedUsable = this.setup.usable_region_size;
    if (statedUsable !== undefined && this.config.usable_region_size !== statedUsable) {
      this.findings.push({
        verdict: 'unsupported',
        step: 0,
        check: 'setup',
        message: `the device chose usable_region_size ${formatHex(this.config.usable_region_size)}; the vector's set-up states ${formatHex(statedUsable)}, which this adapter cannot impose`,
      });
      return;
    }
    // The configuration is judged before the oracle is built from it: a device showing, say, a
    // block_size that is not a power of two fails dev.cfg.5 even though no model can follow it.
    this.invariants(0, undefined, this.config, 'read', false);
    try {
      this.oracle = new Oracle(this.config, this.setup.plugged, this.negotiated);
    } catch (e) {
      if (!(e instanceof DeviceParamsError)) throw e;
      this.findings.push({
        verdict: 'error',
        step: 0,
        check: 'oracle',
        message: `the device's configuration cannot be followed by the reference model: ${e.message}`,
      });
      return;
    }
    for (const step of steps) {
      this.currentStep = step.index;
      const outcome = await this.step(step);
      if (outcome.kind === 'stop') {
        this.findings.push(outcome.finding);
        return;
      }
    }
  }

  /** The 1-based index of the step being run (0 during set-up). */
  get stepIndex(): number {
    return this.currentStep;
  }

  /** Runs the handshake as the driver (an `initialise` step, or after a reset) and remembers the outcome. */
  async initialise(accept: (offered: bigint) => bigint): Promise<HandshakeResult> {
    const init = await this.session.initialise(accept);
    // A device that fails at DRIVER_OK (dev.init.1 allows it) announces DEVICE_NEEDS_RESET too (dev.virtio.1):
    // a notification since the runner last counted them (0 at set-up: the session just opened).
    if (init.status & VIRTIO_CONFIG_S_NEEDS_RESET) {
      const notified = (await this.session.notificationCount()) > this.notifications;
      this.report(judgeNeedsResetNotification(0, init.status, notified, this.currentStep));
    }
    this.negotiated = init.featuresOk ? init.accepted : 0n;
    this.driverActive = driverRunning(init.status);
    this.status = init.status;
    if (init.featuresOk) this.lastAccepted = init.accepted;
    return init;
  }

  /**
   * Reads the 56 configuration bytes; when the adapter offers `config-generation`, reads the
   * generation with them and judges it against the previous read (dev.virtio.6, once per vector).
   */
  async readConfigBytes(): Promise<Uint8Array> {
    const bytes = await this.session.readConfig();
    if (!this.readGeneration) return bytes;
    const sample = { bytes: bytes.slice(), generation: await this.readGeneration() };
    this.report(judgeConfigGeneration(this.generationSample, sample, this.currentStep));
    this.generationSample = sample;
    return bytes;
  }

  /** Reads and decodes the configuration. */
  async readConfig(): Promise<StepOutcome<VirtioMemConfig>> {
    const decoded = decodeConfig(await this.readConfigBytes());
    if (decoded.ok) return proceed(decoded.value);
    return stopWith({
      verdict: 'error',
      step: this.currentStep,
      check: 'config',
      message: `configuration space unreadable: ${decoded.error.actual} of ${decoded.error.expected} bytes`,
    });
  }

  /** Features the runner accepts as the driver: the set-up's list, never more than offered. */
  private acceptFor(offered: bigint): bigint {
    return this.vector.setup.accept === 'offered' ? offered : this.vector.setup.accept & offered;
  }

  /** Performs one step, observes the device and checks what the step states. */
  private async step(step: Step): Promise<StepOutcome<void>> {
    const handler = deviceHandlerOf(step.action);
    if (!handler)
      return stopWith({
        verdict: 'error',
        step: step.index,
        check: 'step',
        message: `'${step.action.kind}' is not a device step`,
      });
    const before = this.config;
    const effect = await handler.execute(this, step.action, step);
    if (effect.kind === 'stop') return effect;
    const { transition, observed, findings, configAfter } = effect.value;
    this.findings.push(...(findings ?? []));

    const driverActiveDuringStep = this.driverActive;
    let after = configAfter;
    if (!after) {
      const read = await this.readConfig();
      if (read.kind === 'stop') return read;
      after = read.value;
    }
    const count = await this.session.notificationCount();
    const notified = count > this.notifications;
    this.notifications = count;
    this.config = after;
    this.followOracle(transition, before, after);
    this.observeStatus(await this.session.readStatus(), transition, notified, step.index);

    const observation: DeviceObservation = {
      before,
      after,
      notified,
      readStatus: () => this.session.readStatus(),
      readRawConfig: () => this.readConfigBytes(),
    };
    const checked = await applyCheckers(handler.expect, step, { ...observed, ...observation });
    if (checked.kind === 'stop') return checked;
    this.findings.push(...checked.value);

    const reinitialise =
      (step.action.kind === 'device-reset' && step.action.reinitialise) || transition === 'system-reset';
    if (reinitialise) {
      // The runner plays the driver: after a reset (or a reboot) it initialises the device again.
      const acceptedBefore = this.lastAccepted;
      const init = await this.initialise((offered) => this.acceptFor(offered));
      if (!init.featuresOk) return stopWith(judgeFeaturesOkRefusal(init, step.index, acceptedBefore));
    } else if (step.action.kind === 'device-reset') {
      // A reset the driver does not follow with a handshake: no driver is active until an initialise step.
      this.driverActive = false;
    }
    this.invariants(step.index, before, after, transition, notified, driverActiveDuringStep);
    return proceed(undefined);
  }

  /**
   * The status after a step: a freshly raised DEVICE_NEEDS_RESET while DRIVER_OK was set needs a
   * notification (dev.virtio.1); after a device reset the status reads 0 (dev.virtio.4).
   */
  private observeStatus(status: number, transition: TransitionKind, notified: boolean, step: number): void {
    const findings = [
      judgeNeedsResetNotification(this.status, status, notified, step),
      transition === 'device-reset' ? judgeStatusAfterReset(status, step) : undefined,
    ];
    for (const f of findings) this.report(f);
    this.status = status;
  }

  /** Adds a finding of the runner's own observations, once per vector and check. */
  private report(finding: Finding | undefined): void {
    if (finding && !this.findings.some((f) => f.check === finding.check)) this.findings.push(finding);
  }

  /** Keeps the oracle's block facts in step across transitions that are not requests. */
  private followOracle(transition: TransitionKind, before: VirtioMemConfig, after: VirtioMemConfig): void {
    if (transition === 'host-resize' || transition === 'device-reset') this.oracle.rebase(after);
    if (transition === 'system-reset' || transition === 'wake') {
      const persistent =
        transition === 'wake' && (this.negotiated & featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND)) !== 0n;
      if (persistent) this.oracle.rebase(after);
      else this.oracle.afterSystemReset(after, before.plugged_size);
    }
  }

  private invariants(
    step: number,
    before: VirtioMemConfig | undefined,
    after: VirtioMemConfig,
    kind: TransitionKind,
    notified: boolean,
    driverActive = true,
  ): void {
    if (!this.vector.checkInvariants) return;
    const snapAfter: DeviceSnapshot = { config: after, pluggedBlocks: this.oracle?.pluggedBlocks };
    const violations = checkConfigInvariants(snapAfter);
    if (before) {
      const persistentSuspend = (this.negotiated & featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND)) !== 0n;
      violations.push(
        ...checkTransition({ config: before }, snapAfter, kind, notified, { persistentSuspend, driverActive }),
      );
    }
    for (const v of violations) {
      if (this.reportedInvariants.has(v.invariant)) continue;
      this.reportedInvariants.add(v.invariant);
      this.findings.push(invariantFinding(step, v));
    }
  }
}
