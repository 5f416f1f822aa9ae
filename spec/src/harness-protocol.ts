/**
 * The harness protocol (`vmemct-harness/1`): how the suite talks to a program, written in any
 * language, that wraps a virtio-mem device or driver. Declared once here as data: every message,
 * its fields (name → kind, optional or not, one-line description), which target and capability
 * a command belongs to, and which calls the harness may make while a command is pending. The
 * message types (below), the JSON Schemas (harness-protocol-schemas.ts) and the decoders and
 * encoders (harness-protocol-codec.ts) are derived from these tables.
 *
 * Framing: JSON Lines (one object per line, UTF-8, `\n`), at most {@link HARNESS_LINE_LIMIT}
 * bytes per line; strict lock-step (one command, then its reply; the harness's calls and the
 * suite's answers interleave only while a command that allows them is pending). 64-bit values
 * are strings (`"0x…"` hex from the suite; hex or decimal from a harness), small integers are
 * numbers, bytes are hex strings. Unknown fields are ignored.
 */
import type { DeviceSetup } from './device-setup';
import type { CAPABILITY_NAMES } from './vector-schemas';

/** The protocol name and major version a hello must carry. */
export const HARNESS_PROTOCOL = 'vmemct-harness/1';

/** Longest line either side may write, in bytes, the newline included (1 MiB). */
export const HARNESS_LINE_LIMIT = 1024 * 1024;

/** Size of the virtio-mem configuration space in bytes (what `config` fields carry). */
export const HARNESS_CONFIG_BYTES = 56;

/**
 * How a field's value is written on the wire and what it decodes to:
 * - `u64`: a 64-bit quantity as a string: `"0x…"` hex or decimal digits (decodes to `bigint`);
 * - `count`: a non-negative integer number ≤ 2^53−1 (an optional `max` narrows it);
 * - `bytes`: hex, two digits per byte, `""` for none (decodes to `Uint8Array`);
 * - `bytes-or-null`: `bytes`, or `null` for "none given";
 * - `bytes-list`: an array of `bytes`;
 * - `bool`, `text`: a JSON boolean, a JSON string;
 * - `multiplier`: a number ≥ 1;
 * - `block-runs`: an array of `{first, count}` block runs (`count` ≥ 1);
 * - `setup`: the set-up record ({@link SETUP_FIELDS});
 * - `targets`: the hello's map of target → capability names.
 */
export const HARNESS_FIELD_KINDS = [
  'u64',
  'count',
  'bytes',
  'bytes-or-null',
  'bytes-list',
  'bool',
  'text',
  'multiplier',
  'block-runs',
  'setup',
  'targets',
] as const;

/** One of {@link HARNESS_FIELD_KINDS}. */
export type HarnessFieldKind = (typeof HARNESS_FIELD_KINDS)[number];

/** The targets a harness may implement. */
export const HARNESS_TARGETS = ['device', 'driver'] as const;

/** `device` (the harness wraps a device) or `driver` (it wraps a driver). */
export type HarnessTarget = (typeof HARNESS_TARGETS)[number];

/** A capability name, as vectors' `needs:` lists write it. */
export type HarnessCapability = (typeof CAPABILITY_NAMES)[number];

/** A run of consecutive blocks, by index from the start of the device region. */
export interface HarnessBlockRun {
  readonly first: number;
  readonly count: number;
}

/** What each field kind decodes to. */
export interface HarnessKindValues {
  u64: bigint;
  count: number;
  bytes: Uint8Array;
  'bytes-or-null': Uint8Array | null;
  'bytes-list': readonly Uint8Array[];
  bool: boolean;
  text: string;
  multiplier: number;
  'block-runs': readonly HarnessBlockRun[];
  setup: DeviceSetup;
  targets: Partial<Readonly<Record<HarnessTarget, readonly HarnessCapability[]>>>;
}

/**
 * A condition on a sibling field: `true`/`false` when that boolean field has the value, `absent`
 * when that field is not there.
 */
export interface HarnessFieldCondition {
  readonly field: string;
  readonly is: true | false | 'absent';
}

