import { virtioHandshakeSync } from '../../../adapters/virtio/src/index';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type {
  Adapter,
  Capability,
  Chain,
  Completion,
  DeviceSession,
  DeviceSetup,
  HandshakeResult,
  Target,
} from '../../../adapters/core/src/contract';
import { AdapterError, UnsupportedSetupError } from '../../../adapters/core/src/contract';
import { VirtioMemDevice, deviceRegisters } from '../../../model/src/index';
import { loadVectorText, loadVectors } from '../loader/load';
import type { Vector } from '../loader/types';
import {
  DEFAULT_MAX_MATCHES,
  ExpectationEntry,
  ExpectationSet,
  compileGlob,
  loadExpectations,
  matchExpectations,
} from './expectations';
import { VectorResult, isExpectedByDefault, runVectors, selectVectors } from './run';
import type { Verdict } from '../judge/verdicts';

// ------------------------------------------------------------------------------------------------
// fakes

/** An honest device session over the model device (the contract's required core only). */
class FakeDeviceSession implements DeviceSession {
  closed = 0;
  constructor(readonly device: VirtioMemDevice) {}

  async initialise(accept: (offered: bigint) => bigint): Promise<HandshakeResult> {
    return virtioHandshakeSync(deviceRegisters(this.device), accept);
  }
  async readConfig(): Promise<Uint8Array> {
    return this.device.readConfigBytes();
  }
  async submit(chain: Chain): Promise<Completion> {
    const r = this.device.processChain(chain);
    return r.used ? { kind: 'used', length: r.used.length, written: r.used.written } : { kind: 'no-used-entry' };
  }
  async notificationCount(): Promise<number> {
    return this.device.notificationCount;
  }
  async readStatus(): Promise<number> {
    return this.device.deviceStatus;
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

interface FakeOptions {
  readonly capabilities?: readonly Capability[];
  readonly targetCapabilities?: Partial<Record<Target, readonly Capability[]>>;
  readonly targets?: readonly Target[];
  readonly timeoutMultiplier?: number;
  /** Called for each openDevice (0-based call number); may throw or return a session. */
  readonly open?: (setup: DeviceSetup, call: number) => DeviceSession;
}

interface Fake extends Adapter {
  readonly sessions: FakeDeviceSession[];
  opened: number;
}

function fakeAdapter(options: FakeOptions = {}): Fake {
  const sessions: FakeDeviceSession[] = [];
  const fake: Fake = {
    info: {
      name: 'fake',
      implementation: 'fake 1.0',
      targets: options.targets ?? ['device'],
      capabilities: options.capabilities ?? [],
      targetCapabilities: options.targetCapabilities,
      timeoutMultiplier: options.timeoutMultiplier ?? 1,
    },
    sessions,
    opened: 0,
    async openDevice(setup) {
      const call = fake.opened++;
      if (options.open) return options.open(setup, call);
      const s = new FakeDeviceSession(modelDevice(setup));
      sessions.push(s);
      return s;
    },
    async dispose() {
      /* nothing */
    },
  };
  return fake;
}

function modelDevice(setup: DeviceSetup): VirtioMemDevice {
  return new VirtioMemDevice({ ...setup });
}

// ------------------------------------------------------------------------------------------------
// vectors

function vectorsOf(yaml: string): Vector[] {
  const r = loadVectorText('inline.yaml', yaml);
  if (r.problems.length > 0) throw new Error(r.problems.map((p) => `${p.line}: ${p.field}: ${p.reason}`).join('\n'));
  return r.vectors;
}

interface V {
  id: string;
  requirements?: string;
  tags?: string;
  target?: Target;
  steps?: string[];
  extra?: string[];
}

/** One vector's YAML (list item). */
function vec(v: V): string {
  const target = v.target ?? (v.id.startsWith('vmem.drv.') ? 'driver' : 'device');
  const steps =
    v.steps ??
    (target === 'device'
      ? ['      - request: {type: PLUG, addr: addr, nb_blocks: 1}', '        expect: {response: ACK}']
      : ['      - start: true', '      - settle: true']);
  return [
    `  - id: ${v.id}`,
    `    title: Vector ${v.id}`,
    `    requirements: [${v.requirements ?? (target === 'device' ? 'dev.plug.6' : 'drv.op.8')}]`,
    `    target: ${target}`,
    ...(v.tags ? [`    tags: [${v.tags}]`] : []),
    ...(v.extra ?? []),
    '    steps:',
    ...steps,
  ].join('\n');
}

function file(...items: string[]): string {
  return ['format: vmemct-vectors/1', 'defaults:', '  setup: {requested_size: 64MiB}', 'vectors:', ...items, ''].join(
    '\n',
  );
}

const PASSING = (id: string): string => vec({ id });
/** Expects ERROR where every conforming device ACKs: always fails. */
const FAILING = (id: string): string =>
  vec({ id, steps: ['      - request: {type: PLUG, addr: addr, nb_blocks: 1}', '        expect: {response: ERROR}'] });
/** Declares the conforming ACK non-strict (as if it were a SHOULD breach). */
const NON_STRICT = (id: string): string =>
  vec({
    id,
    steps: ['      - request: {type: PLUG, addr: addr, nb_blocks: 1}', '        expect: {response: {ACK: non-strict}}'],
  });
const RESIZING = (id: string): string =>
  vec({ id, requirements: 'dev.cfg.9', steps: ['      - resize: 32MiB', '        expect: {notification: sent}'] });

function entry(
  pattern: string,
  verdict: Verdict,
  maxMatches = pattern.includes('*') ? DEFAULT_MAX_MATCHES : 1,
  line = 1,
): ExpectationEntry {
  return { pattern, verdict, reason: 'known result of the fake', maxMatches, line };
}

function expectations(...entries: ExpectationEntry[]): ExpectationSet {
  return { file: 'fake.expect.yaml', implementation: 'fake 1.0', entries };
}

const byId = (results: readonly VectorResult[]): Record<string, VectorResult> =>
  Object.fromEntries(results.map((r) => [r.vector.id, r]));

// ------------------------------------------------------------------------------------------------

describe('runVectors with fake adapters', () => {
  test('the honest fake passes: exit 0, every result expected, onResult called in order', async () => {
    const all = vectorsOf(file(PASSING('vmem.dev.run.one'), PASSING('vmem.dev.run.two')));
    const seen: [string, number, number][] = [];
    const adapter = fakeAdapter();
    const run = await runVectors(adapter, all, all, {
      onResult: (r, done, total) => seen.push([r.vector.id, done, total]),
    });
    expect(run.results.map((r) => [r.verdict, r.unexpected])).toEqual([
      ['pass', false],
      ['pass', false],
    ]);
    expect(run.exitCode).toBe(0);
    expect(seen).toEqual([
      ['vmem.dev.run.one', 1, 2],
      ['vmem.dev.run.two', 2, 2],
    ]);
    // A fresh session per vector, each closed once.
    expect(adapter.sessions.map((s) => s.closed)).toEqual([1, 1]);
  });

  test("an expression the target's values make unevaluable blames the vector (bad-vector finding), exit 3", async () => {
    const bad = vec({
      id: 'vmem.dev.run.bad',
      steps: [
        '      - request: {type: PLUG, addr: addr / plugged_size, nb_blocks: 1}',
        '        expect: {response: ACK}',
      ],
    });
    const all = vectorsOf(file(bad, PASSING('vmem.dev.run.two')));
    const run = await runVectors(fakeAdapter(), all, all);
    const r = byId(run.results);
    expect(r['vmem.dev.run.bad']).toMatchObject({ verdict: 'error', unexpected: true });
    expect(r['vmem.dev.run.bad'].findings[0]).toMatchObject({ check: 'bad-vector', step: 1 });
    expect(r['vmem.dev.run.bad'].findings[0].message).toMatch(
      /division by zero .*the vector is at fault, not the target/,
    );
    expect(r['vmem.dev.run.two']).toMatchObject({ verdict: 'pass' });
    expect(run.exitCode).toBe(3);
  });

  test('openDevice throws → error, the run goes on with the next vector, exit 2', async () => {
    const all = vectorsOf(file(PASSING('vmem.dev.run.one'), PASSING('vmem.dev.run.two')));
    const adapter = fakeAdapter({
      open: (setup, call) => {
        if (call === 0) throw new AdapterError('qemu died', 'stderr: boom');
        return new FakeDeviceSession(modelDevice(setup));
      },
    });
    const run = await runVectors(adapter, all, all);
    const r = byId(run.results);
    expect(r['vmem.dev.run.one']).toMatchObject({
      verdict: 'error',
      unexpected: true,
      expected: 'pass',
      diagnostics: 'stderr: boom',
    });
    expect(r['vmem.dev.run.one'].findings[0].message).toMatch(/the adapter failed: AdapterError: qemu died/);
    expect(r['vmem.dev.run.two']).toMatchObject({ verdict: 'pass', unexpected: false });
    expect(adapter.opened).toBe(2);
    expect(run.exitCode).toBe(2);
  });

  test('a plain exception from openDevice is an error too, with the stack as diagnostics', async () => {
    const all = vectorsOf(file(PASSING('vmem.dev.run.one')));
    const run = await runVectors(
      fakeAdapter({
        open: () => {
          throw new TypeError('bad');
        },
      }),
      all,
      all,
    );
    expect(run.results[0].verdict).toBe('error');
    expect(run.results[0].diagnostics).toMatch(/TypeError: bad/);
    expect(run.exitCode).toBe(2);
  });

  test('UnsupportedSetupError from openDevice → unsupported, not unexpected', async () => {
    const all = vectorsOf(file(PASSING('vmem.dev.run.one')));
    const run = await runVectors(
      fakeAdapter({
        open: () => {
          throw new UnsupportedSetupError('region too large');
        },
      }),
      all,
      all,
    );
    expect(run.results[0]).toMatchObject({ verdict: 'unsupported', unexpected: false });
    expect(run.exitCode).toBe(2); // the only vector could not run: nothing was tested
  });

  test('harness errors win over failures in the exit code', async () => {
    const all = vectorsOf(file(FAILING('vmem.dev.run.bad'), PASSING('vmem.dev.run.one')));
    const adapter = fakeAdapter({
      open: (setup, call) => {
        if (call === 1) throw new Error('gone');
        return new FakeDeviceSession(modelDevice(setup));
      },
    });
    const run = await runVectors(adapter, all, all);
    expect(run.results.map((r) => r.verdict)).toEqual(['fail', 'error']);
    expect(run.exitCode).toBe(2);
  });

  test('submit never resolves → timeout within timeoutMs, close() called, exit 2, next vector still runs', async () => {
    const all = vectorsOf(file(PASSING('vmem.dev.run.hang'), PASSING('vmem.dev.run.after')));
    const sessions: FakeDeviceSession[] = [];
    const adapter = fakeAdapter({
      open: (setup, call) => {
        const s = new FakeDeviceSession(modelDevice(setup));
        if (call === 0) s.submit = () => new Promise<Completion>(() => undefined);
        sessions.push(s);
        return s;
      },
    });
    const t0 = Date.now();
    const run = await runVectors(adapter, all, all, { timeoutMs: 50 });
    const elapsed = Date.now() - t0;
    const hang = run.results[0];
    expect(hang).toMatchObject({ verdict: 'timeout', unexpected: true });
    expect(hang.findings[0].message).toBe('the vector did not finish within 50 ms');
    expect(hang.durationMs).toBeGreaterThanOrEqual(45);
    expect(hang.durationMs).toBeLessThan(1000);
    expect(elapsed).toBeLessThan(2000);
    expect(sessions[0].closed).toBe(1);
    expect(run.results[1]).toMatchObject({ verdict: 'pass', unexpected: false });
    expect(run.exitCode).toBe(2);
  });

  test("a vector's own timeout_ms takes precedence over the run's timeout", async () => {
    const all = vectorsOf(file(PASSING('vmem.dev.run.hang'))).map((v) => ({ ...v, timeoutMs: 30 }));
    const adapter = fakeAdapter({
      open: (setup) => {
        const s = new FakeDeviceSession(modelDevice(setup));
        s.submit = () => new Promise<Completion>(() => undefined);
        return s;
      },
    });
    const run = await runVectors(adapter, all, all, { timeoutMs: 5000 });
    expect(run.results[0].verdict).toBe('timeout');
    expect(run.results[0].findings[0].message).toBe('the vector did not finish within 30 ms');
  });

  test('the timeout is multiplied by the adapter timeoutMultiplier', async () => {
    const all = vectorsOf(file(PASSING('vmem.dev.run.hang')));
    const adapter = fakeAdapter({
      timeoutMultiplier: 3,
      open: (setup) => {
        const s = new FakeDeviceSession(modelDevice(setup));
        s.submit = () => new Promise<Completion>(() => undefined);
        return s;
      },
    });
    const run = await runVectors(adapter, all, all, { timeoutMs: 20 });
    expect(run.results[0].findings[0].message).toBe('the vector did not finish within 60 ms');
    expect(run.results[0].durationMs).toBeGreaterThanOrEqual(55);
  });

  test('a session whose close() throws does not break the run', async () => {
    const all = vectorsOf(file(PASSING('vmem.dev.run.one'), PASSING('vmem.dev.run.two')));
    const adapter = fakeAdapter({
      open: (setup) => {
        const s = new FakeDeviceSession(modelDevice(setup));
        s.close = () => Promise.reject(new Error('close failed'));
        return s;
      },
    });
    const run = await runVectors(adapter, all, all);
    expect(run.results.map((r) => r.verdict)).toEqual(['pass', 'pass']);
    expect(run.exitCode).toBe(0);
  });

  test('a missing capability → unsupported: not a pass, not unexpected, adapter never asked', async () => {
    const all = vectorsOf(file(RESIZING('vmem.dev.run.resize'), PASSING('vmem.dev.run.one')));
    expect(all[0].needs).toEqual(['host-resize']);
    const adapter = fakeAdapter({ capabilities: [] });
    const run = await runVectors(adapter, all, all);
    const r = run.results[0];
    expect(r.verdict).toBe('unsupported');
    expect(r.verdict).not.toBe('pass');
    expect(r.unexpected).toBe(false);
    expect(r.findings[0]).toMatchObject({ verdict: 'unsupported', check: 'capabilities' });
    expect(r.findings[0].message).toContain('host-resize');
    expect(adapter.opened).toBe(1); // only the second vector opened a session
    expect(run.exitCode).toBe(0);
  });

  test('a capability the adapter says why it lacks → unsupported with that reason', async () => {
    const all = vectorsOf(file(RESIZING('vmem.dev.run.resize')));
    const adapter = fakeAdapter({ capabilities: [] });
    const info = { ...adapter.info, missingCapabilities: { 'host-resize': "hooks.yaml has no 'resize' hook" } };
    const run = await runVectors({ ...adapter, info }, all, all);
    expect(run.results[0]!.verdict).toBe('unsupported');
    expect(run.results[0]!.findings[0]!.message).toBe(
      "the fake adapter lacks: host-resize (hooks.yaml has no 'resize' hook)",
    );
  });

  test('per-target capabilities: the list of the vector’s target decides, not the union', async () => {
    const all = vectorsOf(file(RESIZING('vmem.dev.run.resize')));
    const deviceLacks = fakeAdapter({
      capabilities: ['host-resize'],
      targetCapabilities: { device: [], driver: ['host-resize'] },
    });
    const lacking = await runVectors(deviceLacks, all, all);
    expect(lacking.results[0]).toMatchObject({ verdict: 'unsupported', unexpected: false });
    expect(deviceLacks.opened).toBe(0);
    const deviceHas = fakeAdapter({ capabilities: [], targetCapabilities: { device: ['host-resize'] } });
    // The capability check lets it through: the session is opened (the fake has no resize, which the step then reports).
    const has = await runVectors(deviceHas, all, all);
    expect(deviceHas.opened).toBe(1);
    expect(has.results[0].findings.map((f) => f.check)).not.toContain('capabilities');
  });

  test('a target the adapter lacks → unsupported', async () => {
    const all = vectorsOf(file(vec({ id: 'vmem.drv.run.converge' })));
    const run = await runVectors(fakeAdapter({ capabilities: ['observe-driver'] }), all, all);
    expect(run.results[0]).toMatchObject({ verdict: 'unsupported', unexpected: false });
    expect(run.results[0].findings[0].message).toContain('driver vectors');
    // Nothing selected could run: the run tested nothing, which is exit 2, not a green run.
    expect(run.exitCode).toBe(2);
    const mixed = vectorsOf(file(vec({ id: 'vmem.drv.run.converge' }), PASSING('vmem.dev.run.one')));
    expect((await runVectors(fakeAdapter({ capabilities: ['observe-driver'] }), mixed, mixed)).exitCode).toBe(0);
  });

  test('an expected unsupported is matched like any verdict; an entry expecting pass for it is unexpected', async () => {
    const all = vectorsOf(file(RESIZING('vmem.dev.run.resize'), PASSING('vmem.dev.run.one')));
    const run = await runVectors(fakeAdapter(), all, all, {
      expectations: expectations(entry('vmem.dev.run.resize', 'pass')),
    });
    expect(run.results[0]).toMatchObject({ verdict: 'unsupported', expected: 'pass', unexpected: true });
    expect(run.exitCode).toBe(1);
  });

  test('an entry describing a deviation is not observed when the case cannot run: not unexpected, not stale', async () => {
    const all = vectorsOf(file(RESIZING('vmem.dev.run.resize'), PASSING('vmem.dev.run.one')));
    const run = await runVectors(fakeAdapter(), all, all, {
      expectations: expectations(entry('vmem.dev.run.resize', 'fail')),
    });
    expect(run.results[0]).toMatchObject({ verdict: 'unsupported', expected: 'fail', unexpected: false });
    expect(run.stale).toEqual([]);
    expect(run.exitCode).toBe(0);
  });
});

describe('strict mode', () => {
  test('isExpectedByDefault', () => {
    for (const v of ['pass', 'acceptable', 'informational', 'unsupported', 'not-applicable'] as const) {
      expect(isExpectedByDefault(v, false)).toBe(true);
      expect(isExpectedByDefault(v, true)).toBe(true);
    }
    for (const v of ['fail', 'error', 'timeout'] as const) {
      expect(isExpectedByDefault(v, false)).toBe(false);
      expect(isExpectedByDefault(v, true)).toBe(false);
    }
    expect(isExpectedByDefault('non-strict', false)).toBe(true);
    expect(isExpectedByDefault('non-strict', true)).toBe(false);
  });

  test('non-strict is expected by default and unexpected in strict mode', async () => {
    const all = vectorsOf(file(NON_STRICT('vmem.dev.run.should')));
    const lax = await runVectors(fakeAdapter(), all, all);
    expect(lax.results[0]).toMatchObject({ verdict: 'non-strict', expected: 'non-strict', unexpected: false });
    expect(lax.exitCode).toBe(0);
    const strict = await runVectors(fakeAdapter(), all, all, { strict: true });
    expect(strict.results[0]).toMatchObject({ verdict: 'non-strict', expected: 'pass', unexpected: true });
    expect(strict.exitCode).toBe(1);
  });

  test('an expectation entry for non-strict keeps it expected even in strict mode', async () => {
    const all = vectorsOf(file(NON_STRICT('vmem.dev.run.should')));
    const run = await runVectors(fakeAdapter(), all, all, {
      strict: true,
      expectations: expectations(entry('vmem.dev.run.should', 'non-strict')),
    });
    expect(run.results[0]).toMatchObject({ verdict: 'non-strict', unexpected: false });
    expect(run.exitCode).toBe(0);
  });
});

describe('expectation files', () => {
  test('compileGlob: `*` stays within a dot-separated part, `**` crosses parts, `?` is one character', () => {
    const one = compileGlob('vmem.dev.*');
    expect(one.test('vmem.dev.plug')).toBe(true);
    expect(one.test('vmem.dev.')).toBe(true);
    expect(one.test('vmem.dev.plug.first')).toBe(false);
    expect(one.test('vmem.drv.plug')).toBe(false);
    const mid = compileGlob('vmem.dev.*.first');
    expect(mid.test('vmem.dev.plug.first')).toBe(true);
    expect(mid.test('vmem.dev.plug.deep.first')).toBe(false);
    const deep = compileGlob('vmem.dev.**');
    expect(deep.test('vmem.dev.plug')).toBe(true);
    expect(deep.test('vmem.dev.plug.deep.first')).toBe(true);
    expect(deep.test('vmem.drv.op.x')).toBe(false);
    expect(compileGlob('vmem.**.first').test('vmem.dev.plug.first')).toBe(true);
    expect(compileGlob('vmem.dev.plug-*').test('vmem.dev.plug-one')).toBe(true);
    const q = compileGlob('vmem.dev.plug.?');
    expect(q.test('vmem.dev.plug.a')).toBe(true);
    expect(q.test('vmem.dev.plug.ab')).toBe(false);
    expect(q.test('vmem.dev.plug..')).toBe(false);
  });

  test('compileGlob: many wildcards match in time linear in the id (no backtracking)', () => {
    const started = Date.now();
    expect(compileGlob('**a**a**a**a**a**a**a**a**a**b').test('a'.repeat(20_000))).toBe(false);
    expect(compileGlob('*.*.*.*.*.*.*.*.*.*.x').test('a.'.repeat(5_000) + 'y')).toBe(false);
    expect(compileGlob('**a**a**b').test('a'.repeat(1000) + 'b')).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('compileGlob: dots and other regex characters are literal; the whole id must match', () => {
    expect(compileGlob('vmem.dev.plug').test('vmemXdevXplug')).toBe(false);
    expect(compileGlob('vmem.dev.plug').test('vmem.dev.plug.first')).toBe(false);
    expect(compileGlob('vmem.dev.plug').test('x.vmem.dev.plug')).toBe(false);
    expect(compileGlob('a+b(c)[d]{e}|$^\\').test('a+b(c)[d]{e}|$^\\')).toBe(true);
  });

  const CORPUS = (): Vector[] =>
    vectorsOf(
      file(
        PASSING('vmem.dev.plug.one'),
        PASSING('vmem.dev.plug.two'),
        PASSING('vmem.dev.plug.deep.three'),
        FAILING('vmem.dev.unplug.bad'),
      ),
    );

  test('matchExpectations: exact ids and globs; the first entry matching a vector wins', () => {
    const all = CORPUS();
    const m = matchExpectations(
      expectations(
        entry('vmem.dev.plug.one', 'fail'),
        entry('vmem.dev.plug.*', 'acceptable'),
        entry('vmem.dev.**', 'informational'),
      ),
      all,
    );
    expect(m.stale).toEqual([]);
    expect([...m.byId].map(([id, e]) => [id, e.verdict])).toEqual([
      ['vmem.dev.plug.one', 'fail'],
      ['vmem.dev.plug.two', 'acceptable'],
      ['vmem.dev.plug.deep.three', 'informational'],
      ['vmem.dev.unplug.bad', 'informational'],
    ]);
  });

  test('an entry matching nothing is stale (with file and line)', () => {
    const m = matchExpectations(expectations(entry('vmem.dev.nothing.here', 'fail', 1, 7)), CORPUS());
    expect(m.stale).toEqual([{ id: 'vmem.dev.nothing.here', reason: 'fake.expect.yaml:7: matches no vector' }]);
  });

  test('an over-wide glob (more matches than max_matches) is refused and applies to nothing', () => {
    const m = matchExpectations(expectations(entry('vmem.dev.**', 'fail', 3, 4)), CORPUS());
    expect(m.stale).toEqual([
      { id: 'vmem.dev.**', reason: 'fake.expect.yaml:4: matches 4 vectors, more than max_matches 3' },
    ]);
    expect(m.byId.size).toBe(0);
    const wideEnough = matchExpectations(expectations(entry('vmem.dev.**', 'fail', 4)), CORPUS());
    expect(wideEnough.stale).toEqual([]);
    expect(wideEnough.byId.size).toBe(4);
  });

  test('an entry whose vector passes is unexpected (an unexpected pass): exit 1', async () => {
    const all = CORPUS();
    const run = await runVectors(fakeAdapter(), all, all, {
      expectations: expectations(entry('vmem.dev.plug.one', 'fail')),
    });
    const r = byId(run.results);
    expect(r['vmem.dev.plug.one']).toMatchObject({ verdict: 'pass', expected: 'fail', unexpected: true });
    expect(r['vmem.dev.plug.one'].expectation?.pattern).toBe('vmem.dev.plug.one');
    // The failing vector has no entry: unexpected as well.
    expect(r['vmem.dev.unplug.bad']).toMatchObject({ verdict: 'fail', unexpected: true });
    expect(run.exitCode).toBe(1);
  });

  test('an entry matching the real verdict makes a failure expected: exit 0', async () => {
    const all = CORPUS();
    const run = await runVectors(fakeAdapter(), all, all, {
      expectations: expectations(entry('vmem.dev.unplug.bad', 'fail')),
    });
    expect(run.results.filter((r) => r.unexpected)).toEqual([]);
    expect(byId(run.results)['vmem.dev.unplug.bad']).toMatchObject({
      verdict: 'fail',
      expected: 'fail',
      unexpected: false,
    });
    expect(run.exitCode).toBe(0);
  });

  test('a stale entry alone makes the run exit 1; stale detection uses the whole corpus, not the selection', async () => {
    const all = CORPUS();
    const selected = selectVectors(all, { filters: ['vmem.dev.plug.one'] });
    const ok = await runVectors(fakeAdapter(), selected, all, {
      expectations: expectations(entry('vmem.dev.unplug.bad', 'fail')),
    });
    expect(ok.stale).toEqual([]);
    expect(ok.exitCode).toBe(0);
    const stale = await runVectors(fakeAdapter(), selected, all, {
      expectations: expectations(entry('vmem.dev.gone', 'fail')),
    });
    expect(stale.results.every((r) => !r.unexpected)).toBe(true);
    expect(stale.stale.map((s) => s.id)).toEqual(['vmem.dev.gone']);
    expect(stale.exitCode).toBe(1);
  });

  test('an over-wide glob in a run: stale, exit 1, and its vectors fall back to the default rules', async () => {
    const all = CORPUS();
    const run = await runVectors(fakeAdapter(), all, all, {
      expectations: expectations(entry('vmem.dev.**', 'fail', 2), entry('vmem.dev.unplug.bad', 'fail')),
    });
    expect(run.stale.map((s) => s.id)).toEqual(['vmem.dev.**']);
    expect(run.results.filter((r) => r.unexpected)).toEqual([]);
    expect(run.exitCode).toBe(1);
  });

  describe('loadExpectations', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-expect-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    test('max_matches defaults to 1 for an id and DEFAULT_MAX_MATCHES for a glob; lines are recorded', () => {
      const f = path.join(dir, 'fake.yaml');
      fs.writeFileSync(
        f,
        [
          'format: vmemct-expectations/1',
          'implementation: fake 1.0',
          'entries:',
          '  - id: vmem.dev.plug.one',
          '    verdict: fail',
          '    reason: the fake is known to fail this',
          '  - id: vmem.dev.plug.*',
          '    verdict: acceptable',
          '    reason: BUSY answers are fine here',
          '  - id: vmem.dev.**',
          '    verdict: pass',
          '    reason: everything else passes',
          '    max_matches: 200',
          '',
        ].join('\n'),
      );
      const r = loadExpectations(f);
      expect(r.problems).toEqual([]);
      expect(r.set?.implementation).toBe('fake 1.0');
      expect(r.set?.entries.map((e) => [e.pattern, e.verdict, e.maxMatches, e.line])).toEqual([
        ['vmem.dev.plug.one', 'fail', 1, 4],
        ['vmem.dev.plug.*', 'acceptable', DEFAULT_MAX_MATCHES, 7],
        ['vmem.dev.**', 'pass', 200, 10],
      ]);
    });

    test('a bad expectation file is a problem with its line', () => {
      const f = path.join(dir, 'bad.yaml');
      fs.writeFileSync(
        f,
        [
          'format: vmemct-expectations/1',
          'implementation: fake',
          'entries:',
          '  - id: vmem.dev.x',
          '    verdict: broken',
          '    reason: sometimes it fails',
          '',
        ].join('\n'),
      );
      const r = loadExpectations(f);
      expect(r.set).toBeUndefined();
      expect(r.problems).toHaveLength(1);
      expect(r.problems[0]).toMatchObject({ file: f, line: 5, field: 'entries[0].verdict' });
      // `flaky` is a verdict an entry may give (it accepts a flaky result or a pass; run --retries).
      fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('verdict: broken', 'verdict: flaky'));
      expect(loadExpectations(f).set?.entries.map((e) => e.verdict)).toEqual(['flaky']);
    });
  });
});

describe('selectVectors', () => {
  const all = vectorsOf(
    file(
      vec({ id: 'vmem.dev.plug.first', requirements: 'dev.plug.3, dev.cfg.3', tags: 'plug, smoke' }),
      vec({ id: 'vmem.dev.plug.deep.second', requirements: 'dev.plug.4', tags: 'plug' }),
      vec({ id: 'vmem.dev.unplug.first', requirements: 'dev.unplug.3', tags: 'unplug' }),
      vec({
        id: 'vmem.dev.cfg.resize',
        requirements: 'dev.cfg.10, dev.cfg.9',
        tags: 'resize, smoke',
        steps: ['      - resize: 32MiB'],
      }),
      vec({
        id: 'vmem.dev.plug.retired',
        requirements: 'dev.plug.3',
        tags: 'plug',
        extra: ['    retired: {reason: superseded}'],
      }),
      vec({ id: 'vmem.drv.op.grow', requirements: 'drv.op.8', tags: 'smoke' }),
      vec({ id: 'vmem.drv.init.unplug-all', requirements: 'drv.init.2' }),
    ),
  );
  const ids = (sel: Parameters<typeof selectVectors>[1]): string[] => selectVectors(all, sel).map((v) => v.id);

  test('no filter: everything but retired vectors, in corpus order', () => {
    expect(ids({})).toEqual([
      'vmem.dev.plug.first',
      'vmem.dev.plug.deep.second',
      'vmem.dev.unplug.first',
      'vmem.dev.cfg.resize',
      'vmem.drv.op.grow',
      'vmem.drv.init.unplug-all',
    ]);
  });

  test('id globs (any of several)', () => {
    expect(ids({ filters: ['vmem.dev.plug.*'] })).toEqual(['vmem.dev.plug.first']);
    expect(ids({ filters: ['vmem.dev.plug.**'] })).toEqual(['vmem.dev.plug.first', 'vmem.dev.plug.deep.second']);
    expect(ids({ filters: ['vmem.drv.**', 'vmem.dev.cfg.resize'] })).toEqual([
      'vmem.dev.cfg.resize',
      'vmem.drv.op.grow',
      'vmem.drv.init.unplug-all',
    ]);
    expect(ids({ filters: ['vmem.dev.plug.retired'] })).toEqual([]); // retired never runs
    expect(ids({ filters: [] })).toHaveLength(6);
  });

  test('tags (any of several)', () => {
    expect(ids({ tags: ['smoke'] })).toEqual(['vmem.dev.plug.first', 'vmem.dev.cfg.resize', 'vmem.drv.op.grow']);
    expect(ids({ tags: ['unplug', 'resize'] })).toEqual(['vmem.dev.unplug.first', 'vmem.dev.cfg.resize']);
    expect(ids({ tags: ['nothing'] })).toEqual([]);
  });

  test('target', () => {
    expect(ids({ target: 'driver' })).toEqual(['vmem.drv.op.grow', 'vmem.drv.init.unplug-all']);
    expect(ids({ target: 'device' })).toHaveLength(4);
  });

  test('requirement IDs and prefixes match whole dot-separated parts', () => {
    expect(ids({ requirements: ['dev.plug'] })).toEqual(['vmem.dev.plug.first', 'vmem.dev.plug.deep.second']); // not dev.unplug.*
    expect(ids({ requirements: ['dev.cfg.1'] })).toEqual([]); // not dev.cfg.10
    expect(ids({ requirements: ['dev.cfg.10'] })).toEqual(['vmem.dev.cfg.resize']);
    expect(ids({ requirements: ['dev.plug.4'] })).toEqual(['vmem.dev.plug.deep.second']);
    expect(ids({ requirements: ['dev.cfg'] })).toEqual(['vmem.dev.plug.first', 'vmem.dev.cfg.resize']);
    expect(ids({ requirements: ['drv'] })).toEqual(['vmem.drv.op.grow', 'vmem.drv.init.unplug-all']);
    expect(ids({ requirements: ['dev.unplug', 'drv.init.2'] })).toEqual([
      'vmem.dev.unplug.first',
      'vmem.drv.init.unplug-all',
    ]);
  });

  test('filters combine (all must hold)', () => {
    expect(ids({ tags: ['smoke'], target: 'device', requirements: ['dev.cfg.9'] })).toEqual(['vmem.dev.cfg.resize']);
    expect(ids({ filters: ['vmem.dev.**'], tags: ['plug'] })).toEqual([
      'vmem.dev.plug.first',
      'vmem.dev.plug.deep.second',
    ]);
  });

  function checkShards(vectors: readonly Vector[], count: number): void {
    const whole = selectVectors(vectors, {}).map((v) => v.id);
    const shards = Array.from({ length: count }, (_, i) =>
      selectVectors(vectors, { shard: { index: i + 1, count } }).map((v) => v.id),
    );
    const union = shards.flat();
    // Disjoint and complete.
    expect(new Set(union).size).toBe(union.length);
    expect([...union].sort()).toEqual([...whole].sort());
    // Balanced, and each shard keeps corpus order.
    const sizes = shards.map((s) => s.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    for (const s of shards) expect(s).toEqual(whole.filter((id) => s.includes(id)));
  }

  test.each([1, 2, 3, 4, 6, 7, 10])('shard i/%i partitions the selection exactly', (count) => {
    checkShards(all, count);
  });

  test('shards apply after the other filters and partition them', () => {
    const sel = { target: 'device' as const };
    const whole = selectVectors(all, sel).map((v) => v.id);
    const union = [1, 2].flatMap((index) =>
      selectVectors(all, { ...sel, shard: { index, count: 2 } }).map((v) => v.id),
    );
    expect([...union].sort()).toEqual([...whole].sort());
  });

  test('shards partition the shipped corpus', () => {
    const corpus = loadVectors([path.join(__dirname, '..', '..', 'vectors')]).vectors;
    for (const count of [2, 3, 5]) checkShards(corpus, count);
  });
});
