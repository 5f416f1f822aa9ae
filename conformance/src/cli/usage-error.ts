/**
 * Exit codes of `vmemct` (a contract: CI jobs gate on them).
 * - 0: everything as expected.
 * - 1: unexpected results (a conformance failure).
 * - 2: harness or adapter error (the target could not be tested).
 * - 3: bad usage or bad input files.
 */
export const EXIT_OK = 0;
export const EXIT_UNEXPECTED = 1;
export const EXIT_HARNESS_ERROR = 2;
export const EXIT_USAGE = 3;

/** The CLI exit code of a run's outcome (0 as expected, 1 unexpected, 2 harness error, 3 bad input). */
export function exitCodeOf(runExitCode: 0 | 1 | 2 | 3): number {
  return [EXIT_OK, EXIT_UNEXPECTED, EXIT_HARNESS_ERROR, EXIT_USAGE][runExitCode];
}

/** Bad command-line usage or input: reported as one line, exit code 3, never a stack trace. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Guard for {@link UsageError} that survives duplicated module copies. */
export function isUsageError(value: unknown): value is UsageError {
  return value instanceof Error && value.name === 'UsageError';
}

/** The target could not be tested (e.g. QEMU is not installed): one line, exit code 2. */
export class HarnessError extends Error {
  override readonly name = 'HarnessError';
}

/** Guard for {@link HarnessError} that survives duplicated module copies. */
export function isHarnessError(value: unknown): value is HarnessError {
  return value instanceof Error && value.name === 'HarnessError';
}
