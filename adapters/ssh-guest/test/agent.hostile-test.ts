/**
 * The guest agent, compiled on the host and run with `--root` over a fake sysfs tree, /dev/mem and
 * /proc/sys made by the test: the bus operations through AgentLink/AgentBus (the fake `resource4`
 * and `dev/mem` files stand in for the BAR and the device region, so what the agent wrote is
 * checked in the files), its refusals, and hostile frames: each malformed frame gets an error
 * frame and the agent exits with status 3, never by a signal.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileAgent } from '../src/agent-build';
import { AgentBus, AgentError, AgentLink } from '../src/agent-link';
import {
  AGENT_MAX_FRAME,
  AGENT_MAX_OPERATIONS,
  AGENT_REPLY_MAGIC,
  AGENT_REQUEST_MAGIC,
  AgentReply,
  decodeReply,
  encodeRequest,
} from '../src/agent-protocol';

const BAR4 = 0xfe00_0000n;
const BAR4_SIZE = 0x4000;
const REGION = { base: 0x40_0000n, length: 0x20_0000n };
const FAKE_DMA_BASE = 0x4000_0000n;
const BDF_NAME = '0000:00:04.0';

let work: string;
let agent: string;

function fakeFunction(root: string, name: string, vendor: number, device: number): string {
  const dir = path.join(root, 'sys/bus/pci/devices', name);
  fs.mkdirSync(path.join(dir, 'driver'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'vendor'), `0x${vendor.toString(16).padStart(4, '0')}\n`);
  fs.writeFileSync(path.join(dir, 'device'), `0x${device.toString(16).padStart(4, '0')}\n`);
  fs.writeFileSync(path.join(dir, 'enable'), '1\n');
  fs.writeFileSync(path.join(dir, 'driver', 'unbind'), '');
  const config = Buffer.alloc(256);
  config.writeUInt16LE(vendor, 0);
  config.writeUInt16LE(device, 2);
  fs.writeFileSync(path.join(dir, 'config'), config);
  const zero = '0x0000000000000000 0x0000000000000000 0x0000000000000000\n';
  const bar4 = `0x${BAR4.toString(16).padStart(16, '0')} 0x${(BAR4 + BigInt(BAR4_SIZE) - 1n).toString(16).padStart(16, '0')} 0x000000000014220c\n`;
  fs.writeFileSync(path.join(dir, 'resource'), zero.repeat(4) + bar4 + zero.repeat(8));
  fs.writeFileSync(path.join(dir, 'resource4'), Buffer.alloc(BAR4_SIZE));
  return dir;
}

/** A fresh fake machine: one virtio-mem function (and a NIC), /dev/mem of 8 MiB. */
function fakeRoot(name: string, functions = [BDF_NAME]): string {
  const root = path.join(work, name);
  fs.rmSync(root, { recursive: true, force: true });
  fakeFunction(root, '0000:00:02.0', 0x8086, 0x10d3);
  for (const f of functions) fakeFunction(root, f, 0x1af4, 0x1058);
  fs.mkdirSync(path.join(root, 'dev'), { recursive: true });
  fs.writeFileSync(path.join(root, 'dev', 'mem'), '');
  fs.truncateSync(path.join(root, 'dev', 'mem'), 8 << 20);
  return root;
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-agent-'));
  const built = compileAgent(path.join(work, 'vmemct-agent'));
  if (!built.ok) throw new Error(built.problem);
  agent = built.path;
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('the agent over a fake sysfs tree', () => {
  let root: string;
  let bus: AgentBus;
  beforeEach(() => {
    root = fakeRoot('machine');
    bus = new AgentBus(AgentLink.spawn(agent, ['--root', root], { timeoutMs: 5000 }));
  });
  afterEach(() => bus.close());

  it('opens the function: unbinds its driver, reports the BDF, maps the memory BAR, gives a DMA window', async () => {
    expect(await bus.link.hello()).toBe(AGENT_MAX_FRAME);
    const site = await bus.open();
    expect(site.bdf).toBe(4 << 3);
    expect(await site.barBase(4)).toBe(BAR4);
    await expect(site.barBase(0)).rejects.toThrow(/BAR 0 .* not a mapped memory BAR/);
    expect(bus.function).toMatchObject({ vendor: 0x1af4, device: 0x1058, unbound: true });
    expect(bus.function!.bars[4]).toEqual({ base: BAR4, size: BigInt(BAR4_SIZE), mapped: true });
    expect(fs.readFileSync(path.join(root, 'sys/bus/pci/devices', BDF_NAME, 'driver', 'unbind'), 'utf8')).toBe(
      BDF_NAME,
    );
    expect(bus.dmaWindow()).toEqual({ base: FAKE_DMA_BASE, length: 2n << 20n });
  });

  it('reads and writes configuration space, the BAR at exact widths, the DMA window and the device region', async () => {
    await bus.open();
    const config = path.join(root, 'sys/bus/pci/devices', BDF_NAME, 'config');
    const answers = await bus.exchange([
      { kind: 'config-read', offset: 0, width: 2 },
      { kind: 'config-read', offset: 0, width: 4 },
      { kind: 'config-write', offset: 0x40, width: 4, value: 0xdeadbeef },
      { kind: 'config-read', offset: 0x41, width: 1 },
      { kind: 'write', addr: BAR4 + 0x14n, width: 2, value: 0xabcdn },
      { kind: 'write', addr: BAR4 + 0x20n, width: 8, value: 0x1122334455667788n },
      { kind: 'read', addr: BAR4 + 0x14n, width: 4 },
      { kind: 'write-bytes', addr: FAKE_DMA_BASE + 0x1000n, bytes: Uint8Array.from([1, 2, 3, 4, 5]) },
      { kind: 'zero-bytes', addr: FAKE_DMA_BASE + 0x1001n, length: 2 },
      { kind: 'read-bytes', addr: FAKE_DMA_BASE + 0x1000n, length: 5 },
      { kind: 'read', addr: FAKE_DMA_BASE + 0x1000n, width: 8 },
    ]);
    expect(answers).toEqual([
      { kind: 'value', value: 0x1af4n },
      { kind: 'value', value: 0x10581af4n },
      { kind: 'done' },
      { kind: 'value', value: 0xben },
      { kind: 'done' },
      { kind: 'done' },
      { kind: 'value', value: 0xabcdn },
      { kind: 'done' },
      { kind: 'done' },
      { kind: 'bytes', bytes: Uint8Array.from([1, 0, 0, 4, 5]) },
      { kind: 'value', value: 0x0504000001n },
    ]);
    expect(fs.readFileSync(config).readUInt32LE(0x40)).toBe(0xdeadbeef);
    const bar = fs.readFileSync(path.join(root, 'sys/bus/pci/devices', BDF_NAME, 'resource4'));
    expect(bar.readUInt16LE(0x14)).toBe(0xabcd);
    expect(bar.readBigUInt64LE(0x20)).toBe(0x1122334455667788n);

    await bus.setDeviceRegion(REGION);
    await bus.exchange([{ kind: 'write-bytes', addr: REGION.base + 0x10n, bytes: Uint8Array.from([9, 8, 7]) }]);
    const mem = fs.readFileSync(path.join(root, 'dev', 'mem'));
    expect([...mem.subarray(Number(REGION.base) + 0x10, Number(REGION.base) + 0x13)]).toEqual([9, 8, 7]);
  });

  it('refuses what it must, with the reason, and stays usable', async () => {
    await expect(bus.exchange([{ kind: 'config-read', offset: 0, width: 2 }])).rejects.toMatchObject({
      kind: 'refused',
      code: 'not-open',
    });
    await bus.open();
    const refused = async (op: Parameters<AgentBus['exchange']>[0][number], pattern: RegExp): Promise<void> => {
      const e = (await bus.exchange([op]).catch((x: unknown) => x)) as AgentError;
      expect(e).toBeInstanceOf(AgentError);
      expect(e.kind).toBe('refused');
      expect(e.message).toMatch(pattern);
    };
    await refused({ kind: 'read', addr: 0x1000n, width: 4 }, /0x1000\+0x4 is outside/);
    await refused({ kind: 'read-bytes', addr: BAR4, length: 4 }, /in BAR 4: registers take scalar accesses/);
    await refused({ kind: 'read', addr: BAR4 + 2n, width: 4 }, /not aligned to 4/);
    await refused({ kind: 'config-read', offset: 0x3, width: 2 }, /not aligned to 2/);
    await refused({ kind: 'config-read', offset: 0x100, width: 4 }, /beyond the end of configuration space/);
    // Crossing the end of the DMA window, and the region before it is named.
    await refused({ kind: 'zero-bytes', addr: FAKE_DMA_BASE + (2n << 20n) - 2n, length: 4 }, /is outside/);
    await refused({ kind: 'read', addr: REGION.base, width: 8 }, /is outside/);
    // Operations before a refused one were performed; none after it.
    await expect(
      bus.exchange([
        { kind: 'write', addr: FAKE_DMA_BASE, width: 4, value: 7n },
        { kind: 'read', addr: 0n, width: 4 },
        { kind: 'write', addr: FAKE_DMA_BASE + 4n, width: 4, value: 9n },
      ]),
    ).rejects.toThrow(/operation 1 \(read\) refused/);
    expect(
      await bus.exchange([
        { kind: 'read', addr: FAKE_DMA_BASE, width: 4 },
        { kind: 'read', addr: FAKE_DMA_BASE + 4n, width: 4 },
      ]),
    ).toEqual([
      { kind: 'value', value: 7n },
      { kind: 'value', value: 0n },
    ]);
    await expect(bus.setDeviceRegion({ base: 0x7f_0000n, length: 0x20_0000n })).rejects.toMatchObject({
      kind: 'devmem-refused',
    });
  });

  it('waits for a value to change, no longer than asked', async () => {
    await bus.open();
    const started = Date.now();
    const [unchanged] = await bus.exchange([
      { kind: 'wait-change', addr: FAKE_DMA_BASE, width: 2, value: 0n, timeoutUs: 200_000 },
    ]);
    expect(unchanged).toEqual({ kind: 'value', value: 0n });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    const [changed] = await bus
      .exchange([
        { kind: 'write', addr: FAKE_DMA_BASE, width: 2, value: 5n },
        { kind: 'wait-change', addr: FAKE_DMA_BASE, width: 2, value: 0n, timeoutUs: 1_000_000 },
      ])
      .then((a) => a.slice(1));
    expect(changed).toEqual({ kind: 'value', value: 5n });
  });
});

describe('the agent finds the function or says why not', () => {
  it('asks for a BDF when there are several, and opens the one named', async () => {
    const root = fakeRoot('two', [BDF_NAME, '0000:00:05.0']);
    const several = new AgentBus(AgentLink.spawn(agent, ['--root', root]));
    await expect(several.open()).rejects.toMatchObject({
      kind: 'unreachable-device',
      message: expect.stringMatching(
        /2 virtio-mem PCI functions \( 0000:00:0[45]\.0 0000:00:0[45]\.0 \); name one by BDF/,
      ),
    });
    await several.close();
    const named = new AgentBus(AgentLink.spawn(agent, ['--root', root]), { bdf: 5 << 3 });
    expect((await named.open()).bdf).toBe(5 << 3);
    await named.close();
  });

  it('reports a machine without the function, and one without sysfs', async () => {
    const none = new AgentBus(AgentLink.spawn(agent, ['--root', fakeRoot('none', [])]));
    await expect(none.open()).rejects.toMatchObject({
      kind: 'unreachable-device',
      message: expect.stringMatching(/no virtio-mem PCI function \(1af4:1058\)/),
    });
    await none.close();
    const bare = new AgentBus(AgentLink.spawn(agent, ['--root', path.join(work, 'nothing-here')]));
    await expect(bare.open()).rejects.toThrow(/cannot list .*sys\/bus\/pci\/devices.*is sysfs mounted/);
    await bare.close();
  });

  it('is a typed fault when the agent is missing or dies', async () => {
    const missing = AgentLink.spawn(path.join(work, 'no-such-agent'), []);
    await expect(missing.hello()).rejects.toBeInstanceOf(AgentError);
    const dies = AgentLink.spawn('/bin/sh', ['-c', 'head -c 1 > /dev/null; kill -9 $$']);
    const e = (await dies.hello().catch((x: unknown) => x)) as AgentError;
    expect(e.kind).toBe('crashed');
    expect(e.message).toMatch(/the agent ended \(signal SIGKILL|status 137/);
    await expect(dies.hello()).rejects.toBe(e);
  });

  it('times out on an agent that never answers, and ends it', async () => {
    const silent = AgentLink.spawn('/bin/sh', ['-c', 'exec sleep 30'], { timeoutMs: 300 });
    const started = Date.now();
    await expect(silent.hello()).rejects.toMatchObject({ kind: 'timeout' });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(silent.usable).toBe(false);
  });
});

interface RawRun {
  readonly status: number | null;
  readonly signal: string | null;
  /** The first reply, when it is a malformed-frame reply. */
  readonly reply: AgentReply | undefined;
  /** Status field of each reply, when the replies fill stdout exactly (undefined otherwise). */
  readonly statuses: number[] | undefined;
  readonly stdout: Buffer;
}

function replyStatuses(stdout: Buffer): number[] | undefined {
  const statuses: number[] = [];
  for (let at = 0; at < stdout.length;) {
    if (stdout.length - at < 20 || stdout.readUInt32LE(at + 4) !== AGENT_REPLY_MAGIC) return undefined;
    const length = stdout.readUInt32LE(at);
    if (length < 20 || at + length > stdout.length) return undefined;
    statuses.push(stdout.readUInt32LE(at + 12));
    at += length;
  }
  return statuses;
}

/** Runs the agent on raw input bytes (stdin then closed). */
function raw(input: Uint8Array, root = path.join(work, 'machine')): Promise<RawRun> {
  return new Promise((resolve) => {
    const child = spawn(agent, ['--root', root], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stdin.on('error', () => undefined);
    child.stdin.end(Buffer.from(input));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    // 'close', not 'exit': the reply may still sit in the stdout pipe when the process has exited.
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out);
      const decoded = stdout.length >= 20 ? decodeReply(stdout.subarray(0, stdout.readUInt32LE(0)), 0, []) : undefined;
      resolve({
        status,
        signal,
        reply: decoded?.ok ? decoded.value : undefined,
        statuses: replyStatuses(stdout),
        stdout,
      });
    });
  });
}

