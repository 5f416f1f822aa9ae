import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlockBitmap } from '../../../model/src/blocks/bitmap';
import { decodeRequest, encodeRequest } from '../../../model/src/codec/codec';
import { AdapterError } from '../../core/src/contract';
import { HostView, bytesToHex, framePacket, hexToBytes, writeLittleEndian } from '../../qemu-platform/src/index';
import { GdbPlugRedirector, PlugRedirection, RedirectedPlug } from './gdb-plug-redirect';
import { GuestDriverControl } from './guest-driver-control';
import type { GuestLink } from './guest-link';
import type { GuestObserver } from './guest-observer';
import { PlugPlacement, mergedRuns, pluggedStateDifference, scatterRefusal, scatterSteps } from './scattered-plug';

const MiB = 1n << 20n;
const MEMADDR = 4n << 30n;
const BLOCK = 2n * MiB;
const GEOMETRY: HostView = {
  size: 0n,
  requestedSize: 0n,
  blockSize: BLOCK,
  maxSize: 1n << 30n,
  memaddr: MEMADDR,
  node: 0,
};
const BLOCKS = Number(GEOMETRY.maxSize / BLOCK);
const at = (block: number): bigint => MEMADDR + BigInt(block) * BLOCK;

describe('the scattered set-up plan', () => {
  test('runs are ordered and joined; each step asks for the runs so far', () => {
    expect(
      mergedRuns([
        { first: 7, count: 1 },
        { first: 0, count: 3 },
        { first: 3, count: 1 },
        { first: 9, count: 0 },
      ]),
    ).toEqual([
      { first: 0, count: 4 },
      { first: 7, count: 1 },
    ]);
    expect(
      scatterSteps([
        { first: 20, count: 5 },
        { first: 1, count: 1 },
        { first: 4, count: 2 },
      ]),
    ).toEqual([
      { range: { first: 1, count: 1 }, totalBlocks: 1 },
      { range: { first: 4, count: 2 }, totalBlocks: 3 },
      { range: { first: 20, count: 5 }, totalBlocks: 8 },
    ]);
  });

  test("the driver's PLUGs of a step fill its run in order, whatever address the driver chose", () => {
    const placement = new PlugPlacement(GEOMETRY);
    placement.begin({ range: { first: 20, count: 5 }, totalBlocks: 8 });
    expect(placement.place({ type: 0, addr: at(3), nb_blocks: 2 })).toEqual({ ok: true, addr: at(20), nbBlocks: 2 });
    expect(placement.place({ type: 0, addr: at(5), nb_blocks: 3 })).toEqual({ ok: true, addr: at(22), nbBlocks: 3 });
    expect(placement.left).toBe(0);
  });

  test('a PLUG larger than what is left of the run, a PLUG before any step, and any other request are refused', () => {
    const placement = new PlugPlacement(GEOMETRY);
    expect(placement.place({ type: 0, addr: at(0), nb_blocks: 1 })).toEqual({
      ok: false,
      reason: 'the driver sent a PLUG before the set-up asked for blocks',
    });
    placement.begin({ range: { first: 4, count: 2 }, totalBlocks: 3 });
    const big = placement.place({ type: 0, addr: at(1), nb_blocks: 3 });
    expect(big).toEqual({
      ok: false,
      reason: expect.stringContaining('does not fit the 2 blocks left of the run at block 4'),
    });
    expect(placement.place({ type: 1, addr: at(1), nb_blocks: 1 })).toEqual({
      ok: false,
      reason: "the driver sent request type 1 while plugging the set-up's blocks",
    });
  });

  test('the state check names the blocks missing and extra, and passes only on the exact set', () => {
    const held = new BlockBitmap(BLOCKS);
    held.setRange(0, 3);
    held.setRange(5, 1);
    expect(
      pluggedStateDifference(
        [
          { first: 5, count: 1 },
          { first: 0, count: 3 },
        ],
        held,
      ),
    ).toBeUndefined();
    held.setRange(9, 2);
    held.clearRange(1, 1);
    expect(
      pluggedStateDifference(
        [
          { first: 0, count: 3 },
          { first: 5, count: 1 },
        ],
        held,
      ),
    ).toBe('the vector names blocks 0+3, 5+1; the device holds 0+1, 2+1, 5+1, 9+2 (missing 1+1, extra 9+2)');
  });

  test('blocks beyond the usable region the vector implies are refused; blocks inside it are not', () => {
    expect(
      scatterRefusal(
        [
          { first: 0, count: 3 },
          { first: 7, count: 1 },
        ],
        8,
      ),
    ).toBeUndefined();
    expect(
      scatterRefusal(
        [
          { first: 10, count: 3 },
          { first: 100, count: 1 },
        ],
        0,
      ),
    ).toMatch(/^the vector plugs blocks up to 100, beyond its usable region \(0 blocks\)/);
  });
});

