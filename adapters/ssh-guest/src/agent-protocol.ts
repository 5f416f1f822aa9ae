/**
 * The frames vmemct exchanges with its in-guest agent (adapters/ssh-guest/agent/vmemct-agent.c,
 * whose header comment describes the same layout), declared once here as data: the request and
 * reply headers, each operation's code, fixed fields and answer, and the agent's error codes. The
 * operation and answer types, the encoder and the decoder are derived from these tables.
 *
 * A request carries a list of operations performed in order; its reply carries the answers of
 * those performed, so a whole virtio request (buffers, ring entries, notification, used ring) is
 * one round trip. All fields are little-endian; bytes no field covers must be zero.
 */
import { StructLayout, StructValues, decodeStruct, encodeStructInto } from '../../../spec/src/index';

/** The protocol version `hello` carries; the agent refuses any other. */
export const AGENT_PROTOCOL_VERSION = 1;

/** First bytes of a request after its length: "VMGQ". */
export const AGENT_REQUEST_MAGIC = 0x51474d56;

/** First bytes of a reply after its length: "VMGR". */
export const AGENT_REPLY_MAGIC = 0x52474d56;

/** Largest request, header included, and largest reply before its error trailer (16 MiB). */
export const AGENT_MAX_FRAME = 16 << 20;

/** Most operations in one request. */
export const AGENT_MAX_OPERATIONS = 65536;

/** Longest error message the agent writes, in bytes. */
export const AGENT_MAX_MESSAGE = 1024;

/** Longest `wait-change`, in microseconds. */
export const AGENT_MAX_WAIT_US = 1_000_000;

/** `open`'s `bdf` meaning "the only virtio-mem function there is". */
export const AGENT_ANY_FUNCTION = 0xffffffff;

/** Number of BARs `open` reports. */
export const AGENT_BARS = 6;

/** The request header. */
export const AgentRequestHeaderLayout = {
  name: 'agent request header',
  size: 16,
  fields: {
    /** The whole frame in bytes, header included. */
    length: { offset: 0, type: 'u32' },
    magic: { offset: 4, type: 'u32' },
    /** Echoed in the reply. */
    sequence: { offset: 8, type: 'u32' },
    /** Number of operations that follow. */
    count: { offset: 12, type: 'u32' },
  },
} as const satisfies StructLayout;

/** The reply header; the answers of the first `done` operations follow it. */
export const AgentReplyHeaderLayout = {
  name: 'agent reply header',
  size: 20,
  fields: {
    length: { offset: 0, type: 'u32' },
    magic: { offset: 4, type: 'u32' },
    sequence: { offset: 8, type: 'u32' },
    /** One of {@link AGENT_REPLY_STATUSES}, by index. */
    status: { offset: 12, type: 'u32' },
    /** Operations performed and answered. */
    done: { offset: 16, type: 'u32' },
  },
} as const satisfies StructLayout;

/** After the answers of a reply whose status is not `ok`: why; the message (ASCII) follows. */
export const AgentErrorTrailerLayout = {
  name: 'agent error trailer',
  size: 8,
  fields: {
    /** One of {@link AGENT_ERROR_CODES}, by index + 1. */
    code: { offset: 0, type: 'u32' },
    messageLength: { offset: 4, type: 'u32' },
  },
} as const satisfies StructLayout;

/**
 * A reply's status, by its numeric value: `ok` (all performed), `refused` (operation `done` was
 * refused; those before it were performed, none after), `malformed` (nothing performed; the agent
 * exits after this reply).
 */
export const AGENT_REPLY_STATUSES = ['ok', 'refused', 'malformed'] as const;

/** One of {@link AGENT_REPLY_STATUSES}. */
export type AgentReplyStatus = (typeof AGENT_REPLY_STATUSES)[number];

/** The agent's error codes; the wire value is the index + 1. */
export const AGENT_ERROR_CODES = [
  'malformed',
  'version',
  'no-device',
  'several-devices',
  'not-open',
  'refused-access',
  'io',
  'lockdown',
  'devmem-refused',
  'no-hugepage',
  'not-contiguous',
] as const;

/** One of {@link AGENT_ERROR_CODES}. */
export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

const EMPTY = { name: 'nothing', size: 0, fields: {} } as const satisfies StructLayout;

