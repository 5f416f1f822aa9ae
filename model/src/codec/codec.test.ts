import fc from 'fast-check';
import {
  CodecError,
  decodeConfig,
  decodeRequest,
  decodeResponse,
  encodeConfig,
  encodeRequest,
  encodeResponse,
  isCodecError,
  peekRequestType,
  readResponseState,
  readResponseType,
  RESPONSE_TRAILER_SIZE,
  withFieldBytes,
  withResponseTrailer,
  VirtioMemConfig,
  VirtioMemRequest,
  VirtioMemResponse,
} from '../index';
import { VirtioMemConfigLayout, requestTypeName } from '../../../spec/src/index';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s/g, ''), 'hex'));

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u16 = fc.integer({ min: 0, max: 0xffff });
const pad6 = fc.uint8Array({ minLength: 6, maxLength: 6 });

describe('codec examples (reference §1.4–1.5)', () => {
  test('should encode the QEMU example configuration byte for byte', () => {
    // 16 GiB region of 2 MiB blocks at 4 GiB, 1 GiB requested, usable 1.25 GiB, 512 MiB plugged, node 1.
    const config = {
      block_size: 0x200000n,
      node_id: 1,
      addr: 0x100000000n,
      region_size: 0x400000000n,
      usable_region_size: 0x50000000n,
      plugged_size: 0x20000000n,
      requested_size: 0x40000000n,
    };
    const bytes = encodeConfig(config);
    expect(bytes.length).toBe(56);
    expect(hex(bytes)).toBe(
      '0000200000000000' +
        '0100' +
        '000000000000' +
        '0000000001000000' +
        '0000000004000000' +
        '0000005000000000' +
        '0000002000000000' +
        '0000004000000000',
    );
    const decoded = decodeConfig(bytes);
    expect(decoded).toMatchObject({ ok: true, value: config, nonzeroPadding: [], trailingBytes: 0 });
  });

  test('should encode PLUG of one block at 4 GiB as 24 bytes', () => {
    const bytes = encodeRequest({ type: 0, addr: 0x100000000n, nb_blocks: 1 });
    expect(hex(bytes)).toBe('0000' + '000000000000' + '0000000001000000' + '0100' + '000000000000');
  });

  test('should encode STATE over 65,535 blocks and UNPLUG ALL', () => {
    expect(hex(encodeRequest({ type: 3, addr: 0x200000n, nb_blocks: 0xffff }))).toBe(
      '0300000000000000' + '0000200000000000' + 'ffff000000000000',
    );
    expect(hex(encodeRequest({ type: 2 }))).toBe('02' + '00'.repeat(23));
  });

  test('should encode an ACK(MIXED) response as 10 bytes', () => {
    expect(hex(encodeResponse({ type: 0, state: 2 }))).toBe('0000' + '000000000000' + '0200');
    expect(decodeResponse(fromHex('0300 000000000000 0000'))).toMatchObject({ ok: true, value: { type: 3, state: 0 } });
  });
});

describe('codec round trips', () => {
  test('config: encode ∘ decode is the identity', () => {
    fc.assert(
      fc.property(
        u64,
        u16,
        pad6,
        u64,
        u64,
        u64,
        u64,
        u64,
        (block_size, node_id, padding, addr, region_size, usable_region_size, plugged_size, requested_size) => {
          const config: VirtioMemConfig = {
            block_size,
            node_id,
            padding,
            addr,
            region_size,
            usable_region_size,
            plugged_size,
            requested_size,
          };
          const decoded = decodeConfig(encodeConfig(config));
          expect(decoded.ok && decoded.value).toEqual(config);
        },
      ),
    );
  });

  test('request and response: decode ∘ encode is the identity on bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 24, maxLength: 24 }), (bytes) => {
        const decoded = decodeRequest(bytes);
        expect(decoded.ok).toBe(true);
        if (decoded.ok) expect(encodeRequest(decoded.value)).toEqual(bytes);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 10, maxLength: 10 }), (bytes) => {
        const decoded = decodeResponse(bytes);
        if (decoded.ok) expect(encodeResponse(decoded.value)).toEqual(bytes);
        else throw new Error('10 bytes must decode');
      }),
    );
  });
});