/**
 * A fake gdbstub in front of a simulated driver and device: `call()` makes the driver call
 * `virtio_mem_send_request(vm, req)`; the device answers the request it finds at `rsi` when the
 * function runs (ACK, or ERROR for a block it refuses) in the return register.
 */
class SimulatedMachine {
  readonly sendRequest = 0xffffffffc0301000n;
  readonly stackRequest = 0xffffc90000401f00n;
  readonly rsp = 0xffffc90000401e00n;
  readonly returnAddress = 0xffffffffc0302345n;
  /** The requests the device saw (addr, nb_blocks) and the answers the driver got. */
  readonly deviceSaw: { addr: bigint; nb: number }[] = [];
  readonly driverGot: number[] = [];
  /** Addresses the device answers ERROR (blocks already plugged). */
  readonly refused = new Set<bigint>();
  private readonly memory = new Map<bigint, number>();
  private readonly regs = new Uint8Array(17 * 8 + 7 * 4);
  private readonly breakpoints = new Set<bigint>();
  private phase: 'idle' | 'entry' | 'return' = 'idle';
  private running = false;
  private socket: net.Socket | undefined;
  private server: net.Server | undefined;
  readonly socketPath: string;
  private readonly dir: string;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-scatter-test-'));
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

  private write(addr: bigint, bytes: Uint8Array): void {
    bytes.forEach((b, i) => this.memory.set(addr + BigInt(i), b));
  }

  private read(addr: bigint, n: number): Uint8Array {
    return new Uint8Array(n).map((_, i) => this.memory.get(addr + BigInt(i)) ?? 0);
  }

  /** The driver sends `request` once the machine runs and is between calls. */
  async call(request: Uint8Array): Promise<void> {
    while (!this.running || this.phase !== 'idle') await new Promise((r) => setTimeout(r, 2));
    this.write(this.stackRequest, request);
    this.write(this.rsp, writeLittleEndian(this.returnAddress, 8));
    this.reg(4, this.stackRequest);
    this.reg(7, this.rsp);
    this.reg(16, this.sendRequest);
    if (this.breakpoints.has(this.sendRequest)) this.stop('entry');
    else this.runFunction();
  }

  private stop(phase: 'entry' | 'return'): void {
    this.phase = phase;
    this.running = false;
    this.socket!.write(framePacket('T05thread:01;swbreak:;'), 'latin1');
  }

  private runFunction(): void {
    const decoded = decodeRequest(this.read(this.reg(4), 24));
    if (!decoded.ok) throw new Error('bad request');
    this.deviceSaw.push({ addr: decoded.value.addr, nb: decoded.value.nb_blocks });
    this.reg(0, this.refused.has(decoded.value.addr) ? 3n : 0n);
    this.reg(7, this.rsp + 8n);
    this.reg(16, this.returnAddress);
    if (this.breakpoints.has(this.returnAddress)) this.stop('return');
    else this.caller();
  }

  private caller(): void {
    this.phase = 'idle';
    this.driverGot.push(Number(this.reg(0) & 0xffffn));
  }

  private answer(body: string): string | undefined {
    if (body.startsWith('qSupported')) return 'PacketSize=1000';
    if (body === '?') return 'T05thread:01;';
    if (body === 'g') return bytesToHex(this.regs);
    let m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(body);
    if (m) return bytesToHex(this.read(BigInt(`0x${m[1]}`), parseInt(m[2]!, 16)));
    m = /^M([0-9a-f]+),([0-9a-f]+):([0-9a-f]*)$/.exec(body);
    if (m) {
      this.write(BigInt(`0x${m[1]}`), hexToBytes(m[3]!)!);
      return 'OK';
    }
    m = /^([Zz])0,([0-9a-f]+),1$/.exec(body);
    if (m) {
      const addr = BigInt(`0x${m[2]}`);
      if (m[1] === 'Z') this.breakpoints.add(addr);
      else this.breakpoints.delete(addr);
      return 'OK';
    }
    if (body === 'c') {
      this.running = true;
      const phase = this.phase;
      setImmediate(() => {
        if (phase === 'entry') this.runFunction();
        else if (phase === 'return') this.caller();
      });
      return undefined;
    }
    if (body === 'D') return 'OK';
    return '';
  }
}

