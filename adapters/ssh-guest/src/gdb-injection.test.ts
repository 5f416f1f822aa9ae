import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { bytesToHex, framePacket, hexToBytes, writeLittleEndian } from '../../qemu-platform/src/index';
import { decodeRequest, encodeRequest } from '../../../model/src/codec/codec';
import { DriverHook } from './driver-hook';
import { GdbResponseInjector, holdsName } from './gdb-injection';
import { findModuleTextField } from './module-text';

/**
 * A fake gdbstub in front of a simulated driver and device: `call()` makes the driver call
 * `virtio_mem_send_request(vm, req)`; the "function" copies the request into `vm->req`, the
 * "device" answers (ERROR to an empty STATE, ACK otherwise) into `vm->resp` and the return
 * register; the caller then records the answer it got and the response bytes.
 */
class SimulatedMachine {
  readonly hook: DriverHook = {
    sendRequest: 0xffffffffc0301000n,
    requestOffset: 88,
    responseOffset: 112,
    structSize: 544,
  };
  readonly vm = 0xffff888001000000n;
  readonly stackRequest = 0xffffc90000401f00n;
  readonly rsp = 0xffffc90000401e00n;
  readonly returnAddress = 0xffffffffc0302345n;
  /** What the device saw, and what the driver was given, per call. */
  readonly deviceSaw: number[] = [];
  readonly driverGot: { type: number; resp: Uint8Array }[] = [];
  /** Offset the simulated kernel really keeps `resp` at (to simulate a wrong BTF). */
  realResponseOffset = 112;
  private readonly memory = new Map<bigint, number>();
  private readonly regs = new Uint8Array(17 * 8 + 7 * 4);
  private readonly breakpoints = new Set<bigint>();
  private phase: 'idle' | 'entry' | 'return' | 'module' = 'idle';
  /** The kernel's `do_init_module(mod)`. */
  readonly initModule = 0xffffffff81234560n;
  private running = false;
  private socket: net.Socket | undefined;
  private server: net.Server | undefined;
  readonly socketPath: string;
  private readonly dir: string;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-inject-test-'));
    this.socketPath = path.join(this.dir, 'gdb.sock');
  }

  async listen(): Promise<void> {
    this.server = net.createServer((s) => {
      this.socket = s;
      s.setEncoding('latin1');
      let buffered = '';
      s.on('data', (chunk: string) => {
        buffered += chunk;
        for (;;) {
          if (buffered.startsWith('+') || buffered.startsWith('-')) {
            buffered = buffered.slice(1);
            continue;
          }
          if (buffered.startsWith('\x03')) {
            buffered = buffered.slice(1);
            this.running = false;
            s.write(framePacket('T02thread:01;'), 'latin1');
            continue;
          }
          const hash = buffered.indexOf('#');
          if (!buffered.startsWith('$') || hash < 0 || buffered.length < hash + 3) return;
          const body = buffered.slice(1, hash);
          buffered = buffered.slice(hash + 3);
          s.write('+');
          const reply = this.answer(body);
          if (reply !== undefined) s.write(framePacket(reply), 'latin1');
        }
      });
    });
    await new Promise<void>((r) => this.server!.listen(this.socketPath, r));
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    await new Promise((r) => this.server?.close(r));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  get breakpointCount(): number {
    return this.breakpoints.size;
  }

  private reg(n: number, v?: bigint): bigint {
    if (v !== undefined) this.regs.set(writeLittleEndian(v, 8), n * 8);
    let out = 0n;
    for (let i = 7; i >= 0; i--) out = (out << 8n) | BigInt(this.regs[n * 8 + i]!);
    return out;
  }

  private write(at: bigint, bytes: Uint8Array): void {
    bytes.forEach((b, i) => this.memory.set(at + BigInt(i), b));
  }

  private read(at: bigint, n: number): Uint8Array {
    return new Uint8Array(n).map((_, i) => this.memory.get(at + BigInt(i)) ?? 0);
  }

  /**
   * The driver sends `request` once the machine runs and is between calls: it stops at the
   * entry breakpoint, or runs the whole call.
   */
  async call(request: Uint8Array): Promise<void> {
    while (!this.running || this.phase !== 'idle') await new Promise((r) => setTimeout(r, 2));
    this.write(this.stackRequest, request);
    this.write(this.rsp, writeLittleEndian(this.returnAddress, 8));
    this.reg(4, this.stackRequest);
    this.reg(5, this.vm);
    this.reg(7, this.rsp);
    this.reg(16, this.hook.sendRequest);
    if (this.breakpoints.has(this.hook.sendRequest)) this.stop('entry');
    else this.runFunction();
  }

  /** The kernel initialises the module whose `struct module` is at `mod` (`do_init_module(mod)`). */
  async loadModule(mod: bigint, structModule: Uint8Array): Promise<void> {
    while (!this.running || this.phase !== 'idle') await new Promise((r) => setTimeout(r, 2));
    this.write(mod, structModule);
    this.reg(5, mod);
    this.reg(16, this.initModule);
    if (this.breakpoints.has(this.initModule)) this.stop('module');
  }

  /** Sets guest memory directly (what a load left there). */
  poke(at: bigint, bytes: Uint8Array): void {
    this.write(at, bytes);
  }

  /** Waits until the machine runs between calls (after a module's initialisation, say). */
  async idle(): Promise<void> {
    while (!this.running || this.phase !== 'idle') await new Promise((r) => setTimeout(r, 2));
  }

  private stop(phase: 'entry' | 'return' | 'module'): void {
    this.phase = phase;
    this.running = false;
    this.socket!.write(framePacket('T05thread:01;swbreak:;'), 'latin1');
  }

  /** The function body and the device: copy, answer, return. */
  private runFunction(): void {
    const req = this.read(this.reg(4), 24);
    this.write(this.vm + 88n, req);
    const decoded = decodeRequest(req);
    const type = decoded.ok ? decoded.value.type : -1;
    const answer = decoded.ok && type === 3 && decoded.value.nb_blocks === 0 ? 3 : 0;
    this.deviceSaw.push(type);
    this.write(this.vm + BigInt(this.realResponseOffset), new Uint8Array([answer, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    this.reg(0, BigInt(answer));
    this.reg(7, this.rsp + 8n);
    this.reg(16, this.returnAddress);
    if (this.breakpoints.has(this.returnAddress)) this.stop('return');
    else this.caller();
  }

  /** The caller acts on the return register. */
  private caller(): void {
    this.phase = 'idle';
    this.driverGot.push({
      type: Number(this.reg(0) & 0xffffn),
      resp: this.read(this.vm + BigInt(this.realResponseOffset), 10),
    });
  }

  private answer(body: string): string | undefined {
    if (body.startsWith('qSupported')) return 'PacketSize=1000';
    if (body === '?') return 'T05thread:01;';
    if (body === 'g') return bytesToHex(this.regs);
    let m = /^P([0-9a-f]+)=([0-9a-f]+)$/.exec(body);
    if (m) {
      this.regs.set(hexToBytes(m[2]!)!, parseInt(m[1]!, 16) * 8);
      return 'OK';
    }
    m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(body);
    if (m) return bytesToHex(this.read(BigInt(`0x${m[1]}`), parseInt(m[2]!, 16)));
    m = /^M([0-9a-f]+),([0-9a-f]+):([0-9a-f]*)$/.exec(body);
    if (m) {
      this.write(BigInt(`0x${m[1]}`), hexToBytes(m[3]!)!);
      return 'OK';
    }
    m = /^([Zz])0,([0-9a-f]+),1$/.exec(body);
    if (m) {
      const at = BigInt(`0x${m[2]}`);
      if (m[1] === 'Z') this.breakpoints.add(at);
      else this.breakpoints.delete(at);
      return 'OK';
    }
    if (body === 'c') {
      this.running = true;
      const phase = this.phase;
      setImmediate(() => {
        if (phase === 'entry') this.runFunction();
        else if (phase === 'return') this.caller();
        else if (phase === 'module') this.phase = 'idle';
      });
      return undefined;
    }
    if (body === 'D') return 'OK';
    return '';
  }
}

let machine: SimulatedMachine;

beforeEach(async () => {
  machine = new SimulatedMachine();
  await machine.listen();
});

afterEach(async () => {
  await machine.close();
});

async function attached(): Promise<GdbResponseInjector> {
  const r = await GdbResponseInjector.attach(machine.socketPath, machine.hook, { replyTimeoutMs: 1000 });
  if (!r.ok) throw new Error(r.failure.message);
  return r.value;
}

async function settled(injector: GdbResponseInjector, calls: number): Promise<void> {
  const deadline = Date.now() + 3000;
  while (machine.driverGot.length < calls && injector.failure === undefined && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 5));
}

const plug = encodeRequest({ type: 0, addr: 0x104000000n, nb_blocks: 32 });
const unplug = encodeRequest({ type: 1, addr: 0x100000000n, nb_blocks: 8 });

describe('GdbResponseInjector against a simulated driver behind a fake gdbstub', () => {
  test('a NACK for PLUG: the device sees a harmless STATE, the driver gets NACK; an UNPLUG passes through', async () => {
    const injector = await attached();
    injector.inject({ response: 'NACK', count: 1, types: ['PLUG'] });
    await machine.call(plug);
    await settled(injector, 1);
    await machine.call(unplug);
    await settled(injector, 2);
    expect(injector.failure).toBeUndefined();
    // The device saw STATE (3) instead of the PLUG, then the real UNPLUG.
    expect(machine.deviceSaw).toEqual([3, 1]);
    expect(machine.driverGot.map((g) => g.type)).toEqual([1, 0]);
    expect(machine.driverGot[0]!.resp.subarray(0, 2)).toEqual(new Uint8Array([1, 0]));
    expect(injector.requests).toEqual([
      expect.objectContaining({
        type: 0,
        addr: 0x104000000n,
        nbBlocks: 32,
        deviceAnswer: 3,
        delivered: 1,
        injected: true,
        rewritten: true,
      }),
      expect.objectContaining({ type: 1, deviceAnswer: 0, delivered: 0, injected: false, rewritten: false }),
    ]);
    expect(injector.remaining).toBe(0);
    await injector.detach();
    expect(machine.breakpointCount).toBe(0);
  });

  test('count and types: BUSY twice for UNPLUG only, then QEMU answers again', async () => {
    const injector = await attached();
    injector.inject({ response: 'BUSY', count: 2, types: ['UNPLUG'] });
    for (const [i, r] of [plug, unplug, unplug, unplug].entries()) {
      await machine.call(r);
      await settled(injector, i + 1);
    }
    expect(machine.driverGot.map((g) => g.type)).toEqual([0, 2, 2, 0]);
    expect(machine.deviceSaw).toEqual([0, 3, 3, 1]);
    await injector.detach();
  });

  test('clearPending drops what is left of a script: the next request gets the device answer', async () => {
    const injector = await attached();
    injector.inject({ response: 'BUSY', count: 5, types: ['PLUG'] });
    await machine.call(plug);
    await settled(injector, 1);
    expect(injector.remaining).toBe(4);
    injector.clearPending();
    expect(injector.remaining).toBe(0);
    await machine.call(plug);
    await settled(injector, 2);
    expect(machine.driverGot.map((g) => g.type)).toEqual([2, 0]);
    expect(machine.deviceSaw).toEqual([3, 0]);
    await injector.detach();
  });

  test('an ACK with a trailer goes to the device unchanged and the trailer lands after the type in vm->resp', async () => {
    const injector = await attached();
    const trailer = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x5a, 0xa5, 0x02, 0x00]);
    injector.inject({ response: 'ACK', count: 1, trailer });
    await machine.call(plug);
    await settled(injector, 1);
    expect(machine.deviceSaw).toEqual([0]);
    expect(machine.driverGot[0]).toEqual({ type: 0, resp: new Uint8Array([0, 0, ...trailer]) });
    expect(injector.requests[0]).toMatchObject({ injected: true, rewritten: false, trailer, delivered: 0 });
    await injector.detach();
  });

  test('a struct that does not match the BTF offsets stops the injection and leaves the machine running', async () => {
    machine.realResponseOffset = 120;
    const injector = await attached();
    injector.inject({ response: 'NACK', count: 5 });
    await machine.call(unplug);
    await settled(injector, 1);
    expect(injector.failure).toMatch(/struct virtio_mem does not hold what the hook expects/);
    // The breakpoints are gone: the next call runs straight through with QEMU's answer.
    expect(machine.breakpointCount).toBe(0);
    await machine.call(plug);
    expect(machine.driverGot.map((g) => g.type)).toEqual([3, 0]);
    await injector.detach();
  });
});

