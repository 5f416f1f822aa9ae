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

/** Whether a status register shows a running driver: DRIVER_OK set and the device not broken. */
function driverRunning(status: number): boolean {
  return (status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 && (status & VIRTIO_CONFIG_S_NEEDS_RESET) === 0;
}

/** Options of a device run. */
export interface DeviceRunOptions {
  /** Watches the run (lint's dry run collects the oracle's conforming sets through it). */
  readonly observer?: DeviceRunObserver;
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
  const run = new DeviceRun(vector, session, setup, options.observer, options.busyRetries);
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

  constructor(
    readonly vector: Vector,
    readonly session: DeviceSession,
    private readonly setup: DeviceSetup,
    readonly observer?: DeviceRunObserver,
    readonly busyRetries: number = BUSY_RETRIES.default,
  ) {}

  /** Runs every step, until one stops the vector. */
  async run(): Promise<void> {
    const steps = this.vector.steps;
    // With an initialise step the vector decides when the driver side starts; steps before it meet a device no driver activated.
    const explicitInit = steps.some((step) => step.action.kind === 'initialise');
    if (!explicitInit) {
      const init = await this.session.initialise((offered) => this.acceptFor(offered));
      this.negotiated = init.accepted;
      this.driverActive = driverRunning(init.status);
      if (!init.featuresOk) {
        this.findings.push({
          verdict: 'error',
          step: 0,
          check: 'setup',
          message: `the device refused FEATURES_OK during set-up (offered 0x${init.offered.toString(16)}, accepted 0x${init.accepted.toString(16)})`,
        });
        return;
      }
    }
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
    this.oracle = new Oracle(this.config, this.setup.plugged, this.negotiated);
    this.invariants(0, undefined, this.config, 'read', false);
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
    this.negotiated = init.featuresOk ? init.accepted : 0n;
    this.driverActive = driverRunning(init.status);
    return init;
  }

  /** Reads and decodes the configuration. */
  async readConfig(): Promise<StepOutcome<VirtioMemConfig>> {
    const decoded = decodeConfig(await this.session.readConfig());
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

    const observation: DeviceObservation = {
      before,
      after,
      notified,
      readStatus: () => this.session.readStatus(),
      readRawConfig: () => this.session.readConfig(),
    };
    const checked = await applyCheckers(handler.expect, step, { ...observed, ...observation });
    if (checked.kind === 'stop') return checked;
    this.findings.push(...checked.value);

    if (transition === 'device-reset' || transition === 'system-reset') {
      // The runner plays the driver: after a reset (or a reboot) it initialises the device again.
      await this.initialise((offered) => this.acceptFor(offered));
    }
    this.invariants(step.index, before, after, transition, notified, driverActiveDuringStep);
    return proceed(undefined);
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
