/**
 * The shared vocabulary of `vmemct fuzz`: the options a fuzzer takes and the report it returns,
 * for both targets (device fuzzing and driver fuzzing).
 */

/** How long a fuzz run may go on: a count of operations, a wall-clock time, or both (first reached). */
export interface FuzzBudget {
  readonly operations?: number;
  readonly timeMs?: number;
}
/** A progress tick: operations run so far and the time spent. */
export interface FuzzProgress {
  readonly operations: number;
  readonly elapsedMs: number;
}
/** What a fuzzer is asked to do: the seed that makes the run replayable, its budget, a progress sink. */
export interface FuzzOptions {
  readonly seed: number;
  readonly budget: FuzzBudget;
  readonly onProgress?: (p: FuzzProgress) => void;
}
/** A difference outside the conforming set, shrunk and written as a vector. */
export interface FuzzFinding {
  /** One line: what differed, the requirement IDs the oracle cites. */
  readonly summary: string;
  readonly requirements: readonly string[];
  readonly vectorId: string;
  /** A complete vector file (valid, lints clean). */
  readonly vectorYaml: string;
  readonly operationsBeforeShrink: number;
  readonly operationsAfterShrink: number;
}
/** The outcome of one fuzz run. */
export interface FuzzReport {
  readonly target: 'device' | 'driver';
  readonly seed: number;
  readonly operations: number;
  readonly elapsedMs: number;
  /** How often each request kind / outcome class / host action was exercised. */
  readonly coverage: Readonly<Record<string, number>>;
  readonly finding?: FuzzFinding;
}