/** One field of a message. */
export interface HarnessFieldSpec {
  readonly kind: HarnessFieldKind;
  /** One line: what the field means. */
  readonly description: string;
  /** The field may be left out. */
  readonly optional?: true;
  /** An optional field that is required when the condition holds. */
  readonly requiredWhen?: HarnessFieldCondition;
  /** `count`: the largest value allowed. */
  readonly max?: number;
  /** `bytes`: the exact number of bytes. */
  readonly length?: number;
}

/** The fields of one message, by name. */
export type HarnessFields = Readonly<Record<string, HarnessFieldSpec>>;

/** The set-up record: how to build the device of one vector (`setup` of `open_device`/`open_driver`). */
export const SETUP_FIELDS = {
  block_size: { kind: 'u64', description: 'block_size of the configuration, bytes' },
  region_size: { kind: 'u64', description: 'region_size of the configuration, bytes' },
  addr: { kind: 'u64', description: 'guest-physical start of the device region' },
  requested_size: { kind: 'u64', description: 'requested_size when the device starts' },
  node_id: { kind: 'count', max: 0xffff, description: 'node_id of the configuration' },
  features: { kind: 'u64', optional: true, description: "features offered; absent: the implementation's default" },
  plugged: { kind: 'block-runs', description: 'blocks plugged before the driver sees the device' },
  usable_region_size: {
    kind: 'u64',
    optional: true,
    description: 'usable_region_size when the device starts; absent: the device chooses',
  },
} as const satisfies HarnessFields;

/** The first line a harness writes. */
export const HELLO_FIELDS = {
  hello: { kind: 'text', description: `the protocol name and major version: ${HARNESS_PROTOCOL}` },
  implementation: { kind: 'text', description: 'the implementation under test, as reports should name it' },
  version: { kind: 'text', description: "the implementation's version" },
  targets: {
    kind: 'targets',
    description: 'each target the harness supports → the optional capabilities it implements',
  },
  timeout_multiplier: {
    kind: 'multiplier',
    optional: true,
    description: 'how much slower than the in-process model the harness is (default 1)',
  },
} as const satisfies HarnessFields;

/** One command the suite sends: its target, the capability that enables it (none: required core), params, reply. */
export interface HarnessCommandSpec {
  /** The target whose sessions use the command (`both`: the end of the whole exchange). */
  readonly target: HarnessTarget | 'both';
  /** The capability that enables the command; absent for the required core. */
  readonly capability?: HarnessCapability;
  readonly description: string;
  readonly params: HarnessFields;
  /** Fields of the success reply (besides `id` and `ok`). */
  readonly reply: HarnessFields;
  /** Calls the harness may make while the command is pending. */
  readonly calls: readonly HarnessCallName[];
  /** Whether the harness may reply `unsupported` (a set-up it cannot build). */
  readonly mayBeUnsupported?: true;
}

/** Every call the harness may make, with the suite's answer. */
export const HARNESS_CALLS = {
  accept: {
    description: 'the device offered these features; the suite says which the driver writes',
    fields: { offered: { kind: 'u64', description: 'the features the device offers' } },
    answer: { features: { kind: 'u64', description: 'the features to write (accept)' } },
  },
  read_config: {
    description: 'the driver reads the configuration',
    fields: {},
    answer: {
      config: {
        kind: 'bytes',
        length: HARNESS_CONFIG_BYTES,
        description: 'the 56 configuration bytes as the driver sees them',
      },
      config_changed: {
        kind: 'bool',
        description: 'a configuration-change notification arrived since the harness was last told',
      },
    },
  },
  request: {
    description: 'the driver placed a request on the request queue',
    fields: {
      bytes: { kind: 'bytes', description: 'the request as placed in the device-readable buffer' },
      at_ms: {
        kind: 'count',
        optional: true,
        description: "when the driver sent it, on the harness's clock (one clock per driver session, never going back)",
      },
    },
    answer: {
      response: { kind: 'bytes-or-null', description: 'the response bytes, or null when the device gave none' },
      config_changed: {
        kind: 'bool',
        description: 'a configuration-change notification arrived since the harness was last told',
      },
    },
  },
  write_memory: {
    description: 'the driver writes guest memory',
    fields: {
      addr: { kind: 'u64', description: 'guest-physical address' },
      length: { kind: 'count', description: 'number of bytes written' },
      data: { kind: 'bytes', optional: true, description: 'the bytes written (zeros when absent)' },
    },
    answer: {
      ok: { kind: 'bool', description: 'the device let the driver write there' },
      config_changed: {
        kind: 'bool',
        description: 'a configuration-change notification arrived since the harness was last told',
      },
    },
  },
} as const satisfies Readonly<
  Record<string, { readonly description: string; readonly fields: HarnessFields; readonly answer: HarnessFields }>