function header(length: number, count: number, magic = AGENT_REQUEST_MAGIC, sequence = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(length, 0);
  b.writeUInt32LE(magic, 4);
  b.writeUInt32LE(sequence, 8);
  b.writeUInt32LE(count, 12);
  return b;
}

function frame(count: number, ...ops: Buffer[]): Buffer {
  const body = Buffer.concat(ops);
  return Buffer.concat([header(16 + body.length, count), body]);
}

function op(bytes: number[], size: number): Buffer {
  const b = Buffer.alloc(size);
  Buffer.from(bytes).copy(b);
  return b;
}

describe('hostile frames', () => {
  beforeAll(() => fakeRoot('machine'));

  const readBytes = (length: number): Buffer => {
    const b = op([0x05], 16);
    b.writeUInt32LE(length, 4);
    return b;
  };
  const writeBytes = (length: number, sent: number): Buffer => {
    const b = op([0x06], 16 + sent);
    b.writeUInt32LE(length, 4);
    return b;
  };
  const cases: [string, Buffer, RegExp][] = [
    ['a bad magic', header(16, 0, 0x12345678), /bad magic/],
    ['a length under the header', header(8, 0), /frame length 8 is not within/],
    ['a length over the maximum', header(AGENT_MAX_FRAME + 1, 0), /frame length \d+ is not within/],
    ['too many operations', header(16, AGENT_MAX_OPERATIONS + 1), /operations are over/],
    ['an unknown operation code', frame(1, op([0x7f], 8)), /unknown code 0x7f/],
    ['a reserved byte set', frame(1, op([0x03, 4, 0, 0, 0, 0, 0, 1], 16)), /reserved byte 7 is not zero/],
    ['a configuration width of 3', frame(1, op([0x01, 3, 0, 0], 4)), /width 3 is not 1, 2 or 4/],
    ['a memory width of 16', frame(1, op([0x03, 16], 16)), /width 16 is not 1, 2, 4 or 8/],
    ['write-bytes announcing more than it sends', frame(1, writeBytes(100, 10)), /100 bytes announced/],
    ['an operation cut short', frame(1, op([0x04, 4], 12)), /cut short/],
    ['fewer operations than counted', frame(2, op([0x13], 8)), /frame ends after 1 of 2 operations/],
    ['bytes after the last operation', frame(1, op([0x13], 8), Buffer.alloc(3)), /3 bytes after the last operation/],
    ['answers over the maximum', frame(2, readBytes(AGENT_MAX_FRAME - 64), readBytes(4096)), /answers would exceed/],
    ['a read-bytes length over the maximum', frame(1, readBytes(0xffffffff)), /length 4294967295 is over/],
    [
      'a wait over a second',
      frame(
        1,
        (() => {
          const b = op([0x08, 4], 24);
          b.writeUInt32LE(2_000_000, 4);
          return b;
        })(),
      ),
      /wait of 2000000 us/,
    ],
    ['input ending inside a frame', header(64, 1).subarray(0, 16), /input ended inside a frame/],
    ['input ending inside a header', header(16, 0).subarray(0, 7), /inside a frame header/],
  ];
  it.each(cases)('answers %s with an error frame and exits with status 3', async (_name, input, pattern) => {
    const r = await raw(input);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(3);
    expect(r.reply).toMatchObject({ status: 'malformed', failure: { code: 'malformed' } });
    expect(r.reply && 'failure' in r.reply ? r.reply.failure.message : '').toMatch(pattern);
  });

  it('performs nothing of a frame that turns out malformed', async () => {
    const root = fakeRoot('untouched');
    const unbind = path.join(root, 'sys/bus/pci/devices', BDF_NAME, 'driver', 'unbind');
    const r = await raw(frame(2, op([0x11, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 8), op([0x7e], 8)), root);
    expect(r.status).toBe(3);
    expect(fs.readFileSync(unbind, 'utf8')).toBe('');
  });

  it('survives random frames: every reply decodes, no signal ends it', async () => {
    let seed = 0x5eed;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const codes = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x13, 0x00, 0xff];
    for (let i = 0; i < 60; i++) {
      const ops = Array.from({ length: 1 + random(4) }, () => {
        const b = Buffer.alloc([4, 8, 16, 24][random(4)]!);
        for (let j = 0; j < b.length; j++) b[j] = random(3) === 0 ? random(256) : 0;
        b[0] = codes[random(codes.length)]!;
        return b;
      });
      const r = await raw(frame(ops.length, ...ops));
      expect(r.signal).toBeNull();
      expect([0, 3]).toContain(r.status);
      // One reply: ok or refused when the agent went on (status 0), malformed when it stopped (3).
      expect(r.statuses).toEqual(r.status === 0 ? [expect.any(Number)] : [2]);
      if (r.status === 0) expect([0, 1]).toContain(r.statuses![0]);
    }
  });

  it('answers a well-formed frame and ends cleanly at the end of its input', async () => {
    const encoded = encodeRequest(7, [{ kind: 'hello', version: 1 }]);
    if (!encoded.ok) throw new Error(encoded.problem);
    const r = await raw(encoded.value);
    expect(r.status).toBe(0);
    expect(decodeReply(r.stdout, 7, [{ kind: 'hello', version: 1 }])).toMatchObject({
      ok: true,
      value: { status: 'ok', answers: [{ kind: 'hello', version: 1, maxFrame: AGENT_MAX_FRAME }] },
    });
  });
});
