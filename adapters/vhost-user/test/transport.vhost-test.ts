/**
 * The vhost-user transport checks (the `vu.*` suite, `vmemct vhost-user-check`) against real back-ends:
 * qemu-storage-daemon (libvhost-user, vhost-user-blk) and vmemct's own back-end, plus a small
 * fake back-end that misbehaves on purpose, to prove each kind of check can fail.
 *
 * qemu-storage-daemon is required (Debian package qemu-system-common): the suite fails, rather
 * than skips, without it. It runs as this process's child and is killed and reaped at the end.
 * The CLI runs need dist/ (`npm run test:vhost` builds it first).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VhostUserBackend } from '../../vhost-user-server/src/index';
import { MessageChannel } from '../src/channel';
import { vhostNative } from '../src/native';
import type { VhostNative, WatchHandle } from '../src/native';
import {
  ConfigHeaderLayout,
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FLAG_VERSION,
  MemoryRegionLayout,
  Message,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  Request,
  VringStateLayout,
  decodeStruct,
  encodeStruct,
  protocolMask,
  u64Payload,
} from '../src/protocol';
import { findOnPath } from '../../qemu-platform/src/index';
import Ajv2020 from 'ajv/dist/2020';
import { ALL_SCHEMAS, ResultsSchema } from '../../../spec/src/index';
import { probeVhostUserBackend } from '../../../conformance/src/cli/vhost-user-commands';
import { checkReport } from '../../../conformance/src/report/reports';
import { CheckResult, RunResult, runChecks } from '../../../conformance/src/runner/run';
import { VHOST_USER_SUITE, vhostUserCheckTarget } from '../../../conformance/src/suites/vhost-user/index';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');
const ALL_IDS = VHOST_USER_SUITE.checks.map((c) => c.id);

/** Runs the suite (or the checks named) through the main runner, as `vmemct vhost-user-check` does. */
async function runSuite(
  socketPath: string,
  backendPid?: number,
  ids: readonly string[] = ALL_IDS,
): Promise<RunResult<CheckResult>> {
  const backend = await probeVhostUserBackend('test', native, socketPath, backendPid);
  const checks = VHOST_USER_SUITE.checks.filter((c) => ids.includes(c.id));
  return runChecks(vhostUserCheckTarget(backend), VHOST_USER_SUITE.name, checks, VHOST_USER_SUITE.checks, {
    timeoutMs: 60_000,
  });
}

/** What a check's result says (its first finding's message). */
function detail(r: CheckResult): string {
  return r.findings[0]?.message ?? '';
}

const native: VhostNative = vhostNative();
let tempDir: string;

beforeAll(() => {
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-vu-'));
});

afterAll(() => {
  fs.rmSync(tempDir, { recursive: true, force: true });
});

/** Verdicts by check id, for readable failures. */
function verdicts(results: readonly CheckResult[]): Record<string, string> {
  return Object.fromEntries(results.map((r) => [r.check.id, r.verdict]));
}

function byId(results: readonly CheckResult[], id: string): CheckResult {
  const found = results.find((r) => r.check.id === id);
  if (!found) throw new Error(`no result for ${id}`);
  return found;
}

/** A child process with its output collected and its end awaited. */
interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<void>;
  output(): string;
}

function startChild(command: string, args: readonly string[]): Child {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid === undefined) throw new Error(`${command} did not start`);
  return { process: child, pid: child.pid, exited, output: () => output };
}

/** SIGTERM, then SIGKILL after 5 s; resolves once Node has reaped the child. */
async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode === null && child.process.signalCode === null) {
    child.process.kill('SIGTERM');
    const killer = setTimeout(() => child.process.kill('SIGKILL'), 5000);
    await child.exited;
    clearTimeout(killer);
  }
  await child.exited;
}

/** How long a back-end gets to start listening (a loaded machine starts Node slowly). */
const START_TIMEOUT_MS = 30_000;

/**
 * Waits until the back-end accepts a connection on `socketPath` (or exits): the socket file appears
 * at bind, before listen, so its presence alone is not readiness. For a back-end that announces
 * nothing when it listens (qemu-storage-daemon).
 */
