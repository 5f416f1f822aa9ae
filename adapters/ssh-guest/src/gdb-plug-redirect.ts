/**
 * The gdbstub side of scattered blocks plugged at start (see scattered-plug.ts): with the
 * machine stopped at the entry of the driver's `virtio_mem_send_request(vm, req)`, the PLUG at
 * `req` (`rsi`) is rewritten to the address and size {@link PlugPlacement} gives, and a
 * breakpoint at the return address reads the answer QEMU gave it (`rax`), which must be ACK.
 * Only the sending function's address is needed (from the guest's kallsyms), no struct offsets.
 */
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_RESP_ACK,
  VirtioMemRequestLayout,
  RESPONSE_CODE_NAMES,
} from '../../../spec/src/index';
import { decodeRequest, encodeRequest } from '../../../model/src/codec/codec';
import { AdapterError } from '../../core/src/contract';
import { GdbRemoteClient, GdbResult, readLittleEndian } from '../../qemu-platform/src/index';
import { parseKallsyms, sendRequestAddress, DRIVER_HOOK } from './driver-hook';
import { GuestLink } from './guest-link';
import { PlugPlacement } from './scattered-plug';

/** One PLUG the driver sent and where QEMU was told to plug instead. */
export interface RedirectedPlug {
  readonly driverAddr: bigint;
  readonly addr: bigint;
  readonly nbBlocks: number;
  /** QEMU's answer to the rewritten request. */
  readonly answer: number;
}

/** How often the loop looks whether it was asked to end while the machine runs. */
const POLL_MS = 200;

/** Rewrites the driver's PLUGs through QEMU's gdbstub while attached. */
export class GdbPlugRedirector {
  private readonly seen: RedirectedPlug[] = [];
  private stopping = false;
  private loop: Promise<void> | undefined;
  private problem: string | undefined;
  private readonly armed = new Set<bigint>();

  private constructor(
    private readonly client: GdbRemoteClient,
    private readonly sendRequest: bigint,
    private readonly placement: PlugPlacement,
    private readonly returnTimeoutMs: number,
  ) {}

  /** Connects (the machine stops), arms the entry of `sendRequest` and lets the machine run on. */
  static async attach(
    socketPath: string,
    sendRequest: bigint,
    placement: PlugPlacement,
    options: { readonly replyTimeoutMs?: number; readonly returnTimeoutMs?: number } = {},
  ): Promise<GdbResult<GdbPlugRedirector>> {
    const connected = await GdbRemoteClient.connect(socketPath, { timeoutMs: options.replyTimeoutMs ?? 5000 });
    if (!connected.ok) return connected;
    const client = connected.value.client;
    const redirector = new GdbPlugRedirector(client, sendRequest, placement, options.returnTimeoutMs ?? 20_000);
    const armed = await redirector.arm(sendRequest);
    const resumed = armed.ok ? await client.resume() : armed;
    if (!resumed.ok) {
      await client.detach();
      client.close();
      return resumed;
    }
    redirector.loop = redirector.run();
    return { ok: true, value: redirector };
  }

  /** The PLUGs rewritten so far, in order. */
  get plugs(): readonly RedirectedPlug[] {
    return this.seen;
  }

  /** Why the redirector stopped early (the breakpoints are then gone and the machine runs), if it did. */
  get failure(): string | undefined {
    return this.problem;
  }

