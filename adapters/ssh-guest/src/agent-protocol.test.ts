import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AGENT_ERROR_CODES,
  AGENT_MAX_FRAME,
  AGENT_MAX_OPERATIONS,
  AGENT_OPERATIONS,
  AGENT_PROTOCOL_VERSION,
  AGENT_REPLY_MAGIC,
  AGENT_REQUEST_MAGIC,
  AgentOperation,
  AgentOperationSpec,
  FrameSplitter,
  decodeReply,
  encodeRequest,
} from './agent-protocol';

const AGENT_DIR = path.resolve(__dirname, '..', 'agent');

function encoded(sequence: number, ops: readonly AgentOperation[]): Buffer {
  const r = encodeRequest(sequence, ops);
  if (!r.ok) throw new Error(r.problem);
  return Buffer.from(r.value);
}

/** A reply as the agent writes it. */
function reply(sequence: number, status: number, done: number, answers: Buffer, failure?: [number, string]): Buffer {
  const trailer = failure
    ? Buffer.concat([Buffer.from(new Uint32Array([failure[0], failure[1].length]).buffer), Buffer.from(failure[1])])
    : Buffer.alloc(0);
  const length = 20 + answers.length + trailer.length;
  const header = Buffer.from(new Uint32Array([length, AGENT_REPLY_MAGIC, sequence, status, done]).buffer);
  return Buffer.concat([header, answers, trailer]);
}

describe('agent frames: the table', () => {
  const specs = Object.entries(AGENT_OPERATIONS) as [string, AgentOperationSpec][];

  it('gives each operation its own code, `code` at offset 0, and fields inside the size that do not overlap', () => {
    expect(new Set(specs.map(([, s]) => s.code)).size).toBe(specs.length);
    for (const [name, spec] of specs) {
      expect([name, spec.request.fields['code']]).toEqual([name, { offset: 0, type: 'u8' }]);
      for (const layout of [spec.request, spec.answer]) {
        const covered = new Array<string>(layout.size).fill('');
        for (const [field, f] of Object.entries(layout.fields)) {
          const width = { u8: 1, u16: 2, u32: 4, u64: 8 }[f.type];
          expect(f.offset % width).toBe(0);
          for (let b = f.offset; b < f.offset + width; b++) {
            expect([name, field, b < layout.size, covered[b]]).toEqual([name, field, true, '']);
            covered[b] = field;
          }
        }
      }
    }
  });

  it('is the table the C agent declares (codes, sizes, answer sizes, field offsets and widths)', () => {
    const c = fs.readFileSync(path.join(AGENT_DIR, 'vmemct-agent.c'), 'utf8');
    const h = fs.readFileSync(path.join(AGENT_DIR, 'agent.h'), 'utf8');
    const opEnum = /enum \{\s*(OP_CONFIG_READ = 0x01[^}]*)\}/.exec(h)![1]!;
    const codes = new Map<string, number>();
    let next = 0;
    for (const item of opEnum.split(',').map((s) => s.trim())) {
      const [name, value] = item.split('=').map((s) => s.trim());
      next = value !== undefined ? Number(value) : next + 1;
      codes.set(name!, next);
    }
    const rows = [...c.matchAll(/\{(OP_[A-Z_]+), (\d+), (\d+), (\d+), \{((?:\{\d+, \d+\},? ?)*)\}\}/g)];
    expect(rows).toHaveLength(specs.length);
    for (const [, opName, size, answer, count, fields] of rows) {
      const kind = opName!.slice(3).toLowerCase().replace(/_/g, '-');
      const spec = (AGENT_OPERATIONS as Record<string, AgentOperationSpec>)[kind]!;
      expect([kind, codes.get(opName!)]).toEqual([kind, spec.code]);
      expect([kind, Number(size)]).toEqual([kind, spec.request.size]);
      // The C table's answer size is the fixed part; read-bytes answers its `length` bytes.
      expect([kind, Number(answer)]).toEqual([kind, spec.answer.size]);
      const cFields = [...fields!.matchAll(/\{(\d+), (\d+)\}/g)].map(([, at, w]) => [Number(at), Number(w)]);
      expect(cFields).toHaveLength(Number(count));
      const tsFields = Object.values(spec.request.fields)
        .map((f) => [f.offset, { u8: 1, u16: 2, u32: 4, u64: 8 }[f.type]])
        .sort((a, b) => a[0]! - b[0]!);
      expect([kind, cFields]).toEqual([kind, tsFields]);
    }
    for (const [name, value] of [
      ['PROTOCOL_VERSION', AGENT_PROTOCOL_VERSION],
      ['REQUEST_MAGIC', AGENT_REQUEST_MAGIC],
      ['REPLY_MAGIC', AGENT_REPLY_MAGIC],
      ['MAX_OPERATIONS', AGENT_MAX_OPERATIONS],
    ] as const)
      expect(h).toMatch(new RegExp(`#define ${name} 0?x?${value.toString(value > 100000 ? 16 : 10)}u`));
    expect(h).toContain('#define MAX_FRAME (16u << 20)');
    expect(AGENT_MAX_FRAME).toBe(16 << 20);
    const errorEnum = /enum \{\s*(E_MALFORMED = 1[^}]*)\}/.exec(h)![1]!.split(',');
    expect(errorEnum).toHaveLength(AGENT_ERROR_CODES.length);
  });
});