async function waitUntilAccepting(child: Child, socketPath: string, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.process.exitCode !== null || child.process.signalCode !== null)
      throw new Error(`the back-end exited before listening: ${child.output()}`);
    try {
      native.close(native.connect(socketPath));
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw e;
    }
    if (Date.now() > deadline)
      throw new Error(`nothing accepted connections on ${socketPath} within ${timeoutMs} ms: ${child.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Resolves once the child prints a line matching `pattern` on stdout (`vmemct serve-vhost-user`
 * prints its listening line once its socket listens and its signal handlers are in place); rejects
 * when it exits first or after `timeoutMs`.
 */
function announced(child: Child, pattern: RegExp, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const stdout = child.process.stdout!;
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => done(new Error(`no line matching ${pattern} within ${timeoutMs} ms: ${child.output()}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      if (pattern.test(text)) done();
    };
    const onExit = (): void => done(new Error(`the back-end exited before announcing itself: ${child.output()}`));
    function done(error?: Error): void {
      clearTimeout(timer);
      stdout.off('data', onData);
      child.process.off('exit', onExit);
      if (error) reject(error);
      else resolve();
    }
    stdout.on('data', onData);
    child.process.once('exit', onExit);
  });
}

/** Runs the CLI; its exit code and output. */
async function runCli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}

/** No process of ours whose command line names `socketPath` is left (no orphan, no zombie). */
function processesNaming(socketPath: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(socketPath)) found.push(Number(entry));
    } catch {
      /* ended meanwhile */
    }
  }
  return found;
}

