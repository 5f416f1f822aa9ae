/**
 * Layout-driven codec: encodes and decodes any {@link LayoutSpec} of `spec/`.
 *
 * Decoding untrusted bytes never throws: truncation is a typed result, and nonzero padding is
 * reported rather than hidden. Encoding values a caller supplies throws {@link CodecError} when
 * a field is unknown or a value does not fit, naming the field and its allowed range.
 */
import {
  FieldName,
  FieldSpec,
  FieldValue,
  LayoutRecord,
  LayoutSpec,
  VirtioMemConfigLayout,
  VirtioMemRequestLayout,
  VirtioMemResponseLayout,
  layoutField,
} from '../../../spec/src/index';

/** Decoded `struct virtio_mem_config`, derived from {@link VirtioMemConfigLayout}. */
export type VirtioMemConfig = LayoutRecord<typeof VirtioMemConfigLayout>;

/** Decoded `struct virtio_mem_req`, derived from {@link VirtioMemRequestLayout}. */
export type VirtioMemRequest = LayoutRecord<typeof VirtioMemRequestLayout>;

/** Decoded `struct virtio_mem_resp`, derived from {@link VirtioMemResponseLayout}. */
export type VirtioMemResponse = LayoutRecord<typeof VirtioMemResponseLayout>;

/** A padding field whose bytes were not all zero. */
export interface NonzeroPadding {
  readonly field: string;
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** Why bytes could not be decoded. */
export interface TruncatedInput {
  readonly code: 'truncated';
  readonly structName: string;
  readonly expected: number;
  readonly actual: number;
}

/** Outcome of decoding: the record plus what decoding noticed, or a typed failure. */
export type DecodeResult<T> =
  | {
      readonly ok: true;
      readonly value: T;
      /** Padding fields holding nonzero bytes (conforming peers ignore them; reports show them). */
      readonly nonzeroPadding: readonly NonzeroPadding[];
      /** Bytes beyond the structure's size that were not decoded. */
      readonly trailingBytes: number;
    }
  | { readonly ok: false; readonly error: TruncatedInput };

/** Codes of {@link CodecError}. */
export type CodecErrorCode = 'unknown-field' | 'out-of-range' | 'wrong-length' | 'wrong-type';

/** Thrown when a caller asks to encode something the layout cannot hold. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
  constructor(
    readonly code: CodecErrorCode,
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Type guard for {@link CodecError} that does not rely on `instanceof`. */
export function isCodecError(value: unknown): value is CodecError {
  return value instanceof Error && value.name === 'CodecError' && typeof (value as CodecError).code === 'string';
}

const MAX_LE16 = 0xffff;
const MAX_LE64 = (1n << 64n) - 1n;

/** The range a field accepts, for error messages. */
export function describeFieldRange(field: FieldSpec): string {
  switch (field.kind) {
    case 'le16':
      return '0..65535 (0xffff)';
    case 'le64':
      return '0..18446744073709551615 (0xffffffffffffffff)';
    case 'bytes':
      return `exactly ${field.size} bytes`;
  }
}

function writeField(view: DataView, bytes: Uint8Array, field: FieldSpec, value: FieldValue, structName: string): void {
  const where = `${structName}.${field.name}`;
  switch (field.kind) {
    case 'le16': {
      if (typeof value === 'object')
        throw new CodecError('wrong-type', field.name, `${where} takes a number, not bytes`);
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0 || n > MAX_LE16) {
        throw new CodecError(
          'out-of-range',
          field.name,
          `${where} = ${value} is out of range; allowed ${describeFieldRange(field)}`,
        );
      }
      view.setUint16(field.offset, n, true);
      return;
    }
    case 'le64': {
      if (typeof value === 'object')
        throw new CodecError('wrong-type', field.name, `${where} takes a number, not bytes`);
      if (typeof value === 'number' && (!Number.isSafeInteger(value) || value < 0)) {
        throw new CodecError(
          'out-of-range',
          field.name,
          `${where} = ${value} is out of range; allowed ${describeFieldRange(field)}`,
        );
      }
      const n = BigInt(value);
      if (n < 0n || n > MAX_LE64) {
        throw new CodecError(
          'out-of-range',
          field.name,
          `${where} = ${n} is out of range; allowed ${describeFieldRange(field)}`,
        );
      }
      view.setBigUint64(field.offset, n, true);
      return;
    }
    case 'bytes': {
      if (!(value instanceof Uint8Array))
        throw new CodecError('wrong-type', field.name, `${where} takes ${field.size} bytes`);
      if (value.length !== field.size) {
        throw new CodecError(
          'wrong-length',
          field.name,
          `${where} has ${value.length} bytes; allowed ${describeFieldRange(field)}`,
        );
      }
      bytes.set(value, field.offset);
      return;
    }
  }
}

