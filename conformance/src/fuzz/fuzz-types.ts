/** The records `vmemct fuzz` takes and gives, shared by device and driver fuzzing. */

/** How much exploring to do: operations, wall-clock time, or both (whichever ends first). */
export interface FuzzBudget {
  readonly operations?: number;
  readonly timeMs?: number;
}

/** How far a run has got. */
export interface FuzzProgress {
  readonly operations: number;
  readonly elapsedMs: number;
}

/** What a fuzz run is given. */
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

/** What a fuzz run did and found. */
export interface FuzzReport {
  readonly target: 'device' | 'driver';
  readonly seed: number;
  readonly operations: number;
  readonly elapsedMs: number;
  /** How often each request kind / outcome class / host action was exercised. */
  readonly coverage: Readonly<Record<string, number>>;
  readonly finding?: FuzzFinding;
}
