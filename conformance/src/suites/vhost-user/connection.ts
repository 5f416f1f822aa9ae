/**
 * What the `vu.*` checks need from a vhost-user front-end: one connection to the back-end under
 * test, with strict reply checking. `VhostUserFrontEnd` (adapters/vhost-user/src/frontend.ts,
 * created with `strict: true`) implements it; the command line hands it in, so the checks never
 * import an adapter.
 *
 * Failures: a method that talks to the back-end throws an Error named `VhostUserProtocolError`
 * (the back-end broke the protocol, refused a request or ended the connection) or
 * `VhostUserTimeoutError` (no answer in time); {@link isBackendFault} recognises both. Anything
 * else thrown is a failure on our side.
 */
import type { Message } from '../../../../adapters/vhost-user/src/protocol';

/** A memfd region shared with the back-end (our fd is -1 once closed on our side). */
export interface CheckRegion {
  readonly fd: number;
  readonly guestAddress: bigint;
  readonly size: bigint;
  readonly userAddress: bigint;
}

/** A back-end channel: `theirs` goes to the back-end, our end is served by the connection. */
export interface CheckBackendChannel {
  readonly theirs: number;
  /** Request codes the back-end sent on it. */
  readonly received: readonly number[];
  /** Why our end ended, when it did. */
  readonly ended: string | undefined;
}

/** One connection to the back-end; everything it creates is released by {@link close}. */
export interface VhostUserConnection {
  /** Messages sent so far. */
  readonly sent: number;
  /** Whether REPLY_ACK is in use (so {@link command} checks an ack). */
  readonly acks: boolean;
  /** Whether the back-end ended the connection. */
  readonly ended: boolean;
  /** Whether a protocol feature is in use. */
  has(bit: number): boolean;
  /** SET_PROTOCOL_FEATURES; `acked: false` sends it without NEED_REPLY. */
  setProtocolFeatures(mask: bigint, acked?: boolean): Promise<void>;
  /** Sends one message as given. */
  send(request: number, flags: number, payload?: Uint8Array, fds?: readonly number[]): void;
  /** Sends bytes as they are (a partial message). */
  sendRaw(bytes: Uint8Array): void;
  /** The next message, whatever it is. */
  receive(label: string): Promise<Message>;
  /** The reply to `request`: same code, flags exactly 0x5, no fds. */
  reply(request: number, label?: string): Promise<Message>;
  /** The ack of `request`: its reply, 8 bytes, value 0. */
  ack(request: number, label?: string): Promise<void>;
  /** A request without a reply of its own; with REPLY_ACK it sets NEED_REPLY and checks the ack. */
  command(request: number, payload?: Uint8Array, fds?: readonly number[], label?: string): Promise<void>;
  /** A GET_* and its u64 answer. */
  queryU64(request: number, label?: string): Promise<bigint>;
  /** A GET_FEATURES round trip (everything before it was handled, nothing stray came first). */
  sync(label?: string): Promise<void>;
  /** A new memfd region at `guestAddress`, mapped here, not yet shared. */
  createRegion(guestAddress: bigint, size: bigint, name?: string): CheckRegion;
  /** Writes into a region's mapping. */
  writeRegion(region: CheckRegion, offset: bigint, bytes: Uint8Array): void;
  /** Closes our fd of a region (the mapping stays). */
  closeRegionFd(region: CheckRegion): void;
  /** Unmaps a region and closes its fd. */
  destroyRegion(region: CheckRegion): void;
  /** SET_MEM_TABLE with these regions, each with its fd. */
  setMemTable(regions: readonly CheckRegion[], label?: string): Promise<void>;
  /** ADD_MEM_REG of one region. */
  addRegion(region: CheckRegion, label?: string): Promise<void>;
  /** REM_MEM_REG of one region. */
  removeRegion(region: CheckRegion, label?: string): Promise<void>;
  /** A new eventfd. */
  createEventfd(): number;
  /** Closes an eventfd made by {@link createEventfd}. */
  closeEventfd(fd: number): void;
  /** A back-end channel, not yet sent. */
  createBackendChannel(): CheckBackendChannel;
  /** Closes our end of a back-end channel. */
  closeBackendChannel(channel: CheckBackendChannel): void;
  /** Closes an fd (one we sent and no longer need). */
  closeFd(fd: number): void;
  /** Closes the connection and everything made through it. Never throws; idempotent. */
  close(): void;
}

/** Names of the errors a connection throws when the back-end is at fault. */
const BACKEND_FAULT_NAMES: ReadonlySet<string> = new Set([
  'VhostUserProtocolError',
  'VhostUserTimeoutError',
  'BackendGone',
]);

/** The back-end cannot be reached any more (connect refused, its process gone). */
export class BackendGone extends Error {
  override readonly name = 'BackendGone';
}

/** Whether an error is the back-end's fault (a `fail`), rather than ours (an `error`). */
export function isBackendFault(e: unknown): e is Error {
  return e instanceof Error && BACKEND_FAULT_NAMES.has(e.name);
}
