/**
 * The host side of the in-guest agent: {@link AgentLink} runs `vmemct-agent` (over its own ssh
 * process: `ssh … /sbin/vmemct-agent`, argv only, binary stdin/stdout) and sends it one frame per
 * request; {@link AgentBus} is the {@link PciFunctionBus} a virtio-pci driver uses over it.
 *
 * Faults become an {@link AgentError} whose message gives the reason and the fix: an agent that is
 * missing (a guest built before it existed), crashes or answers out of step, a guest that reboots
 * or stops answering (every request has a deadline), a device the agent cannot reach (no
 * virtio-mem function, no sysfs resource, kernel lockdown, /dev/mem refused, no hugepage). The
 * processes started here end with the link, and with this process at the latest.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { forgetChild, killOnExit } from '../../qemu-platform/src/index';
import type {
  PciBusAnswer,
  PciBusOperation,
  PciFunctionBus,
  PciFunctionSite,
  PhysicalRange,
} from '../../virtio/src/pci-bus';
import {
  AGENT_ANY_FUNCTION,
  AGENT_BARS,
  AGENT_PROTOCOL_VERSION,
  AgentAnswer,
  AgentAnswerOf,
  AgentErrorCode,
  AgentOperation,
  FrameSplitter,
  decodeReply,
  encodeRequest,
} from './agent-protocol';
import { SshTarget, classifySshFailure, sshArguments } from './ssh-shell';

/** Where `vmemct guest build` puts the agent in the guest. */
export const GUEST_AGENT_PATH = '/sbin/vmemct-agent';

/** What went wrong, for callers that act on it (exit 2 with the message in every case). */
export type AgentFaultKind =
  /** The guest has no agent at the path (built before the agent existed): rebuild the guest. */
  | 'missing-agent'
  /** The agent ended or answered out of step. */
  | 'crashed'
  /** The SSH connection failed or dropped (the guest stopped or rebooted). */
  | 'guest-gone'
  /** No answer within the deadline. */
  | 'timeout'
  /** No virtio-mem function, or its sysfs files cannot be used. */
  | 'unreachable-device'
  /** The kernel's lockdown refuses the BAR mapping. */
  | 'lockdown'
  /** /dev/mem refuses the device region. */
  | 'devmem-refused'
  /** No DMA window: no hugepage, or no contiguous physical address for it. */
  | 'no-dma'
  /** The agent refused one operation (an address outside what it mapped, before `open`, …). */
  | 'refused'
  /** The link was closed by this side. */
  | 'closed';

/** A fault of the agent link; `message` carries the reason and the fix. */
export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    message: string,
    readonly kind: AgentFaultKind,
    /** The agent's own error code, when the agent reported the fault. */
    readonly code?: AgentErrorCode | 'unknown',
  ) {
    super(message);
  }
}

const FAULT_OF_CODE: Readonly<Record<AgentErrorCode | 'unknown', AgentFaultKind>> = {
  malformed: 'crashed',
  version: 'missing-agent',
  'no-device': 'unreachable-device',
  'several-devices': 'unreachable-device',
  'not-open': 'refused',
  'refused-access': 'refused',
  io: 'unreachable-device',
  lockdown: 'lockdown',
  'devmem-refused': 'devmem-refused',
  'no-hugepage': 'no-dma',
  'not-contiguous': 'no-dma',
  unknown: 'crashed',
};

/** Options of {@link AgentLink.spawn} and {@link AgentLink.overSsh}. */
export interface AgentLinkOptions {
  /** Deadline of one request in ms (default 10 000; an `open` unbinding a driver can take seconds under TCG). */
  readonly timeoutMs?: number;
  /** `setpriv` binary: ties the child to this process (`--pdeathsig SIGKILL`). */
  readonly setpriv?: string;
  /** How messages name the far side (default: the command). */
  readonly where?: string;
}

