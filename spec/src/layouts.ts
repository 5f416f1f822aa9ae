/**
 * The three wire structures of virtio-mem, each declared once as data.
 *
 * Encoders, decoders, the CLI, `vmemct spec --json` and the docs all derive from these tables,
 * and so do the record types ({@link LayoutRecord}): a field added here appears in the decoded
 * records, the JSON Schema of the spec document and the docs without a second edit. Outside
 * `spec/` and the codec (`model/src/codec/`) nothing hard-codes an offset or a size of these
 * structures; `conformance/test/offsets.test.ts` enforces that. A test freezes every size and
 * offset.
 */
import type { RequestTypeName } from './constants';

/** How a field is stored on the wire. Every multi-byte virtio-mem field is little-endian. */
export const FIELD_KINDS = ['le16', 'le64', 'bytes'] as const;
/** One of {@link FIELD_KINDS}. */
export type FieldKind = (typeof FIELD_KINDS)[number];

/**
 * Who may change a field and when.
 * - `fixed`: constant except across a system reset (dev.cfg.2).
 * - `device-policy`: the device may change it at any time, within the rules of §5.15.4.2.
 * - `host`: changed by host management (the resize request).
 * - `derived`: follows from other state (plugged_size = plugged blocks × block_size).
 * - `reserved`: padding; no meaning.
 * - `driver-written`: set by the driver in a request.
 * - `device-written`: set by the device in a response.
 */
export const FIELD_MUTABILITIES = [
  'fixed',
  'device-policy',
  'host',
  'derived',
  'reserved',
  'driver-written',
  'device-written',
] as const;
/** One of {@link FIELD_MUTABILITIES}. */
export type FieldMutability = (typeof FIELD_MUTABILITIES)[number];

/** One field of a wire structure. */
export interface FieldSpec {
  /** Name used in decoded records, YAML and the CLI (the spec's member name). */
  readonly name: string;
  /** Where the spec's C structure puts it, when that differs from `name` (e.g. `u.plug.addr`). */
  readonly specPath: string;
  /** Byte offset from the start of the structure. */
  readonly offset: number;
  /** Size in bytes. */
  readonly size: number;
  readonly kind: FieldKind;
  readonly mutability: FieldMutability;
  /** Feature bit name without which the field has no meaning, if any. */
  readonly featureCondition?: string;
  /** Request types for which the field is meaningful (requests and responses only). */
  readonly meaningfulFor?: readonly RequestTypeName[];
  /** One line: what the field holds. */
  readonly description: string;
}

/** Short names of the layouts, used by the CLI: `vmemct encode config …`. */
export const LAYOUT_IDS = ['config', 'request', 'response'] as const;
/** One of {@link LAYOUT_IDS}. */
export type LayoutId = (typeof LAYOUT_IDS)[number];

/** A fixed-size little-endian wire structure. */
export interface LayoutSpec {
  /** Short name used by the CLI. */
  readonly id: LayoutId;
  /** The spec's C structure name. */
  readonly structName: string;
  /** Section of VIRTIO 1.4 that defines it. */
  readonly section: string;
  /** Size in bytes. */
  readonly size: number;
  readonly fields: readonly FieldSpec[];
}

/** What a field of each kind decodes to: le16 as number, le64 as bigint, padding as bytes. */
export interface FieldValueOfKind {
  le16: number;
  le64: bigint;
  bytes: Uint8Array;
}

/** The value of any field. */
export type FieldValue = FieldValueOfKind[FieldKind];

/** The names of a layout's fields (literal names for a layout declared `as const`). */
export type FieldName<L extends LayoutSpec> = L['fields'][number]['name'];

/** The field of layout `L` named `N`, with its literal offset and size. */
export type FieldOf<L extends LayoutSpec, N extends FieldName<L>> = Extract<L['fields'][number], { readonly name: N }>;

/**
 * The record a layout decodes to: one property per field, named and typed by the layout's data.
 * For a layout declared `as const satisfies LayoutSpec` every property is known; for the wide
 * {@link LayoutSpec} it is a string-keyed record of {@link FieldValue}s.
 */
export type LayoutRecord<L extends LayoutSpec> = {
  -readonly [F in L['fields'][number] as F['name']]: FieldValueOfKind[F['kind']];
};

/** `struct virtio_mem_config`: the 56-byte device configuration space (§5.15.4). */
export const VirtioMemConfigLayout = {
  id: 'config',
  structName: 'virtio_mem_config',
  section: '5.15.4',
  size: 56,
  fields: [
    {
      name: 'block_size',
      specPath: 'block_size',
      offset: 0,
      size: 8,
      kind: 'le64',
      mutability: 'fixed',
      description: 'size and alignment of a memory block in bytes; a power of two',
    },
    {
      name: 'node_id',
      specPath: 'node_id',
      offset: 8,
      size: 2,
      kind: 'le16',
      mutability: 'fixed',
      featureCondition: 'VIRTIO_MEM_F_ACPI_PXM',
      description: 'ACPI proximity domain of the memory; meaningless without VIRTIO_MEM_F_ACPI_PXM',
    },
    // The spec types this `le8 padding[6]`; it is six plain bytes.
    {
      name: 'padding',
      specPath: 'padding',
      offset: 10,
      size: 6,
      kind: 'bytes',
      mutability: 'reserved',
      description: 'reserved; the driver ignores it',
    },
    {
      name: 'addr',
      specPath: 'addr',
      offset: 16,
      size: 8,
      kind: 'le64',
      mutability: 'fixed',
      description: 'guest physical address of the start of the device-managed region',
    },
    {
      name: 'region_size',
      specPath: 'region_size',
      offset: 24,
      size: 8,
      kind: 'le64',
      mutability: 'fixed',
      description: 'size of the whole device-managed region in bytes',
    },
    {
      name: 'usable_region_size',
      specPath: 'usable_region_size',
      offset: 32,
      size: 8,
      kind: 'le64',
      mutability: 'device-policy',
      description: 'size of the usable prefix of the region; grows freely, shrinks only on UNPLUG ALL or system reset',
    },
    {
      name: 'plugged_size',
      specPath: 'plugged_size',
      offset: 40,
      size: 8,
      kind: 'le64',
      mutability: 'derived',
      description: 'bytes currently plugged: plugged blocks × block_size',
    },
    {
      name: 'requested_size',
      specPath: 'requested_size',
      offset: 48,
      size: 8,
      kind: 'le64',
      mutability: 'host',
      description: 'bytes the device asks the driver to have plugged',
    },
  ],
} as const satisfies LayoutSpec;

