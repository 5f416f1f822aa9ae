import Ajv2020 from 'ajv/dist/2020';
import {
  HARNESS_ANSWER_SCHEMAS,
  HARNESS_CALL_SCHEMAS,
  HARNESS_COMMAND_SCHEMAS,
  HARNESS_COMMANDS,
  HARNESS_FAILURE_REPLY_SCHEMA,
  HARNESS_HELLO_SCHEMA,
  HARNESS_LINE_LIMIT,
  HARNESS_OPS,
  HARNESS_PROTOCOL,
  HARNESS_REPLY_SCHEMAS,
  HARNESS_SCHEMAS,
  decodeAnswer,
  decodeCall,
  decodeCommand,
  decodeCount,
  decodeHello,
  decodeHex,
  decodeReply,
  decodeU64,
  encodeAnswer,
  encodeCall,
  encodeCommand,
  encodeHello,
  encodeHex,
  encodeReply,
  encodeU64,
  harnessOpsOf,
  parseHarnessLine,
  utf8Length,
} from './index';
import type { DeviceSetup, HarnessCommand, JsonSchema } from './index';

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
for (const schema of HARNESS_SCHEMAS) ajv.addSchema(schema);
const valid = (schema: JsonSchema, data: unknown): boolean => ajv.validate(schema.$id as string, data) as boolean;

const SETUP: DeviceSetup = {
  block_size: 0x200000n,
  region_size: 0x8000000n,
  addr: 0x140000000n,
  requested_size: 0n,
  node_id: 0,
  features: 1n,
  plugged: [{ first: 0, count: 4 }],
  usable_region_size: 0x8000000n,
};

describe('field kinds', () => {
  test('u64: hex or decimal strings up to 2^64-1; nothing else', () => {
    expect(decodeU64('0x8000000')).toEqual({ ok: true, value: 0x8000000n });
    expect(decodeU64('0XFF')).toEqual({ ok: true, value: 255n });
    expect(decodeU64('18446744073709551615')).toEqual({ ok: true, value: (1n << 64n) - 1n });
    expect(decodeU64('18446744073709551616')).toMatchObject({ ok: false, reason: expect.stringContaining('64 bits') });
    expect(decodeU64(5)).toMatchObject({ ok: false, reason: expect.stringContaining('as a string') });
    for (const bad of ['', '0x', '-1', '1.5', ' 1', '0x1g', '2MiB']) expect(decodeU64(bad).ok).toBe(false);
    expect(encodeU64(0x140000000n)).toBe('0x140000000');
    expect(encodeU64(0n)).toBe('0x0');
  });

  test('count: non-negative safe integers within the max', () => {
    expect(decodeCount(0)).toEqual({ ok: true, value: 0 });
    expect(decodeCount(Number.MAX_SAFE_INTEGER).ok).toBe(true);
    for (const bad of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, '3', null, NaN]) expect(decodeCount(bad).ok).toBe(false);
    expect(decodeCount(256, 255)).toMatchObject({ ok: false, reason: '256 exceeds the maximum 255' });
  });

  test('bytes: hex pairs of either case, exact length when given; round trip', () => {
    expect(decodeHex('')).toEqual({ ok: true, value: new Uint8Array() });
    expect(decodeHex('00aBff')).toEqual({ ok: true, value: Uint8Array.from([0, 0xab, 0xff]) });
    for (const bad of ['0', 'zz', '0x00', 12, null]) expect(decodeHex(bad).ok).toBe(false);
    expect(decodeHex('0000', 3)).toMatchObject({ ok: false, reason: 'expected 3 bytes, got 2' });
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const hex = encodeHex(bytes);
    expect(hex).toBe(hex.toLowerCase());
    expect(decodeHex(hex)).toEqual({ ok: true, value: bytes });
  });
});