describe('against qemu-storage-daemon (libvhost-user, vhost-user-blk)', () => {
  let qsd: Child;
  let socketPath: string;

  beforeAll(async () => {
    const binary = findOnPath('qemu-storage-daemon');
    if (!binary) throw new Error('qemu-storage-daemon is not on PATH: install the Debian package qemu-system-common');
    const image = path.join(tempDir, 'disk.raw');
    fs.writeFileSync(image, Buffer.alloc(0));
    fs.truncateSync(image, 1 << 20);
    socketPath = path.join(tempDir, 'qsd.sock');
    qsd = startChild(binary, [
      '--blockdev',
      `driver=file,node-name=disk,filename=${image}`,
      '--export',
      `type=vhost-user-blk,id=export0,node-name=disk,addr.type=unix,addr.path=${socketPath},writable=on`,
    ]);
    await waitUntilAccepting(qsd, socketPath);
  });

  afterAll(async () => {
    if (qsd) await stopChild(qsd);
  });

  it('passes every check (or names the feature it lacks); handshake, reply-ack, mem-slots, fd-hygiene and reconnect pass', async () => {
    const run = await runSuite(socketPath, qsd.pid);
    const results = run.results;
    const report = checkReport(run);
    expect(results.map((r) => r.check.id)).toEqual(ALL_IDS);
    expect(results.filter((r) => r.verdict !== 'pass' && r.verdict !== 'unsupported')).toEqual([]);
    for (const r of results.filter((u) => u.verdict === 'unsupported'))
      expect(detail(r)).toMatch(/does not offer [A-Z_]+ \(protocol feature \d+\)/);
    const required = ['vu.handshake', 'vu.reply-ack', 'vu.mem-slots', 'vu.fd-hygiene', 'vu.reconnect'];
    expect(
      results
        .filter((r) => required.includes(r.check.id) && r.verdict !== 'pass')
        .map((r) => `${r.check.id}: ${r.verdict}: ${detail(r)}`),
    ).toEqual([]);
    expect(report).toMatch(/^10 checks: /m);
    expect(run.exitCode).toBe(0);
    // libvhost-user 7.2 reports 32 slots; later versions more.
    expect(detail(byId(results, 'vu.mem-slots'))).toMatch(/GET_MAX_MEM_SLOTS (\d+)/);
    expect(qsd.process.exitCode).toBeNull();
  });

  it('vmemct vhost-user-check exits 0 and names every check', async () => {
    const { code, stdout, stderr } = await runCli([
      'vhost-user-check',
      '--socket',
      socketPath,
      '--backend-pid',
      String(qsd.pid),
    ]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    for (const id of ALL_IDS) expect(stdout).toContain(id);
    expect(stdout).toMatch(/^10 checks: \d+ pass, 0 fail, \d+ unsupported, 0 error/m);
  });

  it('vmemct vhost-user-check writes a schema-valid results.json and JUnit through the standard flags, with the expectation file', async () => {
    const json = path.join(tempDir, 'qsd-results.json');
    const junit = path.join(tempDir, 'qsd-junit.xml');
    const expectations = path.join(ROOT, 'conformance', 'expectations', 'qemu-storage-daemon.yaml');
    const { code, stdout, stderr } = await runCli([
      'vhost-user-check',
      '--socket',
      socketPath,
      '--backend-pid',
      String(qsd.pid),
      '--expectations',
      expectations,
      '--json',
      json,
      '--junit',
      junit,
    ]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/; 0 unexpected; exit 0$/m);
    const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as {
      adapter: { implementation: string };
      results: { id: string; kind: string; suite: string }[];
      exitCode: number;
    };
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    for (const schema of ALL_SCHEMAS) ajv.addSchema(schema);
    const validate = ajv.getSchema(ResultsSchema.$id)!;
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
    expect(doc.adapter.implementation).toBe('qemu-storage-daemon');
    expect(doc.results.map((r) => r.id)).toEqual(ALL_IDS);
    expect(doc.results.every((r) => r.kind === 'check' && r.suite === 'vhost-user')).toBe(true);
    const xml = fs.readFileSync(junit, 'utf8');
    expect(xml).toContain(
      '<testsuites name="vmemct vhost-user qemu-storage-daemon" tests="10" failures="0" errors="0"',
    );
    expect(xml).toContain('<testcase name="vu.handshake" classname="vhost-user"');
    for (const id of ALL_IDS) expect(xml).toContain(`name="${id}"`);
  });

  it('stops qemu-storage-daemon without leaving a zombie or an orphan', async () => {
    await stopChild(qsd);
    expect(fs.existsSync(`/proc/${qsd.pid}`)).toBe(false);
    expect(processesNaming(socketPath)).toEqual([]);
  });
});

describe("against vmemct's own back-end", () => {
  const setup = {
    block_size: 2n << 20n,
    region_size: 128n << 20n,
    addr: 1n << 32n,
    requested_size: 0n,
    node_id: 0,
    plugged: [],
  };

  it('in process: every check passes', async () => {
    const socketPath = path.join(tempDir, 'own.sock');
    const backend = await VhostUserBackend.start({ socketPath, setup, native });
    try {
      const { results } = await runSuite(socketPath, process.pid);
      expect(verdicts(results)).toEqual(Object.fromEntries(ALL_IDS.map((id) => [id, 'pass'])));
      // Our back-end refuses the unknown region with a nonzero ack and keeps the connection.
      expect(detail(byId(results, 'vu.rem-unknown-region'))).toMatch(/refused \(ack 1\)/);
      expect(detail(byId(results, 'vu.mem-slots'))).toMatch(/GET_MAX_MEM_SLOTS 509; 256 regions/);
    } finally {
      await backend.stop();
    }
  });

  it('as `vmemct serve-vhost-user` (its own process): every check passes', async () => {
    const socketPath = path.join(tempDir, 'cli.sock');
    const served = startChild(process.execPath, [CLI, 'serve-vhost-user', '--socket', socketPath, '--quiet']);
    const listening = announced(served, /^serving virtio-mem /m);
    try {
      await listening;
      const { results } = await runSuite(socketPath, served.pid);
      expect(verdicts(results)).toEqual(Object.fromEntries(ALL_IDS.map((id) => [id, 'pass'])));
    } finally {
      await stopChild(served);
    }
    expect(served.process.exitCode).toBe(0);
  });
});

/** Ways the fake back-end misbehaves. */
interface Misbehaviour {
  /** Header flags of its acks (0x5 when well-behaved). */
  readonly ackFlags?: number;
  /** Sends every ack twice. */
  readonly doubleAck?: boolean;
  /** GET_VRING_BASE answers the base set plus this. */
  readonly baseSkew?: number;
  /** Acks SET_VRING_NUM with this value. */
  readonly vringNumAck?: bigint;
  /** Keeps every fd it receives (an fd leak). */
  readonly keepFds?: boolean;
  /** Protocol features it does not offer. */
  readonly withhold?: readonly number[];
}

const FAKE_MAX_SLOTS = 16;

/**
 * A minimal vhost-user back-end for the negative tests: answers the requests the checks send,
 * correctly unless told to misbehave. It closes every fd it gets, except the back-end channel's,
 * which it keeps until replaced or until the connection ends.
 */
class FakeBackend {
  private readonly connections = new Set<MessageChannel>();
  private readonly kept: number[] = [];
  private readonly watch: WatchHandle;
  private readonly offered: bigint;

  private constructor(
    private readonly listenFd: number,
    readonly socketPath: string,
    private readonly misbehaviour: Misbehaviour,
  ) {
    const all = protocolMask(
      ProtocolFeature.MQ,
      ProtocolFeature.REPLY_ACK,
      ProtocolFeature.CONFIG,
      ProtocolFeature.CONFIGURE_MEM_SLOTS,
      ProtocolFeature.BACKEND_REQ,
    );
    this.offered = all & ~protocolMask(...(misbehaviour.withhold ?? []));
    this.watch = native.watch(listenFd, () => this.acceptAll());
  }

  static start(socketPath: string, misbehaviour: Misbehaviour = {}): FakeBackend {
    return new FakeBackend(native.listen(socketPath, 16), socketPath, misbehaviour);
  }

  private acceptAll(): void {
    for (let fd = native.accept(this.listenFd); fd >= 0; fd = native.accept(this.listenFd)) {
      const channel = new MessageChannel(native, fd);
      const state = { base: 0, backendChannelFd: -1, regions: new Set<string>() };
      this.connections.add(channel);
      channel.onMessage = () => {
        for (let m = channel.poll(); m; m = channel.poll()) this.answer(channel, state, m);
      };
      channel.onEnd = () => {
        this.connections.delete(channel);
        if (state.backendChannelFd >= 0) this.release(state.backendChannelFd);
      };
    }
  }

  private release(fd: number): void {
    if (this.misbehaviour.keepFds) this.kept.push(fd);
    else native.close(fd);
  }

  private answer(
    channel: MessageChannel,
    state: { base: number; backendChannelFd: number; regions: Set<string> },
    m: Message,
  ): void {
    const reply = (payload: Buffer): void => channel.send(m.request, FLAG_VERSION | FLAG_REPLY, payload);
    const fds = [...m.fds];
    let status = 0n;
    const regionKey = (): string => {
      const r = decodeStruct(MemoryRegionLayout, m.payload, 8);
      return `${r.guestAddress}:${r.size}`;
    };
    switch (m.request) {
      case Request.GET_FEATURES:
        return reply(u64Payload(PROTOCOL_FEATURES_BIT | (1n << 32n)));
      case Request.GET_PROTOCOL_FEATURES:
        return reply(u64Payload(this.offered));
      case Request.GET_QUEUE_NUM:
        return reply(u64Payload(1n));
      case Request.GET_MAX_MEM_SLOTS:
        return reply(u64Payload(BigInt(FAKE_MAX_SLOTS)));
      case Request.GET_CONFIG: {
        const h = decodeStruct(ConfigHeaderLayout, m.payload);
        const out = Buffer.alloc(ConfigHeaderLayout.size + h.size);
        encodeStruct(ConfigHeaderLayout, h, out);
        return reply(out);
      }
      case Request.GET_VRING_BASE:
        return reply(encodeStruct(VringStateLayout, { index: 0, num: state.base + (this.misbehaviour.baseSkew ?? 0) }));
      case Request.SET_VRING_BASE:
        state.base = decodeStruct(VringStateLayout, m.payload).num;
        break;
      case Request.SET_VRING_NUM:
        status = this.misbehaviour.vringNumAck ?? 0n;
        break;
      case Request.ADD_MEM_REG:
        if (state.regions.size >= FAKE_MAX_SLOTS) status = 1n;
        else state.regions.add(regionKey());
        break;
      case Request.REM_MEM_REG:
        status = state.regions.delete(regionKey()) ? 0n : 1n;
        break;
      case Request.SET_BACKEND_REQ_FD:
        if (state.backendChannelFd >= 0) this.release(state.backendChannelFd);
        state.backendChannelFd = fds.shift() ?? -1;
        break;
      default:
        break;
    }
    for (const fd of fds) this.release(fd);
    if (m.flags & FLAG_NEED_REPLY) {
      const flags = this.misbehaviour.ackFlags ?? FLAG_VERSION | FLAG_REPLY;
      for (let i = 0; i < (this.misbehaviour.doubleAck ? 2 : 1); i++)
        channel.send(m.request, flags, u64Payload(status));
    }
  }

  stop(): void {
    native.unwatch(this.watch);
    native.close(this.listenFd);
    for (const c of this.connections) c.close();
    for (const fd of this.kept.splice(0)) native.close(fd);
    fs.rmSync(this.socketPath, { force: true });
  }
}

describe('against a fake back-end', () => {
  let counter = 0;
  async function withFake<T>(misbehaviour: Misbehaviour, work: (socketPath: string) => Promise<T>): Promise<T> {
    const fake = FakeBackend.start(path.join(tempDir, `fake-${counter++}.sock`), misbehaviour);
    try {
      return await work(fake.socketPath);
    } finally {
      fake.stop();
    }
  }

  it('well-behaved: every check passes (the checks accept a third implementation)', async () => {
    const { results } = await withFake({}, (socketPath) => runSuite(socketPath, process.pid));
    expect(verdicts(results)).toEqual(Object.fromEntries(ALL_IDS.map((id) => [id, 'pass'])));
  });

  const broken: [string, string, Misbehaviour, RegExp][] = [
    [
      'acks with NEED_REPLY left set (flags 0xd)',
      'vu.reply-ack',
      { ackFlags: 0xd },
      /SET_OWNER ack: reply flags 0xd, expected 0x5/,
    ],
    ['acks without the REPLY flag (flags 0x1)', 'vu.handshake', { ackFlags: 0x1 }, /reply flags 0x1, expected 0x5/],
    ['acks every message twice', 'vu.reply-ack', { doubleAck: true }, /not the reply to/],
    [
      'reports failure for SET_VRING_NUM',
      'vu.vring-setup',
      { vringNumAck: 1n },
      /SET_VRING_NUM: the back-end reported failure \(ack 1\)/,
    ],
    [
      'answers GET_VRING_BASE with another base',
      'vu.vring-setup',
      { baseSkew: 1 },
      /GET_VRING_BASE: vring 0 base 43, expected vring 0 base 42/,
    ],
    [
      'keeps every fd it is sent',
      'vu.fd-hygiene',
      { keepFds: true },
      /while connected, the fd count went from \d+ to \d+ .*memfd:vmemct-check/,
    ],
  ];

  it.each(broken)('%s: %s fails', async (_, id, misbehaviour, message) => {
    const { results } = await withFake(misbehaviour, (socketPath) => runSuite(socketPath, process.pid, [id]));
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({
      check: { id },
      verdict: 'fail',
      unexpected: true,
      findings: [{ verdict: 'fail', check: id, message: expect.stringMatching(message) }],
    });
  });

  it('an expectation file holds both ways: a listed failure is expected (exit 0), a listed failure that passes is unexpected (exit 1)', async () => {
    const listed = path.join(tempDir, 'fake-expectations.yaml');
    fs.writeFileSync(
      listed,
      [
        'format: vmemct-expectations/1',
        'implementation: vhost-user back-end',
        'entries:',
        '  - id: vu.vring-setup',
        '    verdict: fail',
        '    reason: the fake answers SET_VRING_NUM with failure',
        '',
      ].join('\n'),
    );
    await withFake({ vringNumAck: 1n }, async (socketPath) => {
      const failing = await runCli(['vhost-user-check', '--socket', socketPath, '--filter', 'vu.vring-*']);
      expect(failing.code).toBe(1);
      expect(failing.stdout).toMatch(
        /^fail +vu\.vring-setup .*SET_VRING_NUM: the back-end reported failure \(ack 1\)$/m,
      );
      expect(failing.stdout).toMatch(/✗ unexpected: expected pass/);
      const known = await runCli([
        'vhost-user-check',
        '--socket',
        socketPath,
        '--filter',
        'vu.vring-*',
        '--expectations',
        listed,
        '--reporter',
        'tap',
      ]);
      expect(known.code).toBe(0);
      expect(known.stdout).toMatch(
        /^ok 1 - vu\.vring-setup \(expected fail: the fake answers SET_VRING_NUM with failure\)$/m,
      );
    });
    await withFake({}, async (socketPath) => {
      const fixed = await runCli([
        'vhost-user-check',
        '--socket',
        socketPath,
        '--filter',
        'vu.vring-*',
        '--expectations',
        listed,
      ]);
      expect(fixed.code).toBe(1);
      expect(fixed.stdout).toMatch(/^pass +vu\.vring-setup/m);
      expect(fixed.stdout).toMatch(/✗ unexpected: expected fail/);
    });
  });

  it('a feature it does not offer makes the check unsupported, naming the feature', async () => {
    const { results } = await withFake(
      { withhold: [ProtocolFeature.CONFIG, ProtocolFeature.CONFIGURE_MEM_SLOTS] },
      (socketPath) => runSuite(socketPath),
    );
    expect(detail(byId(results, 'vu.config'))).toContain('CONFIG (protocol feature 9)');
    expect(detail(byId(results, 'vu.mem-slots'))).toContain('CONFIGURE_MEM_SLOTS (protocol feature 15)');
    expect(detail(byId(results, 'vu.fd-hygiene'))).toContain('--backend-pid');
    expect(verdicts(results)).toMatchObject({
      'vu.config': 'unsupported',
      'vu.mem-slots': 'unsupported',
      'vu.fd-hygiene': 'unsupported',
      'vu.handshake': 'pass',
    });
  });

  it('a socket nobody serves is a harness error, naming the socket', async () => {
    const socketPath = path.join(tempDir, 'nobody.sock');
    await expect(runSuite(socketPath)).rejects.toMatchObject({
      name: 'HarnessError',
      message: expect.stringContaining(socketPath),
    });
    const { code, stderr } = await runCli(['vhost-user-check', '--socket', socketPath]);
    expect(code).toBe(2);
    expect(stderr).toContain(socketPath);
  });
});