>;

/** Name of a call. */
export type HarnessCallName = keyof typeof HARNESS_CALLS;

const NO_FIELDS = {} as const;

/** Every command, by `op`. */
export const HARNESS_COMMANDS = {
  open_device: {
    target: 'device',
    description: 'build a fresh device from the set-up',
    params: { setup: { kind: 'setup', description: 'the set-up record' } },
    reply: NO_FIELDS,
    calls: [],
    mayBeUnsupported: true,
  },
  initialise: {
    target: 'device',
    description: 'run the virtio handshake; one accept call picks the features',
    params: NO_FIELDS,
    reply: {
      offered: { kind: 'u64', description: 'the features the device offered' },
      accepted: { kind: 'u64', description: 'the features written' },
      features_ok: { kind: 'bool', description: 'FEATURES_OK stuck after it was written' },
      status: { kind: 'count', max: 0xff, description: 'the device status at the end' },
    },
    calls: ['accept'],
  },
  read_config: {
    target: 'device',
    description: 'read the configuration',
    params: NO_FIELDS,
    reply: { config: { kind: 'bytes', length: HARNESS_CONFIG_BYTES, description: 'the 56 configuration bytes' } },
    calls: [],
  },
  read_status: {
    target: 'device',
    description: 'read the device status',
    params: NO_FIELDS,
    reply: { status: { kind: 'count', max: 0xff, description: 'the device status register' } },
    calls: [],
  },
  notification_count: {
    target: 'device',
    description: 'count configuration-change notifications',
    params: NO_FIELDS,
    reply: { count: { kind: 'count', description: 'configuration-change notifications since open_device' } },
    calls: [],
  },
  submit: {
    target: 'device',
    description: 'place a request chain on the request queue and wait for the used entry',
    params: {
      readable: { kind: 'bytes-list', description: 'device-readable buffers, in order' },
      writable: { kind: 'bytes-list', description: 'device-writable buffers with their initial (poison) contents' },
    },
    reply: {
      used: { kind: 'bool', description: 'the device put a used entry' },
      length: {
        kind: 'count',
        optional: true,
        requiredWhen: { field: 'used', is: true },
        description: 'the used length',
      },
      written: {
        kind: 'bytes',
        optional: true,
        requiredWhen: { field: 'used', is: true },
        description: 'the first min(length, total writable) bytes of the writable buffers, joined',
      },
    },
    calls: [],
  },
  close_device: {
    target: 'device',
    description: 'end the device session',
    params: NO_FIELDS,
    reply: NO_FIELDS,
    calls: [],
  },
  read_config_generation: {
    target: 'device',
    capability: 'config-generation',
    description: 'read the configuration generation',
    params: NO_FIELDS,
    reply: { generation: { kind: 'count', max: 0xff, description: 'the configuration generation' } },
    calls: [],
  },
  resize: {
    target: 'device',
    capability: 'host-resize',
    description: 'change requested_size from the host side',
    params: { requested_size: { kind: 'u64', description: 'the new requested_size' } },
    reply: {
      applied: { kind: 'bool', description: 'the host layer applied the value' },
      reason: {
        kind: 'text',
        optional: true,
        requiredWhen: { field: 'applied', is: false },
        description: 'why the host layer refused it',
      },
    },
    calls: [],
  },
  device_reset: {
    target: 'device',
    capability: 'device-reset',
    description: 'write device status 0',
    params: NO_FIELDS,
    reply: NO_FIELDS,
    calls: [],
  },
  system_reset: {
    target: 'device',
    capability: 'system-reset',
    description: 'reset the platform (reboot) with the device',
    params: NO_FIELDS,
    reply: NO_FIELDS,
    calls: [],
  },
  inject_busy: {
    target: 'device',
    capability: 'inject-busy',
    description: 'answer BUSY to the next requests that would succeed',
    params: { count: { kind: 'count', description: 'how many requests' } },
    reply: NO_FIELDS,
    calls: [],
  },
  host_busy: {
    target: 'device',
    capability: 'host-busy',
    description: 'make the device busy from the host side, or release it',
    params: { busy: { kind: 'bool', description: 'true: make busy; false: release' } },
    reply: NO_FIELDS,
    calls: [],
  },
  read_memory: {
    target: 'device',
    capability: 'memory-access',
    description: 'read guest memory',
    params: {
      addr: { kind: 'u64', description: 'guest-physical address' },
      length: { kind: 'count', description: 'number of bytes' },
    },
    reply: {
      data: {
        kind: 'bytes',
        optional: true,
        requiredWhen: { field: 'refused', is: 'absent' },
        description: 'the bytes read',
      },
      refused: { kind: 'text', optional: true, description: 'why the access was refused' },
    },
    calls: [],
  },
  write_memory: {
    target: 'device',
    capability: 'memory-access',
    description: 'write guest memory',
    params: {
      addr: { kind: 'u64', description: 'guest-physical address' },
      data: { kind: 'bytes', description: 'the bytes to write' },
    },
    reply: { refused: { kind: 'text', optional: true, description: 'why the access was refused' } },
    calls: [],
  },
  suspend: {
    target: 'device',
    capability: 'suspend',
    description: 'suspend the platform to RAM, then wake it',
    params: NO_FIELDS,
    reply: NO_FIELDS,
    calls: [],
  },
  open_driver: {
    target: 'driver',
    description: 'make a fresh driver; the suite holds the device built from the set-up',
    params: {
      setup: { kind: 'setup', description: 'the set-up record (for information)' },
      config_padding: {
        kind: 'bytes',
        optional: true,
        description: 'bytes the suite shows the driver in the configuration padding',
      },
    },
    reply: NO_FIELDS,
    calls: [],
    mayBeUnsupported: true,
  },
  start: {
    target: 'driver',
    description: 'let the driver probe the device',
    params: { offered: { kind: 'u64', description: "the device's offer" } },
    reply: { accepted: { kind: 'u64', description: 'the features the driver writes' } },
    calls: ['read_config'],
  },
  settle: {
    target: 'driver',
    description: 'let the driver run until it is quiet or a limit is hit',
    params: {
      max_requests: { kind: 'count', description: 'the most requests the driver may send' },
      timeout_ms: { kind: 'count', description: 'the longest the driver may run, in milliseconds' },
      config_changed: {
        kind: 'bool',
        description: 'a configuration-change notification the driver has not been told of yet',
      },
    },
    reply: {
      settled: { kind: 'bool', description: 'the driver went quiet within the limits' },
      stop: { kind: 'text', description: 'why it stopped' },
      waited_ms: { kind: 'count', description: 'time the driver spent waiting, in milliseconds' },
    },
    calls: ['read_config', 'request', 'write_memory'],
  },
  close_driver: {
    target: 'driver',
    description: 'end the driver session',
    params: NO_FIELDS,
    reply: NO_FIELDS,
    calls: [],
  },
  reboot: {
    target: 'driver',
    capability: 'system-reset',
    description: 'the VM restarts: discard the driver and make a fresh one (the suite then sends start)',
    params: NO_FIELDS,
    reply: NO_FIELDS,
    calls: [],
  },
  may_suspend: {
    target: 'driver',
    capability: 'suspend',
    description: 'ask the driver whether the platform may suspend to RAM',
    params: NO_FIELDS,
    reply: {
      allowed: { kind: 'bool', description: 'the driver allowed the suspend' },
      detail: { kind: 'text', description: 'what the driver said' },
    },
    calls: [],
  },
  shutdown: {
    target: 'both',
    description: 'end the exchange; the suite then closes the stream',
    params: NO_FIELDS,
    reply: NO_FIELDS,
    calls: [],
  },
} as const satisfies Readonly<Record<string, HarnessCommandSpec>>;

