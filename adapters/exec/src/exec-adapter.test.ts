import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Adapter, DeviceSession, DeviceSetup } from '../../core/src/contract';
import { AdapterError, AdapterTimeoutError, UnsupportedSetupError, capabilitiesFor } from '../../core/src/contract';
import { writablePoison } from '../../../spec/src/index';
import { ExecHarnessStartError, execAdapterInfo, openExecAdapter } from './exec-adapter';
import type { ExecAdapterOptions } from './exec-adapter';

const FAKE = path.join(__dirname, '..', 'test-fixtures', 'fake-harness.js');
const MiB = 1024n * 1024n;
const SETUP: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 128n * MiB,
  addr: 0x140000000n,
  requested_size: 4n * MiB,
  node_id: 0,
  plugged: [],
};

let dir: string;
let opened: Adapter[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-exec-'));
  opened = [];
});
afterEach(async () => {
  await Promise.all(opened.map((a) => a.dispose()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const pidFile = (): string => path.join(dir, 'pids');
const pids = (): number[] =>
  fs.existsSync(pidFile()) ? fs.readFileSync(pidFile(), 'utf8').trim().split('\n').map(Number) : [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function open(args: readonly string[], extra: Partial<ExecAdapterOptions> = {}): Promise<Adapter> {
  const adapter = await openExecAdapter({
    transport: { kind: 'command', program: process.execPath, args: [FAKE, '--pid-file', pidFile(), ...args] },
    harnessTimeoutMs: 1_000,
    graceMs: 300,
    ...extra,
  });
  opened.push(adapter);
  return adapter;
}

describe('device harness', () => {
  test('hello → info; the session forwards every call; writable buffers arrive poisoned', async () => {
    const adapter = await open(['--targets', 'device']);
    expect(adapter.info).toMatchObject({
      name: 'exec',
      implementation: 'fake-harness 1.0',
      targets: ['device'],
      capabilities: ['inject-busy', 'host-resize'],
      timeoutMultiplier: 1,
    });
    expect(adapter.info.location).toContain('fake-harness.js');
    const session = await adapter.openDevice(SETUP);
    const offered: bigint[] = [];
    const handshake = await session.initialise((o) => {
      offered.push(o);
      return 1n << 32n;
    });
    expect(offered).toEqual([0x100000001n]);
    expect(handshake).toEqual({ offered: 0x100000001n, accepted: 1n << 32n, featuresOk: true, status: 15 });
    const config = await session.readConfig();
    expect(config.length).toBe(56);
    expect(Buffer.from(config).readBigUInt64LE(0)).toBe(2n * MiB);
    // Two writable buffers of 2 bytes: the second carries the poison from offset 2 of the joined space.
    const completion = await session.submit({ readable: [new Uint8Array(24)], writableSizes: [2, 2] });
    expect(completion).toEqual({
      kind: 'used',
      length: 4,
      written: Uint8Array.of(0, 0, ...writablePoison(4).slice(2)),
    });
    expect(await session.notificationCount()).toBe(3);
    expect(await session.readStatus()).toBe(15);
    expect(await session.resize!(3n)).toEqual({ kind: 'refused', reason: 'odd size' });
    expect(await session.resize!(4n * MiB)).toEqual({ kind: 'applied' });
    await session.close();
    const [pid] = pids();
    await adapter.dispose();
    expect(alive(pid!)).toBe(false);
  });

  test('unsupported on open → UnsupportedSetupError; the harness goes on', async () => {
    const adapter = await open(['--targets', 'device']);
    await expect(adapter.openDevice({ ...SETUP, node_id: 7 })).rejects.toThrow(UnsupportedSetupError);
    await expect(adapter.openDevice({ ...SETUP, node_id: 7 })).rejects.toThrow('node 7 is not wired');
    const session = await adapter.openDevice(SETUP);
    expect(await session.readStatus()).toBe(0);
    expect(pids()).toHaveLength(1);
  });

  test('an ok:false reply → AdapterError with the text; the session stays usable, no restart', async () => {
    const adapter = await open(['--targets', 'device']);
    const session = await adapter.openDevice(SETUP);
    await expect(session.injectBusy!(8)).rejects.toThrow(/the harness failed inject_busy: the toy device jammed/);
    expect(await session.readStatus()).toBe(0);
    await session.close();
    await adapter.openDevice(SETUP);
    expect(pids()).toHaveLength(1);
  });

  const VIOLATIONS: readonly [number, string, RegExp][] = [
    [1, 'malformed JSON', /protocol violation: malformed JSON/],
    [2, 'a non-object', /protocol violation: expected a JSON object, got an array/],
    [
      3,
      'a reply with the wrong id',
      /protocol violation: a reply with id 10[0-9] while awaiting id [0-9]+ \(inject_busy\)/,
    ],
    [4, 'a wrong field type', /protocol violation: reply to inject_busy: field 'ok': expected true or false/],
    [5, 'a huge line', /protocol violation: a line (longer than|of [0-9]+ bytes exceeds) the limit of 1048576/],
    [
      6,
      'an exit mid-command',
      /protocol violation: the harness exited with code 0 while inject_busy \(id [0-9]+\) was pending/,
    ],
    [
      10,
      'a call the pending command does not allow',
      /protocol violation: call request while inject_busy is pending \(allowed: none\)/,
    ],
  ];

  test.each(VIOLATIONS)(
    'violation %i (%s) → error with the reason and stderr; the next vector gets a fresh harness',
    async (n, _what, reason) => {
      const adapter = await open(['--targets', 'device']);
      const session = await adapter.openDevice(SETUP);
      const failure = await session.injectBusy!(n).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(AdapterError);
      expect(failure).not.toBeInstanceOf(AdapterTimeoutError);
      expect((failure as AdapterError).message).toMatch(reason);
      expect((failure as AdapterError).diagnostics).toMatch(/fake harness [0-9]+ starting/);
      // The broken session refuses further use; the next vector starts a fresh harness.
      await expect(session.readStatus()).rejects.toThrow(/unusable/);
      await session.close();
      const next = await adapter.openDevice(SETUP);
      expect(await next.readStatus()).toBe(0);
      const [first, second] = pids();
      expect(second).toBeDefined();
      expect(second).not.toBe(first);
      await adapter.dispose();
      expect(alive(first!)).toBe(false);
      expect(alive(second!)).toBe(false);
    },
  );

  test('a second reply breaks the channel', async () => {
    const adapter = await open(['--targets', 'device']);
    const session = await adapter.openDevice(SETUP);
    await session.injectBusy!(9);
    await expect(session.readStatus()).rejects.toThrow(
      /protocol violation: (the harness wrote a reply while no command was pending|a reply with id)/,
    );
    await adapter.openDevice(SETUP);
    expect(pids()).toHaveLength(2);
  });

  test('silence → AdapterTimeoutError; the harness is killed and replaced', async () => {
    // Long enough for a harness to start on a loaded machine.
    const adapter = await open(['--targets', 'device'], { harnessTimeoutMs: 3000 });
    const session = await adapter.openDevice(SETUP);
    await expect(session.injectBusy!(7)).rejects.toThrow(AdapterTimeoutError);
    await expect(session.injectBusy!(7)).rejects.toThrow(
      /unusable: the harness sent nothing for 3000 ms while vmemct awaited the reply to inject_busy/,
    );
    await adapter.openDevice(SETUP);
    const [first] = pids();
    // The kill is asynchronous: wait (bounded) for the process to be gone.
    for (let i = 0; i < 100 && alive(first!); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(first!)).toBe(false);
  });

  test('a restarted harness with another hello is refused, and the run can go on trying', async () => {
    const countFile = path.join(dir, 'count');
    const adapter = await open(['--targets', 'device', '--count-file', countFile, '--vary-version']);
    expect(adapter.info.implementation).toBe('fake-harness 1');
    const session = await adapter.openDevice(SETUP);
    await expect(session.injectBusy!(6)).rejects.toThrow(/exited/);
    await expect(adapter.openDevice(SETUP)).rejects.toThrow(
      /the restarted harness said a different hello: .*"version":"2"/,
    );
    await expect(adapter.openDevice(SETUP)).rejects.toThrow(/"version":"3"/);
    await adapter.dispose();
    for (const pid of pids()) expect(alive(pid)).toBe(false);
  });
});

describe('ending', () => {
  test('a harness that ignores the end of its input and SIGTERM is killed; dispose waits for it', async () => {
    const adapter = await open(['--targets', 'device', '--stubborn'], { graceMs: 150 });
    await adapter.openDevice(SETUP);
    const [pid] = pids();
    const started = Date.now();
    await adapter.dispose();
    expect(alive(pid!)).toBe(false);
    // shutdown gets its reply but no exit, so: input closed, grace, SIGTERM ignored, grace, SIGKILL.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('starting', () => {
  test('a program that cannot start → ExecHarnessStartError naming it', async () => {
    const start = openExecAdapter({ transport: { kind: 'command', program: path.join(dir, 'missing'), args: [] } });
    await expect(start).rejects.toThrow(ExecHarnessStartError);
    await expect(
      openExecAdapter({ transport: { kind: 'command', program: path.join(dir, 'missing'), args: ['--x'] } }),
    ).rejects.toThrow(/did not start: .*cannot start .*missing: spawn .* ENOENT/);
  });

  test.each([
    [['--no-hello'], /sent nothing for 1500 ms while vmemct awaited its hello/],
    [['--before-hello', '{"id":1,"ok":true}'], /the harness wrote a reply before its hello/],
    [['--before-hello', 'hello there'], /malformed JSON/],
    [
      ['--hello-protocol', 'vmemct-harness/2'],
      /the harness speaks 'vmemct-harness\/2'; this vmemct speaks 'vmemct-harness\/1'/,
    ],
    [['--device-caps', 'host_resize'], /'host_resize' is not a capability/],
  ])('%j → ExecHarnessStartError; no process is left', async (args, reason) => {
    const start = open(args, { harnessTimeoutMs: 1_500 });
    await expect(start).rejects.toThrow(ExecHarnessStartError);
    await expect(start).rejects.toThrow(reason);
    const [pid] = pids();
    expect(alive(pid!)).toBe(false);
  });
});

describe('driver harness', () => {
  test('the suite is the device: calls are answered by the model, host actions stay in the suite', async () => {
    const log = path.join(dir, 'harness.jsonl');
    const adapter = await open(['--targets', 'driver'], { harnessLog: log });
    expect(adapter.info.targets).toEqual(['driver']);
    expect(capabilitiesFor(adapter.info, 'driver')).toEqual(
      expect.arrayContaining(['host-resize', 'inject-responses', 'observe-driver', 'system-reset']),
    );
    expect(capabilitiesFor(adapter.info, 'driver')).not.toContain('suspend');
    const session = await adapter.openDriver!(SETUP, { configPadding: Uint8Array.of(0xee) });
    await session.start();
    expect(await session.acceptedFeatures()).toBe(await session.offeredFeatures());
    expect(await session.resize!(6n * MiB)).toEqual({ kind: 'applied' });
    const activity = await session.settle({ maxRequests: 10, timeoutMs: 1000 });
    expect(activity).toMatchObject({ settled: true, stop: 'idle: 0000 true', waitedMs: 7 });
    expect(activity.events).toHaveLength(2);
    const [request, write] = activity.events;
    expect(request).toMatchObject({ kind: 'request', exchange: { atMs: 5 } });
    if (request?.kind === 'request') {
      expect(request.exchange.response?.[0]).toBe(0); // ACK
      expect(Buffer.from(request.exchange.config!).readBigUInt64LE(48)).toBe(6n * MiB); // requested_size then
    }
    expect(write).toEqual({ kind: 'memory-write', addr: SETUP.addr, length: 16 });
    expect(Buffer.from(await session.readConfig()).readBigUInt64LE(40)).toBe(2n * MiB); // plugged_size

    await session.injectResponses!({ response: 'NACK', count: 1 });
    expect((await session.settle({ maxRequests: 10, timeoutMs: 1000 })).stop).toBe('idle: 0100 true');
    await session.systemReset!();
    expect(await session.requestSuspend!()).toEqual({ allowed: false, detail: 'plugged memory' });
    await session.close();
    await adapter.dispose();

    const lines = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.every((l) => typeof l.time === 'string' && typeof l.line === 'string')).toBe(true);
    const sent = lines.filter((l) => l.direction === 'to-harness').map((l) => JSON.parse(l.line));
    const settles = sent.filter((m) => m.op === 'settle');
    // The resize before the first settle raised a notification the driver had not been told of.
    expect(settles.map((m) => m.config_changed)).toEqual([true, false]);
    expect(settles[0]).toMatchObject({ max_requests: 10, timeout_ms: 1000 });
    const padding = sent.find((m) => m.op === 'open_driver').config_padding;
    expect(padding).toBe('ee');
    const answers = sent.filter((m) => m.answer === 'read_config');
    expect(answers[0].config.slice(2 * 10, 2 * 11)).toBe('ee'); // the padding the driver sees (offset 10)
    expect(sent.map((m) => m.op).filter(Boolean)).toEqual(
      expect.arrayContaining(['open_driver', 'start', 'settle', 'reboot', 'may_suspend', 'close_driver', 'shutdown']),
    );
    expect(lines.some((l) => l.direction === 'from-harness' && JSON.parse(l.line).hello === 'vmemct-harness/1')).toBe(
      true,
    );
  });
});

describe('capabilities per target', () => {
  test('device capabilities are the hello’s; the driver’s are the suite’s plus reboot/suspend when declared', () => {
    const info = execAdapterInfo(
      {
        hello: 'vmemct-harness/1',
        implementation: 'x',
        version: '2',
        targets: { device: ['system-reset', 'memory-access'], driver: ['suspend', 'inject-busy'] },
        timeout_multiplier: 3,
      },
      'here',
    );
    expect(capabilitiesFor(info, 'device')).toEqual(['system-reset', 'memory-access']);
    const driver = capabilitiesFor(info, 'driver');
    expect(driver).toContain('suspend');
    expect(driver).toContain('host-resize');
    expect(driver).not.toContain('system-reset');
    expect(driver).not.toContain('inject-busy');
    expect(info.timeoutMultiplier).toBe(3);
    expect(info.implementation).toBe('x 2');
  });
});

/** Resolves when the fake harness says it listens; rejects if it exits first. */
function listeningLine(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('listening\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the fake harness exited (${code}) before it listened`)));
  });
}

describe('socket transport', () => {
  let server: ChildProcess | undefined;
  afterEach(() => {
    server?.kill('SIGKILL');
    server = undefined;
  });

  test('connects to a listening harness, reconnects after a violation', async () => {
    const socket = path.join(dir, 'harness.sock');
    server = spawn(process.execPath, [FAKE, '--listen', socket, '--targets', 'device'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await listeningLine(server);
    const adapter = await openExecAdapter({
      transport: { kind: 'socket', path: socket },
      harnessTimeoutMs: 1000,
      graceMs: 100,
    });
    opened.push(adapter);
    expect(adapter.info.location).toBe(`unix:${socket}`);
    const session: DeviceSession = await adapter.openDevice(SETUP);
    await expect(session.injectBusy!(1)).rejects.toThrow(/malformed JSON/);
    const next = await adapter.openDevice(SETUP);
    expect(await next.readStatus()).toBe(0);
  });
});
