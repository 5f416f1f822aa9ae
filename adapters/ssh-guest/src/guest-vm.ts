/**
 * `vmemct guest up|down|status`: boots the built guest under QEMU (TCG) with a virtio-mem-pci
 * device, user networking forwarding a free port on 127.0.0.1 to the guest's SSH, a QMP socket
 * for the adapter and one for control, and QEMU's `virtio_mem_*` trace events in a log file.
 *
 * Two ways to run it:
 * - detached (`guest up`): QEMU daemonizes and outlives the command; `guest down` ends it by PID
 *   (after QMP `quit`), checking first that the PID is still that QEMU;
 * - attached (tests, benchmarks): QEMU is a child under `setpriv --pdeathsig SIGKILL`, killed
 *   when this process exits by any path.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { sleep } from '../../core/src/sleep';
import {
  MemoryDeviceEntry,
  QmpClient,
  dataDirArguments,
  killOnExit,
  listVirtioMemDevices,
  locateQemu,
  processAlive,
} from '../../qemu-platform/src/index';
import { findTool, readManifest } from './guest-build';
import { GuestShell, SshTarget, waitForSsh } from './ssh-shell';
import { GUEST_DEVICE_ID, GuestDeviceOptions, GuestVmError, guestQemuArguments } from './guest-qemu-arguments';

export {
  GUEST_DEVICE_ID,
  GUEST_KERNEL_ARGS,
  GuestOptionError,
  GuestVmError,
  guestQemuArguments,
} from './guest-qemu-arguments';
export type { GuestDeviceOptions, GuestExtraDevice } from './guest-qemu-arguments';

/** What a running guest is; stored as `run/guest-state.json`. */
export interface GuestState {
  readonly format: 'vmemct-guest-state/1';
  readonly pid: number;
  readonly sshHost: '127.0.0.1';
  readonly sshPort: number;
  readonly sshUser: 'root';
  readonly sshKey: string;
  readonly knownHosts: string;
  /** QMP for the adapter. */
  readonly qmpSocket: string;
  /** QMP for `guest down` / `status` (usable while an adapter holds the other). */
  readonly controlSocket: string;
  readonly traceLog: string;
  readonly consoleLog: string;
  /** QEMU's gdbstub (a unix socket), when booted with `gdbstub`. */
  readonly gdbSocket?: string;
  /** The device region's backing file, when booted with `sharedMemory`. */
  readonly memoryFile?: string;
  readonly kernelRelease: string;
  readonly deviceId: string | null;
  readonly argv: readonly string[];
  readonly detached: boolean;
  /** Booted with `icount` (guest time from the instruction counter, one vCPU). */
  readonly icount?: boolean;
}

/** Options of {@link GuestVm.boot}. */
export interface BootOptions extends GuestDeviceOptions {
  /** The folder `guest build` wrote. */
  readonly dir: string;
  /** Where sockets, logs and the state go (default `<dir>/run`). */
  readonly runDir?: string;
  /** Daemonize (outlive this process) instead of running as a child. */
  readonly detached: boolean;
  /** QEMU binary (default: `$VMEMCT_QEMU` or qemu-system-x86_64). */
  readonly qemu?: string;
  /** Bound on boot to SSH (default 90 s; TCG on a loaded machine is slow). */
  readonly bootTimeoutMs?: number;
  /** Open QEMU's gdbstub on `<runDir>/gdb.sock` (for answers injected into the driver). */
  readonly gdbstub?: boolean;
  /**
   * Back the device region with a file in /dev/shm shared with QEMU (`memory-backend-file,share=on`),
   * so the host sees what the guest writes there (`memory-access` of the ssh-guest adapter).
   */
  readonly sharedMemory?: boolean;
}

/** Where {@link BootOptions.sharedMemory} files are made (one folder per guest, removed when it ends). */
export const SHARED_MEMORY_PREFIX = '/dev/shm/vmemct-guest-';

/** A free TCP port on 127.0.0.1 (there is a short window in which another program could take it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Whether `pid` is the QEMU of this run folder (guards against a reused PID). */
function isOurQemu(pid: number, runDir: string): boolean {
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('qemu') && cmdline.includes(runDir);
  } catch {
    return false;
  }
}

/** A booted guest. */
export class GuestVm {
  private constructor(
    readonly state: GuestState,
    private readonly runDir: string,
    private readonly child: ChildProcess | undefined,
  ) {}

