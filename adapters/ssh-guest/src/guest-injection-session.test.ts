import { encodeRequest, encodeResponse } from '../../../model/src/codec/codec';
import { InterceptedRequest } from './gdb-injection';
import { asDriverSaw, tracedIs } from './guest-injection-session';

const PLUG = 0;
const UNPLUG = 1;
const STATE = 3;
const [ACK, NACK, , ERROR] = [0, 1, 2, 3];

function record(over: Partial<InterceptedRequest>): InterceptedRequest {
  return {
    type: PLUG,
    addr: 0x104000000n,
    nbBlocks: 32,
    deviceAnswer: ACK,
    delivered: ACK,
    injected: false,
    rewritten: false,
    hostMs: 1,
    ...over,
  };
}

describe('traced requests paired with the injector records', () => {
  const nacked = record({ deviceAnswer: ERROR, delivered: NACK, injected: true, rewritten: true });

  test('a rewritten request is the empty STATE at its address, nothing else', () => {
    expect(tracedIs({ type: STATE, addr: 0x104000000n, nb_blocks: 0 }, nacked)).toBe(true);
    expect(tracedIs({ type: STATE, addr: 0x100000000n, nb_blocks: 0 }, nacked)).toBe(false);
    expect(tracedIs({ type: PLUG, addr: 0x104000000n, nb_blocks: 32 }, nacked)).toBe(false);
  });

  test('a request let through is the same type, address and block count', () => {
    const through = record({});
    expect(tracedIs({ type: PLUG, addr: 0x104000000n, nb_blocks: 32 }, through)).toBe(true);
    expect(tracedIs({ type: PLUG, addr: 0x104000000n, nb_blocks: 31 }, through)).toBe(false);
    expect(tracedIs({ type: UNPLUG, addr: 0x104000000n, nb_blocks: 32 }, through)).toBe(false);
    expect(tracedIs({ type: STATE, addr: 0x104000000n, nb_blocks: 0 }, through)).toBe(false);
  });

  test("a rewritten request is put back as the driver's request with the answer it was given", () => {
    const traced = {
      request: encodeRequest({ type: STATE, addr: 0x104000000n, nb_blocks: 0 }),
      response: encodeResponse({ type: ERROR }),
    };
    expect(asDriverSaw(traced, nacked)).toEqual({
      request: encodeRequest({ type: PLUG, addr: 0x104000000n, nb_blocks: 32 }),
      response: encodeResponse({ type: NACK }),
    });
  });

  test('an injected trailer is in the response bytes: after an ACK QEMU gave, and after an injected ERROR', () => {
    const trailer = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x5a, 0xa5, 0x02, 0x00]);
    const plug = encodeRequest({ type: PLUG, addr: 0x104000000n, nb_blocks: 32 });
    const acked = asDriverSaw(
      { request: plug, response: encodeResponse({ type: ACK }) },
      record({ injected: true, trailer }),
    );
    expect(acked.request).toEqual(plug);
    expect(acked.response).toEqual(new Uint8Array([0, 0, ...trailer]));
    const errored = asDriverSaw(
      { request: encodeRequest({ type: STATE, addr: 0x104000000n }), response: encodeResponse({ type: ERROR }) },
      record({ deviceAnswer: ERROR, delivered: ERROR, injected: true, rewritten: true, trailer }),
    );
    expect(errored.response).toEqual(new Uint8Array([3, 0, ...trailer]));
  });

  test("a request let through without a trailer keeps QEMU's response bytes", () => {
    const response = encodeResponse({ type: ACK, state: 2 });
    const plug = encodeRequest({ type: PLUG, addr: 0x104000000n, nb_blocks: 32 });
    expect(asDriverSaw({ request: plug, response }, record({}))).toEqual({ request: plug, response });
  });
});