/** Fields of the `open` answer: the function, then base and size of each of the six BARs. */
const OPEN_ANSWER = {
  name: 'open answer',
  size: 16 + 16 * AGENT_BARS,
  fields: {
    /** Domain << 16 | bus << 8 | device << 3 | function. */
    bdf: { offset: 0, type: 'u32' },
    vendor: { offset: 4, type: 'u16' },
    device: { offset: 6, type: 'u16' },
    /** Bit i: memory BAR i is mapped for MMIO. */
    memoryBars: { offset: 8, type: 'u32' },
    /** 1 when the agent unbound a driver (virtio-pci) from the function. */
    unbound: { offset: 12, type: 'u32' },
    bar0Base: { offset: 16, type: 'u64' },
    bar0Size: { offset: 24, type: 'u64' },
    bar1Base: { offset: 32, type: 'u64' },
    bar1Size: { offset: 40, type: 'u64' },
    bar2Base: { offset: 48, type: 'u64' },
    bar2Size: { offset: 56, type: 'u64' },
    bar3Base: { offset: 64, type: 'u64' },
    bar3Size: { offset: 72, type: 'u64' },
    bar4Base: { offset: 80, type: 'u64' },
    bar4Size: { offset: 88, type: 'u64' },
    bar5Base: { offset: 96, type: 'u64' },
    bar5Size: { offset: 104, type: 'u64' },
  },
} as const satisfies StructLayout;

/** Where an operation carries bytes beyond its fixed fields: none, after the request, in the answer. */
export type AgentPayload = 'none' | 'request' | 'answer';

/** One operation: its code, its fixed request fields (`code` at offset 0), its answer. */
export interface AgentOperationSpec {
  readonly code: number;
  readonly request: StructLayout;
  readonly answer: StructLayout;
  /** `request`: `length` bytes follow the fixed part; `answer`: the answer is `length` bytes. */
  readonly payload: AgentPayload;
}

/**
 * Every operation of the protocol. The first seven are the {@link PciBusOperation} kinds with the
 * same names and fields; `wait-change` polls a scalar until it differs from `value` (a used index
 * the device has not moved yet) for at most `timeoutUs`; the last four set the agent up.
 */
