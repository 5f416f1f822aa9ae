/**
 * Answers of the host's choosing delivered to the guest's real virtio_mem driver through QEMU's
 * gdbstub, with no change to QEMU: every request the driver sends passes through
 * `virtio_mem_send_request(vm, req)` (see {@link DriverHook}), which returns the response type
 * the driver then acts on.
 *
 * For each request, with the whole machine stopped at the function's entry:
 * - the request is read at `req` (the second argument, `rsi`);
 * - a request to be answered NACK, BUSY or ERROR is rewritten into `STATE addr nb_blocks=0`,
 *   which QEMU answers ERROR without changing any state (an empty range is invalid);
 * - a breakpoint at the return address (`[rsp]`) stops the machine again once QEMU has answered:
 *   there the request the device saw is checked in `vm->req`, and its answer in `vm->resp` and
 *   in the return register, which proves the BTF offsets and the calling convention on every
 *   request; then the return register and `vm->resp` are set to the injected answer (and an
 *   ACK's trailer written after the type, QEMU's own ACK kept).
 * Requests that no injection matches run unchanged (and are checked the same way).
 *
 * What this cannot do: change what travels on the virtqueue (the used ring carries QEMU's real
 * answer to the rewritten request, and QEMU's trace shows `state nb_blocks=0 -> ERROR`), answer
 * a request the driver sends elsewhere than through this function, or work with a driver built
 * without a callable `virtio_mem_send_request` or without module BTF.
 */
import {
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_RESP_ERROR,
  VirtioMemRequestLayout,
  VirtioMemResponseLayout,
  REQUEST_TYPE_NAMES,
  RESPONSE_CODE_NAMES,
  layoutField,
} from '../../../spec/src/index';
import {
  decodeRequest,
  encodeRequest,
  encodeResponse,
  readResponseType,
  withResponseTrailer,
} from '../../../model/src/codec/codec';
import { ResponseInjection } from '../../core/src/contract';
import { GdbRemoteClient, GdbResult, readLittleEndian } from '../../qemu-platform/src/index';
import { DriverHook } from './driver-hook';
import { MODULE_STRUCT_WINDOW, ModuleTextField, hookAddressIn } from './module-text';

/** One request the driver sent while the injector was attached. */
export interface InterceptedRequest {
  readonly type: number;
  readonly addr: bigint;
  readonly nbBlocks: number;
  /** What QEMU answered: to the request itself, or to its neutralised form when injected. */
  readonly deviceAnswer: number;
  /** What the driver was given. */
  readonly delivered: number;
  /** Whether the answer was injected (not QEMU's own). */
  readonly injected: boolean;
  /** Whether QEMU was sent `STATE addr nb_blocks=0` instead of the request (NACK, BUSY, ERROR injected). */
  readonly rewritten: boolean;
  /** Bytes written after the type in `vm->resp`. */
  readonly trailer?: Uint8Array;
  /** Host time from the stop at the entry to the machine running on after the return. */
  readonly hostMs: number;
}

/** The bounds of an injector. */
export interface InjectorOptions {
  /** Bound on each gdbstub reply (default 5 s). */
  readonly replyTimeoutMs?: number;
  /** Bound on QEMU answering a request, from entry to return (default 20 s; TCG on a loaded host). */
  readonly returnTimeoutMs?: number;
}

/**
 * A driver about to be loaded, whose hook is armed before its first request: the machine stops
 * in the kernel's `do_init_module(mod)`; when `mod` is the driver's module, the hook is at the
 * module's text base, read from `mod` at a field learnt on an earlier load of the same module,
 * plus the hook's distance from it (module-text.ts): whether or not the kernel places the code
 * apart from `struct module`.
 */
export interface ModuleLoad {
  /** Address of the kernel's `do_init_module`. */
  readonly initModule: bigint;
  /** The module's name, as `struct module` holds it near its start. */
  readonly moduleName: string;
  /** Where `struct module` holds the text base, and the hook's distance from it. */
  readonly text: ModuleTextField;
  /** The struct offsets (they belong to the kernel, not to the load). */
  readonly offsets: Omit<DriverHook, 'sendRequest'>;
}

/** How many bytes of `struct module` are searched for the module's name. */
const MODULE_NAME_WINDOW = 128;

interface PendingInjection {
  readonly response: ResponseInjection['response'];
  remaining: number;
  readonly types?: readonly string[];
  readonly trailer?: Uint8Array;
}