/** Name of a command (`op`). */
export type HarnessOp = keyof typeof HARNESS_COMMANDS;

/** Every command name, in declaration order. */
export const HARNESS_OPS = Object.keys(HARNESS_COMMANDS) as HarnessOp[];

/** Every call name, in declaration order. */
export const HARNESS_CALL_NAMES = Object.keys(HARNESS_CALLS) as HarnessCallName[];

/** The fields of every failure reply (`ok: false`). */
export const FAILURE_REPLY_FIELDS = {
  error: { kind: 'text', optional: true, description: 'what went wrong (the vector is reported error)' },
  unsupported: {
    kind: 'text',
    optional: true,
    requiredWhen: { field: 'error', is: 'absent' },
    description: 'open_device/open_driver only: why the set-up cannot be built (the vector is unsupported)',
  },
} as const satisfies HarnessFields;

type IsOptional<S> = S extends { readonly optional: true } ? true : false;

/** The decoded record a field table describes: required fields required, optional ones optional. */
export type HarnessRecord<F extends HarnessFields> = {
  readonly [K in keyof F as IsOptional<F[K]> extends true ? never : K]: HarnessKindValues[F[K]['kind']];
} & {
  readonly [K in keyof F as IsOptional<F[K]> extends true ? K : never]?: HarnessKindValues[F[K]['kind']];
};

