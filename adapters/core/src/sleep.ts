/**
 * Waiting, for code that polls a real target (QEMU, a guest, a socket) until it has done
 * something: the adapters and the vu.* checks. The runner bounds every step itself; this is only
 * the pause between two looks.
 */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
