import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  GdbRemoteClient,
  GdbResult,
  bytesToHex,
  framePacket,
  hexToBytes,
  packetChecksum,
  parseStopReply,
  unescapeBinary,
} from './gdb-remote';
import { X86_64_REGISTERS, X86_64_DECLARED_BYTES, decodeRegisterFile, writeLittleEndian } from './gdb-x86-64';

function value<T>(r: GdbResult<T>): T {
  if (!r.ok) throw new Error(`${r.failure.kind}: ${r.failure.message}`);
  return r.value;
}

describe('packets', () => {
  test('checksums are the byte sum mod 256 in two lower-case hex digits', () => {
    expect(packetChecksum('OK')).toBe('9a');
    expect(packetChecksum('')).toBe('00');
    expect(packetChecksum('g')).toBe('67');
    expect(framePacket('m10,4')).toBe(`$m10,4#${packetChecksum('m10,4')}`);
    // 'c' three times is 0x129: only the low byte counts.
    expect(packetChecksum('ccc')).toBe('29');
  });

  test('hex round trip, and odd hex is refused', () => {
    expect(bytesToHex(new Uint8Array([0, 0xab, 0x10]))).toBe('00ab10');
    expect(hexToBytes('00ab10')).toEqual(new Uint8Array([0, 0xab, 0x10]));
    expect(hexToBytes('abc')).toBeUndefined();
    expect(hexToBytes('zz')).toBeUndefined();
  });

  test('binary escapes are undone', () => {
    expect(unescapeBinary('a}\x03b')).toBe('a#b');
    expect(unescapeBinary('plain')).toBe('plain');
  });

  test('stop replies: S, T with thread and details, W, X; other replies are not stops', () => {
    expect(parseStopReply('S05')).toEqual({ kind: 'stopped', signal: 5, details: {} });
    expect(parseStopReply('T05thread:p01.02;swbreak:;')).toEqual({
      kind: 'stopped',
      signal: 5,
      thread: 'p01.02',
      details: { swbreak: '' },
    });
    expect(parseStopReply('W00')).toEqual({ kind: 'exited', status: 0 });
    expect(parseStopReply('X09')).toEqual({ kind: 'terminated', signal: 9 });
    expect(parseStopReply('OK')).toBeUndefined();
    expect(parseStopReply('E01')).toBeUndefined();
    expect(parseStopReply('Sxx')).toBeUndefined();
  });
});

describe('the x86-64 register file', () => {
  test('is declared in gdb order with rax 0, rsp 7, rip 16 and 32-bit eflags and segments', () => {
    const names = X86_64_REGISTERS.map((r) => r.name);
    expect(names.slice(0, 8)).toEqual(['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp']);
    expect(X86_64_REGISTERS.map((r) => r.number)).toEqual(names.map((_, i) => i));
    expect(X86_64_REGISTERS[16]).toEqual({ name: 'rip', number: 16, size: 8 });
    expect(X86_64_DECLARED_BYTES).toBe(17 * 8 + 7 * 4);
  });

  test('decodes a g reply by the declared offsets, and refuses a short one', () => {
    const bytes = new Uint8Array(X86_64_DECLARED_BYTES + 16);
    bytes.set(writeLittleEndian(0x1122334455667788n, 8), 0);
    bytes.set(writeLittleEndian(0xffffffff81000000n, 8), 16 * 8);
    bytes.set(writeLittleEndian(0x246n, 4), 17 * 8);
    bytes.set(writeLittleEndian(0x10n, 4), 17 * 8 + 4);
    const r = decodeRegisterFile(bytes);
    expect(r.kind).toBe('ok');
    if (r.kind !== 'ok') return;
    expect(r.registers.rax).toBe(0x1122334455667788n);
    expect(r.registers.rip).toBe(0xffffffff81000000n);
    expect(r.registers.eflags).toBe(0x246n);
    expect(r.registers.cs).toBe(0x10n);
    expect(decodeRegisterFile(bytes.subarray(0, 100)).kind).toBe('short');
  });
});

// ------------------------------------------------------------------------------------------------
// The client against a fake stub on a real unix socket

interface FakeStubOptions {
  /** Offer QStartNoAckMode (default true). */
  readonly noAck?: boolean;
  /** Corrupt the checksum of the first reply (the client must ask for it again). */
  readonly corruptFirstReply?: boolean;
  /** NAK the client's first packet once (the client must send it again). */
  readonly nakFirstPacket?: boolean;
  /** Packets the stub never answers. */
  readonly silentOn?: RegExp;
  /** Packets on which the stub hangs up. */
  readonly hangUpOn?: RegExp;
  /** Reply to send instead of the normal one. */
  readonly override?: (body: string) => string | undefined;
}