/** The response's `type` field. */
const RESPONSE_TYPE = layoutField(VirtioMemResponseLayout, 'type');

/** How often the loop looks whether it was asked to end while the machine runs. */
const POLL_MS = 200;

function unwrap<T>(r: GdbResult<T>, what: string): T {
  if (!r.ok) throw new InjectionError(`${what}: ${r.failure.message}`);
  return r.value;
}

/** Reads what can be read of {@link MODULE_STRUCT_WINDOW} bytes at `address`, chunk by chunk, stopping at memory that is not there. */
async function readModuleStruct(client: GdbRemoteClient, address: bigint): Promise<Uint8Array> {
  const CHUNK = 256;
  const parts: Uint8Array[] = [];
  for (let at = 0; at < MODULE_STRUCT_WINDOW; at += CHUNK) {
    const r = await client.readMemory(address + BigInt(at), CHUNK);
    if (!r.ok) break;
    parts.push(r.value);
  }
  return Buffer.concat(parts);
}

/** The injection could not go on: the gdbstub failed, or the driver did not behave as the hook assumes. */
export class InjectionError extends Error {
  override readonly name = 'InjectionError';
}

/** Delivers chosen answers to the guest's driver through QEMU's gdbstub. */
export class GdbResponseInjector {
  private readonly pending: PendingInjection[] = [];
  private readonly seen: InterceptedRequest[] = [];
  private stopping = false;
  private loop: Promise<void> | undefined;
  private problem: string | undefined;
  /** Breakpoints this injector has set and not removed. */
  private readonly armed = new Set<bigint>();
  /** The bytes of `struct module` read on attaching, when asked. */
  private moduleStructBytes: Uint8Array | undefined;

  private constructor(
    private readonly client: GdbRemoteClient,
    private hook: DriverHook | undefined,
    private readonly returnTimeoutMs: number,
    private moduleLoad?: ModuleLoad,
  ) {}

  /**
   * Connects before the driver is loaded: a breakpoint on `do_init_module` finds the module as
   * it is initialised, and the hook is armed there, before the driver sends anything.
   */
  static async attachBeforeLoad(
    socketPath: string,
    load: ModuleLoad,
    options: InjectorOptions = {},
  ): Promise<GdbResult<GdbResponseInjector>> {
    return GdbResponseInjector.connectAndArm(socketPath, undefined, load, options);
  }

  /** Where the hook was armed (after {@link attachBeforeLoad}: once the module was initialised). */
  get hookAddress(): bigint | undefined {
    return this.hook?.sendRequest;
  }

  /**
   * Connects to the gdbstub at `socketPath` (which stops the machine), sets the breakpoint on
   * the hook and lets the machine run on. `moduleStruct`: the loaded module's `struct module`,
   * whose first bytes are read while the machine is stopped ({@link moduleBytes}).
   */
  static async attach(
    socketPath: string,
    hook: DriverHook,
    options: InjectorOptions = {},
    moduleStruct?: bigint,
  ): Promise<GdbResult<GdbResponseInjector>> {
    return GdbResponseInjector.connectAndArm(socketPath, hook, undefined, options, moduleStruct);
  }

  /** The first bytes of `struct module` read on attaching (up to {@link MODULE_STRUCT_WINDOW}; fewer where the memory ends). */
  get moduleBytes(): Uint8Array | undefined {
    return this.moduleStructBytes;
  }

  private async readModuleStruct(address: bigint): Promise<Uint8Array> {
    return readModuleStruct(this.client, address);
  }

  /**
   * Reads a loaded module's `struct module` at `address` through the gdbstub at `socketPath`
   * (the machine stops for as long as that takes) without setting any breakpoint.
   */
  static async peekModuleStruct(
    socketPath: string,
    address: bigint,
    options: InjectorOptions = {},
  ): Promise<GdbResult<Uint8Array>> {
    const connected = await GdbRemoteClient.connect(socketPath, { timeoutMs: options.replyTimeoutMs ?? 5000 });
    if (!connected.ok) return connected;
    const client = connected.value.client;
    try {
      return { ok: true, value: await readModuleStruct(client, address) };
    } finally {
      await client.detach();
      client.close();
    }
  }

