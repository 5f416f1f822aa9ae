/**
 * Scripted answers (`inject-responses`) for the guest's real driver in a driver vector: the
 * glue between a driver session of the ssh-guest adapter and the gdbstub injector.
 *
 * - After each load of virtio_mem (`start`) the hook is resolved again: the function's address
 *   from the guest's kallsyms (module loading and KASLR move it), the struct offsets from the
 *   module's BTF (read once per adapter: they belong to the kernel, not to the load). Then the
 *   injector attaches through QEMU's gdbstub and sees every request from there on.
 * - An `inject` step replaces the script, as the model's does: what is left of an earlier one
 *   is dropped.
 * - A `settle`'s requests, taken from QEMU's trace, are put back as the driver saw them: a
 *   request the injector rewrote (QEMU traced `STATE addr nb_blocks=0 → ERROR`) is the driver's
 *   request with the answer it was given, and an injected trailer is in the response bytes.
 * - A guest whose driver cannot be hooked keeps `inject` steps `unsupported`, with the reason.
 * - An ERROR makes Linux mark the device broken: it sends nothing more, so the next vector could
 *   not empty the device. {@link GuestInjectionSession.end} says so, and the session reboots the guest.
 */
import { VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_RESP_ERROR, formatHex } from '../../../spec/src/index';
import { decodeRequest, encodeRequest, encodeResponse, withResponseTrailer } from '../../../model/src/codec/codec';
import {
  AdapterError,
  AdapterTimeoutError,
  DriverActivity,
  DriverEvent,
  ResponseInjection,
  SettleLimits,
  UnsupportedSetupError,
} from '../../core/src/contract';
import { sleep } from '../../core/src/sleep';
import {
  DriverHook,
  HookShell,
  parseKallsyms,
  resolveDriverHook,
  sendRequestAddress,
  DRIVER_HOOK,
} from './driver-hook';
import { GdbResponseInjector, InterceptedRequest, ModuleLoad } from './gdb-injection';
import { GuestLink } from './guest-link';
import { ModuleTextField, findModuleTextField } from './module-text';

/** The struct offsets of the hook, which stay while the kernel does. */
type HookOffsets = Omit<DriverHook, 'sendRequest'>;

/** How long a traced request may wait for the injector's record of it (the record follows the return stop). */
const RECORD_WAIT_MS = 5000;

/**
 * Requests one settle watches while a NACK, BUSY or ERROR script has more answers left than
 * this. A driver that sends again at once after such an answer (Linux after NACK) keeps the
 * machine stopped in the debugger nearly all the time, so the guest answers nothing else; the
 * settle then ends here (not settled) and the rest of the script is dropped.
 */
export const SCRIPTED_SETTLE_REQUESTS = 20;

/** The kallsyms lines the hook needs: the function, the module's struct, the kernel's do_init_module. */
const HOOK_SYMBOLS = `grep -E ' (${DRIVER_HOOK.sendRequest}|__this_module)[[:space:]]+\\[${DRIVER_HOOK.module}\\]|[tT] do_init_module$' /proc/kallsyms`;

/**
 * The adapter's part of injection that outlives a vector: the gdbstub socket, the struct offsets
 * read from the module's BTF once, and where the module's text base lies in its `struct module`
 * with the hook's distance from it (learnt on a load: module-text.ts).
 */
export class GuestInjectionHost {
  private offsets: HookOffsets | undefined;
  private text: ModuleTextField | undefined;

  constructor(
    /** QEMU's gdbstub socket (`-gdb unix:PATH,server=on,wait=off`). */
    readonly gdbSocket: string,
  ) {}

  /** Whether a load has shown where the hook lies (see {@link resolve}). */
  get learnt(): boolean {
    return this.offsets !== undefined && this.text !== undefined;
  }

  /**
   * Learns where the text base lies from the bytes of a loaded module's `struct module` and its
   * hook's address now (none fits: the hook is not armed ahead, only after each load).
   */
  learnText(moduleBytes: Uint8Array | undefined, hookAddress: bigint): void {
    this.text = moduleBytes ? findModuleTextField(moduleBytes, hookAddress) : undefined;
  }