/** The hello, decoded. */
export type HarnessHello = HarnessRecord<typeof HELLO_FIELDS>;

/** The params of command `O`, decoded. */
export type HarnessParams<O extends HarnessOp> = HarnessRecord<(typeof HARNESS_COMMANDS)[O]['params']>;

/** The success-reply fields of command `O`, decoded. */
export type HarnessReplyFields<O extends HarnessOp> = HarnessRecord<(typeof HARNESS_COMMANDS)[O]['reply']>;

/** The fields of call `C`, decoded. */
export type HarnessCallFields<C extends HarnessCallName> = HarnessRecord<(typeof HARNESS_CALLS)[C]['fields']>;

/** The answer fields of call `C`, decoded. */
export type HarnessAnswerFields<C extends HarnessCallName> = HarnessRecord<(typeof HARNESS_CALLS)[C]['answer']>;

/** A command, decoded: its id, op and params. */
export type HarnessCommand = {
  [O in HarnessOp]: { readonly id: number; readonly op: O; readonly params: HarnessParams<O> };
}[HarnessOp];

/** A reply, decoded: success with the op's fields, a failure with the harness's text, or `unsupported`. */
export type HarnessReply<O extends HarnessOp> =
  | { readonly kind: 'ok'; readonly id: number; readonly fields: HarnessReplyFields<O> }
  | { readonly kind: 'error'; readonly id: number; readonly error: string }
  | { readonly kind: 'unsupported'; readonly id: number; readonly reason: string };

/** A call, decoded. */
export type HarnessCall = {
  [C in HarnessCallName]: { readonly call: C; readonly fields: HarnessCallFields<C> };
}[HarnessCallName];

/** An answer, decoded. */
export type HarnessAnswer = {
  [C in HarnessCallName]: { readonly answer: C; readonly fields: HarnessAnswerFields<C> };
}[HarnessCallName];

/** A result of decoding: the value, or why not (naming the field). */
export type HarnessDecoded<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** The ops of a target's sessions, split into the required core and the capability-enabled ones. */
export function harnessOpsOf(target: HarnessTarget): { core: HarnessOp[]; optional: HarnessOp[] } {
  const ops = HARNESS_OPS.filter((op) => HARNESS_COMMANDS[op].target === target);
  const optional = ops.filter((op) => 'capability' in HARNESS_COMMANDS[op]);
  return { core: ops.filter((op) => !optional.includes(op)), optional };
}