describe('agent frames: encoding', () => {
  it('writes the header and each operation at its fixed offsets, little-endian, reserved bytes zero', () => {
    const frame = encoded(0x01020304, [
      { kind: 'config-read', offset: 0x34, width: 1 },
      { kind: 'write', addr: 0xfebf_c014n, width: 2, value: 0xabcdn },
      { kind: 'write-bytes', addr: 0x320_0000n, bytes: Uint8Array.from([7, 8, 9]) },
      { kind: 'dma-window' },
    ]);
    expect(frame.toString('hex')).toBe(
      [
        '47000000', // length 71
        '564d4751', // "VMGQ"
        '04030201',
        '04000000',
        '01013400', // config-read width 1 offset 0x34
        '04020000' + '00000000' + '14c0bffe00000000' + 'cdab000000000000', // write
        '06000000' + '03000000' + '0000200300000000' + '070809', // write-bytes
        '1300000000000000', // dma-window
      ].join(''),
    );
    expect(frame.length).toBe(16 + 4 + 24 + 19 + 8);
    expect(frame.readUInt32LE(0)).toBe(frame.length);
  });

  it('refuses what the agent would call malformed, naming the operation', () => {
    expect(encodeRequest(1, [{ kind: 'config-read', offset: 0, width: 3 }])).toEqual({
      ok: false,
      problem: 'operation 0 (config-read): width 3 is not one of 1, 2, 4',
    });
    expect(
      encodeRequest(1, [
        { kind: 'read', addr: 0n, width: 4 },
        { kind: 'read', addr: 0n, width: 16 },
      ]),
    ).toMatchObject({
      ok: false,
      problem: expect.stringContaining('operation 1 (read): width 16'),
    });
    expect(
      encodeRequest(1, [{ kind: 'wait-change', addr: 0n, width: 2, value: 0n, timeoutUs: 5_000_000 }]),
    ).toMatchObject({ ok: false, problem: expect.stringContaining('timeout 5000000 us') });
    expect(
      encodeRequest(1, [
        { kind: 'read-bytes', addr: 0n, length: AGENT_MAX_FRAME - 100 },
        { kind: 'read-bytes', addr: 0n, length: 200 },
      ]),
    ).toMatchObject({ ok: false, problem: expect.stringContaining('the answers would be') });
    expect(
      encodeRequest(
        1,
        Array.from({ length: AGENT_MAX_OPERATIONS + 1 }, () => ({ kind: 'dma-window' }) as const),
      ),
    ).toMatchObject({ ok: false, problem: expect.stringContaining('operations are over') });
  });
});

