/**
 * The adapter's two ways into the machine under test: SSH into the guest and QMP to the QEMU
 * running it. Every command goes through here, so here the vector guard is checked and
 * transport failures become the contract's errors (an SSH or QMP command that does not answer is
 * a timeout). The link also owns the machine's run state: a `system_reset` can leave the vCPUs
 * stopped ("held") until the next driver-facing step resumes them.
 */
import { AdapterError, AdapterTimeoutError } from '../../core/src/contract';
import { HostView, QemuMemoryDevice, QmpClient, QmpError, listVirtioMemDevices } from '../../qemu-platform/src/index';
import { findTool } from './guest-build';
import { GuestHostBusy } from './guest-host-busy';
import { GuestShell, ShellResult, SshError, SshTarget, waitForSsh } from './ssh-shell';
import { VectorEpochs } from './vector-epochs';

/** How long a rebooted guest gets to answer over SSH again. */
const REBOOT_TIMEOUT_MS = 120_000;

/** SSH into the guest and QMP to its QEMU, guarded per vector. */
export class GuestLink {
  /** The vector guard: commands from a vector the runner gave up on fail. */
  readonly epochs = new VectorEpochs();
  private shell: GuestShell | undefined;
  private machineHeld = false;
  /** The resume under way (a session's close starts one without waiting for it). */
  private resuming: Promise<void> | undefined;
  private closed = false;
  private readonly setpriv = findTool('setpriv');
  /** `host-busy`: an outgoing migration kept active (see {@link GuestHostBusy}). */
  private readonly migration: GuestHostBusy;

  constructor(
    private readonly ssh: SshTarget,
    private readonly qmp: QmpClient,
    /** The virtio-mem device the adapter plays the host for. */
    readonly device: QemuMemoryDevice,
    /** Bound on each SSH and QMP command. */
    readonly timeoutMs: number,
  ) {
    this.migration = new GuestHostBusy(qmp, timeoutMs);
  }

  /** Whether the host holds the device busy ({@link setHostBusy}). */
  get hostBusy(): boolean {
    return this.migration.busy;
  }

  /** `host-busy`: makes the device busy (a migration held active) or releases it (`migrate_cancel`). */
  setHostBusy(busy: boolean): Promise<void> {
    return this.host(() => this.migration.set(busy));
  }

  /** Opens the SSH connection at set-up; rejects with the {@link SshError} saying why it cannot. */
  async open(): Promise<void> {
    this.shell = await GuestShell.connect(this.ssh, Math.min(this.timeoutMs, 15_000), { setpriv: this.setpriv });
  }

  /** Runs a command on the connection {@link open} made and leaves its status to the caller (set-up only). */
  runAtSetUp(command: string): Promise<ShellResult> {
    if (!this.shell) return Promise.reject(new AdapterError('the guest connection is not open'));
    return this.shell.run(command, this.timeoutMs);
  }

  /** Runs a guest command that must succeed and returns its output; reconnects first when the connection has ended. */
  async sh(command: string, what: string, timeoutMs = this.timeoutMs): Promise<string> {
    this.epochs.check();
    if (!this.shell || this.shell.closed) {
      try {
        this.shell = await GuestShell.connect(this.ssh, Math.min(timeoutMs, 15_000), { setpriv: this.setpriv });
      } catch (e) {
        throw asAdapterError(e, what);
      }
    }
    try {
      return await this.shell.check(command, timeoutMs, what);
    } catch (e) {
      throw asAdapterError(e, what);
    }
  }

  /** Runs a guest command whose status the caller judges (reconnecting first like {@link sh}). */
  async run(command: string, what: string, timeoutMs = this.timeoutMs): Promise<ShellResult> {
    this.epochs.check();
    try {
      if (!this.shell || this.shell.closed)
        this.shell = await GuestShell.connect(this.ssh, Math.min(timeoutMs, 15_000), { setpriv: this.setpriv });
      return await this.shell.run(command, timeoutMs);
    } catch (e) {
      throw asAdapterError(e, what);
    }
  }

  /** QEMU's run state (`query-status`: `running`, `suspended`, `paused`, …). */
  runState(): Promise<string> {
    return this.host(async () => {
      const r = (await this.qmp.execute('query-status')) as { status?: unknown };
      return String(r.status);
    });
  }

