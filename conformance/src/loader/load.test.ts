import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluate } from './expr';
import { hexBytes } from '../steps/site';
import { MAX_STEPS_PER_VECTOR, loadVectorText, loadVectors } from './load';
import { LoadProblem, Vector, formatProblem } from './types';

/** A valid file; the line numbers below refer to it (line n is BASE[n - 1]). */
const BASE = [
  /*  1 */ 'format: vmemct-vectors/1',
  /*  2 */ 'defaults:',
  /*  3 */ '  setup: {block_size: 2MiB, region_size: 1GiB, addr: 4GiB, requested_size: 64MiB}',
  /*  4 */ '  tags: [plug]',
  /*  5 */ 'vectors:',
  /*  6 */ '  - id: vmem.dev.test.plug-one',
  /*  7 */ '    title: PLUG of one block is acknowledged',
  /*  8 */ '    requirements: [dev.plug.6, dev.plug.7]',
  /*  9 */ '    target: device',
  /* 10 */ '    tags: [smoke]',
  /* 11 */ '    steps:',
  /* 12 */ '      - request: {type: PLUG, addr: addr, nb_blocks: 1}',
  /* 13 */ '        expect:',
  /* 14 */ '          response: ACK',
  /* 15 */ '          config: {plugged_size: block_size}',
  /* 16 */ '          notification: none',
  /* 17 */ '      - read_config: true',
  /* 18 */ '        expect: {config: {usable_region_size: {min: requested_size, max: region_size}}}',
];

/** BASE with some lines replaced (1-based line → new text; null deletes the line's content). */
function edited(edits: Readonly<Record<number, string | null>> = {}): string {
  const lines = BASE.map((l, i) => (i + 1 in edits ? (edits[i + 1] ?? '') : l));
  return `${lines.join('\n')}\n`;
}

function load(text: string, file = 'test.yaml'): { vectors: Vector[]; problems: LoadProblem[] } {
  return loadVectorText(file, text);
}

/** The single problem of a text, as `line field: reason`. */
function onlyProblem(text: string): LoadProblem {
  const r = load(text);
  expect(r.problems.map(formatProblem)).toHaveLength(1);
  expect(r.vectors).toEqual([]);
  return r.problems[0];
}

/** A driver vector file. */
function driverFile(steps: string[], extra: string[] = []): string {
  return [
    'format: vmemct-vectors/1',
    'vectors:',
    '  - id: vmem.drv.test.converge',
    '    title: The driver converges',
    '    requirements: [drv.op.8]',
    '    target: driver',
    ...extra,
    '    steps:',
    ...steps,
    '',
  ].join('\n');
}

/** A device vector file with the given step lines (and extra vector-level lines). */
function deviceFile(steps: string[], extra: string[] = []): string {
  return [
    'format: vmemct-vectors/1',
    'vectors:',
    '  - id: vmem.dev.test.something',
    '    title: Something about the device',
    '    requirements: [dev.plug.6]',
    '    target: device',
    ...extra,
    '    steps:',
    ...steps,
    '',
  ].join('\n');
}

