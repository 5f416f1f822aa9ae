/**
 * What a step kind is: one module per kind (request, resize, …) declares its YAML key, the
 * schema of its action value, how that value is normalised, the capability it implies, and —
 * for each target that may use it — how it runs against an adapter session and which
 * expectation keys it reads, each with the checker that reads it.
 *
 * The loader admits exactly the expectation keys a handler has a checker for, and the runners
 * apply exactly the checkers of the keys a step states; so an expectation that is accepted is
 * an expectation that is checked.
 */
import type {
  Capability,
  DeviceSession,
  DriverSession,
  HandshakeResult,
  Target,
} from '../../../adapters/core/src/contract';
import type { RequestEvaluation, TransitionKind, VirtioMemConfig } from '../../../model/src/index';
import type { Step, Vector } from '../loader/types';
import type { Oracle } from '../judge/oracle';
import type { Checked, Finding, StepOutcome } from '../judge/verdicts';
import type { ExpectKey, ExpectValue } from './expectations';
import type { DriverShadow } from '../judge/driver-checks';
import type { Site } from './site';

export { proceed, stopWith } from '../judge/verdicts';
export type { Checked, StepOutcome } from '../judge/verdicts';

/** Reads one stated expectation against what a step observed. */
export type Checker<K extends ExpectKey, O> = (
  stated: ExpectValue<K>,
  observed: O,
  step: number,
) => Checked | Promise<Checked>;

/** The expectation keys a handler reads, each with its checker, in the order they are checked. */
export type Checkers<O> = { readonly [K in ExpectKey]?: Checker<K, O> };

// ------------------------------------------------------------------ device target

/** What the device runner observes after every device step (the common part of an observation). */
export interface DeviceObservation {
  /** The configuration before the step. */
  readonly before: VirtioMemConfig;
  /** The configuration after the step. */
  readonly after: VirtioMemConfig;
  /** Whether a configuration-change notification arrived during the step. */
  readonly notified: boolean;
  /** Reads the device status register now. */
  readStatus(): Promise<number>;
  /** Reads the 56 configuration bytes now. */
  readRawConfig(): Promise<Uint8Array>;
}

/** What the device runner offers a step: the session, the vector, the state before the step. */
export interface DeviceStepContext {
  readonly session: DeviceSession;
  readonly vector: Vector;
  /** The configuration before the step. */
  readonly config: VirtioMemConfig;
  /** The model device kept in step with the device under test. */
  readonly oracle: Oracle;
  /** Runs the handshake as the driver and remembers what was negotiated. */
  initialise(accept: (offered: bigint) => bigint): Promise<HandshakeResult>;
  /** Reads and decodes the configuration. */
  readConfig(): Promise<StepOutcome<VirtioMemConfig>>;
  /** Told about each request the oracle evaluated (lint uses it). */
  readonly observer?: DeviceRunObserver;
  /** How many times a request answered BUSY, where the vector does not list BUSY, is retried (dev.suite.1). */
  readonly busyRetries: number;
  /**
   * Whether the host holds the device busy (a `host_busy: true` step not yet released): an
   * unlisted BUSY is then expected, not retried (the progress rule resumes after the release).
   */
  hostBusy: boolean;
}

/** Watches a device run from outside (lint's dry run). */
export interface DeviceRunObserver {
  /** The oracle's conforming set for a request step, before its first submission. */
  requestEvaluated?(step: Step, evaluation: RequestEvaluation): void;
}

/** What a device step did, before the common observation. */
export interface DeviceEffect<O> {
  /** The transition the step made, for the oracle and the transition invariants. */
  readonly transition: TransitionKind;
  /** What the step saw, for its checkers. */
  readonly observed: O;
  /** Findings the step made itself (not expectations of the vector). */
  readonly findings?: readonly Finding[];
  /** The configuration after the step, when the step already read it. */
  readonly configAfter?: VirtioMemConfig;
}

/** How a step kind runs on the device target. */
export interface DeviceHandler<A, O> {
  execute(context: DeviceStepContext, action: A, step: Step): Promise<StepOutcome<DeviceEffect<O>>>;
  readonly expect: Checkers<O & DeviceObservation>;
}

// ------------------------------------------------------------------ driver target

/** What the driver runner offers a step: the session, the vector and the state it keeps. */
export interface DriverStepContext {
  readonly session: DriverSession;
  readonly vector: Vector;
  /** The device configuration as last read (handlers that read it again update it). */
  config: VirtioMemConfig;
  /** Features the driver accepted (known after `start`). */
  negotiated: bigint;
  /** The blocks the device holds as plugged, and the driver's progress, as the runner tracks them. */
  readonly shadow: DriverShadow;
  /** Reads and decodes the configuration (and remembers it). */
  readConfig(): Promise<StepOutcome<VirtioMemConfig>>;
}

/** What the driver runner observes after every driver step. */
export interface DriverObservation {
  /** The configuration before the step. */
  readonly before: VirtioMemConfig;
  /** Reads the configuration after the step. */
  configAfter(): Promise<StepOutcome<VirtioMemConfig>>;
}

/** What a driver step did. */
export interface DriverEffect<O> {
  readonly observed: O;
  /** Findings the step made itself. */
  readonly findings?: readonly Finding[];
  /** Findings reported at most once per vector and check (a misbehaving driver repeats itself). */
  readonly once?: readonly Finding[];
}

/** How a step kind runs on the driver target. */
export interface DriverHandler<A, O> {
  execute(context: DriverStepContext, action: A, step: Step): Promise<StepOutcome<DriverEffect<O>>>;
  readonly expect: Checkers<O & DriverObservation>;
}

// ------------------------------------------------------------------ the kind

/** One step kind. `A` is its normalised action. */
export interface StepKind<A extends { readonly kind: string }> {
  /** The action's kind, as the runners and reports name it. */
  readonly kind: A['kind'];
  /** The YAML key of the step. */
  readonly key: string;
  /** JSON Schema of the action value. */
  readonly schema: object;
  /** The capability every use of the step needs. */
  readonly capability?: Capability;
  /**
   * The step observes the whole system, not one device: in a multi-device vector a step that
   * addresses no device runs once (on the first device's session) instead of once per device.
   */
  readonly systemWide?: boolean;
  /** Further capabilities a particular action needs. */
  implies?(action: A): readonly Capability[];
  /** Raw (schema-valid) YAML value → action; problems go to the site. */
  normalise(raw: unknown, site: Site): A | undefined;
  /** Per target: how the step runs there (a kind without a handler for a target is not a step of it; each handler's observation type is its own). */
  readonly targets: { readonly [T in Target]?: T extends 'device' ? DeviceHandler<A, any> : DriverHandler<A, any> };
}

/** Declares a step kind (keeps the action type of the handlers, and each handler's observation type). */
export function defineStepKind<A extends { readonly kind: string }, DO = never, RO = never>(
  kind: Omit<StepKind<A>, 'targets'> & {
    readonly targets: { readonly device?: DeviceHandler<A, DO>; readonly driver?: DriverHandler<A, RO> };
  },
): StepKind<A> {
  return kind as StepKind<A>;
}