describe('messages', () => {
  const hello = {
    hello: HARNESS_PROTOCOL,
    implementation: 'toyvmm-mem',
    version: '0.3.1',
    targets: { device: ['host-resize', 'device-reset'], driver: ['system-reset'] },
    timeout_multiplier: 2,
  };

  test('hello decodes, round-trips and validates; another major version is refused by name', () => {
    const decoded = decodeHello(hello);
    expect(decoded).toEqual({ ok: true, value: hello });
    if (!decoded.ok) return;
    expect(encodeHello(decoded.value)).toEqual(hello);
    expect(valid(HARNESS_HELLO_SCHEMA, hello)).toBe(true);
    const v2 = { ...hello, hello: 'vmemct-harness/2' };
    expect(decodeHello(v2)).toMatchObject({ ok: false, reason: expect.stringContaining("speaks 'vmemct-harness/2'") });
    expect(valid(HARNESS_HELLO_SCHEMA, v2)).toBe(false);
    const typo = { ...hello, targets: { device: ['host_resize'] } };
    expect(decodeHello(typo)).toMatchObject({ ok: false, reason: expect.stringContaining("field 'targets'") });
    expect(valid(HARNESS_HELLO_SCHEMA, typo)).toBe(false);
    expect(decodeHello({ ...hello, targets: {} }).ok).toBe(false);
    expect(decodeHello({ ...hello, timeout_multiplier: 0.5 }).ok).toBe(false);
    expect(valid(HARNESS_HELLO_SCHEMA, { ...hello, timeout_multiplier: 0.5 })).toBe(false);
    const { version: _omitted, ...noVersion } = hello;
    expect(decodeHello(noVersion)).toMatchObject({ ok: false, reason: "hello: field 'version' is missing" });
  });

  test('every command round-trips through encode/decode and its schema accepts the encoding', () => {
    const samples: HarnessCommand[] = [
      { id: 1, op: 'open_device', params: { setup: SETUP } },
      { id: 2, op: 'initialise', params: {} },
      { id: 3, op: 'submit', params: { readable: [Uint8Array.of(0, 1)], writable: [new Uint8Array(10).fill(0xa5)] } },
      { id: 4, op: 'resize', params: { requested_size: 0x400000n } },
      { id: 5, op: 'read_memory', params: { addr: 0x140000000n, length: 8 } },
      {
        id: 6,
        op: 'open_driver',
        params: { setup: { ...SETUP, features: undefined }, config_padding: Uint8Array.of(7) },
      },
      { id: 7, op: 'settle', params: { max_requests: 100, timeout_ms: 5000, config_changed: true } },
      { id: 8, op: 'host_busy', params: { busy: false } },
    ];
    for (const command of samples) {
      const wire = JSON.parse(JSON.stringify(encodeCommand(command)));
      expect(valid(HARNESS_COMMAND_SCHEMAS[command.op], wire)).toBe(true);
      const back = decodeCommand(wire);
      expect(back.ok).toBe(true);
      if (back.ok) expect(encodeCommand(back.value)).toEqual(wire);
    }
    const open = JSON.parse(JSON.stringify(encodeCommand(samples[0])));
    expect(open.setup).toEqual({
      block_size: '0x200000',
      region_size: '0x8000000',
      addr: '0x140000000',
      requested_size: '0x0',
      node_id: 0,
      features: '0x1',
      plugged: [{ first: 0, count: 4 }],
      usable_region_size: '0x8000000',
    });
  });

  test('bad commands are refused naming the field, by decoder and schema alike', () => {
    const bad = { id: 3, op: 'submit', readable: ['0001'], writable: 'aa' };
    expect(decodeCommand(bad)).toMatchObject({ ok: false, reason: expect.stringContaining("field 'writable'") });
    expect(valid(HARNESS_COMMAND_SCHEMAS.submit, bad)).toBe(false);
    const setup = {
      id: 1,
      op: 'open_device',
      setup: {
        ...(encodeCommand({ id: 1, op: 'open_device', params: { setup: SETUP } }).setup as object),
        plugged: [{ first: 0, count: 0 }],
      },
    };
    expect(decodeCommand(setup)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("field 'plugged': [0].count"),
    });
    expect(valid(HARNESS_COMMAND_SCHEMAS.open_device, setup)).toBe(false);
    expect(decodeCommand({ id: 1, op: 'format_disk' })).toMatchObject({
      ok: false,
      reason: expect.stringContaining('not a command'),
    });
  });

  test('replies: success fields, conditional fields, error, unsupported only on open', () => {
    const used = { id: 3, ok: true, used: true, length: 2, written: '0100' };
    expect(decodeReply('submit', used)).toEqual({
      ok: true,
      value: { kind: 'ok', id: 3, fields: { used: true, length: 2, written: Uint8Array.of(1, 0) } },
    });
    expect(valid(HARNESS_REPLY_SCHEMAS.submit, used)).toBe(true);
    const usedNoLength = { id: 3, ok: true, used: true };
    expect(decodeReply('submit', usedNoLength)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("'length' is missing (required when 'used' is true)"),
    });
    expect(valid(HARNESS_REPLY_SCHEMAS.submit, usedNoLength)).toBe(false);
    expect(decodeReply('submit', { id: 3, ok: true, used: false }).ok).toBe(true);
    expect(valid(HARNESS_REPLY_SCHEMAS.submit, { id: 3, ok: true, used: false })).toBe(true);
    expect(decodeReply('resize', { id: 4, ok: true, applied: false }).ok).toBe(false);
    expect(valid(HARNESS_REPLY_SCHEMAS.resize, { id: 4, ok: true, applied: false })).toBe(false);
    expect(decodeReply('read_memory', { id: 5, ok: true }).ok).toBe(false);
    expect(decodeReply('read_memory', { id: 5, ok: true, refused: 'outside' }).ok).toBe(true);
    expect(valid(HARNESS_REPLY_SCHEMAS.read_memory, { id: 5, ok: true })).toBe(false);
    expect(decodeReply('read_config', { id: 2, ok: true, config: '00' })).toMatchObject({
      ok: false,
      reason: expect.stringContaining('expected 56 bytes'),
    });

    const error = { id: 9, ok: false, error: 'device exploded' };
    expect(decodeReply('read_status', error)).toEqual({
      ok: true,
      value: { kind: 'error', id: 9, error: 'device exploded' },
    });
    expect(valid(HARNESS_FAILURE_REPLY_SCHEMA, error)).toBe(true);
    const unsupported = { id: 1, ok: false, unsupported: 'no ACPI' };
    expect(decodeReply('open_device', unsupported)).toEqual({
      ok: true,
      value: { kind: 'unsupported', id: 1, reason: 'no ACPI' },
    });
    expect(decodeReply('read_status', unsupported)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('only open_device and open_driver'),
    });
    expect(decodeReply('read_status', { id: 1, ok: false })).toMatchObject({
      ok: false,
      reason: expect.stringContaining("'unsupported' is missing"),
    });
    expect(valid(HARNESS_FAILURE_REPLY_SCHEMA, { id: 1, ok: false })).toBe(false);
    expect(decodeReply('read_status', { id: '1', ok: true, status: 15 }).ok).toBe(false);
    expect(decodeReply('read_status', { id: 1, ok: 'yes', status: 15 }).ok).toBe(false);

    for (const reply of [used, { id: 3, ok: true, used: false }]) {
      const decoded = decodeReply('submit', reply);
      if (decoded.ok) expect(encodeReply('submit', decoded.value)).toEqual(reply);
    }
    expect(encodeReply('open_device', { kind: 'unsupported', id: 1, reason: 'x' })).toEqual({
      id: 1,
      ok: false,
      unsupported: 'x',
    });
  });

  test('calls and answers round-trip and validate', () => {
    const request = { call: 'request', bytes: '00'.repeat(24), at_ms: 12 };
    const call = decodeCall(request);
    expect(call.ok).toBe(true);
    if (call.ok) expect(encodeCall(call.value)).toEqual(request);
    expect(valid(HARNESS_CALL_SCHEMAS.request, request)).toBe(true);
    expect(decodeCall({ call: 'request', bytes: 7 })).toMatchObject({
      ok: false,
      reason: expect.stringContaining("call request: field 'bytes'"),
    });
    expect(decodeCall({ call: 'format_disk' }).ok).toBe(false);

    const answer = { answer: 'request', response: null, config_changed: false };
    const decoded = decodeAnswer('request', answer);
    expect(decoded).toEqual({
      ok: true,
      value: { answer: 'request', fields: { response: null, config_changed: false } },
    });
    if (decoded.ok) expect(encodeAnswer(decoded.value)).toEqual(answer);
    expect(valid(HARNESS_ANSWER_SCHEMAS.request, answer)).toBe(true);
    expect(valid(HARNESS_ANSWER_SCHEMAS.request, { ...answer, response: 5 })).toBe(false);
    expect(decodeAnswer('accept', answer).ok).toBe(false);
    expect(encodeAnswer({ answer: 'accept', fields: { features: 0x100000001n } })).toEqual({
      answer: 'accept',
      features: '0x100000001',
    });
  });

  test('every success reply schema accepts its own minimal reply and rejects ok:false', () => {
    for (const op of HARNESS_OPS) {
      const schema = HARNESS_REPLY_SCHEMAS[op];
      expect(valid(schema, { id: 1, ok: false, error: 'x' })).toBe(false);
    }
    expect(valid(HARNESS_REPLY_SCHEMAS.shutdown, { id: 1, ok: true, extra: 'ignored' })).toBe(true);
  });
});