export const AGENT_OPERATIONS = {
  'config-read': {
    code: 0x01,
    request: {
      name: 'config-read',
      size: 4,
      fields: { code: { offset: 0, type: 'u8' }, width: { offset: 1, type: 'u8' }, offset: { offset: 2, type: 'u16' } },
    },
    answer: { name: 'config-read answer', size: 4, fields: { value: { offset: 0, type: 'u32' } } },
    payload: 'none',
  },
  'config-write': {
    code: 0x02,
    request: {
      name: 'config-write',
      size: 8,
      fields: {
        code: { offset: 0, type: 'u8' },
        width: { offset: 1, type: 'u8' },
        offset: { offset: 2, type: 'u16' },
        value: { offset: 4, type: 'u32' },
      },
    },
    answer: EMPTY,
    payload: 'none',
  },
  read: {
    code: 0x03,
    request: {
      name: 'read',
      size: 16,
      fields: { code: { offset: 0, type: 'u8' }, width: { offset: 1, type: 'u8' }, addr: { offset: 8, type: 'u64' } },
    },
    answer: { name: 'read answer', size: 8, fields: { value: { offset: 0, type: 'u64' } } },
    payload: 'none',
  },
  write: {
    code: 0x04,
    request: {
      name: 'write',
      size: 24,
      fields: {
        code: { offset: 0, type: 'u8' },
        width: { offset: 1, type: 'u8' },
        addr: { offset: 8, type: 'u64' },
        value: { offset: 16, type: 'u64' },
      },
    },
    answer: EMPTY,
    payload: 'none',
  },
  'read-bytes': {
    code: 0x05,
    request: {
      name: 'read-bytes',
      size: 16,
      fields: { code: { offset: 0, type: 'u8' }, length: { offset: 4, type: 'u32' }, addr: { offset: 8, type: 'u64' } },
    },
    answer: EMPTY,
    payload: 'answer',
  },
  'write-bytes': {
    code: 0x06,
    request: {
      name: 'write-bytes',
      size: 16,
      fields: { code: { offset: 0, type: 'u8' }, length: { offset: 4, type: 'u32' }, addr: { offset: 8, type: 'u64' } },
    },
    answer: EMPTY,
    payload: 'request',
  },
  'zero-bytes': {
    code: 0x07,
    request: {
      name: 'zero-bytes',
      size: 16,
      fields: { code: { offset: 0, type: 'u8' }, length: { offset: 4, type: 'u32' }, addr: { offset: 8, type: 'u64' } },
    },
    answer: EMPTY,
    payload: 'none',
  },
  'wait-change': {
    code: 0x08,
    request: {
      name: 'wait-change',
      size: 24,
      fields: {
        code: { offset: 0, type: 'u8' },
        width: { offset: 1, type: 'u8' },
        timeoutUs: { offset: 4, type: 'u32' },
        addr: { offset: 8, type: 'u64' },
        value: { offset: 16, type: 'u64' },
      },
    },
    answer: { name: 'wait-change answer', size: 8, fields: { value: { offset: 0, type: 'u64' } } },
    payload: 'none',
  },
  hello: {
    code: 0x10,
    request: {
      name: 'hello',
      size: 8,
      fields: { code: { offset: 0, type: 'u8' }, version: { offset: 4, type: 'u32' } },
    },
    answer: {
      name: 'hello answer',
      size: 8,
      fields: { version: { offset: 0, type: 'u32' }, maxFrame: { offset: 4, type: 'u32' } },
    },
    payload: 'none',
  },
  open: {
    code: 0x11,
    request: { name: 'open', size: 8, fields: { code: { offset: 0, type: 'u8' }, bdf: { offset: 4, type: 'u32' } } },
    answer: OPEN_ANSWER,
    payload: 'none',
  },
  'set-region': {
    code: 0x12,
    request: {
      name: 'set-region',
      size: 24,
      fields: {
        code: { offset: 0, type: 'u8' },
        base: { offset: 8, type: 'u64' },
        length: { offset: 16, type: 'u64' },
      },
    },
    answer: EMPTY,
    payload: 'none',
  },
  'dma-window': {
    code: 0x13,
    request: { name: 'dma-window', size: 8, fields: { code: { offset: 0, type: 'u8' } } },
    answer: {
      name: 'dma-window answer',
      size: 16,
      fields: { base: { offset: 0, type: 'u64' }, length: { offset: 8, type: 'u64' } },
    },
    payload: 'none',
  },
} as const satisfies Readonly<Record<string, AgentOperationSpec>>;

/** An operation's name. */
export type AgentOperationKind = keyof typeof AGENT_OPERATIONS;

type Spec<K extends AgentOperationKind> = (typeof AGENT_OPERATIONS)[K];

/** The fields a caller gives: the request's minus `code` (and `length` where bytes follow). */
type RequestFields<K extends AgentOperationKind> = Omit<
  StructValues<Spec<K>['request']>,
  'code' | (Spec<K>['payload'] extends 'request' ? 'length' : never)
>;

/** One operation of a request, as the host writes it. */
export type AgentOperation = {
  [K in AgentOperationKind]: { readonly kind: K } & Readonly<RequestFields<K>> &
    (Spec<K>['payload'] extends 'request' ? { readonly bytes: Uint8Array } : unknown);
}[AgentOperationKind];

/** The answer to one operation, tagged with its operation's name. */
export type AgentAnswer = {
  [K in AgentOperationKind]: { readonly kind: K } & Readonly<StructValues<Spec<K>['answer']>> &
    (Spec<K>['payload'] extends 'answer' ? { readonly bytes: Uint8Array } : unknown);
}[AgentOperationKind];

/** The answer to an operation of kind `K`. */
export type AgentAnswerOf<K extends AgentOperationKind> = Extract<AgentAnswer, { kind: K }>;

/** Why the agent refused an operation or a frame. */
export interface AgentFailure {
  /** The error code's name (`unknown` for a code this host does not know). */
  readonly code: AgentErrorCode | 'unknown';
  readonly message: string;
}

/** A decoded reply. */
export type AgentReply =
  | { readonly status: 'ok'; readonly sequence: number; readonly answers: AgentAnswer[] }
  /** Operation `answers.length` was refused; those before it were performed. */
  | {
      readonly status: 'refused';
      readonly sequence: number;
      readonly answers: AgentAnswer[];
      readonly failure: AgentFailure;
    }
  | { readonly status: 'malformed'; readonly sequence: number; readonly failure: AgentFailure };