  private static async connectAndArm(
    socketPath: string,
    hook: DriverHook | undefined,
    load: ModuleLoad | undefined,
    options: InjectorOptions,
    moduleStruct?: bigint,
  ): Promise<GdbResult<GdbResponseInjector>> {
    const connected = await GdbRemoteClient.connect(socketPath, { timeoutMs: options.replyTimeoutMs ?? 5000 });
    if (!connected.ok) return connected;
    const client = connected.value.client;
    const injector = new GdbResponseInjector(client, hook, options.returnTimeoutMs ?? 20_000, load);
    if (moduleStruct !== undefined) injector.moduleStructBytes = await injector.readModuleStruct(moduleStruct);
    const armed = await injector.arm(hook ? hook.sendRequest : load!.initModule);
    const resumed = armed.ok ? await client.resume() : armed;
    if (!resumed.ok) {
      await client.detach();
      client.close();
      return resumed;
    }
    injector.loop = injector.run();
    return { ok: true, value: injector };
  }

  /** Answers the driver's next `count` requests (of `types`, default every type) with `response`. */
  inject(injection: ResponseInjection): void {
    this.pending.push({
      response: injection.response,
      remaining: injection.count,
      types: injection.types,
      trailer: injection.trailer,
    });
  }

  /** Drops what is left of every earlier script (a new one replaces it). */
  clearPending(): void {
    for (const p of this.pending) p.remaining = 0;
    this.pending.length = 0;
  }

  /** Injected answers not yet delivered. */
  get remaining(): number {
    return this.pending.reduce((sum, p) => sum + p.remaining, 0);
  }

  /** Every request seen so far, in order. */
  get requests(): readonly InterceptedRequest[] {
    return this.seen;
  }

  /** Why the injector stopped early (the breakpoints are then gone and the machine runs), if it did. */
  get failure(): string | undefined {
    return this.problem;
  }