describe('lines and tables', () => {
  test('line shapes and violations', () => {
    expect(parseHarnessLine('{"hello":"x"}')).toMatchObject({ ok: true, value: { shape: 'hello' } });
    expect(parseHarnessLine('{"id":1,"ok":true}')).toMatchObject({ ok: true, value: { shape: 'reply' } });
    expect(parseHarnessLine('{"id":1,"op":"read_status"}')).toMatchObject({ ok: true, value: { shape: 'command' } });
    expect(parseHarnessLine('{"call":"read_config"}')).toMatchObject({ ok: true, value: { shape: 'call' } });
    expect(parseHarnessLine('{"answer":"read_config"}')).toMatchObject({ ok: true, value: { shape: 'answer' } });
    expect(parseHarnessLine('{"id":1')).toMatchObject({ ok: false, reason: expect.stringContaining('malformed JSON') });
    expect(parseHarnessLine('[1]')).toMatchObject({ ok: false, reason: 'expected a JSON object, got an array' });
    expect(parseHarnessLine('{"what":1}')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('unknown shape'),
    });
    const huge = `{"id":1,"ok":true,"pad":"${'a'.repeat(HARNESS_LINE_LIMIT)}"}`;
    expect(parseHarnessLine(huge)).toMatchObject({ ok: false, reason: expect.stringContaining('exceeds the limit') });
    expect(utf8Length('aé€😀')).toBe(1 + 2 + 3 + 4);
  });

  test('per-target ops: the required core has no capability, the optional ones name theirs', () => {
    const device = harnessOpsOf('device');
    expect(device.core).toEqual([
      'open_device',
      'initialise',
      'read_config',
      'read_status',
      'notification_count',
      'submit',
      'close_device',
    ]);
    expect(device.optional).toContain('resize');
    expect(harnessOpsOf('driver')).toEqual({
      core: ['open_driver', 'start', 'settle', 'close_driver'],
      optional: ['reboot', 'may_suspend'],
    });
    expect(HARNESS_COMMANDS.reboot.capability).toBe('system-reset');
    expect(HARNESS_COMMANDS.settle.calls).toEqual(['read_config', 'request', 'write_memory']);
  });
});