/** What a decoder or encoder made of its input: the value, or what is wrong with it. */
export type AgentCodecResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

const BYTE_WIDTHS: Readonly<Record<string, readonly number[]>> = {
  'config-read': [1, 2, 4],
  'config-write': [1, 2, 4],
  read: [1, 2, 4, 8],
  write: [1, 2, 4, 8],
  'wait-change': [1, 2, 4, 8],
};

/** Bytes the agent answers for `op` (its fixed answer, or `length` bytes for `read-bytes`). */
export function answerBytes(op: AgentOperation): number {
  const spec: AgentOperationSpec = AGENT_OPERATIONS[op.kind];
  return spec.payload === 'answer' ? (op as { length: number }).length : spec.answer.size;
}

function problemOf(op: AgentOperation, index: number): string | undefined {
  const widths = BYTE_WIDTHS[op.kind];
  const width = (op as { width?: number }).width;
  if (widths && (width === undefined || !widths.includes(width)))
    return `operation ${index} (${op.kind}): width ${String(width)} is not one of ${widths.join(', ')}`;
  if (op.kind === 'wait-change' && !(op.timeoutUs >= 0 && op.timeoutUs <= AGENT_MAX_WAIT_US))
    return `operation ${index} (wait-change): timeout ${op.timeoutUs} us is not within 0..${AGENT_MAX_WAIT_US}`;
  const length = op.kind === 'write-bytes' ? op.bytes.length : (op as { length?: unknown }).length;
  if (typeof length === 'number' && !(Number.isInteger(length) && length >= 0 && length <= AGENT_MAX_FRAME))
    return `operation ${index} (${op.kind}): length ${length} is not within 0..${AGENT_MAX_FRAME}`;
  return undefined;
}

/**
 * Encodes a request; refuses what the agent would call malformed (a width the operation does not
 * take, too many operations, a frame or its answers over {@link AGENT_MAX_FRAME}).
 */
export function encodeRequest(sequence: number, ops: readonly AgentOperation[]): AgentCodecResult<Uint8Array> {
  if (ops.length > AGENT_MAX_OPERATIONS)
    return { ok: false, problem: `${ops.length} operations are over ${AGENT_MAX_OPERATIONS}` };
  let size = AgentRequestHeaderLayout.size;
  let answers = AgentReplyHeaderLayout.size;
  for (const [i, op] of ops.entries()) {
    const problem = problemOf(op, i);
    if (problem) return { ok: false, problem };
    size += AGENT_OPERATIONS[op.kind].request.size + (op.kind === 'write-bytes' ? op.bytes.length : 0);
    answers += answerBytes(op);
  }
  if (size > AGENT_MAX_FRAME) return { ok: false, problem: `the request is ${size} bytes, over ${AGENT_MAX_FRAME}` };
  if (answers > AGENT_MAX_FRAME)
    return { ok: false, problem: `the answers would be ${answers} bytes, over ${AGENT_MAX_FRAME}` };
  const frame = new Uint8Array(size);
  encodeStructInto(
    AgentRequestHeaderLayout,
    { length: size, magic: AGENT_REQUEST_MAGIC, sequence, count: ops.length },
    frame,
  );
  let at = AgentRequestHeaderLayout.size;
  for (const op of ops) {
    const spec: AgentOperationSpec = AGENT_OPERATIONS[op.kind];
    const values: Record<string, number | bigint> = { ...(op as unknown as Record<string, number | bigint>) };
    values['code'] = spec.code;
    if (op.kind === 'write-bytes') values['length'] = op.bytes.length;
    encodeStructInto(spec.request, values as unknown as Partial<StructValues<StructLayout>>, frame, at);
    at += spec.request.size;
    if (op.kind === 'write-bytes') {
      frame.set(op.bytes, at);
      at += op.bytes.length;
    }
  }
  return { ok: true, value: frame };
}

/** The length a frame announces in its first four bytes. */
export function frameLength(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
}

/** Largest reply a well-behaved agent writes: answers, then an error trailer with its message. */
export const AGENT_MAX_REPLY = AGENT_MAX_FRAME + AgentErrorTrailerLayout.size + AGENT_MAX_MESSAGE;