/** `struct virtio_mem_req`: the 24-byte request, the same layout for every request type (§5.15.6). */
export const VirtioMemRequestLayout = {
  id: 'request',
  structName: 'virtio_mem_req',
  section: '5.15.6',
  size: 24,
  fields: [
    {
      name: 'type',
      specPath: 'type',
      offset: 0,
      size: 2,
      kind: 'le16',
      mutability: 'driver-written',
      meaningfulFor: ['PLUG', 'UNPLUG', 'UNPLUG_ALL', 'STATE'],
      description: 'request type: PLUG 0, UNPLUG 1, UNPLUG_ALL 2, STATE 3',
    },
    {
      name: 'padding',
      specPath: 'padding',
      offset: 2,
      size: 6,
      kind: 'bytes',
      mutability: 'reserved',
      description: 'header padding (le16[3]); outside the type and the request-specific data, so the device ignores it',
    },
    {
      name: 'addr',
      specPath: 'u.<plug|unplug|state>.addr',
      offset: 8,
      size: 8,
      kind: 'le64',
      mutability: 'driver-written',
      meaningfulFor: ['PLUG', 'UNPLUG', 'STATE'],
      description: 'guest physical address of the first block',
    },
    {
      name: 'nb_blocks',
      specPath: 'u.<plug|unplug|state>.nb_blocks',
      offset: 16,
      size: 2,
      kind: 'le16',
      mutability: 'driver-written',
      meaningfulFor: ['PLUG', 'UNPLUG', 'STATE'],
      description: 'number of consecutive blocks, 1 to 65535',
    },
    {
      name: 'payload_padding',
      specPath: 'u.<plug|unplug|state>.padding',
      offset: 18,
      size: 6,
      kind: 'bytes',
      mutability: 'reserved',
      description: 'padding of the request-specific data (le16[3]); the device ignores it',
    },
  ],
} as const satisfies LayoutSpec;

/** `struct virtio_mem_resp`: the 10-byte response (§5.15.6). */
export const VirtioMemResponseLayout = {
  id: 'response',
  structName: 'virtio_mem_resp',
  section: '5.15.6',
  size: 10,
  fields: [
    {
      name: 'type',
      specPath: 'type',
      offset: 0,
      size: 2,
      kind: 'le16',
      mutability: 'device-written',
      description: 'response code: ACK 0, NACK 1, BUSY 2, ERROR 3',
    },
    {
      name: 'padding',
      specPath: 'padding',
      offset: 2,
      size: 6,
      kind: 'bytes',
      mutability: 'reserved',
      description: 'header padding (le16[3]); the driver ignores it',
    },
    // The spec names this member `type` inside `struct virtio_mem_resp_state`; Linux calls it `state`.
    {
      name: 'state',
      specPath: 'u.state.type',
      offset: 8,
      size: 2,
      kind: 'le16',
      mutability: 'device-written',
      meaningfulFor: ['STATE'],
      description: 'block state for an acknowledged STATE request: PLUGGED 0, UNPLUGGED 1, MIXED 2',
    },
  ],
} as const satisfies LayoutSpec;

/** All layouts, by CLI name. */
export const LAYOUTS = {
  config: VirtioMemConfigLayout,
  request: VirtioMemRequestLayout,
  response: VirtioMemResponseLayout,
} as const satisfies Readonly<Record<LayoutId, LayoutSpec>>;

/** Looks up a field of a layout by a name from outside (CLI, YAML); undefined when there is none. */
export function findField(layout: LayoutSpec, name: string): FieldSpec | undefined {
  return layout.fields.find((field) => field.name === name);
}

/**
 * The field of a layout named `name`, typed by the layout's data: `layoutField(VirtioMemConfigLayout,
 * 'padding').offset` has the type `10`. Code outside `spec/` and the codec takes offsets and sizes
 * from here instead of writing the numbers.
 */
export function layoutField<L extends LayoutSpec, N extends FieldName<L>>(layout: L, name: N): FieldOf<L, N> {
  const field = layout.fields.find((f) => f.name === name);
  // Unreachable for a name the type admits; thrown so a wrong cast elsewhere cannot yield undefined.
  if (field === undefined) throw new RangeError(`${layout.structName} has no field '${name}'`);
  return field as FieldOf<L, N>;
}