  /** SSH target of the guest. */
  get ssh(): SshTarget {
    return {
      host: this.state.sshHost,
      port: this.state.sshPort,
      user: this.state.sshUser,
      key: this.state.sshKey,
      knownHosts: this.state.knownHosts,
    };
  }

  /** Whether QEMU is running. */
  get running(): boolean {
    return processAlive(this.state.pid);
  }

  /** Boots a guest and waits until it answers over SSH. */
  static async boot(options: BootOptions, log: (line: string) => void = () => undefined): Promise<GuestVm> {
    const manifest = readManifest(options.dir);
    const qemu = locateQemu(options.qemu);
    const runDir = path.resolve(options.runDir ?? path.join(options.dir, 'run'));
    const existing = readState(runDir);
    if (existing && processAlive(existing.pid) && isOurQemu(existing.pid, runDir)) {
      throw new GuestVmError(
        `a guest is already up in ${runDir} (QEMU pid ${existing.pid}); run \`vmemct guest down --dir ${options.dir}\` first`,
      );
    }
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.mkdirSync(runDir, { recursive: true });
    const files = {
      qmpSocket: path.join(runDir, 'qmp.sock'),
      controlSocket: path.join(runDir, 'control.sock'),
      traceLog: path.join(runDir, 'trace.log'),
      consoleLog: path.join(runDir, 'console.log'),
      ...(options.gdbstub ? { gdbSocket: path.join(runDir, 'gdb.sock') } : {}),
      ...(options.sharedMemory ? { memoryFile: path.join(fs.mkdtempSync(SHARED_MEMORY_PREFIX), 'region') } : {}),
    };
    const sshPort = await freePort();
    const knownHosts = path.join(runDir, 'known_hosts');
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${sshPort} ${manifest.hostKey}\n`);
    const pidFile = path.join(runDir, 'qemu.pid');
    const args = [
      ...dataDirArguments(qemu.launch),
      ...guestQemuArguments(manifest, files, sshPort, options),
      '-pidfile',
      pidFile,
    ];
    const env = { ...process.env, ...qemu.launch.environment };
    const started = Date.now();
    let child: ChildProcess | undefined;
    let pid: number;
    if (options.detached) {
      const r = spawnSync(qemu.path, [...args, '-daemonize'], {
        encoding: 'utf8',
        timeout: 30_000,
        stdio: ['ignore', 'pipe', 'pipe'],
        env,
      });
      if (r.status !== 0)
        throw new GuestVmError(
          `QEMU did not start: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]}`,
        );
      pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    } else {
      const [command, argv] = qemu.setpriv
        ? [qemu.setpriv, ['--pdeathsig', 'SIGKILL', '--', qemu.path, ...args]]
        : [qemu.path, args];
      child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe'], shell: false, env });
      killOnExit(child);
      let stderr = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (c: string) => (stderr = (stderr + c).slice(-4096)));
      if (child.pid === undefined) throw new GuestVmError(`QEMU did not start: ${qemu.path}`);
      pid = child.pid;
      child.once('exit', (code, signal) => {
        if (Date.now() - started < 2000 && stderr)
          log(`QEMU ended at once (${signal ?? code}): ${stderr.trim().split('\n')[0]}`);
      });
    }
    const state: GuestState = {
      format: 'vmemct-guest-state/1',
      pid,
      sshHost: '127.0.0.1',
      sshPort,
      sshUser: 'root',
      sshKey: manifest.sshKey,
      knownHosts,
      ...files,
      kernelRelease: manifest.kernelRelease,
      deviceId: options.withoutVirtioMem ? null : GUEST_DEVICE_ID,
      argv: [qemu.path, ...args],
      detached: options.detached,
      ...(options.icount ? { icount: true } : {}),
    };
    fs.writeFileSync(path.join(runDir, 'guest-state.json'), `${JSON.stringify(state, null, 2)}\n`);
    const vm = new GuestVm(state, runDir, child);
    try {
      await vm.waitForSsh(options.bootTimeoutMs ?? 90_000);
    } catch (e) {
      await vm.stop();
      throw e;
    }
    log(`guest up: SSH answered ${((Date.now() - started) / 1000).toFixed(1)} s after QEMU started`);
    return vm;
  }

  /** Polls SSH until the guest logs us in. */
  async waitForSsh(timeoutMs: number): Promise<void> {
    try {
      const shell = await waitForSsh(this.ssh, timeoutMs, {
        setpriv: findTool('setpriv'),
        gone: () =>
          this.running ? undefined : `QEMU (pid ${this.state.pid}) ended during boot; see ${this.state.consoleLog}`,
      });
      shell.close();
    } catch (e) {
      throw new GuestVmError(`${(e as Error).message}; see ${this.state.consoleLog}`);
    }
  }

  /** Ends QEMU: QMP `quit` on the control socket, then SIGKILL by PID. Never throws. */
  async stop(graceMs = 3000): Promise<void> {
    await stopGuestProcess(this.state, this.runDir, graceMs);
    removeMemoryFile(this.state);
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        this.child!.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** The state of the guest in `runDir`, or undefined when none was started there. */
export function readState(runDir: string): GuestState | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(runDir, 'guest-state.json'), 'utf8')) as GuestState;
    return s.format === 'vmemct-guest-state/1' ? s : undefined;
  } catch {
    return undefined;
  }
}

async function stopGuestProcess(state: GuestState, runDir: string, graceMs: number): Promise<boolean> {
  if (!processAlive(state.pid)) return false;
  if (!isOurQemu(state.pid, runDir)) return false;
  try {
    const qmp = await QmpClient.connect(state.controlSocket, Date.now() + 1000, 2000);
    await qmp.execute('quit').catch(() => undefined);
    qmp.close();
  } catch {
    /* fall through to the signal */
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && processAlive(state.pid)) await sleep(50);
  if (processAlive(state.pid)) {
    try {
      process.kill(state.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    const killDeadline = Date.now() + 3000;
    while (Date.now() < killDeadline && processAlive(state.pid)) await sleep(20);
  }
  return true;
}

/** Removes the folder of a guest's shared memory file (only one this module made). */
function removeMemoryFile(state: GuestState): void {
  const folder = state.memoryFile && path.dirname(state.memoryFile);
  if (folder && folder.startsWith(SHARED_MEMORY_PREFIX) && !processAlive(state.pid))
    fs.rmSync(folder, { recursive: true, force: true });
}

/** `guest down`: ends the guest of `dir` if one runs. Returns whether one was running. */
export async function downGuest(dir: string, runDir = path.join(dir, 'run')): Promise<boolean> {
  const resolved = path.resolve(runDir);
  const state = readState(resolved);
  if (!state) return false;
  const was = await stopGuestProcess(state, resolved, 3000);
  removeMemoryFile(state);
  fs.rmSync(path.join(resolved, 'guest-state.json'), { force: true });
  return was;
}

/** What `guest status` reports. */
export interface GuestStatus {
  readonly running: boolean;
  readonly state?: GuestState;
  readonly sshAnswers?: boolean;
  /** The virtio-mem device's entry of `query-memory-devices`, as QEMU gave it. */
  readonly device?: MemoryDeviceEntry;
}

/** `guest status`. */
export async function guestStatus(dir: string, runDir = path.join(dir, 'run')): Promise<GuestStatus> {
  const resolved = path.resolve(runDir);
  const state = readState(resolved);
  if (!state || !processAlive(state.pid) || !isOurQemu(state.pid, resolved)) return { running: false, state };
  let device: Record<string, unknown> | undefined;
  try {
    const qmp = await QmpClient.connect(state.controlSocket, Date.now() + 1000, 3000);
    const devices = await listVirtioMemDevices(qmp);
    qmp.close();
    device = devices[0];
  } catch {
    /* reported as unknown */
  }
  let sshAnswers = false;
  try {
    const shell = await GuestShell.connect(
      {
        host: state.sshHost,
        port: state.sshPort,
        user: state.sshUser,
        key: state.sshKey,
        knownHosts: state.knownHosts,
      },
      3000,
    );
    shell.close();
    sshAnswers = true;
  } catch {
    /* not answering */
  }
  return { running: true, state, sshAnswers, device };
}

/** The `vmemct run` options that point the ssh-guest adapter at a guest. */
export function runArguments(state: GuestState): string[] {
  return [
    '--adapter',
    'ssh-guest',
    '--ssh',
    `${state.sshUser}@${state.sshHost}:${state.sshPort}`,
    '--ssh-key',
    state.sshKey,
    '--ssh-known-hosts',
    state.knownHosts,
    '--qmp',
    state.qmpSocket,
    '--qemu-trace',
    state.traceLog,
    ...(state.gdbSocket ? ['--gdb', state.gdbSocket] : []),
    ...(state.icount ? ['--icount'] : []),
  ];
}
