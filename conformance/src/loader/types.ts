/**
 * Vectors as the runner sees them: loaded from YAML, validated, expressions parsed, capabilities
 * derived from the steps. The YAML format is described by `VectorFileSchema`, assembled from the
 * step kinds in `conformance/src/steps/schema.ts`; each step kind's action type lives in its module.
 */
import type { BlockRange, Capability, Target } from '../../../adapters/core/src/contract';
import type { Expectation, StepAction } from '../steps/index';
import type { Expr } from './expr';

export type { Expectation, StepAction };

/** Where something came from. */
export interface SourceRef {
  readonly file: string;
  readonly line: number;
}

/** Verdict classes a vector may attach to an allowed outcome. */
export type SetClass = 'pass' | 'acceptable' | 'non-strict' | 'informational' | 'fail';

/** Allowed outcomes and how each is judged; an outcome not listed fails. */
export type OutcomeSet = ReadonlyMap<string, SetClass>;

/** An expected configuration value. */
export type ValueExpectation =
  | { readonly kind: 'equals'; readonly expr: Expr; readonly text: string }
  | { readonly kind: 'range'; readonly min?: Expr; readonly max?: Expr; readonly text: string }
  | { readonly kind: 'unchanged' };

/** Names of the configuration fields an expectation may address. */
export type ConfigFieldName =
  'block_size' | 'node_id' | 'addr' | 'region_size' | 'usable_region_size' | 'plugged_size' | 'requested_size';

/** A request given by fields (missing fields are 0) or as raw bytes. */
export type RequestSpec =
  | {
      readonly form: 'fields';
      readonly type: number;
      readonly addr: Expr;
      readonly nbBlocks: Expr;
      readonly padding?: Uint8Array;
      readonly payloadPadding?: Uint8Array;
    }
  | { readonly form: 'raw'; readonly bytes: Uint8Array };

/** One step. */
export interface Step {
  /** 1-based position in the vector. */
  readonly index: number;
  readonly line: number;
  readonly action: StepAction;
  readonly expect: Expectation;
  readonly note?: string;
  /**
   * In a multi-device vector, the 0-based index in {@link Vector.devices} of the device the step
   * acts on (the YAML may name it or give the index); absent: every device in turn.
   */
  readonly device?: number;
}

/** The initial device, with expressions still to evaluate (they may use block_size, region_size, addr). */
export interface SetupSpec {
  readonly block_size: Expr;
  readonly region_size: Expr;
  readonly addr: Expr;
  readonly requested_size: Expr;
  /** usable_region_size when the device starts (a choice a device makes; undefined leaves it to the device). */
  readonly usable_region_size?: Expr;
  readonly node_id: number;
  /** Offered features; undefined = the implementation's default. */
  readonly features?: bigint;
  /** Features the runner accepts as the driver: all offered, or exactly these (masked by what is offered). */
  readonly accept: 'offered' | bigint;
  readonly plugged: readonly BlockRange[];
  readonly configPadding?: Uint8Array;
}

/** One device of a multi-device driver vector: its name and its set-up (the vector's, with the device's own fields over it). */
export interface DeviceSpec {
  readonly name: string;
  readonly setup: SetupSpec;
}

/** A loaded vector. */
export interface Vector {
  readonly id: string;
  readonly title: string;
  readonly requirements: readonly string[];
  readonly target: Target;
  /** Capabilities declared plus those the steps imply. */
  readonly needs: readonly Capability[];
  readonly tags: readonly string[];
  readonly timeoutMs?: number;
  readonly checkInvariants: boolean;
  readonly setup: SetupSpec;
  /**
   * A multi-device driver vector's devices (two or more, one driver managing them all); absent
   * for a single-device vector, whose one device is {@link setup}.
   */
  readonly devices?: readonly DeviceSpec[];
  readonly steps: readonly Step[];
  readonly description?: string;
  readonly retired?: { readonly reason: string; readonly supersededBy?: string };
  readonly source: SourceRef;
}

/** A problem found while loading: file, line, field path and reason. */
export interface LoadProblem {
  readonly file: string;
  readonly line: number;
  readonly field: string;
  readonly reason: string;
}

/** Formats a problem as `file:line: field: reason`. */
export function formatProblem(p: LoadProblem): string {
  return `${p.file}:${p.line}: ${p.field ? `${p.field}: ` : ''}${p.reason}`;
}
