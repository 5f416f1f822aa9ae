/**
 * The exec adapter against the hostile harness (test-fixtures/hostile-harness.js): bytes that are
 * not UTF-8, a harness that closes its output or leaves processes behind, a violation while no
 * vector runs, a settle that floods requests, a partial line, and a slow harness's multiplier.
 * The hostile suite (adapters/exec/test/exec-harness.hostile-test.ts) runs the same harness through the CLI.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Adapter, DeviceSetup } from '../../core/src/contract';
import { AdapterError, AdapterTimeoutError } from '../../core/src/contract';
import { openExecAdapter } from './exec-adapter';
import type { ExecAdapterOptions } from './exec-adapter';

const HOSTILE = path.join(__dirname, '..', 'test-fixtures', 'hostile-harness.js');
const MiB = 1024n * 1024n;
const SETUP: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 128n * MiB,
  addr: 0x140000000n,
  requested_size: 4n * MiB,
  node_id: 0,
  plugged: [],
};
/** The vector the hostile harness misbehaves in. */
const VICTIM: DeviceSetup = { ...SETUP, node_id: 1 };

let dir: string;
let opened: Adapter[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-exec-hostile-'));
  opened = [];
});
afterEach(async () => {
  await Promise.all(opened.map((a) => a.dispose()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const recordFile = (): string => path.join(dir, 'record');
/** The process ids the harness recorded (`start PID`, `grandchild PID`). */
function recorded(kind: 'start' | 'grandchild'): number[] {
  if (!fs.existsSync(recordFile())) return [];
  return fs
    .readFileSync(recordFile(), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${kind} `))
    .map((l) => Number(l.split(' ')[1]));
}

/** Whether a process runs (a zombie awaiting its reaper counts as gone). */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

async function gone(pids: readonly number[], withinMs = 2_000): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (pids.some(running) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return !pids.some(running);
}

async function open(mode: string, extra: Partial<ExecAdapterOptions> = {}): Promise<Adapter> {
  const adapter = await openExecAdapter({
    transport: { kind: 'command', program: process.execPath, args: [HOSTILE, mode, '--record', recordFile()] },
    harnessTimeoutMs: 1_000,
    graceMs: 300,
    ...extra,
  });
  opened.push(adapter);
  return adapter;
}

async function readVictimConfig(adapter: Adapter): Promise<Uint8Array> {
  const session = await adapter.openDevice(VICTIM);
  await session.initialise((offered) => offered);
  return session.readConfig();
}

async function readGoodConfig(adapter: Adapter): Promise<number> {
  const session = await adapter.openDevice(SETUP);
  await session.initialise((offered) => offered);
  const config = await session.readConfig();
  await session.close();
  return config.length;
}

test('a line that is not UTF-8 is a violation showing its bytes, not a reply with replaced characters', async () => {
  const adapter = await open('invalid-utf8');
  await expect(readVictimConfig(adapter)).rejects.toThrow(
    /harness protocol violation: a line that is not UTF-8: \{"id":[0-9]+,"ok":true,"config":"/,
  );
  expect(await readGoodConfig(adapter)).toBe(56);
});

test('a harness that closes its output but keeps running is a violation at once, not a timeout', async () => {
  const adapter = await open('closes-output', { harnessTimeoutMs: 5_000 });
  const started = Date.now();
  const failure = await readVictimConfig(adapter).catch((e: Error) => e);
  expect(failure).toBeInstanceOf(AdapterError);
  expect(failure).not.toBeInstanceOf(AdapterTimeoutError);
  expect((failure as Error).message).toMatch(/the harness closed its output but is still running while read_config/);
  expect(Date.now() - started).toBeLessThan(4_000);
  expect(await readGoodConfig(adapter)).toBe(56);
  await adapter.dispose();
  expect(await gone(recorded('start'))).toBe(true);
});

test('a grandchild holding the output open neither hides the exit nor outlives the harness', async () => {
  const adapter = await open('grandchild-holds-output', { harnessTimeoutMs: 5_000 });
  const started = Date.now();
  await expect(readVictimConfig(adapter)).rejects.toThrow(
    /harness protocol violation: the harness exited with code 0 while read_config/,
  );
  expect(Date.now() - started).toBeLessThan(4_000);
  const [first] = recorded('grandchild');
  expect(await gone([first!])).toBe(true);
  expect(await readGoodConfig(adapter)).toBe(56);
  await adapter.dispose();
  expect(await gone([...recorded('start'), ...recorded('grandchild')])).toBe(true);
});

test('a quiet grandchild is ended with the harness at dispose', async () => {
  const adapter = await open('grandchild-quiet');
  expect(await readGoodConfig(adapter)).toBe(56);
  const grandchildren = recorded('grandchild');
  expect(grandchildren).toHaveLength(1);
  expect(running(grandchildren[0]!)).toBe(true);
  await adapter.dispose();
  expect(await gone([...recorded('start'), ...grandchildren])).toBe(true);
});

test('a violation while no vector runs is reported by the next vector, then a fresh harness serves', async () => {
  const adapter = await open('reply-before-command');
  await expect(adapter.openDevice(SETUP)).rejects.toThrow(
    /the harness wrote a reply while no command was pending \(while no vector was running; this vector did not start\)/,
  );
  expect(await readGoodConfig(adapter)).toBe(56);
  expect(recorded('start')).toHaveLength(2);
});

test('a settle with more request calls than max_requests ends the flood as a violation', async () => {
  const adapter = await open('request-flood');
  const session = await adapter.openDriver!(VICTIM, {});
  await session.start();
  await expect(session.settle({ maxRequests: 5, timeoutMs: 1_000 })).rejects.toThrow(
    /harness protocol violation: call request during settle: more than max_requests \(5\) request calls/,
  );
});

test('a partial line then silence: the timeout says how much of a line came', async () => {
  const adapter = await open('partial-line', { harnessTimeoutMs: 2_000 });
  await expect(readVictimConfig(adapter)).rejects.toThrow(
    /sent nothing for 2000 ms while vmemct awaited the reply to read_config \(id [0-9]+\) \(it wrote [0-9]+ bytes of a line and no newline\)/,
  );
});

test("the hello's timeout_multiplier applies to the first harness too, and a huge one does not overflow the timers", async () => {
  // The harness answers read_config after 1.2 s, claims a multiplier of 1e300 and exits in the victim.
  const adapter = await open('huge-multiplier', { harnessTimeoutMs: 1_000 });
  expect(adapter.info.timeoutMultiplier).toBe(1e300);
  expect(await readGoodConfig(adapter)).toBe(56);
  await expect(readVictimConfig(adapter)).rejects.toThrow(/exited with code 3/);
  // The restarted harness gets the multiplied timeout as well.
  expect(await readGoodConfig(adapter)).toBe(56);
});

test('a reply with a bad field fails its command only: the next vector is not told again', async () => {
  const adapter = await open('status-negative');
  const session = await adapter.openDevice(VICTIM);
  await expect(session.initialise((offered) => offered)).rejects.toThrow(
    /harness protocol violation: reply to initialise: field 'status': expected a non-negative integer number, got number -1/,
  );
  expect(await readGoodConfig(adapter)).toBe(56);
});

test('a violation in the close of a session is reported by the next vector', async () => {
  const adapter = await open('exit-on-close');
  const session = await adapter.openDevice(VICTIM);
  await session.initialise((offered) => offered);
  await session.close();
  await expect(adapter.openDevice(SETUP)).rejects.toThrow(
    /the harness exited with code 3 while close_device \(id [0-9]+\) was pending \(while no vector was running; this vector did not start\)/,
  );
  expect(await readGoodConfig(adapter)).toBe(56);
});