  /** Wakes a guest suspended to RAM (QMP `system_wakeup`). */
  async wakeUp(): Promise<void> {
    await this.host(() => this.qmp.execute('system_wakeup'));
  }

  /** Ends the SSH connection (the next command opens a new one). */
  closeShell(): void {
    this.shell?.close();
    this.shell = undefined;
  }

  /** Runs host-side work over QMP; a QMP command that did not answer becomes a timeout. */
  private async host<T>(work: () => Promise<T>): Promise<T> {
    this.epochs.check();
    if (this.closed) throw new AdapterError('QMP is not connected');
    try {
      return await work();
    } catch (e) {
      if (e instanceof QmpError && /did not answer/.test(e.message)) throw new AdapterTimeoutError(e.message);
      throw e;
    }
  }

  /** What the device holds and was asked for, now (QMP). */
  hostView(): Promise<HostView> {
    return this.host(() => this.device.hostView());
  }

  /** Every virtio-mem device of the machine, with what it holds now (QMP): a multi-device guest's devices. */
  memoryDevices(): Promise<{ readonly device: QemuMemoryDevice; readonly view: HostView }[]> {
    return this.host(async () => {
      const found: { device: QemuMemoryDevice; view: HostView }[] = [];
      for (const entry of await listVirtioMemDevices(this.qmp)) {
        if (typeof entry.id !== 'string') continue;
        const one = await QemuMemoryDevice.find(this.qmp, entry.id);
        if (one.kind === 'found') found.push({ device: one.device, view: one.view });
      }
      return found;
    });
  }

  /** Asks the device for `size` bytes plugged; QEMU's refusal stays a {@link QmpError}. */
  setRequestedSize(size: bigint): Promise<void> {
    return this.host(() => this.device.setRequestedSize(size));
  }

  /** Whether the machine was reset and is held before it boots again (see {@link resetMachine}). */
  get held(): boolean {
    return this.machineHeld;
  }

  /**
   * `system_reset`. With `hold`, the vCPUs are stopped first and stay stopped: the device has
   * been reset (QEMU unplugs everything) and the guest has not booted yet, so the runner can look
   * at the device before the driver probes again; the next driver-facing step resumes the guest.
   * Without, it waits for the guest to answer over SSH again.
   */
  async resetMachine(hold: boolean): Promise<void> {
    if (hold) await this.host(() => this.qmp.execute('stop'));
    // QEMU's RESET event is waited for but not required: the guest is reached over SSH below either way.
    await this.host(() => this.device.systemReset());
    this.closeShell();
    if (hold) this.machineHeld = true;
    else await this.waitForGuest();
  }

  /**
   * Lets a held machine run again and waits until the guest answers. A caller that comes while a
   * resume is under way waits for that one: the guest is not there before it answers.
   */
  resume(): Promise<void> {
    if (this.resuming) return this.resuming;
    if (!this.machineHeld) return Promise.resolve();
    this.machineHeld = false;
    const resuming = (async () => {
      await this.host(() => this.qmp.execute('cont'));
      await this.waitForGuest();
    })();
    this.resuming = resuming;
    const done = (): void => {
      if (this.resuming === resuming) this.resuming = undefined;
    };
    resuming.then(done, done);
    return resuming;
  }

  private async waitForGuest(): Promise<void> {
    try {
      this.shell = await waitForSsh(this.ssh, REBOOT_TIMEOUT_MS, { setpriv: this.setpriv });
    } catch (e) {
      throw new AdapterTimeoutError(`after system_reset: ${(e as Error).message}`);
    }
  }

  /** Releases a device left busy and closes both connections. */
  async dispose(): Promise<void> {
    await this.migration.dispose();
    this.closeShell();
    this.qmp.close();
    this.closed = true;
  }
}

/** An SSH failure as the contract's error: unreachable or too slow is a timeout. */
function asAdapterError(e: unknown, what: string): Error {
  if (e instanceof SshError && (e.kind === 'timeout' || e.kind === 'unreachable'))
    return new AdapterTimeoutError(`${what}: ${e.message}`);
  if (e instanceof SshError) return new AdapterError(`${what}: ${e.message}`);
  return e as Error;
}
