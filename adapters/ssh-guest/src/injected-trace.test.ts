import { InterceptedRequest } from './gdb-injection';
import { reconcileTrace } from './injected-trace';
import { TraceParser, TracedRequest } from './qemu-trace';

/** QEMU 7.2's trace of three injected NACKs and the PLUG that followed (from a live run). */
const TRACE = `
23297@1796614499.481764:virtio_mem_state_request addr=0x104000000 nb_blocks=0
23297@1796614499.481777:virtio_mem_send_response type=3
23297@1796614499.502100:virtio_mem_state_request addr=0x104000000 nb_blocks=0
23297@1796614499.502111:virtio_mem_send_response type=3
23297@1796614499.523400:virtio_mem_state_request addr=0x104000000 nb_blocks=0
23297@1796614499.523410:virtio_mem_send_response type=3
23297@1796614499.544000:virtio_mem_plug_request addr=0x104000000 nb_blocks=32
23297@1796614499.544300:virtio_mem_send_response type=0
`;

function traced(text: string): TracedRequest[] {
  const p = new TraceParser();
  for (const line of text.split('\n')) p.feed(line);
  p.feed('');
  return p.take();
}

function record(over: Partial<InterceptedRequest>): InterceptedRequest {
  return {
    type: 0,
    addr: 0x104000000n,
    nbBlocks: 32,
    deviceAnswer: 3,
    delivered: 1,
    injected: true,
    rewritten: true,
    hostMs: 10,
    ...over,
  };
}

const NACKS = [record({}), record({}), record({})];
const PASSED = record({ injected: false, rewritten: false, deviceAnswer: 0, delivered: 0 });

describe('reconcileTrace', () => {
  test('puts the driver request and the answer it was given back in place of each empty STATE', () => {
    const r = reconcileTrace(traced(TRACE), [...NACKS, PASSED]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.requests.map((t) => [t.type, t.addr, t.nbBlocks, t.responseType])).toEqual([
      [0, 0x104000000n, 32, 1],
      [0, 0x104000000n, 32, 1],
      [0, 0x104000000n, 32, 1],
      [0, 0x104000000n, 32, 0],
    ]);
    // The time QEMU took each request is kept: the driver re-sent at once after each NACK.
    expect(r.requests[1]!.atMs! - r.requests[0]!.atMs!).toBeCloseTo(20.3, 0);
  });

  test('a trace and records that do not pair up are refused with the reason', () => {
    expect(reconcileTrace(traced(TRACE), NACKS.slice(0, 2))).toEqual({
      ok: false,
      reason: expect.stringMatching(/more empty STATE requests than the injector rewrote \(2\)/),
    });
    expect(reconcileTrace(traced(TRACE), [...NACKS, record({})])).toEqual({
      ok: false,
      reason: 'the injector rewrote 4 requests; the trace shows 3',
    });
    expect(reconcileTrace(traced(TRACE), [record({ addr: 0x100000000n }), ...NACKS.slice(1)])).toEqual({
      ok: false,
      reason: expect.stringMatching(/rewritten request 1 does not match the trace/),
    });
  });

  test('a trace without rewrites is left as it is', () => {
    const plain = traced(TRACE).slice(3);
    expect(reconcileTrace(plain, [PASSED])).toEqual({ ok: true, requests: plain });
  });
});
