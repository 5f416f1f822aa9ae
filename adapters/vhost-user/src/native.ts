/**
 * The vhost-user native helper (`native/vhostfd.c` and `native/mappings.c`): unix sockets with fd passing, memfd, shared
 * mappings reached through handles, eventfd, and readiness watches on Node's event loop.
 *
 * It is built by `npm run build:native` (a C compiler, make and python3) and loaded on first use,
 * so nothing else in vmemct needs a compiler. {@link NativeHelperMissingError} says how to build it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A shared mapping; only the helper's functions can reach its memory. */
export interface MappingHandle {
  readonly __mapping: unique symbol;
}

/** A readiness watch. */
export interface WatchHandle {
  readonly __watch: unique symbol;
}

/** What one `receiveMessage` returned: bytes (empty at end of stream) and the fds that came with them. */
export interface Received {
  readonly data: Buffer;
  readonly fds: number[];
  /** The kernel dropped fds that did not fit (MSG_CTRUNC). */
  readonly truncatedFds: boolean;
}

/** The helper's functions. Errors are thrown as `Error` with `code` set to the errno name. */
export interface VhostNative {
  connect(path: string): number;
  listen(path: string, backlog?: number): number;
  /** -1 when nothing is waiting. */
  accept(fd: number): number;
  socketPair(): [number, number];
  /**
   * Sends with MSG_DONTWAIT; a full socket buffer is waited for up to `timeoutMs` (default 1000;
   * 0: not at all), then ETIMEDOUT.
   */
  sendMessage(fd: number, bytes: Uint8Array, fds?: readonly number[], timeoutMs?: number): number;
  /** null when nothing is waiting. */
  receiveMessage(fd: number, maxBytes: number): Received | null;
  close(fd: number): void;
  shutdown(fd: number): void;
  memfd(name: string, size: number | bigint): number;
  map(fd: number, length: number | bigint, offset?: number | bigint): MappingHandle;
  unmap(handle: MappingHandle): void;
  address(handle: MappingHandle): bigint;
  read(handle: MappingHandle, offset: number | bigint, length: number): Buffer;
  write(handle: MappingHandle, offset: number | bigint, bytes: Uint8Array): void;
  /** MADV_REMOVE: frees the pages; the memfd gets a hole that reads as zeros. */
  discard(handle: MappingHandle, offset: number | bigint, length: number | bigint): void;
  /** Pages of the range backed by memory (mincore). */
  residentPages(handle: MappingHandle, offset: number | bigint, length: number | bigint): number;
  eventfd(): number;
  /** Adds 1 to an eventfd without blocking; false when it cannot take it now (its count is full). */
  signal(fd: number): boolean;
  /** A pipe: [read end, write end], both non-blocking. */
  pipe(): [number, number];
  /** Sets or clears O_NONBLOCK on `fd` (its whole open file description, shared with any peer holding it). */
  setBlocking(fd: number, blocking: boolean): void;
  /** The eventfd's count, 0 when it was not signalled. */
  drain(fd: number): number;
  /** Calls `onEvent` on the event loop whenever `fd` is readable or hung up (-1 on a poll error). */
  watch(fd: number, onEvent: (events: number) => void): WatchHandle;
  unwatch(handle: WatchHandle): void;
}

/** The helper is not built (or not loadable) on this machine. */
export class NativeHelperMissingError extends Error {
  override readonly name = 'NativeHelperMissingError';
}

const BUILT = path.join('native', 'build', 'Release', 'vhostfd.node');

/** Where the built helper may be: beside the sources (ts-jest) or beside dist/ (the CLI). */
function candidates(): string[] {
  const here = __dirname;
  return [path.resolve(here, '..', BUILT), path.resolve(here, '..', '..', '..', '..', 'adapters', 'vhost-user', BUILT)];
}

let loaded: VhostNative | undefined;

/**
 * The native helper, loaded once.
 * @throws NativeHelperMissingError when it has not been built.
 */
export function vhostNative(): VhostNative {
  if (loaded) return loaded;
  const found = candidates().find((file) => fs.existsSync(file));
  if (!found) {
    throw new NativeHelperMissingError(
      'the vhost-user native helper is not built: run `npm run build:native` once (it needs a C compiler, make and python3; Debian: apt-get install g++ make python3)',
    );
  }
  try {
    const holder = { exports: {} as unknown };
    process.dlopen(holder, found);
    loaded = holder.exports as VhostNative;
  } catch (e) {
    throw new NativeHelperMissingError(
      `the vhost-user native helper at ${found} does not load (${(e as Error).message}); rebuild it with \`npm run build:native\``,
    );
  }
  return loaded;
}

/** Number of fds this process has open (for leak checks). */
export function openFdCount(pid: number | 'self' = 'self'): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}