describe('a valid file', () => {
  test('loads into one vector with everything normalised', () => {
    const r = load(edited());
    expect(r.problems).toEqual([]);
    expect(r.vectors).toHaveLength(1);
    const v = r.vectors[0];
    expect(v.id).toBe('vmem.dev.test.plug-one');
    expect(v.title).toBe('PLUG of one block is acknowledged');
    expect(v.requirements).toEqual(['dev.plug.6', 'dev.plug.7']);
    expect(v.target).toBe('device');
    expect(v.tags).toEqual(['plug', 'smoke']); // defaults first
    expect(v.needs).toEqual([]);
    expect(v.checkInvariants).toBe(true);
    expect(v.retired).toBeUndefined();
    expect(v.source).toEqual({ file: 'test.yaml', line: 6 });

    const ev = (e: Parameters<typeof evaluate>[0]): bigint => {
      const x = evaluate(e, {});
      if (!x.ok) throw new Error(x.reason);
      return x.value;
    };
    expect(ev(v.setup.block_size)).toBe(2n << 20n);
    expect(ev(v.setup.region_size)).toBe(1n << 30n);
    expect(ev(v.setup.addr)).toBe(4n << 30n);
    expect(ev(v.setup.requested_size)).toBe(64n << 20n);
    expect(v.setup.accept).toBe('offered');
    expect(v.setup.features).toBeUndefined();
    expect(v.setup.plugged).toEqual([]);

    expect(v.steps.map((s) => [s.index, s.line, s.action.kind])).toEqual([
      [1, 12, 'request'],
      [2, 17, 'read-config'],
    ]);
    const first = v.steps[0];
    expect(first.action.kind === 'request' && first.action.request).toEqual({
      form: 'fields',
      type: 0,
      addr: { kind: 'name', name: 'addr' },
      nbBlocks: { kind: 'number', value: 1n },
      padding: undefined,
      payloadPadding: undefined,
    });
    expect(first.expect.response).toEqual(new Map([['ACK', 'pass']]));
    expect(first.expect.notification).toEqual(new Map([['none', 'pass']]));
    expect(first.expect.config?.get('plugged_size')).toEqual({
      kind: 'equals',
      expr: { kind: 'name', name: 'block_size' },
      text: 'block_size',
    });
    expect(v.steps[1].expect.config?.get('usable_region_size')).toMatchObject({
      kind: 'range',
      min: { kind: 'name', name: 'requested_size' },
      max: { kind: 'name', name: 'region_size' },
    });
  });

  test('outcome sets with classes, raw requests, hex fields, retired vectors', () => {
    const r = load(
      deviceFile(
        [
          '      - request: {raw: "00 00 00000000 0000 0000000000000000 0100 000000000000"}',
          '        expect: {response: {NACK: pass, ERROR: informational, BUSY: acceptable}}',
          '      - request: {type: 3, addr: addr, nb_blocks: 2, padding: "01 00 00 00 00 00"}',
          '        expect: {response: ACK, state: UNPLUGGED}',
          '      - read_config: true',
          '        expect: {config: {plugged_size: unchanged}}',
        ],
        [
          '    retired: {reason: replaced by a better vector, superseded_by: vmem.dev.test.other}',
          '    check_invariants: false',
          '    timeout_ms: 500',
        ],
      ),
    );
    expect(r.problems).toEqual([]);
    const v = r.vectors[0];
    expect(v.retired).toEqual({ reason: 'replaced by a better vector', supersededBy: 'vmem.dev.test.other' });
    expect(v.checkInvariants).toBe(false);
    expect(v.timeoutMs).toBe(500);
    const raw = v.steps[0].action;
    expect(raw.kind === 'request' && raw.request.form === 'raw' && raw.request.bytes.length).toBe(24);
    expect(v.steps[0].expect.response).toEqual(
      new Map([
        ['NACK', 'pass'],
        ['ERROR', 'informational'],
        ['BUSY', 'acceptable'],
      ]),
    );
    const state = v.steps[1].action;
    expect(state.kind === 'request' && state.request.form === 'fields' && state.request.type).toBe(3);
    expect(
      state.kind === 'request' && state.request.form === 'fields' && Array.from(state.request.padding ?? []),
    ).toEqual([1, 0, 0, 0, 0, 0]);
    expect(v.steps[1].expect.state).toEqual(new Map([['UNPLUGGED', 'pass']]));
    expect(v.steps[2].expect.config?.get('plugged_size')).toEqual({ kind: 'unchanged' });
  });

  test('hexBytes ignores whitespace', () => {
    expect(Array.from(hexBytes(' 01 0a\tFF  7f'))).toEqual([1, 10, 255, 127]);
    expect(hexBytes('')).toEqual(new Uint8Array(0));
  });

  test('a problem in one vector does not stop the others from loading', () => {
    const text = [
      ...BASE,
      '  - id: vmem.dev.test.second',
      '    title: A second, broken vector',
      '    requirements: [dev.plug.99]',
      '    target: device',
      '    steps:',
      '      - read_config: true',
      '  - id: vmem.dev.test.third',
      '    title: A third, fine vector',
      '    requirements: [dev.plug.1]',
      '    target: device',
      '    steps:',
      '      - read_config: true',
      '',
    ].join('\n');
    const r = load(text);
    expect(r.vectors.map((v) => v.id)).toEqual(['vmem.dev.test.plug-one', 'vmem.dev.test.third']);
    expect(r.problems).toEqual([
      {
        file: 'test.yaml',
        line: 21,
        field: 'vectors[1].requirements[0]',
        reason: "unknown requirement 'dev.plug.99' (see `vmemct spec`)",
      },
    ]);
  });
});