function decodeFailure(frame: Uint8Array, at: number): AgentCodecResult<AgentFailure> {
  if (frame.length < at + AgentErrorTrailerLayout.size) return { ok: false, problem: 'the error trailer is cut short' };
  const trailer = decodeStruct(AgentErrorTrailerLayout, frame, at);
  const end = at + AgentErrorTrailerLayout.size + trailer.messageLength;
  if (trailer.messageLength > AGENT_MAX_MESSAGE || end !== frame.length)
    return { ok: false, problem: `the error message length ${trailer.messageLength} does not match the frame` };
  const message = Buffer.from(frame.subarray(at + AgentErrorTrailerLayout.size, end)).toString('latin1');
  return { ok: true, value: { code: AGENT_ERROR_CODES[trailer.code - 1] ?? 'unknown', message } };
}

/**
 * Decodes the reply to a request of `ops` (a whole frame, as {@link frameLength} delimits it).
 * Anything that does not fit (a wrong magic or sequence, more answers than operations, a length
 * that does not add up) is a problem: the link is then out of step.
 */
export function decodeReply(
  frame: Uint8Array,
  sequence: number,
  ops: readonly AgentOperation[],
): AgentCodecResult<AgentReply> {
  if (frame.length < AgentReplyHeaderLayout.size) return { ok: false, problem: `a ${frame.length}-byte reply` };
  const header = decodeStruct(AgentReplyHeaderLayout, frame);
  if (header.magic !== AGENT_REPLY_MAGIC)
    return { ok: false, problem: `bad reply magic 0x${header.magic.toString(16)}` };
  if (header.length !== frame.length)
    return { ok: false, problem: `the reply announces ${header.length} bytes, ${frame.length} came` };
  const status = AGENT_REPLY_STATUSES[header.status];
  if (!status) return { ok: false, problem: `unknown reply status ${header.status}` };
  if (status === 'malformed') {
    const failure = decodeFailure(frame, AgentReplyHeaderLayout.size);
    return failure.ok ? { ok: true, value: { status, sequence: header.sequence, failure: failure.value } } : failure;
  }
  if (header.sequence !== sequence)
    return { ok: false, problem: `reply to request ${header.sequence}, expected ${sequence}` };
  const done = header.done;
  if (status === 'ok' ? done !== ops.length : done >= ops.length)
    return { ok: false, problem: `${done} operations answered of ${ops.length} with status ${status}` };
  const answers: AgentAnswer[] = [];
  let at = AgentReplyHeaderLayout.size;
  for (const op of ops.slice(0, done)) {
    const spec: AgentOperationSpec = AGENT_OPERATIONS[op.kind];
    const size = answerBytes(op);
    if (at + size > frame.length) return { ok: false, problem: `the answer to ${op.kind} is cut short` };
    const answer =
      spec.payload === 'answer'
        ? { kind: op.kind, bytes: new Uint8Array(frame.subarray(at, at + size)) }
        : { kind: op.kind, ...decodeStruct(spec.answer, frame, at) };
    answers.push(answer as AgentAnswer);
    at += size;
  }
  if (status === 'ok') {
    if (at !== frame.length) return { ok: false, problem: `${frame.length - at} bytes after the last answer` };
    return { ok: true, value: { status, sequence, answers } };
  }
  const failure = decodeFailure(frame, at);
  return failure.ok ? { ok: true, value: { status, sequence, answers, failure: failure.value } } : failure;
}

/**
 * Cuts a byte stream into frames by their length prefix. A length that no reply can have (under
 * the reply header, over {@link AGENT_MAX_REPLY}) is a problem: the stream is out of step.
 */
export class FrameSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Adds bytes; returns the frames now complete, or the problem with the stream. */
  push(chunk: Uint8Array): AgentCodecResult<Uint8Array[]> {
    this.chunks.push(Buffer.from(chunk));
    this.buffered += chunk.length;
    const frames: Uint8Array[] = [];
    for (;;) {
      if (this.buffered < 4) return { ok: true, value: frames };
      if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const length = frameLength(this.chunks[0]!);
      if (length < AgentReplyHeaderLayout.size || length > AGENT_MAX_REPLY)
        return { ok: false, problem: `a reply announces ${length} bytes` };
      // Bytes are joined only once a whole frame is there (a large reply arrives in many chunks).
      if (this.buffered < length) return { ok: true, value: frames };
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      frames.push(new Uint8Array(all.subarray(0, length)));
      const rest = all.subarray(length);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
    }
  }
}