  /**
   * Learns where the hook lies from the driver loaded now, unless known: its address from
   * kallsyms, and its `struct module` read through the gdbstub (the machine stops briefly).
   */
  async learn(shell: HookShell): Promise<void> {
    if (this.learnt) return;
    const resolved = await this.resolve(shell);
    if ('reason' in resolved || resolved.moduleStruct === undefined) return;
    const read = await GdbResponseInjector.peekModuleStruct(this.gdbSocket, resolved.moduleStruct);
    if (!read.ok) throw new AdapterError(`QEMU's gdbstub at ${this.gdbSocket}: ${read.failure.message}`);
    this.learnText(read.value, resolved.hook.sendRequest);
  }

  /** What arming the hook before the next load needs, once a load has been seen. */
  async moduleLoad(shell: HookShell): Promise<ModuleLoad | undefined> {
    if (!this.offsets || this.text === undefined) return undefined;
    const initModule = parseKallsyms((await shell.run(HOOK_SYMBOLS, 30_000)).output).find(
      (e) => e.name === 'do_init_module' && e.module === undefined,
    );
    if (!initModule || initModule.address === 0n) return undefined;
    return {
      initModule: initModule.address,
      moduleName: DRIVER_HOOK.module,
      text: this.text,
      offsets: this.offsets,
    };
  }

  /** The hook of the driver loaded now and where its `struct module` is (if kallsyms shows it), or why it cannot be used. */
  async resolve(shell: HookShell): Promise<{ hook: DriverHook; moduleStruct?: bigint } | { reason: string }> {
    const symbols = parseKallsyms((await shell.run(HOOK_SYMBOLS, 30_000)).output);
    const address = sendRequestAddress(symbols);
    if ('reason' in address) return address;
    if (!this.offsets) {
      const resolved = await resolveDriverHook(shell);
      if (resolved.kind === 'unsupported') return { reason: resolved.reason };
      const { sendRequest: _address, ...offsets } = resolved.hook;
      this.offsets = offsets;
    }
    const module = symbols.find((e) => e.name === '__this_module' && e.module === DRIVER_HOOK.module);
    return {
      hook: { sendRequest: address.address, ...this.offsets },
      ...(module && module.address !== 0n ? { moduleStruct: module.address } : {}),
    };
  }
}

/** The guest's shell as the hook resolver uses it: a command that fails is a status, a guest that does not answer an error. */
export function hookShell(link: GuestLink): HookShell {
  return {
    run: async (command) => {
      try {
        return { status: 0, output: await link.sh(command, 'resolving the driver hook') };
      } catch (e) {
        if (e instanceof AdapterError && !(e instanceof AdapterTimeoutError)) return { status: 1, output: '' };
        throw e;
      }
    },
  };
}

/** Whether a traced request is the injector's neutralised form of one (`STATE addr nb_blocks=0`). */
function isRewrite(request: { type: number; nb_blocks: number }): boolean {
  return request.type === VIRTIO_MEM_REQ_STATE && request.nb_blocks === 0;
}

/** Whether the traced request `traced` is the one the injector recorded as `record`. */
export function tracedIs(
  traced: { type: number; addr: bigint; nb_blocks: number },
  record: InterceptedRequest,
): boolean {
  if (record.rewritten) return isRewrite(traced) && traced.addr === record.addr;
  return traced.type === record.type && traced.addr === record.addr && traced.nb_blocks === record.nbBlocks;
}

/**
 * One traced exchange as the driver saw it, given the injector's record of it: the driver's own
 * request when the injector rewrote it, and the answer it was given (with the trailer written).
 */
