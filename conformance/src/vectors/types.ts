/**
 * Vectors as the runner sees them: loaded from YAML, validated, expressions parsed, capabilities
 * derived from the steps. The YAML format itself is described by `VectorFileSchema` in `spec/`.
 */
import type { BlockRange, Capability, Target } from '../../../adapters/core/src/contract';
import type { Expr } from './expr';

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
export type ConfigFieldName = 'block_size' | 'node_id' | 'addr' | 'region_size' | 'usable_region_size' | 'plugged_size' | 'requested_size';

/** What a step expects (every member optional; only what is stated is checked). */
export interface Expectation {
  readonly response?: OutcomeSet;
  /** The block state an ACKed STATE request reports (one state, or states with verdict classes). */
  readonly state?: OutcomeSet;
  readonly config?: ReadonlyMap<ConfigFieldName, ValueExpectation>;
  readonly configBytes?: Uint8Array;
  readonly notification?: OutcomeSet;
  readonly needsReset?: boolean;
  readonly resize?: OutcomeSet;
  readonly featuresOk?: OutcomeSet;
  readonly access?: OutcomeSet;
  readonly data?: Uint8Array;
  readonly converged?: boolean;
  readonly settled?: boolean;
  readonly firstRequest?: readonly string[];
  readonly requests?: { readonly min?: number; readonly max?: number };
  readonly requestTypes?: { readonly includes: readonly string[]; readonly excludes: readonly string[] };
  readonly suspend?: OutcomeSet;
  readonly acceptedFeatures?: { readonly includes: bigint; readonly excludes: bigint };
}

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

/** What a step does. */
export type StepAction =
  | { readonly kind: 'request'; readonly request: RequestSpec; readonly layout?: { readonly readable: readonly number[]; readonly writable: readonly number[] } }
  | { readonly kind: 'resize'; readonly size: Expr }
  | { readonly kind: 'device-reset' }
  | { readonly kind: 'system-reset' }
  | { readonly kind: 'read-config' }
  | { readonly kind: 'initialise'; readonly accept: 'offered' | bigint }
  | { readonly kind: 'inject-busy'; readonly count: number }
  | { readonly kind: 'write-memory'; readonly addr: Expr; readonly data: Uint8Array }
  | { readonly kind: 'read-memory'; readonly addr: Expr; readonly length: number }
  | { readonly kind: 'suspend' }
  | { readonly kind: 'start' }
  | { readonly kind: 'settle'; readonly maxRequests?: number; readonly timeoutMs?: number }
  | {
      readonly kind: 'inject';
      readonly response: 'ACK' | 'NACK' | 'BUSY' | 'ERROR';
      readonly count: number;
      readonly types?: readonly string[];
      readonly trailer?: Uint8Array;
    };

/** The YAML key of each step kind. */
export const STEP_KEYS: Readonly<Record<StepAction['kind'], string>> = {
  request: 'request',
  resize: 'resize',
  'device-reset': 'device_reset',
  'system-reset': 'system_reset',
  'read-config': 'read_config',
  initialise: 'initialise',
  'inject-busy': 'inject_busy',
  'write-memory': 'write_memory',
  'read-memory': 'read_memory',
  suspend: 'suspend',
  start: 'start',
  settle: 'settle',
  inject: 'inject',
};

/** One step. */
export interface Step {
  /** 1-based position in the vector. */
  readonly index: number;
  readonly line: number;
  readonly action: StepAction;
  readonly expect: Expectation;
  readonly note?: string;
}

/** The initial device, with expressions still to evaluate (they may use block_size, region_size, addr). */
export interface SetupSpec {
  readonly block_size: Expr;
  readonly region_size: Expr;
  readonly addr: Expr;
  readonly requested_size: Expr;
  readonly node_id: number;
  /** Offered features; undefined = the implementation's default. */
  readonly features?: bigint;
  /** Features the runner accepts as the driver: all offered, or exactly these (masked by what is offered). */
  readonly accept: 'offered' | bigint;
  readonly plugged: readonly BlockRange[];
  readonly configPadding?: Uint8Array;
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