  /** Removes the breakpoints, detaches (the machine runs on) and closes. */
  async detach(): Promise<void> {
    this.stopping = true;
    await this.loop;
    if (this.client.targetRunning) await this.client.interrupt();
    for (const address of [...this.armed]) await this.disarm(address);
    await this.client.detach();
    this.client.close();
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopping) {
        const stop = await this.client.waitForStop(POLL_MS);
        if (!stop.ok) {
          if (stop.failure.kind === 'timeout') continue;
          throw new Error(`waiting for the driver: ${stop.failure.message}`);
        }
        await this.onStop();
      }
    } catch (e) {
      this.problem = (e as Error).message;
      if (this.client.targetRunning) await this.client.interrupt();
      for (const address of [...this.armed]) await this.disarm(address);
      await this.client.resume();
    }
  }

  private async arm(address: bigint): Promise<GdbResult<void>> {
    const r = await this.client.insertBreakpoint(address);
    if (r.ok) this.armed.add(address);
    return r;
  }

  private async disarm(address: bigint): Promise<GdbResult<void>> {
    const r = await this.client.removeBreakpoint(address);
    if (r.ok) this.armed.delete(address);
    return r;
  }

  private async onStop(): Promise<void> {
    const client = this.client;
    const entry = must(await client.readRegisters(), 'reading registers at the stop');
    if (entry.rip !== this.sendRequest) {
      must(await client.resume(), 'continuing');
      return;
    }
    const bytes = must(await client.readMemory(entry.rsi, VirtioMemRequestLayout.size), 'reading the request');
    const decoded = decodeRequest(bytes);
    if (!decoded.ok) throw new Error('the request at rsi cannot be decoded');
    const target = this.placement.place(decoded.value);
    // A request that cannot be placed is not sent: the set-up fails rather than let the driver plug its own blocks.
    if (!target.ok) throw new Error(target.reason);
    const rewritten = encodeRequest({ type: VIRTIO_MEM_REQ_PLUG, addr: target.addr, nb_blocks: target.nbBlocks });
    must(await client.writeMemory(entry.rsi, rewritten), 'rewriting the request');
    const returnAddress = readLittleEndian(must(await client.readMemory(entry.rsp, 8), 'reading the return address'));
    must(await this.disarm(this.sendRequest), 'removing the entry breakpoint');
    must(await this.arm(returnAddress), 'setting the return breakpoint');
    must(await client.resume(), 'continuing to the return');
    const back = must(await client.waitForStop(this.returnTimeoutMs), 'waiting for the device to answer');
    if (back.kind !== 'stopped') throw new Error(`the machine ended (${back.kind}) while the driver waited`);
    const exit = must(await client.readRegisters(), 'reading registers at the return');
    if (exit.rip !== returnAddress || exit.rsp !== entry.rsp + 8n)
      throw new Error(`the return stop is at rip 0x${exit.rip.toString(16)}, not 0x${returnAddress.toString(16)}`);
    const answer = Number(exit.rax & 0xffffn);
    must(await this.disarm(returnAddress), 'removing the return breakpoint');
    must(await this.arm(this.sendRequest), 'setting the entry breakpoint again');
    must(await client.resume(), 'continuing');
    this.seen.push({ driverAddr: decoded.value.addr, addr: target.addr, nbBlocks: target.nbBlocks, answer });
    if (answer !== VIRTIO_MEM_RESP_ACK)
      throw new Error(
        `QEMU answered ${RESPONSE_CODE_NAMES[answer] ?? answer} to PLUG ${target.addr.toString(16)} nb_blocks=${target.nbBlocks}`,
      );
  }
}

function must<T>(r: GdbResult<T>, what: string): T {
  if (!r.ok) throw new Error(`${what}: ${r.failure.message}`);
  return r.value;
}

/** What plugging the set-up's scattered blocks needs from the hook: attach to the loaded driver, detach. */
export interface PlugRedirection {
  /** Attaches to the driver loaded now; its PLUGs from here on are placed by `placement`. */
  attach(placement: PlugPlacement): Promise<void>;
  /** Detaches; the PLUGs rewritten, or why the redirection stopped early. */
  detach(): Promise<{ readonly plugs: readonly RedirectedPlug[]; readonly failure?: string }>;
}

/** {@link PlugRedirection} through QEMU's gdbstub at `gdbSocket`, the hook's address read from the guest's kallsyms. */
export function gdbPlugRedirection(gdbSocket: string, link: GuestLink): PlugRedirection {
  let redirector: GdbPlugRedirector | undefined;
  return {
    async attach(placement) {
      const symbols = await link.sh(
        `grep ' ${DRIVER_HOOK.sendRequest}' /proc/kallsyms || true`,
        'finding the driver hook',
      );
      const address = sendRequestAddress(parseKallsyms(symbols));
      if ('reason' in address)
        throw new AdapterError(`scattered blocks plugged at start need the driver hook: ${address.reason}`);
      const attached = await GdbPlugRedirector.attach(gdbSocket, address.address, placement);
      if (!attached.ok) throw new AdapterError(`QEMU's gdbstub at ${gdbSocket}: ${attached.failure.message}`);
      redirector = attached.value;
    },
    async detach() {
      const r = redirector;
      redirector = undefined;
      if (!r) return { plugs: [] };
      await r.detach();
      return { plugs: r.plugs, ...(r.failure ? { failure: r.failure } : {}) };
    },
  };
}