describe('each bad input gives a problem with file, line and field', () => {
  test('YAML syntax error: the line, no field', () => {
    const p = onlyProblem(edited({ 9: '    target: device: x' }));
    expect(p).toMatchObject({ file: 'test.yaml', line: 9, field: '' });
    expect(p.reason).toMatch(/^YAML: /);
    expect(formatProblem(p)).toMatch(/^test\.yaml:9: YAML: /);
  });

  test('YAML duplicate key is a syntax error at the duplicate', () => {
    const p = onlyProblem(edited({ 9: '    title: again' }));
    expect(p).toMatchObject({ line: 9, field: '' });
    expect(p.reason).toMatch(/YAML: .*unique/);
  });

  test('unknown field (typo `reponse`)', () => {
    const p = onlyProblem(edited({ 14: '          reponse: ACK' }));
    expect(p).toEqual({
      file: 'test.yaml',
      line: 14,
      field: 'vectors[0].steps[0].expect.reponse',
      reason: "unknown field 'reponse'",
    });
    expect(formatProblem(p)).toBe("test.yaml:14: vectors[0].steps[0].expect.reponse: unknown field 'reponse'");
  });

  test('unknown field at the top level and in a vector', () => {
    expect(onlyProblem(edited({ 2: 'defualts:' }))).toMatchObject({
      line: 2,
      field: 'defualts',
      reason: "unknown field 'defualts'",
    });
    expect(onlyProblem(edited({ 10: '    tag: [smoke]' }))).toMatchObject({
      line: 10,
      field: 'vectors[0].tag',
      reason: "unknown field 'tag'",
    });
  });

  test('wrong enum: target', () => {
    const p = onlyProblem(edited({ 9: '    target: devices' }));
    expect(p).toMatchObject({ line: 9, field: 'vectors[0].target' });
    expect(p.reason).toBe('must be one of "device", "driver"');
  });

  test('wrong enum: response and request type', () => {
    const p = onlyProblem(edited({ 14: '          response: ACKK' }));
    expect(p).toMatchObject({ line: 14, field: 'vectors[0].steps[0].expect.response' });
    expect(p.reason).toMatch(/^must be one of "ACK", "NACK", "BUSY", "ERROR"/);
    const t = onlyProblem(edited({ 12: '      - request: {type: PLUGG, addr: addr, nb_blocks: 1}' }));
    expect(t).toMatchObject({ line: 12, field: 'vectors[0].steps[0].request.type' });
    expect(t.reason).toMatch(/must be one of "PLUG", "UNPLUG", "UNPLUG_ALL", "STATE"/);
  });

  test('missing required field: at the vector', () => {
    expect(onlyProblem(edited({ 7: null }))).toMatchObject({
      line: 6,
      field: 'vectors[0]',
      reason: "missing required field 'title'",
    });
  });

  test('unknown requirement ID', () => {
    expect(onlyProblem(edited({ 8: '    requirements: [dev.plug.6, dev.plug.99]' }))).toEqual({
      file: 'test.yaml',
      line: 8,
      field: 'vectors[0].requirements[1]',
      reason: "unknown requirement 'dev.plug.99' (see `vmemct spec`)",
    });
  });

  test('requirement in block style: the line of the item', () => {
    const p = onlyProblem(edited({ 8: '    requirements:\n      - dev.plug.6\n      - dev.cfg.77' }));
    expect(p).toMatchObject({ line: 10, field: 'vectors[0].requirements[1]' });
  });

  test('bad expression in a request', () => {
    const p = onlyProblem(edited({ 12: '      - request: {type: PLUG, addr: addr + bogus, nb_blocks: 1}' }));
    expect(p).toMatchObject({ line: 12, field: 'vectors[0].steps[0].request.addr' });
    expect(p.reason).toContain("unknown name 'bogus'");
  });

  test('bad expression in a config expectation, in the vector setup, in a range', () => {
    const c = onlyProblem(edited({ 15: '          config: {plugged_size: block_size +}' }));
    expect(c).toMatchObject({ line: 15, field: 'vectors[0].steps[0].expect.config.plugged_size' });
    expect(c.reason).toContain('expression ends too early');
    const s = onlyProblem(edited({ 10: '    setup: {requested_size: 2 * (block_size}' }));
    expect(s).toMatchObject({ line: 10, field: 'vectors[0].setup.requested_size' });
    expect(s.reason).toContain("missing ')'");
    const m = onlyProblem(edited({ 18: '        expect: {config: {usable_region_size: {min: requested_size & 1}}}' }));
    expect(m).toMatchObject({ line: 18, field: 'vectors[0].steps[1].expect.config.usable_region_size.min' });
    expect(m.reason).toContain("unexpected character '&'");
  });

  test('a number too large to be exact is refused (write it as a string)', () => {
    const p = onlyProblem(edited({ 12: '      - request: {type: PLUG, addr: 18446744073709551615, nb_blocks: 1}' }));
    expect(p).toMatchObject({ line: 12, field: 'vectors[0].steps[0].request.addr' });
    expect(p.reason).toMatch(/represented exactly/);
  });

  test('a step with two actions', () => {
    const p = onlyProblem(edited({ 17: '      - {read_config: true, device_reset: true}', 18: null }));
    expect(p).toEqual({
      file: 'test.yaml',
      line: 17,
      field: 'vectors[0].steps[1]',
      reason: 'a step has one action; found read_config, device_reset',
    });
  });

  test('a step with no action', () => {
    const p = onlyProblem(edited({ 17: '      - note: nothing to do', 18: null }));
    expect(p).toMatchObject({ line: 17, field: 'vectors[0].steps[1]' });
    expect(p.reason).toMatch(/^a step needs one action/);
  });

  test('a driver step in a device vector', () => {
    const p = onlyProblem(edited({ 17: '      - start: true', 18: null }));
    expect(p).toMatchObject({ line: 17, field: 'vectors[0].steps[1].start' });
    expect(p.reason).toMatch(/^'start' is not a step of a device vector \(allowed: request, /);
  });

  test('a device step in a driver vector', () => {
    const p = onlyProblem(
      driverFile(['      - start: true', '      - request: {type: PLUG, addr: addr, nb_blocks: 1}']),
    );
    expect(p).toMatchObject({ line: 9, field: 'vectors[0].steps[1].request' });
    expect(p.reason).toMatch(/^'request' is not a step of a driver vector \(allowed: start, settle, /);
  });

  test('an expectation key not allowed for the step kind: the line of the key', () => {
    const p = onlyProblem(
      edited({
        17: '      - read_config: true',
        18: '        expect:\n          config: {plugged_size: 0}\n          response: ACK',
      }),
    );
    expect(p).toEqual({
      file: 'test.yaml',
      line: 20,
      field: 'vectors[0].steps[1].expect.response',
      reason:
        "'response' cannot be expected of a 'read_config' step (allowed: config, config_bytes, notification, needs_reset)",
    });
  });

  test('several disallowed expectation keys give one problem each', () => {
    const r = load(
      driverFile([
        '      - start: true',
        '      - settle: true',
        '        expect: {converged: true, response: ACK, state: MIXED}',
      ]),
    );
    expect(r.problems.map((p) => [p.line, p.field])).toEqual([
      [10, 'vectors[0].steps[1].expect.response'],
      [10, 'vectors[0].steps[1].expect.state'],
    ]);
  });

  test('wrong hex length: payload_padding of 5 bytes', () => {
    const p = onlyProblem(
      edited({ 12: '      - request: {type: PLUG, addr: addr, nb_blocks: 1, payload_padding: "01 02 03 04 05"}' }),
    );
    expect(p).toEqual({
      file: 'test.yaml',
      line: 12,
      field: 'vectors[0].steps[0].request.payload_padding',
      reason: 'must be exactly 6 bytes (got 5)',
    });
  });

  test('wrong hex length: config_bytes must be 56 bytes', () => {
    const p = onlyProblem(edited({ 18: '        expect: {config_bytes: "00 01"}' }));
    expect(p).toMatchObject({
      line: 18,
      field: 'vectors[0].steps[1].expect.config_bytes',
      reason: 'must be exactly 56 bytes (got 2)',
    });
  });

  test('hex with an odd digit count is refused by the schema', () => {
    const p = onlyProblem(
      edited({ 12: '      - request: {type: PLUG, addr: addr, nb_blocks: 1, padding: "01 02 0"}' }),
    );
    expect(p).toMatchObject({ line: 12, field: 'vectors[0].steps[0].request.padding' });
    expect(p.reason).toMatch(/does not match the expected form/);
  });

  test('a raw request with fields besides raw', () => {
    const p = onlyProblem(deviceFile(['      - request: {raw: "00", type: PLUG}']));
    expect(p).toMatchObject({
      line: 8,
      field: 'vectors[0].steps[0].request',
      reason: 'a raw request gives its bytes only; remove type',
    });
  });

  test('id prefix not matching the target', () => {
    const p = onlyProblem(edited({ 6: '  - id: vmem.drv.test.plug-one' }));
    expect(p).toEqual({
      file: 'test.yaml',
      line: 6,
      field: 'vectors[0].id',
      reason: "a device vector's id starts with vmem.dev.",
    });
    const d = onlyProblem(
      driverFile(['      - start: true']).replace('vmem.drv.test.converge', 'vmem.dev.test.converge'),
    );
    expect(d).toMatchObject({ line: 3, field: 'vectors[0].id', reason: "a driver vector's id starts with vmem.drv." });
  });

  test('an id not of the vmem.(dev|drv).… form', () => {
    const p = onlyProblem(edited({ 6: '  - id: vmem.dev.Plug' }));
    expect(p).toMatchObject({ line: 6, field: 'vectors[0].id' });
    expect(p.reason).toMatch(/does not match the expected form/);
  });
});

describe('loadVectors over folders', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-load-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('duplicate ids across two files: the second is reported, naming the first', () => {
    fs.mkdirSync(path.join(dir, 'sub'));
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'sub', 'b.yml');
    fs.writeFileSync(a, edited());
    fs.writeFileSync(b, edited({ 7: '    title: The same id in another file' }));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a vector file');
    const r = loadVectors([dir]);
    expect(r.files).toEqual([a, b]);
    expect(r.problems).toEqual([
      { file: b, line: 6, field: 'id', reason: `duplicate vector id 'vmem.dev.test.plug-one' (first at ${a}:6)` },
    ]);
  });

  test('duplicate ids inside one file', () => {
    const f = path.join(dir, 'one.yaml');
    fs.writeFileSync(f, [...BASE, ...BASE.slice(5)].join('\n'));
    const r = loadVectors([f]);
    expect(r.problems).toEqual([
      { file: f, line: 19, field: 'id', reason: `duplicate vector id 'vmem.dev.test.plug-one' (first at ${f}:6)` },
    ]);
  });

  test('files are read in sorted order and problems of every file are collected', () => {
    fs.writeFileSync(path.join(dir, 'b.yaml'), edited({ 14: '          reponse: ACK' }));
    fs.writeFileSync(path.join(dir, 'a.yaml'), edited({ 6: '  - id: vmem.dev.test.other' }));
    const r = loadVectors([dir]);
    expect(r.files.map((f) => path.basename(f))).toEqual(['a.yaml', 'b.yaml']);
    expect(r.vectors.map((v) => v.id)).toEqual(['vmem.dev.test.other']);
    expect(r.problems.map((p) => [path.basename(p.file), p.line, p.field])).toEqual([
      ['b.yaml', 14, 'vectors[0].steps[0].expect.reponse'],
    ]);
  });

  test('a path that does not exist is a problem, not an exception', () => {
    const missing = path.join(dir, 'nope');
    const r = loadVectors([missing]);
    expect(r.problems).toEqual([{ file: missing, line: 0, field: '', reason: 'no such file or folder' }]);
  });

  test('an unreadable sub-folder is a problem naming it (simulated: root reads any folder)', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-unreadable-'));
    const shut = path.join(root, 'shut');
    fs.mkdirSync(shut);
    // The module object itself (a namespace import's properties cannot be redefined).
    const fsModule = jest.requireActual<typeof fs>('node:fs');
    const realReaddir = fsModule.readdirSync;
    const spy = jest.spyOn(fsModule, 'readdirSync').mockImplementation(((p: fs.PathLike, ...rest: unknown[]) => {
      if (p === shut)
        throw Object.assign(new Error(`EACCES: permission denied, scandir '${shut}'`), { code: 'EACCES' });
      return (realReaddir as (...a: unknown[]) => unknown)(p, ...rest);
    }) as typeof fs.readdirSync);
    try {
      expect(loadVectors([root]).problems).toEqual([
        { file: shut, line: 0, field: '', reason: 'cannot read folder: permission denied' },
      ]);
    } finally {
      spy.mockRestore();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('derived needs', () => {
  test('a resize step needs host-resize', () => {
    const r = load(deviceFile(['      - resize: 64MiB', '        expect: {notification: sent}']));
    expect(r.problems).toEqual([]);
    expect(r.vectors[0].needs).toEqual(['host-resize']);
  });

  test('plugged blocks in the setup need initial-plugged (from the vector or the file defaults)', () => {
    const own = load(
      deviceFile(['      - read_config: true'], ['    setup: {requested_size: 8MiB, plugged: [{first: 0, count: 2}]}']),
    );
    expect(own.problems).toEqual([]);
    expect(own.vectors[0].needs).toEqual(['initial-plugged']);
    expect(own.vectors[0].setup.plugged).toEqual([{ first: 0, count: 2 }]);
    const viaDefaults = load(edited({ 3: '  setup: {requested_size: 64MiB, plugged: [{first: 3, count: 1}]}' }));
    expect(viaDefaults.problems).toEqual([]);
    expect(viaDefaults.vectors[0].needs).toEqual(['initial-plugged']);
    const empty = load(deviceFile(['      - read_config: true'], ['    setup: {plugged: []}']));
    expect(empty.vectors[0].needs).toEqual([]);
  });

  test('every step kind implies its capability; declared needs are merged, sorted and unique', () => {
    const r = load(
      deviceFile(
        [
          '      - initialise: {accept: [VERSION_1]}',
          '      - request: {type: PLUG, addr: addr, nb_blocks: 1, layout: {readable: [8, 16], writable: [10]}}',
          '      - device_reset: true',
          '      - system_reset: true',
          '      - inject_busy: 2',
          '      - write_memory: {addr: addr, data: "01"}',
          '      - read_memory: {addr: addr, length: 1}',
          '      - suspend: true',
          '      - read_config: true',
          `        expect: {config_bytes: "${'00'.repeat(56)}"}`,
        ],
        ['    needs: [memory-access, host-resize]'],
      ),
    );
    expect(r.problems).toEqual([]);
    expect(r.vectors[0].needs).toEqual([
      'device-reset',
      'feature-negotiation',
      'host-resize',
      'inject-busy',
      'memory-access',
      'raw-descriptor-layout',
      'read-raw-config',
      'suspend',
      'system-reset',
    ]);
  });

  test('driver vectors need observe-driver; inject needs inject-responses; config padding needs observe-driver', () => {
    const r = load(
      driverFile(
        ['      - inject: {response: BUSY, count: 1}', '      - start: true', '      - settle: {max_requests: 10}'],
        ['    setup: {config_padding: "ff ff ff ff ff ff"}'],
      ),
    );
    expect(r.problems).toEqual([]);
    expect(r.vectors[0].needs).toEqual(['inject-responses', 'observe-driver']);
    expect(Array.from(r.vectors[0].setup.configPadding ?? [])).toEqual([255, 255, 255, 255, 255, 255]);
  });

  test('file-level default needs and tags apply to every vector', () => {
    const r = load(edited({ 4: '  tags: [plug]\n  needs: [suspend]' }));
    expect(r.problems).toEqual([]);
    expect(r.vectors[0].needs).toEqual(['suspend']);
  });
});

describe('size limits of a vector file', () => {
  test('a vector with more than MAX_STEPS_PER_VECTOR steps is a problem at the first step over', () => {
    const steps = Array.from(
      { length: MAX_STEPS_PER_VECTOR + 1 },
      () => '      - {request: {type: UNPLUG_ALL}, expect: {response: ACK}}',
    );
    const text = [
      'format: vmemct-vectors/1',
      'vectors:',
      '  - id: vmem.dev.limits.steps',
      '    title: very many steps',
      '    requirements: [dev.cfg.3]',
      '    target: device',
      '    steps:',
      ...steps,
      '',
    ].join('\n');
    const r = loadVectorText('steps.yaml', text);
    expect(r.problems).toEqual([
      {
        file: 'steps.yaml',
        line: 8 + MAX_STEPS_PER_VECTOR,
        field: `vectors[0].steps[${MAX_STEPS_PER_VECTOR}]`,
        reason: `more than ${MAX_STEPS_PER_VECTOR} steps in one vector (${MAX_STEPS_PER_VECTOR + 1})`,
      },
    ]);
  });
});
