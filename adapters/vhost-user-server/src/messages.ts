/**
 * The front-end messages the back-end handles, as data: for each request code the payload size
 * it must carry and the fds that must come with it. The generic handler checks both before a
 * message reaches its handler, so no handler repeats a size or fd-count test.
 *
 * A message's answer is an {@link HandlerReply}: reply bytes, or an acknowledgement (sent when the
 * front-end asked for one with NEED_REPLY) with an optional problem to log.
 */
import {
  ConfigHeaderLayout,
  MemoryTableHeaderLayout,
  Message,
  Request,
  SINGLE_REGION_SIZE,
  U64Layout,
  VringAddressLayout,
  VringStateLayout,
} from '../../vhost-user/src/protocol';

/** What a message's payload must be. */
export type PayloadRule =
  | { readonly kind: 'exact'; readonly size: number }
  /** At least `size` bytes; the handler checks the rest (a header announces what follows). */
  | { readonly kind: 'at-least'; readonly size: number; readonly what: string }
  /** Anything (the handler refuses the message whatever it carries). */
  | { readonly kind: 'any' };

/**
 * Which fds must come with a message.
 * - `none`: none; any that come are closed and logged.
 * - `one`: exactly one, handed to the handler, which owns it from then on.
 * - `vring`: one, unless the payload's no-fd flag is set (SET_VRING_KICK/CALL/ERR; the handler checks).
 * - `per-region`: one per memory region the payload announces (SET_MEM_TABLE; the handler checks).
 */
export type FdRule = 'none' | 'one' | 'vring' | 'per-region';

/** The rules of one front-end message. */
export interface MessageRule {
  readonly payload: PayloadRule;
  readonly fds: FdRule;
}

const exact = (size: number): PayloadRule => ({ kind: 'exact', size });
const NONE = exact(0);
const U64 = exact(U64Layout.size);

/** Every standard front-end message the back-end handles; any other code is unknown (or the control extension's). */
export const FRONT_END_MESSAGES = {
  [Request.GET_FEATURES]: { payload: NONE, fds: 'none' },
  [Request.SET_FEATURES]: { payload: U64, fds: 'none' },
  [Request.SET_OWNER]: { payload: NONE, fds: 'none' },
  [Request.RESET_OWNER]: { payload: NONE, fds: 'none' },
  [Request.SET_MEM_TABLE]: {
    payload: { kind: 'at-least', size: MemoryTableHeaderLayout.size, what: 'the table header' },
    fds: 'per-region',
  },
  [Request.SET_VRING_NUM]: { payload: exact(VringStateLayout.size), fds: 'none' },
  [Request.SET_VRING_ADDR]: { payload: exact(VringAddressLayout.size), fds: 'none' },
  [Request.SET_VRING_BASE]: { payload: exact(VringStateLayout.size), fds: 'none' },
  [Request.GET_VRING_BASE]: { payload: exact(VringStateLayout.size), fds: 'none' },
  [Request.SET_VRING_KICK]: { payload: U64, fds: 'vring' },
  [Request.SET_VRING_CALL]: { payload: U64, fds: 'vring' },
  [Request.SET_VRING_ERR]: { payload: U64, fds: 'vring' },
  [Request.GET_PROTOCOL_FEATURES]: { payload: NONE, fds: 'none' },
  [Request.SET_PROTOCOL_FEATURES]: { payload: U64, fds: 'none' },
  [Request.GET_QUEUE_NUM]: { payload: NONE, fds: 'none' },
  [Request.SET_VRING_ENABLE]: { payload: exact(VringStateLayout.size), fds: 'none' },
  [Request.SET_BACKEND_REQ_FD]: { payload: NONE, fds: 'one' },
  [Request.GET_CONFIG]: {
    payload: { kind: 'at-least', size: ConfigHeaderLayout.size, what: 'the config header' },
    fds: 'none',
  },
  [Request.SET_CONFIG]: { payload: { kind: 'any' }, fds: 'none' },
  [Request.RESET_DEVICE]: { payload: NONE, fds: 'none' },
  [Request.GET_MAX_MEM_SLOTS]: { payload: NONE, fds: 'none' },
  [Request.ADD_MEM_REG]: { payload: exact(SINGLE_REGION_SIZE), fds: 'one' },
  [Request.REM_MEM_REG]: { payload: exact(SINGLE_REGION_SIZE), fds: 'none' },
  [Request.SET_STATUS]: { payload: U64, fds: 'none' },
  [Request.GET_STATUS]: { payload: NONE, fds: 'none' },
} as const satisfies Readonly<Record<number, MessageRule>>;

/** A request code the back-end handles. */
export type HandledRequest = keyof typeof FRONT_END_MESSAGES;

/** The rules of a request code, or undefined when the back-end does not handle it. */
export function messageRule(request: number): MessageRule | undefined {
  return (FRONT_END_MESSAGES as Readonly<Record<number, MessageRule>>)[request];
}

/** Why the payload breaks its rule, or undefined when it keeps it. */
export function payloadProblem(rule: PayloadRule, size: number): string | undefined {
  switch (rule.kind) {
    case 'exact':
      return size === rule.size ? undefined : `payload of ${size} bytes, expected ${rule.size}`;
    case 'at-least':
      return size >= rule.size ? undefined : `payload of ${size} bytes is shorter than ${rule.what}`;
    case 'any':
      return undefined;
  }
}

/** A message's answer: reply bytes, or an acknowledgement with an optional problem to log. */
export type HandlerReply = { readonly reply: Uint8Array } | { readonly ack: boolean; readonly problem?: string };

/** Success, nothing to report. */
export const OK: HandlerReply = { ack: true };

/** Failure: the front-end is told (when it asked for a reply) and `problem` is logged. */
export function refusal(problem: string): HandlerReply {
  return { ack: false, problem };
}

/**
 * Takes the message's only fd: the caller owns it from then on (the generic handler closes every
 * fd left in the message). A string says why there was not exactly one.
 */
export function takeFd(message: Message): number | string {
  if (message.fds.length !== 1) return `expected 1 fd, got ${message.fds.length}`;
  const fd = message.fds[0]!;
  message.fds[0] = -1;
  return fd;
}