describe('the module initialised in do_init_module', () => {
  test('is recognised by its NUL-terminated name in struct module, not by a longer or shorter one', () => {
    const head = new Uint8Array(128);
    head.set(Buffer.from('virtio_mem\0', 'latin1'), 24);
    expect(holdsName(head, 'virtio_mem')).toBe(true);
    expect(holdsName(head, 'virtio')).toBe(false);
    const other = new Uint8Array(128);
    other.set(Buffer.from('virtio_mem_extra\0', 'latin1'), 24);
    expect(holdsName(other, 'virtio_mem')).toBe(false);
  });
});

describe('arming the hook as the module is initialised, from its text base', () => {
  const mod = 0xffffffffc2000000n;
  /** A struct module named virtio_mem whose text block (`base`, u32 `size` at offset 384) begins at `text`. */
  function structModule(text: bigint): Uint8Array {
    const bytes = Buffer.alloc(1024);
    bytes.write('virtio_mem\0', 24, 'latin1');
    bytes.writeBigUInt64LE(text, 384);
    bytes.writeUInt32LE(0x9000, 392);
    return new Uint8Array(bytes);
  }

  test('reads struct module without a breakpoint, and the field found there arms the next load where its code lies', async () => {
    const { sendRequest, ...offsets } = machine.hook;
    // A loaded module: the text 0x1000 below the hook, struct module far from it (read by peeking).
    machine.poke(mod, structModule(sendRequest - 0x1000n));
    const peeked = await GdbResponseInjector.peekModuleStruct(machine.socketPath, mod, { replyTimeoutMs: 1000 });
    if (!peeked.ok) throw new Error(peeked.failure.message);
    expect(machine.breakpointCount).toBe(0);
    const text = findModuleTextField(peeked.value, sendRequest)!;
    expect(text).toEqual({ offset: 384, hookFromText: 0x1000n });
    // The next load: struct module at the same place (the distance to it would be wrong if the text moved);
    // here the text lies as before, so the hook armed is the function's.
    const r = await GdbResponseInjector.attachBeforeLoad(
      machine.socketPath,
      { initModule: machine.initModule, moduleName: 'virtio_mem', text, offsets },
      { replyTimeoutMs: 1000 },
    );
    if (!r.ok) throw new Error(r.failure.message);
    const injector = r.value;
    injector.inject({ response: 'NACK', count: 1 });
    await machine.loadModule(mod + 0x100000n, structModule(sendRequest - 0x1000n));
    await machine.idle();
    expect(injector.hookAddress).toBe(sendRequest);
    await machine.call(encodeRequest({ type: 0, addr: 0x100000000n, nb_blocks: 1 }));
    await machine.idle();
    expect(machine.driverGot.map((g) => g.type)).toEqual([1]);
    await injector.detach();
  });

  test('fails the injection, never arming elsewhere, when the learnt field does not reach the hook', async () => {
    const { sendRequest, ...offsets } = machine.hook;
    const r = await GdbResponseInjector.attachBeforeLoad(
      machine.socketPath,
      {
        initModule: machine.initModule,
        moduleName: 'virtio_mem',
        text: { offset: 384, hookFromText: 0xa000n },
        offsets,
      },
      { replyTimeoutMs: 1000 },
    );
    if (!r.ok) throw new Error(r.failure.message);
    await machine.loadModule(mod, structModule(sendRequest - 0x1000n));
    await machine.idle();
    expect(r.value.hookAddress).toBeUndefined();
    expect(r.value.failure).toMatch(/no text block at offset 384 that reaches the hook/);
    await r.value.detach();
  });
});