describe('codec on bad input', () => {
  test.each([
    ['config', decodeConfig, 56],
    ['request', decodeRequest, 24],
    ['response', decodeResponse, 10],
  ] as const)('should report truncated %s input as a typed result', (_name, decode, size) => {
    for (const length of [0, 1, size - 1]) {
      const result = decode(new Uint8Array(length));
      expect(result).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'truncated', expected: size, actual: length }),
      });
    }
  });

  test('should report nonzero padding and trailing bytes instead of hiding them', () => {
    const bytes = new Uint8Array(26);
    bytes[3] = 0xaa;
    bytes[23] = 0x01;
    const result = decodeRequest(bytes);
    expect(result.ok && result.nonzeroPadding.map((p) => [p.field, p.offset])).toEqual([
      ['padding', 2],
      ['payload_padding', 18],
    ]);
    expect(result.ok && result.trailingBytes).toBe(2);
  });

  test.each([
    [{ nb_blocks: 0x10000 }, 'out-of-range', /nb_blocks = 65536 is out of range; allowed 0\.\.65535/],
    [{ nb_blocks: -1 }, 'out-of-range', /nb_blocks/],
    [{ addr: 1n << 64n }, 'out-of-range', /addr = 18446744073709551616/],
    [{ padding: new Uint8Array(5) }, 'wrong-length', /exactly 6 bytes/],
    [{ addr: new Uint8Array(8) }, 'wrong-type', /addr takes a number/],
    [{ bogus: 1 }, 'unknown-field', /no field 'bogus'/],
  ])('should refuse %o with a CodecError naming the field and its range', (values, code, message) => {
    let caught: unknown;
    try {
      encodeRequest(values as never);
    } catch (error) {
      caught = error;
    }
    expect(isCodecError(caught)).toBe(true);
    expect((caught as CodecError).code).toBe(code);
    expect((caught as CodecError).message).toMatch(message);
  });
});

describe('record types derived from the layouts', () => {
  test('should name and type every field as the layout declares it', () => {
    const response: VirtioMemResponse = { type: 0, padding: new Uint8Array(6), state: 2 };
    expect(decodeResponse(encodeResponse(response))).toMatchObject({ ok: true, value: response });
    // Checked by `tsc`: a field of another kind, an unknown field and a missing field are compile errors.
    // @ts-expect-error le64 fields are bigints
    const wrongKind: Partial<VirtioMemConfig> = { block_size: 1 };
    // @ts-expect-error the request layout has no field `state`
    const unknownField: Partial<VirtioMemRequest> = { state: 1 };
    // @ts-expect-error a decoded record has every field
    const missingField: VirtioMemResponse = { type: 0, state: 0 };
    expect([wrongKind, unknownField, missingField]).toHaveLength(3);
  });
});

describe('field readers for bytes that may be cut short', () => {
  test('peekRequestType should read the type from one buffer or across a chain, and say undefined when it is cut', () => {
    const unplugAll = encodeRequest({ type: 2 });
    expect(peekRequestType(unplugAll)).toBe(2);
    expect(
      peekRequestType([new Uint8Array(0), unplugAll.subarray(0, 1), new Uint8Array(0), unplugAll.subarray(1)]),
    ).toBe(2);
    expect(peekRequestType(fromHex('ffff'))).toBe(0xffff);
    expect(peekRequestType(fromHex('02'))).toBeUndefined();
    expect(peekRequestType([fromHex('02'), new Uint8Array(0)])).toBeUndefined();
    expect(peekRequestType([])).toBeUndefined();
  });

  test('readResponseType and readResponseState should read what the device wrote and no further', () => {
    const mixed = encodeResponse({ type: 0, state: 2 });
    expect([readResponseType(mixed), readResponseState(mixed)]).toEqual([0, 2]);
    expect([readResponseType(mixed.subarray(0, 9)), readResponseState(mixed.subarray(0, 9))]).toEqual([0, undefined]);
    expect(readResponseType(mixed.subarray(0, 1))).toBeUndefined();
  });

  test('withResponseTrailer should write up to 8 bytes after the type of a 10-byte copy', () => {
    const ack = encodeResponse({ type: 0 });
    expect(RESPONSE_TRAILER_SIZE).toBe(8);
    expect(hex(withResponseTrailer(ack, fromHex('01 02 03 04 05 06 07 08 09')))).toBe('0000' + '0102030405060708');
    expect(hex(withResponseTrailer(fromHex('0300 0000 0000 0000 0100 ffff'), fromHex('aa')))).toBe(
      '0300' + 'aa00000000000100',
    );
    expect(hex(ack)).toBe('00'.repeat(10));
  });

  test('withFieldBytes should overwrite a padding field of a copy, by name', () => {
    const config = encodeConfig({ node_id: 1 });
    const garbage = withFieldBytes(VirtioMemConfigLayout, config, 'padding', fromHex('ff ff ff ff ff ff ee'));
    expect(decodeConfig(garbage)).toMatchObject({
      ok: true,
      value: { node_id: 1 },
      nonzeroPadding: [{ field: 'padding', offset: 10 }],
    });
    expect(hex(garbage.subarray(8, 18))).toBe('0100' + 'ffffffffffff' + '0000');
    expect(decodeConfig(config)).toMatchObject({ nonzeroPadding: [] });
    // @ts-expect-error node_id is not a byte-string field
    expect(() => withFieldBytes(VirtioMemConfigLayout, config, 'node_id', garbage)).toBeDefined();
  });

  test('requestTypeName should name the four request types and nothing else', () => {
    expect([0, 1, 2, 3].map(requestTypeName)).toEqual(['PLUG', 'UNPLUG', 'UNPLUG_ALL', 'STATE']);
    expect([4, -1, 0.5, 0xffff].map(requestTypeName)).toEqual([undefined, undefined, undefined, undefined]);
  });
});