describe('agent frames: decoding', () => {
  const ops: AgentOperation[] = [
    { kind: 'config-read', offset: 0, width: 4 },
    { kind: 'read-bytes', addr: 0x1000n, length: 3 },
    { kind: 'write', addr: 0x2000n, width: 4, value: 1n },
    { kind: 'dma-window' },
  ];
  const answers = Buffer.concat([
    Buffer.from('f41a5810', 'hex'),
    Buffer.from([1, 2, 3]),
    Buffer.from('0000200300000000' + '0000200000000000', 'hex'),
  ]);

  it('decodes every answer of an ok reply, in order', () => {
    expect(decodeReply(reply(9, 0, 4, answers), 9, ops)).toEqual({
      ok: true,
      value: {
        status: 'ok',
        sequence: 9,
        answers: [
          { kind: 'config-read', value: 0x10581af4 },
          { kind: 'read-bytes', bytes: Uint8Array.from([1, 2, 3]) },
          { kind: 'write' },
          { kind: 'dma-window', base: 0x320_0000n, length: 0x20_0000n },
        ],
      },
    });
  });

  it('decodes a refusal: the answers before it, the error code and message', () => {
    const r = decodeReply(reply(9, 1, 2, answers.subarray(0, 7), [6, 'outside']), 9, ops);
    expect(r).toEqual({
      ok: true,
      value: {
        status: 'refused',
        sequence: 9,
        answers: [
          { kind: 'config-read', value: 0x10581af4 },
          { kind: 'read-bytes', bytes: Uint8Array.from([1, 2, 3]) },
        ],
        failure: { code: 'refused-access', message: 'outside' },
      },
    });
    expect(decodeReply(reply(0, 2, 0, Buffer.alloc(0), [1, 'bad magic']), 9, ops)).toEqual({
      ok: true,
      value: { status: 'malformed', sequence: 0, failure: { code: 'malformed', message: 'bad magic' } },
    });
    expect(decodeReply(reply(9, 1, 0, Buffer.alloc(0), [99, '?']), 9, ops)).toMatchObject({
      ok: true,
      value: { failure: { code: 'unknown' } },
    });
  });

  it('calls a reply that does not fit its request a problem', () => {
    const good = reply(9, 0, 4, answers);
    const problems: [Buffer, RegExp][] = [
      [reply(8, 0, 4, answers), /reply to request 8, expected 9/],
      [reply(9, 0, 3, answers), /3 operations answered of 4/],
      [reply(9, 1, 4, answers, [6, 'x']), /4 operations answered of 4 with status refused/],
      [reply(9, 0, 4, answers.subarray(0, 10)), /cut short/],
      [reply(9, 0, 4, Buffer.concat([answers, Buffer.alloc(2)])), /2 bytes after the last answer/],
      [reply(9, 7, 4, answers), /unknown reply status 7/],
      [Buffer.concat([good.subarray(0, 4), Buffer.from('00000000', 'hex'), good.subarray(8)]), /bad reply magic/],
      [good.subarray(0, good.length - 1), /announces \d+ bytes, \d+ came/],
      [reply(9, 1, 1, answers.subarray(0, 4), [6, 'x']).subarray(0, 30), /announces|trailer is cut short/],
    ];
    for (const [frame, pattern] of problems) {
      const r = decodeReply(frame, 9, ops);
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.problem).toMatch(pattern);
    }
  });
});

describe('agent frames: splitting the stream', () => {
  it('cuts frames however the bytes arrive', () => {
    const a = reply(1, 0, 0, Buffer.alloc(0));
    const b = reply(2, 0, 1, Buffer.alloc(8, 0xaa));
    const stream = Buffer.concat([a, b, a]);
    for (const cut of [1, 3, 7, 20, 21, 47]) {
      const splitter = new FrameSplitter();
      const frames: Uint8Array[] = [];
      for (let at = 0; at < stream.length; at += cut) {
        const r = splitter.push(stream.subarray(at, at + cut));
        if (!r.ok) throw new Error(r.problem);
        frames.push(...r.value);
      }
      expect(frames.map((f) => Buffer.from(f).toString('hex'))).toEqual([a, b, a].map((f) => f.toString('hex')));
    }
  });

  it('joins a large reply arriving in many chunks once, when it is whole', () => {
    const big = reply(3, 0, 1, Buffer.alloc(AGENT_MAX_FRAME - 20, 0x5a));
    const splitter = new FrameSplitter();
    const started = Date.now();
    const frames: Uint8Array[] = [];
    for (let at = 0; at < big.length; at += 65536) {
      const r = splitter.push(big.subarray(at, at + 65536));
      if (!r.ok) throw new Error(r.problem);
      frames.push(...r.value);
    }
    expect(frames).toHaveLength(1);
    expect(Buffer.from(frames[0]!).equals(big)).toBe(true);
    // Joining at every chunk would copy gigabytes (256 chunks of a 16 MiB frame).
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('calls a length no reply can have a problem', () => {
    expect(new FrameSplitter().push(Buffer.from('10000000', 'hex'))).toEqual({
      ok: false,
      problem: 'a reply announces 16 bytes',
    });
    expect(new FrameSplitter().push(Buffer.from('ffffffff', 'hex'))).toMatchObject({ ok: false });
  });
});