interface FakeStub {
  readonly socketPath: string;
  /** Packet bodies received, in order. */
  readonly received: string[];
  /** Raw acks the client sent ('+' / '-'). */
  readonly acks: string[];
  readonly memory: Map<bigint, number>;
  readonly registers: Uint8Array;
  readonly breakpoints: Set<bigint>;
  /** Stops the next `c` makes (a breakpoint hit), sent after a short delay. */
  hitOnContinue: bigint | undefined;
  interrupts: number;
  send(raw: string): void;
}

const TARGET_XML = '<?xml version="1.0"?><target><architecture>i386:x86-64</architecture></target>';
const REGISTER_BYTES = 560;

let tempDirs: string[] = [];
let servers: net.Server[] = [];
let clients: GdbRemoteClient[] = [];

afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  for (const s of servers) await new Promise((r) => s.close(r));
  servers = [];
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs = [];
});

async function fakeStub(options: FakeStubOptions = {}): Promise<FakeStub> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-gdb-test-'));
  tempDirs.push(dir);
  const socketPath = path.join(dir, 'gdb.sock');
  let acking = true;
  let repliesSent = 0;
  let naked = false;
  let socket: net.Socket | undefined;
  const stub: FakeStub = {
    socketPath,
    received: [],
    acks: [],
    memory: new Map(),
    registers: new Uint8Array(REGISTER_BYTES),
    breakpoints: new Set(),
    hitOnContinue: undefined,
    interrupts: 0,
    send: (raw) => socket?.write(raw, 'latin1'),
  };
  let lastReply = '';
  const reply = (body: string): void => {
    lastReply = body;
    let frame = framePacket(body);
    if (options.corruptFirstReply && repliesSent === 0)
      frame = `$${body}#${packetChecksum(body) === '00' ? '01' : '00'}`;
    repliesSent++;
    socket!.write(frame, 'latin1');
  };
  const answer = (body: string): string | undefined => {
    const custom = options.override?.(body);
    if (custom !== undefined) return custom;
    if (body.startsWith('qSupported'))
      return `PacketSize=1000;qXfer:features:read+${options.noAck === false ? '' : ';QStartNoAckMode+'}`;
    if (body === 'QStartNoAckMode') return 'OK';
    let m = /^qXfer:features:read:target\.xml:([0-9a-f]+),([0-9a-f]+)$/.exec(body);
    if (m) {
      // Half the description per packet, the '#' in it escaped, to test the escape and the m/l marks.
      const offset = parseInt(m[1]!, 16);
      const half = Math.ceil(TARGET_XML.length / 2);
      const part = TARGET_XML.slice(offset, offset + half).replace(/#/g, '}\x03');
      return `${offset + half >= TARGET_XML.length ? 'l' : 'm'}${part}`;
    }
    if (body === '?') return 'T05thread:p01.01;';
    if (body === 'g') return bytesToHex(stub.registers);
    m = /^p([0-9a-f]+)$/.exec(body);
    if (m) {
      const n = parseInt(m[1]!, 16);
      return bytesToHex(stub.registers.subarray(n * 8, n * 8 + 8));
    }
    m = /^P([0-9a-f]+)=([0-9a-f]+)$/.exec(body);
    if (m) {
      stub.registers.set(hexToBytes(m[2]!)!, parseInt(m[1]!, 16) * 8);
      return 'OK';
    }
    m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(body);
    if (m) {
      const start = BigInt(`0x${m[1]}`);
      const out: number[] = [];
      for (let i = 0n; i < BigInt(`0x${m[2]}`); i++) {
        const b = stub.memory.get(start + i);
        if (b === undefined) return 'E14';
        out.push(b);
      }
      return bytesToHex(new Uint8Array(out));
    }
    m = /^M([0-9a-f]+),([0-9a-f]+):([0-9a-f]*)$/.exec(body);
    if (m) {
      const start = BigInt(`0x${m[1]}`);
      hexToBytes(m[3]!)!.forEach((b, i) => stub.memory.set(start + BigInt(i), b));
      return 'OK';
    }
    m = /^([Zz])0,([0-9a-f]+),1$/.exec(body);
    if (m) {
      const at = BigInt(`0x${m[2]}`);
      if (m[1] === 'Z') stub.breakpoints.add(at);
      else stub.breakpoints.delete(at);
      return 'OK';
    }
    if (body === 'c') {
      const hit = stub.hitOnContinue;
      stub.hitOnContinue = undefined;
      if (hit !== undefined && stub.breakpoints.has(hit)) {
        stub.registers.set(writeLittleEndian(hit, 8), 16 * 8);
        setTimeout(() => reply('T05thread:p01.02;swbreak:;'), 20);
      }
      return undefined;
    }
    if (body === 's') {
      setTimeout(() => reply('T05thread:p01.02;'), 5);
      return undefined;
    }
    if (body === 'D') return 'OK';
    return '';
  };
  const server = net.createServer((s) => {
    socket = s;
    s.setEncoding('latin1');
    let buffered = '';
    s.on('data', (chunk: string) => {
      buffered += chunk;
      for (;;) {
        if (buffered.startsWith('+') || buffered.startsWith('-')) {
          stub.acks.push(buffered[0]!);
          // A stub sends its last reply again when the client NAKs it.
          if (buffered[0] === '-') s.write(framePacket(lastReply), 'latin1');
          buffered = buffered.slice(1);
          continue;
        }
        if (buffered.startsWith('\x03')) {
          buffered = buffered.slice(1);
          stub.interrupts++;
          reply('T02thread:p01.01;');
          continue;
        }
        const hash = buffered.indexOf('#');
        if (!buffered.startsWith('$') || hash < 0 || buffered.length < hash + 3) return;
        const body = buffered.slice(1, hash);
        const sum = buffered.slice(hash + 1, hash + 3);
        buffered = buffered.slice(hash + 3);
        if (acking) {
          if (options.nakFirstPacket && !naked) {
            naked = true;
            s.write('-');
            continue;
          }
          s.write(sum === packetChecksum(body) ? '+' : '-');
        }
        stub.received.push(body);
        if (options.silentOn?.test(body)) continue;
        if (options.hangUpOn?.test(body)) {
          s.destroy();
          return;
        }
        const r = answer(body);
        if (r !== undefined) reply(r);
        if (body === 'QStartNoAckMode') acking = false;
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(socketPath, r));
  return stub;
}

async function connected(stub: FakeStub, options = {}): Promise<GdbRemoteClient> {
  const r = await GdbRemoteClient.connect(stub.socketPath, { timeoutMs: 1000, ...options });
  const { client } = value(r);
  clients.push(client);
  return client;
}

describe('GdbRemoteClient against a fake stub', () => {
  test('connects: qSupported, no-ack mode, target.xml read whole, then the halt reason', async () => {
    const stub = await fakeStub();
    const r = await GdbRemoteClient.connect(stub.socketPath, { timeoutMs: 1000 });
    const { client, stop } = value(r);
    clients.push(client);
    expect(stop).toEqual({ kind: 'stopped', signal: 5, thread: 'p01.01', details: {} });
    expect(stub.received).toEqual([
      'qSupported:swbreak+;hwbreak+;xmlRegisters=i386',
      'QStartNoAckMode',
      'qXfer:features:read:target.xml:0,800',
      `qXfer:features:read:target.xml:${Math.ceil(TARGET_XML.length / 2).toString(16)},800`,
      '?',
    ]);
    expect(client.stubFeatures.get('PacketSize')).toBe('1000');
    // Acks for qSupported's and QStartNoAckMode's replies only: none once no-ack mode is on.
    expect(stub.acks).toEqual(['+', '+']);
    expect(value(await client.targetDescription())).toBe(TARGET_XML);
  });

  test('in ack mode, asks again for a reply with a bad checksum and sends again a packet the stub NAKs', async () => {
    const stub = await fakeStub({ noAck: false, corruptFirstReply: true, nakFirstPacket: true });
    const client = await connected(stub);
    // The qSupported packet was NAKed once, so it was sent again; its corrupt reply was NAKed by the client.
    expect(stub.received[0]).toMatch(/^qSupported/);
    expect(stub.acks[0]).toBe('-');
    expect(stub.received).not.toContain('QStartNoAckMode');
    expect(value(await client.haltReason()).kind).toBe('stopped');
    expect(stub.acks.filter((a) => a === '+').length).toBeGreaterThanOrEqual(4);
  });

  test('reads all registers, reads and writes one by number', async () => {
    const stub = await fakeStub();
    stub.registers.set(writeLittleEndian(0xffff888004a0c000n, 8), 4 * 8);
    stub.registers.set(writeLittleEndian(0xffffffffc0301234n, 8), 16 * 8);
    const client = await connected(stub);
    const regs = value(await client.readRegisters());
    expect(regs.rsi).toBe(0xffff888004a0c000n);
    expect(regs.rip).toBe(0xffffffffc0301234n);
    expect(regs.rax).toBe(0n);
    expect(value(await client.writeRegister('rax', 2n))).toBeUndefined();
    expect(stub.received).toContain('P0=0200000000000000');
    expect(value(await client.readRegister('rax'))).toBe(2n);
    const tooBig = await client.writeRegister('eflags', 1n << 32n);
    expect(tooBig.ok).toBe(false);
    if (!tooBig.ok) expect(tooBig.failure.kind).toBe('misuse');
  });

  test('reads and writes memory in bounded chunks; an unreadable address is refused with the stub error', async () => {
    const stub = await fakeStub();
    const client = await connected(stub, { memoryChunkBytes: 8 });
    const base = 0xffff888012345000n;
    const data = new Uint8Array(20).map((_, i) => i * 3);
    value(await client.writeMemory(base, data));
    expect(stub.received.filter((b) => b.startsWith('M'))).toEqual([
      `M${base.toString(16)},8:${bytesToHex(data.subarray(0, 8))}`,
      `M${(base + 8n).toString(16)},8:${bytesToHex(data.subarray(8, 16))}`,
      `M${(base + 16n).toString(16)},4:${bytesToHex(data.subarray(16))}`,
    ]);
    expect(value(await client.readMemory(base + 2n, 17))).toEqual(data.subarray(2, 19));
    const missing = await client.readMemory(0x1000n, 4);
    expect(missing).toEqual({ ok: false, failure: { kind: 'refused', message: 'reading 4 bytes at 0x1000: E14' } });
  });

  test('sets a breakpoint, runs to it, refuses register access while running, steps, and removes it', async () => {
    const stub = await fakeStub();
    const client = await connected(stub);
    const at = 0xffffffffc0302000n;
    value(await client.insertBreakpoint(at));
    expect(stub.breakpoints.has(at)).toBe(true);
    stub.hitOnContinue = at;
    value(await client.resume());
    expect(client.targetRunning).toBe(true);
    const whileRunning = await client.readRegisters();
    expect(whileRunning.ok).toBe(false);
    if (!whileRunning.ok) expect(whileRunning.failure.kind).toBe('misuse');
    const stop = value(await client.waitForStop(1000));
    expect(stop).toEqual({ kind: 'stopped', signal: 5, thread: 'p01.02', details: { swbreak: '' } });
    expect(client.targetRunning).toBe(false);
    expect(value(await client.readRegister('rip'))).toBe(at);
    value(await client.removeBreakpoint(at));
    expect(stub.breakpoints.size).toBe(0);
    expect(value(await client.step()).kind).toBe('stopped');
  });

  test('interrupts a running target with 0x03, and detach interrupts first', async () => {
    const stub = await fakeStub();
    const client = await connected(stub);
    value(await client.resume());
    const quiet = await client.waitForStop(100);
    expect(quiet.ok).toBe(false);
    if (!quiet.ok) expect(quiet.failure.kind).toBe('timeout');
    expect(client.targetRunning).toBe(true);
    expect(value(await client.interrupt()).kind).toBe('stopped');
    expect(stub.interrupts).toBe(1);
    value(await client.resume());
    value(await client.detach());
    expect(stub.interrupts).toBe(2);
    expect(stub.received[stub.received.length - 1]).toBe('D');
  });

  test('a stray stop reply is skipped while waiting for another reply', async () => {
    const stub = await fakeStub();
    const client = await connected(stub);
    stub.send(framePacket('T02thread:p01.01;'));
    stub.registers.set(writeLittleEndian(7n, 8), 0);
    expect(value(await client.readRegister('rax'))).toBe(7n);
  });

  test('a reply that never comes is a timeout; an empty reply is refused as unsupported', async () => {
    const stub = await fakeStub({ silentOn: /^z0/ });
    const client = await connected(stub, { timeoutMs: 150 });
    const r = await client.removeBreakpoint(0x10n);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure).toEqual({ kind: 'timeout', message: 'the gdbstub did not answer within 150 ms' });
    const stub2 = await fakeStub({ override: (b) => (b.startsWith('Z0') ? '' : undefined) });
    const client2 = await connected(stub2);
    const z = await client2.insertBreakpoint(0x10n);
    expect(z.ok).toBe(false);
    if (!z.ok) expect(z.failure.kind).toBe('refused');
  });

  test('an oversized packet ends the connection as a protocol failure', async () => {
    const stub = await fakeStub({ override: (b) => (b === 'g' ? 'ab'.repeat(2000) : undefined) });
    const client = await connected(stub, { maxPacketBytes: 1000 });
    const r = await client.readRegisters();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.kind).toBe('protocol');
    const after = await client.haltReason();
    expect(after.ok).toBe(false);
  });

  test('a missing socket is unreachable; a stub that hangs up is closed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-gdb-test-'));
    tempDirs.push(dir);
    const r = await GdbRemoteClient.connect(path.join(dir, 'none.sock'), { timeoutMs: 500 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.kind).toBe('unreachable');
    const stub = await fakeStub({ hangUpOn: /^m/ });
    const client = await connected(stub);
    const closed = await client.readMemory(0n, 4);
    expect(closed.ok).toBe(false);
    if (!closed.ok) expect(closed.failure.kind).toBe('closed');
  });
});