/**
 * Encodes a record into a new buffer of `layout.size` bytes. Missing fields are zero.
 * @throws CodecError for an unknown field, a value out of range or padding of the wrong length.
 */
export function encodeLayout<L extends LayoutSpec>(layout: L, values: Readonly<Partial<LayoutRecord<L>>>): Uint8Array {
  const bytes = new Uint8Array(layout.size);
  const view = new DataView(bytes.buffer);
  for (const name of Object.keys(values)) {
    if (!layout.fields.some((field) => field.name === name)) {
      const known = layout.fields.map((field) => field.name).join(', ');
      throw new CodecError('unknown-field', name, `${layout.structName} has no field '${name}' (fields: ${known})`);
    }
  }
  for (const field of layout.fields) {
    const value = (values as Readonly<Record<string, FieldValue | undefined>>)[field.name];
    if (value !== undefined) writeField(view, bytes, field, value, layout.structName);
  }
  return bytes;
}

/** Decodes the first `layout.size` bytes of `bytes` into a record keyed by field name. */
export function decodeLayout<L extends LayoutSpec>(layout: L, bytes: Uint8Array): DecodeResult<LayoutRecord<L>> {
  if (bytes.length < layout.size) {
    return {
      ok: false,
      error: { code: 'truncated', structName: layout.structName, expected: layout.size, actual: bytes.length },
    };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const value: Record<string, FieldValue> = {};
  const nonzeroPadding: NonzeroPadding[] = [];
  for (const field of layout.fields) {
    switch (field.kind) {
      case 'le16':
        value[field.name] = view.getUint16(field.offset, true);
        break;
      case 'le64':
        value[field.name] = view.getBigUint64(field.offset, true);
        break;
      case 'bytes': {
        const slice = bytes.slice(field.offset, field.offset + field.size);
        value[field.name] = slice;
        if (field.mutability === 'reserved' && slice.some((b) => b !== 0)) {
          nonzeroPadding.push({ field: field.name, offset: field.offset, bytes: slice });
        }
        break;
      }
    }
  }
  // Every field of the layout was filled in above, so the record has the shape the layout declares.
  return { ok: true, value: value as LayoutRecord<L>, nonzeroPadding, trailingBytes: bytes.length - layout.size };
}

/** Encodes a device configuration (56 bytes). */
export function encodeConfig(config: Partial<VirtioMemConfig>): Uint8Array {
  return encodeLayout(VirtioMemConfigLayout, config);
}

/** Decodes a device configuration. */
export function decodeConfig(bytes: Uint8Array): DecodeResult<VirtioMemConfig> {
  return decodeLayout(VirtioMemConfigLayout, bytes);
}

/** Encodes a request (24 bytes). */
export function encodeRequest(request: Partial<VirtioMemRequest>): Uint8Array {
  return encodeLayout(VirtioMemRequestLayout, request);
}

/** Decodes a request. */
export function decodeRequest(bytes: Uint8Array): DecodeResult<VirtioMemRequest> {
  return decodeLayout(VirtioMemRequestLayout, bytes);
}

/** Encodes a response (10 bytes). */
export function encodeResponse(response: Partial<VirtioMemResponse>): Uint8Array {
  return encodeLayout(VirtioMemResponseLayout, response);
}

/** Decodes a response. */
export function decodeResponse(bytes: Uint8Array): DecodeResult<VirtioMemResponse> {
  return decodeLayout(VirtioMemResponseLayout, bytes);
}

// Reading single fields from bytes that may be cut short. A device may write fewer bytes than a
// whole response (the used length says how many), and a driver may send a chain shorter than a
// request; these readers look at one field and say "not there" instead of failing.

const REQUEST_TYPE_FIELD = layoutField(VirtioMemRequestLayout, 'type');
const RESPONSE_TYPE_FIELD = layoutField(VirtioMemResponseLayout, 'type');
const RESPONSE_STATE_FIELD = layoutField(VirtioMemResponseLayout, 'state');

/** The le16 field at `field.offset`, or undefined when `bytes` end before the field does. */
function readLe16(bytes: Uint8Array, field: Pick<FieldSpec, 'offset' | 'size'>): number | undefined {
  if (bytes.length < field.offset + field.size) return undefined;
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(field.offset, true);
}

/**
 * The `type` of a request, read from its first bytes: one buffer, or the readable buffers of a
 * descriptor chain in order (the field may straddle two of them, and empty buffers count for
 * nothing). Undefined when fewer bytes than the field needs are there.
 */
export function peekRequestType(readable: Uint8Array | readonly Uint8Array[]): number | undefined {
  const head = new Uint8Array(REQUEST_TYPE_FIELD.offset + REQUEST_TYPE_FIELD.size);
  let filled = 0;
  for (const buffer of readable instanceof Uint8Array ? [readable] : readable) {
    const take = Math.min(buffer.length, head.length - filled);
    head.set(buffer.subarray(0, take), filled);
    filled += take;
    if (filled === head.length) return readLe16(head, REQUEST_TYPE_FIELD);
  }
  return undefined;
}

/** The response code (`type`) of the bytes a device wrote, or undefined when they end inside it. */
export function readResponseType(written: Uint8Array): number | undefined {
  return readLe16(written, RESPONSE_TYPE_FIELD);
}

/**
 * The block state (`state`, meaningful in an acknowledged STATE response) of the bytes a device
 * wrote, or undefined when they end before it.
 */
export function readResponseState(written: Uint8Array): number | undefined {
  return readLe16(written, RESPONSE_STATE_FIELD);
}

/**
 * How many bytes of a response follow its `type` (padding and `state`): the most a vector's
 * response `trailer` may set.
 */
export const RESPONSE_TRAILER_SIZE =
  VirtioMemResponseLayout.size - RESPONSE_TYPE_FIELD.offset - RESPONSE_TYPE_FIELD.size;

/**
 * A whole response ({@link VirtioMemResponseLayout}.size bytes) made of `response`'s bytes with
 * `trailer` written right after `type`. A shorter trailer overwrites only its own length;
 * bytes beyond {@link RESPONSE_TRAILER_SIZE} are ignored.
 */
export function withResponseTrailer(response: Uint8Array, trailer: Uint8Array): Uint8Array {
  const out = new Uint8Array(VirtioMemResponseLayout.size);
  out.set(response.subarray(0, out.length));
  const at = RESPONSE_TYPE_FIELD.offset + RESPONSE_TYPE_FIELD.size;
  out.set(trailer.subarray(0, RESPONSE_TRAILER_SIZE), at);
  return out;
}

/** Names of a layout's byte-string (padding) fields. */
export type BytesFieldName<L extends LayoutSpec> = Extract<L['fields'][number], { readonly kind: 'bytes' }>['name'];

/**
 * A copy of `bytes` (an encoded `layout`) with `value` written over the byte-string field
 * `name`: whatever garbage a test wants in a padding field, without re-encoding. A shorter value
 * overwrites only its own length; bytes beyond the field's size are ignored.
 */
export function withFieldBytes<L extends LayoutSpec>(
  layout: L,
  bytes: Uint8Array,
  name: BytesFieldName<L> & FieldName<L>,
  value: Uint8Array,
): Uint8Array {
  const field = layoutField(layout, name);
  const out = bytes.slice();
  out.set(value.subarray(0, field.size), field.offset);
  return out;
}