describe('GdbPlugRedirector against a simulated driver behind a fake gdbstub', () => {
  let machine: SimulatedMachine;
  beforeEach(async () => {
    machine = new SimulatedMachine();
    await machine.listen();
  });
  afterEach(async () => {
    await machine.close();
  });

  async function waitFor(calls: number, redirector: GdbPlugRedirector): Promise<void> {
    const deadline = Date.now() + 3000;
    while (machine.driverGot.length < calls && redirector.failure === undefined && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
  }

  test("the device plugs the run's blocks, the driver gets ACK, and the breakpoints are gone after detaching", async () => {
    const placement = new PlugPlacement(GEOMETRY);
    placement.begin({ range: { first: 20, count: 5 }, totalBlocks: 5 });
    const r = await GdbPlugRedirector.attach(machine.socketPath, machine.sendRequest, placement, {
      replyTimeoutMs: 1000,
    });
    if (!r.ok) throw new Error(r.failure.message);
    const redirector = r.value;
    await machine.call(encodeRequest({ type: 0, addr: at(0), nb_blocks: 3 }));
    await waitFor(1, redirector);
    await machine.call(encodeRequest({ type: 0, addr: at(3), nb_blocks: 2 }));
    await waitFor(2, redirector);
    expect(redirector.failure).toBeUndefined();
    expect(machine.deviceSaw).toEqual([
      { addr: at(20), nb: 3 },
      { addr: at(23), nb: 2 },
    ]);
    expect(machine.driverGot).toEqual([0, 0]);
    expect(redirector.plugs).toEqual<RedirectedPlug[]>([
      { driverAddr: at(0), addr: at(20), nbBlocks: 3, answer: 0 },
      { driverAddr: at(3), addr: at(23), nbBlocks: 2, answer: 0 },
    ]);
    await redirector.detach();
    expect(machine.breakpointCount).toBe(0);
  });

  test('a PLUG QEMU does not acknowledge, or one that does not fit, stops the redirection with the reason', async () => {
    const placement = new PlugPlacement(GEOMETRY);
    placement.begin({ range: { first: 4, count: 2 }, totalBlocks: 2 });
    machine.refused.add(at(4));
    const r = await GdbPlugRedirector.attach(machine.socketPath, machine.sendRequest, placement, {
      replyTimeoutMs: 1000,
    });
    if (!r.ok) throw new Error(r.failure.message);
    await machine.call(encodeRequest({ type: 0, addr: at(0), nb_blocks: 2 }));
    await waitFor(1, r.value);
    expect(r.value.failure).toBe(`QEMU answered ERROR to PLUG ${at(4).toString(16)} nb_blocks=2`);
    expect(machine.breakpointCount).toBe(0);
    await r.value.detach();

    const again = new PlugPlacement(GEOMETRY);
    again.begin({ range: { first: 4, count: 2 }, totalBlocks: 2 });
    const r2 = await GdbPlugRedirector.attach(machine.socketPath, machine.sendRequest, again, { replyTimeoutMs: 1000 });
    if (!r2.ok) throw new Error(r2.failure.message);
    await machine.call(encodeRequest({ type: 0, addr: at(0), nb_blocks: 3 }));
    await waitFor(2, r2.value);
    expect(r2.value.failure).toMatch(/does not fit the 2 blocks left of the run at block 4/);
    await r2.value.detach();
  });
});

/**
 * GuestDriverControl.plugScattered against a simulated guest: a driver that plugs from the start
 * of the region through a simulated hook (the redirection under test places its PLUGs), QEMU's
 * block states, and the guest's onlining policy.
 */
class ScatterGuest {
  readonly device = new BlockBitmap(BLOCKS);
  requested = 0n;
  loaded = false;
  policy = 'online_movable';
  /** The policy in force when the driver was loaded. */
  policyAtLoad: string | undefined;
  /** Blocks the driver believes plugged (it plugs from the start). */
  private driverView = 0;
  /** The simulated driver plugs in requests of at most this many blocks. */
  chunk = 64;
  redirectedTo: PlugPlacement | undefined;
  readonly log: string[] = [];

  readonly link = {
    sh: async (command: string): Promise<string> => this.sh(command),
    hostView: async (): Promise<HostView> => ({
      ...GEOMETRY,
      size: BigInt(this.device.count) * BLOCK,
      requestedSize: this.requested,
    }),
    setRequestedSize: async (size: bigint): Promise<void> => {
      this.requested = size;
      this.converge();
    },
    resetMachine: async (): Promise<void> => {
      this.log.push('system_reset');
      this.device.clearAll();
      this.driverView = 0;
      this.loaded = true;
    },
    resume: async (): Promise<void> => undefined,
  };

  readonly observer = {
    skipTrace: (): void => undefined,
    acknowledgedBlocks: (): BlockBitmap => this.device.clone(),
  };

  readonly redirection: PlugRedirection = {
    attach: async (placement) => {
      this.log.push('attach');
      this.redirectedTo = placement;
    },
    detach: async () => {
      this.log.push('detach');
      const failure = this.failure;
      this.redirectedTo = undefined;
      return { plugs: [], ...(failure ? { failure } : {}) };
    },
  };
  private failure: string | undefined;

  control(): GuestDriverControl {
    return new GuestDriverControl(
      this.link as unknown as GuestLink,
      this.observer as unknown as GuestObserver,
      GEOMETRY,
      500,
    );
  }

  private converge(): void {
    if (!this.loaded) return;
    const wanted = Number(this.requested / BLOCK);
    while (this.driverView < wanted && !this.failure) {
      const nb = Math.min(this.chunk, wanted - this.driverView);
      const target = this.redirectedTo?.place({ type: 0, addr: at(this.driverView), nb_blocks: nb });
      if (target && !target.ok) {
        this.failure = target.reason;
        return;
      }
      const first = target?.ok ? Number((target.addr - MEMADDR) / BLOCK) : this.driverView;
      this.device.setRange(first, nb);
      this.driverView += nb;
    }
    if (wanted === 0 && this.driverView > 0) {
      this.device.clearAll();
      this.driverView = 0;
    }
  }

  private sh(command: string): string {
    this.log.push(command);
    if (command.includes('/sys/module/virtio_mem')) return this.loaded ? 'yes\n' : 'no\n';
    if (command === 'cat /proc/iomem') return '00000000-0009ffff : System RAM\n';
    if (command === 'cat /sys/devices/system/memory/auto_online_blocks') return `${this.policy}\n`;
    const policy = /^echo (\S+) > \/sys\/devices\/system\/memory\/auto_online_blocks$/.exec(command);
    if (policy) {
      this.policy = policy[1]!;
      return '';
    }
    if (command === 'cat /sys/devices/system/memory/block_size_bytes') return '8000000\n';
    if (command === 'modprobe virtio_mem') {
      this.loaded = true;
      this.policyAtLoad = this.policy;
      this.converge();
      return '';
    }
    if (command === 'rmmod virtio_mem') {
      this.loaded = false;
      this.driverView = 0;
      return '';
    }
    // Offlining: nothing was onlined.
    if (command.includes('/state')) return '';
    throw new Error(`the simulated guest does not know: ${command}`);
  }
}

describe('GuestDriverControl.plugScattered (initial-plugged beyond a prefix)', () => {
  const ranges = [
    { first: 1, count: 1 },
    { first: 4, count: 2 },
    { first: 20, count: 5 },
    { first: 63, count: 1 },
  ];

  test('the device holds exactly the runs, the set-up driver is unloaded, and it never had memory onlined', async () => {
    const guest = new ScatterGuest();
    await guest.control().plugScattered(ranges, guest.redirection);
    const expected = new BlockBitmap(BLOCKS);
    for (const r of ranges) expected.setRange(r.first, r.count);
    expect(guest.device.equals(expected)).toBe(true);
    expect(guest.loaded).toBe(false);
    expect(guest.policyAtLoad).toBe('offline');
    expect(guest.policy).toBe('online_movable');
    expect(guest.log.indexOf('attach')).toBeGreaterThan(guest.log.indexOf('modprobe virtio_mem'));
    expect(guest.log.indexOf('detach')).toBeLessThan(guest.log.indexOf('rmmod virtio_mem'));
    expect(guest.log).not.toContain('system_reset');
  });

  test('a PLUG that cannot be placed is an adapter error; the guest is rebooted and its onlining policy restored', async () => {
    const guest = new ScatterGuest();
    // A driver that plugs the first two runs in one request cannot be placed run by run.
    const failure = guest.control().plugScattered(
      [
        { first: 3, count: 1 },
        { first: 5, count: 1 },
      ],
      {
        attach: async (placement) => {
          guest.redirectedTo = placement;
          placement.begin({ range: { first: 3, count: 1 }, totalBlocks: 1 });
          placement.place({ type: 0, addr: at(0), nb_blocks: 1 });
        },
        detach: async () => ({
          plugs: [],
          failure: "the driver's PLUG of 1 blocks at 0x100000000 does not fit the 0 blocks left",
        }),
      },
    );
    await expect(failure).rejects.toBeInstanceOf(AdapterError);
    await expect(failure).rejects.toThrow(/^plugging the scattered blocks: the driver's PLUG of 1 blocks/);
    expect(guest.log).toContain('system_reset');
    expect(guest.policy).toBe('online_movable');
  });

  test('a device holding other blocks than the vector names is an adapter error with the difference', async () => {
    const guest = new ScatterGuest();
    // Without a redirection in effect the driver plugs from the start: the check must catch it.
    const failure = guest.control().plugScattered(ranges, {
      attach: async () => undefined,
      detach: async () => ({ plugs: [] }),
    });
    await expect(failure).rejects.toThrow(
      "QEMU's trace after the set-up plug: the vector names blocks 1+1, 4+2, 20+5, 63+1; the device holds 0+9 (missing 20+5, 63+1, extra 0+1, 2+2, 6+3)",
    );
  });
});