/** A running agent: one request in flight at a time, one frame each way per request. */
export class AgentLink {
  private readonly splitter = new FrameSplitter();
  private stderrText = '';
  private exitText: string | undefined;
  private sequence = 0;
  private pending:
    | {
        ops: readonly AgentOperation[];
        sequence: number;
        resolve: (a: AgentAnswer[]) => void;
        reject: (e: Error) => void;
      }
    | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private broken: AgentError | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly where: string,
    private readonly timeoutMs: number,
    private readonly sshTarget: SshTarget | undefined,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => this.onData(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => (this.stderrText = (this.stderrText + c).slice(-4096)));
    child.stdin!.on('error', () => undefined);
    child.once('error', (e) => {
      // A child that never started reports no exit.
      forgetChild(child);
      this.fail(new AgentError(`${where}: cannot start: ${e.message}`, 'crashed'));
    });
    child.once('exit', (code, signal) => {
      this.exitText = signal ? `signal ${signal}` : `status ${code}`;
      // Let stderr drain before the reason is judged.
      setImmediate(() => this.fail(this.exitFault(code)));
    });
  }

  /** Runs the agent as `command args` on this machine (tests: the host-built agent with `--root`). */
  static spawn(command: string, args: readonly string[], options: AgentLinkOptions = {}): AgentLink {
    return AgentLink.start(command, args, options, undefined);
  }

  /**
   * Runs the agent in the guest through its own ssh process, and checks it speaks this protocol
   * (`hello`). `sshBinary` defaults to `ssh` on PATH.
   */
  static async overSsh(
    target: SshTarget,
    options: AgentLinkOptions & { readonly sshBinary?: string; readonly agentPath?: string } = {},
  ): Promise<AgentLink> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const argv = [
      ...sshArguments(target, Math.max(1, Math.ceil(timeoutMs / 1000))),
      options.agentPath ?? GUEST_AGENT_PATH,
    ];
    const link = AgentLink.start(options.sshBinary ?? 'ssh', argv, options, target);
    await link.hello();
    return link;
  }

  private static start(
    command: string,
    args: readonly string[],
    options: AgentLinkOptions,
    target: SshTarget | undefined,
  ): AgentLink {
    const [file, argv] = options.setpriv
      ? [options.setpriv, ['--pdeathsig', 'SIGKILL', '--', command, ...args]]
      : [command, [...args]];
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    killOnExit(child);
    const where = options.where ?? (target ? `guest agent at ${target.host}:${target.port}` : `agent ${command}`);
    return new AgentLink(child, where, options.timeoutMs ?? 10_000, target);
  }

  /** Whether the link can take requests. */
  get usable(): boolean {
    return this.broken === undefined;
  }

  /** Checks the agent speaks {@link AGENT_PROTOCOL_VERSION}; returns its largest frame. */
  async hello(): Promise<number> {
    const [answer] = await this.request([{ kind: 'hello', version: AGENT_PROTOCOL_VERSION }]);
    return (answer as AgentAnswerOf<'hello'>).maxFrame;
  }

  /**
   * Sends `ops` as one frame and resolves with their answers in order.
   * @throws AgentError on any fault; after a fault that is not a refusal of one operation the
   * link is broken and every later request fails at once.
   */
  request(ops: readonly AgentOperation[]): Promise<AgentAnswer[]> {
    const next = this.queue.then(() => this.requestNow(ops));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private requestNow(ops: readonly AgentOperation[]): Promise<AgentAnswer[]> {
    if (this.broken) return Promise.reject(this.broken);
    const sequence = (this.sequence = (this.sequence + 1) >>> 0);
    const frame = encodeRequest(sequence, ops);
    if (!frame.ok) return Promise.reject(new AgentError(`${this.where}: cannot send: ${frame.problem}`, 'refused'));
    return new Promise<AgentAnswer[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(
          new AgentError(
            `${this.where}: no answer within ${this.timeoutMs} ms (the guest may be hung or overloaded); the link is closed`,
            'timeout',
          ),
        );
      }, this.timeoutMs);
      this.pending = {
        ops,
        sequence,
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.child.stdin!.write(frame.value);
    });
  }

  private onData(chunk: Buffer): void {
    const frames = this.splitter.push(chunk);
    if (!frames.ok) {
      this.fail(new AgentError(`${this.where}: out of step: ${frames.problem}`, 'crashed'));
      return;
    }
    for (const frame of frames.value) {
      const pending = this.pending;
      if (!pending) {
        this.fail(new AgentError(`${this.where}: a reply nobody asked for`, 'crashed'));
        return;
      }
      this.pending = undefined;
      const reply = decodeReply(frame, pending.sequence, pending.ops);
      if (!reply.ok) {
        pending.reject(this.fail(new AgentError(`${this.where}: out of step: ${reply.problem}`, 'crashed')));
      } else if (reply.value.status === 'ok') {
        pending.resolve(reply.value.answers);
      } else if (reply.value.status === 'refused') {
        const { failure, answers } = reply.value;
        const op = pending.ops[answers.length]!;
        pending.reject(
          new AgentError(
            `${this.where}: operation ${answers.length} (${op.kind}) refused: ${failure.message}`,
            FAULT_OF_CODE[failure.code],
            failure.code,
          ),
        );
      } else {
        const e = new AgentError(
          `${this.where}: the agent called the request malformed: ${reply.value.failure.message}`,
          'crashed',
          'malformed',
        );
        pending.reject(this.fail(e));
      }
    }
  }

  private exitFault(code: number | null): AgentError {
    const said = this.stderrText.trim().split('\n').slice(-2).join(' / ');
    if (code === 127 || /not found|No such file/i.test(said))
      return new AgentError(
        `${this.where}: the guest has no agent (${said || 'status 127'}); rebuild the guest with \`vmemct guest build\` (it packs ${GUEST_AGENT_PATH})`,
        'missing-agent',
      );
    if (this.sshTarget && code === 255) {
      const ssh = classifySshFailure(this.stderrText, this.sshTarget);
      return new AgentError(
        `${this.where}: the SSH connection ended (${ssh.message}); the guest stopped or rebooted: boot it again (\`vmemct guest up\`) and start a new link`,
        'guest-gone',
      );
    }
    return new AgentError(
      `${this.where}: the agent ended (${this.exitText ?? 'unknown'}${said ? `: ${said}` : ''}); see the guest's console log`,
      'crashed',
    );
  }

  /** Marks the link broken, rejects the request in flight, ends the process; returns `e`. */
  private fail(e: AgentError): AgentError {
    if (!this.broken) this.broken = e;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(this.broken);
    this.kill();
    return this.broken;
  }

  private kill(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      this.child.stdin!.end();
      this.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }

  /** Ends the agent (closing its input ends it cleanly; it is killed after `graceMs`). Never throws. */
  async close(graceMs = 1000): Promise<void> {
    if (!this.broken) this.broken = new AgentError(`${this.where}: the link is closed`, 'closed');
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.kill(), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/** What `open` found: the function and its BARs. */
export interface AgentFunction {
  readonly bdf: number;
  readonly vendor: number;
  readonly device: number;
  /** Guest-physical base and size of each BAR (size 0: none), and whether it is mapped for MMIO. */
  readonly bars: readonly { readonly base: bigint; readonly size: bigint; readonly mapped: boolean }[];
  /** Whether the agent unbound a driver (virtio-pci) from the function. */
  readonly unbound: boolean;
}

/** An exchange operation of {@link AgentBus}: a bus operation, or a bounded wait for a value to change. */
export type AgentBusOperation =
  | PciBusOperation
  /** Reads the scalar at `addr` until it differs from `value` or `timeoutUs` passed; answers the last value. */
  | {
      readonly kind: 'wait-change';
      readonly addr: bigint;
      readonly width: 1 | 2 | 4 | 8;
      readonly value: bigint;
      readonly timeoutUs: number;
    };

/** Options of {@link AgentBus}. */
export interface AgentBusOptions {
  /** The function to open when the guest has several (domain << 16 | bus << 8 | device << 3 | function). */
  readonly bdf?: number;
}

/**
 * The {@link PciFunctionBus} through the in-guest agent. `open()` unbinds the function from its
 * driver, maps its BARs and sets up the DMA window (one round trip); `dmaWindow()` is known from
 * then on. Device-region memory is reachable once {@link setDeviceRegion} named it.
 */
export class AgentBus implements PciFunctionBus {
  readonly name = 'guest agent';
  private window: PhysicalRange | undefined;
  private found: AgentFunction | undefined;

  constructor(
    /** The link the bus sends its frames over (it owns nothing else). */
    readonly link: AgentLink,
    private readonly options: AgentBusOptions = {},
  ) {}

  /** Starts the agent in the guest over SSH and returns its bus (not yet opened). */
  static async overSsh(
    target: SshTarget,
    options: AgentBusOptions & AgentLinkOptions & { readonly sshBinary?: string; readonly agentPath?: string } = {},
  ): Promise<AgentBus> {
    return new AgentBus(await AgentLink.overSsh(target, options), options);
  }

  /** What the last `open` found (undefined before). */
  get function(): AgentFunction | undefined {
    return this.found;
  }

  /** Finds and takes the virtio-mem function, maps its BARs, and sets up the DMA window. */
  async open(): Promise<PciFunctionSite> {
    const [opened, window] = await this.link.request([
      { kind: 'open', bdf: this.options.bdf ?? AGENT_ANY_FUNCTION },
      { kind: 'dma-window' },
    ]);
    const o = opened as AgentAnswerOf<'open'>;
    const w = window as AgentAnswerOf<'dma-window'>;
    const bars = Array.from({ length: AGENT_BARS }, (_, i) => ({
      base: o[`bar${i}Base` as 'bar0Base'],
      size: o[`bar${i}Size` as 'bar0Size'],
      mapped: ((o.memoryBars >>> i) & 1) === 1,
    }));
    const found: AgentFunction = { bdf: o.bdf, vendor: o.vendor, device: o.device, bars, unbound: o.unbound === 1 };
    this.found = found;
    this.window = { base: w.base, length: w.length };
    return {
      bdf: found.bdf,
      barBase: (bar: number) => {
        const entry = found.bars[bar];
        if (!entry?.mapped)
          return Promise.reject(
            new AgentError(`guest agent: BAR ${bar} of the function is not a mapped memory BAR`, 'refused'),
          );
        return Promise.resolve(entry.base);
      },
    };
  }

  /** Performs `operations` in order in one round trip; answers in the same order. */
  async exchange(operations: readonly AgentBusOperation[]): Promise<PciBusAnswer[]> {
    if (operations.length === 0) return [];
    const answers = await this.link.request(operations);
    return answers.map((a): PciBusAnswer => {
      switch (a.kind) {
        case 'config-read':
          return { kind: 'value', value: BigInt(a.value) };
        case 'read':
        case 'wait-change':
          return { kind: 'value', value: a.value };
        case 'read-bytes':
          return { kind: 'bytes', bytes: a.bytes };
        default:
          return { kind: 'done' };
      }
    });
  }

  /** The DMA window (one locked, physically contiguous 2 MiB page). @throws before `open`. */
  dmaWindow(): PhysicalRange {
    if (!this.window) throw new AgentError('guest agent: dmaWindow() before open()', 'refused');
    return this.window;
  }

  /**
   * Names the virtio-mem device region (from the device configuration) so reads and writes there
   * reach it through /dev/mem; `undefined` forgets it.
   */
  async setDeviceRegion(range: PhysicalRange | undefined): Promise<void> {
    await this.link.request([{ kind: 'set-region', base: range?.base ?? 0n, length: range?.length ?? 0n }]);
  }

  /** Ends the agent. Never throws. */
  close(): Promise<void> {
    return this.link.close();
  }
}