export function asDriverSaw(
  exchange: { readonly request: Uint8Array; readonly response: Uint8Array | null },
  record: InterceptedRequest,
): { request: Uint8Array; response: Uint8Array | null } {
  const request = record.rewritten
    ? encodeRequest({ type: record.type, addr: record.addr, nb_blocks: record.nbBlocks })
    : exchange.request;
  let response = exchange.response;
  if (record.rewritten) response = encodeResponse({ type: record.delivered });
  if (record.trailer && response) response = withResponseTrailer(response, record.trailer);
  return { request, response };
}

/** Injection within one driver session. */
export class GuestInjectionSession {
  private injector: GdbResponseInjector | undefined;
  /** The script of the last `inject` step. */
  private script: ResponseInjection | undefined;
  private unsupported: string | undefined;
  /** Records of the injector already paired with traced requests. */
  private paired = 0;
  /** Wall time the injector was attached at: traced requests before it were not seen by it. */
  private attachedAtMs = 0;

  constructor(
    private readonly host: GuestInjectionHost,
    private readonly link: GuestLink,
  ) {}

  /**
   * Before each load of the driver: once a load has shown where the hook lies relative to the
   * module, the injector attaches now and arms the hook as the module is initialised, so it
   * sees the driver's first request.
   */
  async beforeLoad(): Promise<void> {
    await this.detach();
    const load = await this.host.moduleLoad(hookShell(this.link));
    if (!load) return;
    this.attachedAtMs = Date.now();
    const attached = await GdbResponseInjector.attachBeforeLoad(this.host.gdbSocket, load);
    if (!attached.ok) throw new AdapterError(`QEMU's gdbstub at ${this.host.gdbSocket}: ${attached.failure.message}`);
    this.attached(attached.value);
  }

  /**
   * After each load of the driver: resolves the hook and checks the armed one, or attaches now (or
   * notes why it cannot). `quietProbe`: the device held nothing and asked for nothing as the
   * driver loaded, so it sent no request a probe script could have answered.
   */
  async afterLoad(quietProbe = false): Promise<void> {
    const resolved = await this.host.resolve(hookShell(this.link));
    if ('reason' in resolved) {
      await this.detach();
      this.unsupported = `answers cannot be injected into this guest's driver: ${resolved.reason}`;
      return;
    }
    this.unsupported = undefined;
    const armed = this.injector?.hookAddress;
    if (this.injector && armed !== resolved.hook.sendRequest) {
      // Armed at the wrong place (the module's text and data moved apart since the last load, as
      // Linux 6.12 may place them): harmless while no script waited for the probe and no request
      // was seen, since the breakpoint never fired; the hook is then attached where it lies now.
      // With a script for a probe that sent requests, they went unanswered by it: an error.
      const probeScriptMissed = this.script !== undefined && !quietProbe;
      if (probeScriptMissed || this.injector.requests.length > 0 || this.injector.failure)
        throw new AdapterError(
          `the hook armed as the module was initialised (${armed === undefined ? 'none' : formatHex(armed)}) is not virtio_mem_send_request (${formatHex(resolved.hook.sendRequest)})`,
        );
      await this.detach();
    }
    if (this.injector) return;
    this.attachedAtMs = Date.now();
    const attached = await GdbResponseInjector.attach(this.host.gdbSocket, resolved.hook, {}, resolved.moduleStruct);
    if (!attached.ok) throw new AdapterError(`QEMU's gdbstub at ${this.host.gdbSocket}: ${attached.failure.message}`);
    this.host.learnText(attached.value.moduleBytes, resolved.hook.sendRequest);
    this.attached(attached.value);
  }

  /** Throws {@link UnsupportedSetupError} when the loaded driver cannot be hooked. */
  checkSupported(): void {
    if (this.unsupported) throw new UnsupportedSetupError(this.unsupported);
  }

  /** `inject-responses`: replaces the script. */
  inject(injection: ResponseInjection): void {
    this.checkSupported();
    this.script = injection;
    // Before the driver is loaded the script waits for the injector, which takes it on attaching.
    this.injector?.clearPending();
    this.injector?.inject(injection);
  }