  /** Stops intercepting: removes the breakpoint, detaches (the machine runs on) and closes. */
  async detach(): Promise<void> {
    this.stopping = true;
    await this.loop;
    if (this.client.targetRunning) await this.client.interrupt();
    await this.disarmAll();
    await this.client.detach();
    this.client.close();
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopping) {
        const stop = await this.client.waitForStop(POLL_MS);
        if (!stop.ok) {
          if (stop.failure.kind === 'timeout') continue;
          throw new InjectionError(`waiting for the driver: ${stop.failure.message}`);
        }
        await this.onStop();
      }
    } catch (e) {
      this.problem = (e as Error).message;
      // Leave the machine running without breakpoints, so the guest is not left stopped.
      if (this.client.targetRunning) await this.client.interrupt();
      await this.disarmAll();
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

  private async disarmAll(): Promise<void> {
    for (const address of [...this.armed]) await this.disarm(address);
  }

  private match(type: number): PendingInjection | undefined {
    const name = REQUEST_TYPE_NAMES[type];
    return this.pending.find((p) => p.remaining > 0 && (!p.types || (name !== undefined && p.types.includes(name))));
  }

  /** The machine stopped in `do_init_module(mod)`: arms the hook when `mod` is the driver's module. */
  private async onModuleInit(load: ModuleLoad, mod: bigint): Promise<void> {
    const head = unwrap(await this.client.readMemory(mod, MODULE_NAME_WINDOW), 'reading struct module');
    if (holdsName(head, load.moduleName)) {
      const field = unwrap(await this.client.readMemory(mod + BigInt(load.text.offset), 12), 'reading the text base');
      const sendRequest = hookAddressIn(field, { offset: 0, hookFromText: load.text.hookFromText });
      if (sendRequest === undefined)
        throw new InjectionError(
          `struct module of ${load.moduleName} holds no text block at offset ${load.text.offset} that reaches the hook`,
        );
      const hook: DriverHook = { sendRequest, ...load.offsets };
      unwrap(await this.disarm(load.initModule), 'removing the module breakpoint');
      unwrap(await this.arm(hook.sendRequest), 'setting the entry breakpoint');
      this.hook = hook;
      this.moduleLoad = undefined;
    }
    unwrap(await this.client.resume(), 'continuing');
  }

  private async onStop(): Promise<void> {
    const started = Date.now();
    const client = this.client;
    const entry = unwrap(await client.readRegisters(), 'reading registers at the stop');
    const load = this.moduleLoad;
    if (load && entry.rip === load.initModule) {
      await this.onModuleInit(load, entry.rdi);
      return;
    }
    const hook = this.hook;
    if (!hook || entry.rip !== hook.sendRequest) {
      // Not our breakpoint (an interrupt by someone else): run on.
      unwrap(await client.resume(), 'continuing');
      return;
    }
    const requestBytes = unwrap(await client.readMemory(entry.rsi, VirtioMemRequestLayout.size), 'reading the request');
    const decoded = decodeRequest(requestBytes);
    if (!decoded.ok) throw new InjectionError('the request at rsi cannot be decoded');
    const request = decoded.value;
    const plan = this.match(request.type);
    const neutralise = plan !== undefined && plan.response !== 'ACK';
    const sent = neutralise
      ? encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: request.addr, nb_blocks: 0 })
      : requestBytes;
    if (neutralise) unwrap(await client.writeMemory(entry.rsi, sent), 'rewriting the request');
    const returnAddress = readLittleEndian(unwrap(await client.readMemory(entry.rsp, 8), 'reading the return address'));
    unwrap(await this.disarm(hook.sendRequest), 'removing the entry breakpoint');
    unwrap(await this.arm(returnAddress), 'setting the return breakpoint');
    unwrap(await client.resume(), 'continuing to the return');
    const back = unwrap(await client.waitForStop(this.returnTimeoutMs), 'waiting for the device to answer');
    if (back.kind !== 'stopped') throw new InjectionError(`the machine ended (${back.kind}) while the driver waited`);
    const exit = unwrap(await client.readRegisters(), 'reading registers at the return');
    if (exit.rip !== returnAddress || exit.rsp !== entry.rsp + 8n)
      throw new InjectionError(
        `the return stop is at rip 0x${exit.rip.toString(16)} rsp 0x${exit.rsp.toString(16)}, not 0x${returnAddress.toString(16)} and 0x${(entry.rsp + 8n).toString(16)}`,
      );
    const vm = entry.rdi;
    const seenRequest = unwrap(
      await client.readMemory(vm + BigInt(hook.requestOffset), VirtioMemRequestLayout.size),
      'reading vm->req',
    );
    const response = unwrap(
      await client.readMemory(vm + BigInt(hook.responseOffset), VirtioMemResponseLayout.size),
      'reading vm->resp',
    );
    const deviceAnswer = readResponseType(response)!;
    if (!sameBytes(seenRequest, sent) || Number(exit.rax & 0xffffn) !== deviceAnswer)
      throw new InjectionError(
        `struct virtio_mem does not hold what the hook expects (vm->req at +${hook.requestOffset}, vm->resp at +${hook.responseOffset}, the answer in rax): nothing more is injected`,
      );
    if (neutralise && deviceAnswer !== VIRTIO_MEM_RESP_ERROR)
      throw new InjectionError(
        `QEMU answered ${RESPONSE_CODE_NAMES[deviceAnswer] ?? deviceAnswer} to the neutralised request, not ERROR`,
      );
    let delivered = deviceAnswer;
    if (plan) {
      plan.remaining--;
      if (neutralise) delivered = RESPONSE_CODE_NAMES.indexOf(plan.response);
      // Without a trailer only the type is written: QEMU's state bytes of an ACK stay as they are.
      const written = plan.trailer
        ? withResponseTrailer(encodeResponse({ type: delivered }), plan.trailer)
        : encodeResponse({ type: delivered }).subarray(RESPONSE_TYPE.offset, RESPONSE_TYPE.offset + RESPONSE_TYPE.size);
      const at = vm + BigInt(hook.responseOffset) + BigInt(plan.trailer ? 0 : RESPONSE_TYPE.offset);
      unwrap(await client.writeMemory(at, written), 'writing vm->resp');
      if (delivered !== deviceAnswer)
        unwrap(await client.writeRegister('rax', (exit.rax & ~0xffffffffn) | BigInt(delivered)), 'setting rax');
    }
    unwrap(await this.disarm(returnAddress), 'removing the return breakpoint');
    unwrap(await this.arm(hook.sendRequest), 'setting the entry breakpoint again');
    unwrap(await client.resume(), 'continuing');
    this.seen.push({
      type: request.type,
      addr: request.addr,
      nbBlocks: request.nb_blocks,
      deviceAnswer,
      delivered,
      injected: plan !== undefined && (neutralise || plan.trailer !== undefined),
      rewritten: neutralise,
      ...(plan?.trailer ? { trailer: plan.trailer } : {}),
      hostMs: Date.now() - started,
    });
  }
}

/** Whether `bytes` hold `name` as a NUL-terminated string. */
export function holdsName(bytes: Uint8Array, name: string): boolean {
  const wanted = Buffer.from(`${name}\0`, 'latin1');
  return Buffer.from(bytes).indexOf(wanted) >= 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