  /** Takes the injector on, with the script an `inject` step gave before it attached. */
  private attached(injector: GdbResponseInjector): void {
    this.injector = injector;
    this.paired = 0;
    if (this.script) injector.inject(this.script);
  }

  /**
   * A settle under the script: `watch` is the observer's settle (given the configuration when it
   * must not read it from the guest), `hostConfig` the configuration as the host holds it.
   */
  async settle(
    limits: SettleLimits,
    watch: (limits: SettleLimits, config?: Uint8Array) => Promise<DriverActivity>,
    hostConfig: () => Promise<Uint8Array>,
  ): Promise<DriverActivity> {
    const injector = this.injector;
    const script = this.script;
    const repeatable =
      injector !== undefined &&
      script !== undefined &&
      script.response !== 'ACK' &&
      injector.remaining > SCRIPTED_SETTLE_REQUESTS &&
      limits.maxRequests > SCRIPTED_SETTLE_REQUESTS;
    if (!repeatable) return this.asDriverSaw(await watch(limits));
    // The guest may already be held in the debugger by a driver that re-sends at once: the host's view, not an SSH read.
    const activity = await watch({ ...limits, maxRequests: SCRIPTED_SETTLE_REQUESTS }, await hostConfig());
    const requests = activity.events.filter((e) => e.kind === 'request').length;
    if (requests < SCRIPTED_SETTLE_REQUESTS) return this.asDriverSaw(activity);
    injector.clearPending();
    return this.asDriverSaw({
      ...activity,
      settled: false,
      stop: `the driver sent ${requests} requests answered ${script.response} without pause; the adapter stopped watching and dropped the rest of the script (the guest is held in the debugger for each one)`,
    });
  }

  /** The settle's requests as the driver saw them (see the file's comment). */
  async asDriverSaw(activity: DriverActivity): Promise<DriverActivity> {
    const injector = this.injector;
    if (!injector) return activity;
    const events: DriverEvent[] = [];
    for (const event of activity.events) {
      if (event.kind !== 'request') {
        events.push(event);
        continue;
      }
      const decoded = decodeRequest(event.exchange.request);
      const atMs = event.exchange.atMs;
      if (!decoded.ok || (atMs !== undefined && atMs < this.attachedAtMs)) {
        events.push(event);
        continue;
      }
      const traced = decoded.value;
      const deadline = Date.now() + RECORD_WAIT_MS;
      while (injector.requests.length <= this.paired && injector.failure === undefined && Date.now() < deadline)
        await sleep(20);
      const record = injector.requests[this.paired];
      if (record && tracedIs(traced, record)) {
        this.paired++;
        events.push({ kind: 'request', exchange: { ...event.exchange, ...asDriverSaw(event.exchange, record) } });
        continue;
      }
      if (isRewrite(traced))
        throw new AdapterError(
          `QEMU traced a rewritten request at ${formatHex(traced.addr)} that the injector has no record of: what the driver saw is unknown`,
        );
      // A request sent before the injector attached.
      events.push(event);
    }
    if (injector.failure) throw new AdapterError(`the injection stopped: ${injector.failure}`);
    return { ...activity, events };
  }

  /** Detaches before the machine is reset (the hook's address dies with the kernel). */
  async detach(): Promise<void> {
    const injector = this.injector;
    this.injector = undefined;
    if (injector) await injector.detach();
  }

  /** Before a system reset: the hook dies with the kernel, and scripted answers do not outlive the reboot. */
  async reset(): Promise<void> {
    this.script = undefined;
    await this.detach();
  }

  /**
   * Ends injection (the machine runs on without breakpoints) and says whether the driver was
   * given an ERROR, after which Linux has marked the device broken: only a reboot brings it back.
   */
  async end(): Promise<{ readonly driverBroken: boolean }> {
    const records = this.injector?.requests ?? [];
    const driverBroken = records.some((r) => r.delivered === VIRTIO_MEM_RESP_ERROR && r.type !== VIRTIO_MEM_REQ_STATE);
    await this.detach();
    return { driverBroken };
  }
}
