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
import { SizeStyle, formatSize } from '../../../spec/src/index';
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
import { GuestManifest, findTool, readManifest } from './guest-build';
import { GuestShell, SshTarget, waitForSsh } from './ssh-shell';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
/** Where q35's device memory begins when boot memory fits below 4 GiB. */
const DEVICE_MEMORY_BASE = 4n * GiB;

/** The guest could not be booted or found. */
export class GuestVmError extends Error {
  override readonly name: string = 'GuestVmError';
}

/** A device or machine value QEMU would refuse (a usage error for `guest up`). */
export class GuestOptionError extends GuestVmError {
  override readonly name = 'GuestOptionError';
}

/** The device and machine a guest boots with. */
export interface GuestDeviceOptions {
  /** virtio-mem block size (default 2 MiB). */
  readonly blockSize?: bigint;
  /** Size of the memory backend = the device region (default 1 GiB). */
  readonly regionSize?: bigint;
  /** requested_size at boot (default 0). */
  readonly requestedSize?: bigint;
  /** Offer VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE (`unplugged-inaccessible=on`). */
  readonly unpluggedInaccessible?: boolean;
  /** Guest-physical start of the device region (`memaddr`; default: QEMU places it). */
  readonly addr?: bigint;
  /** NUMA node of the device (default 0; nodes 0 to it are created, boot memory on node 0). */
  readonly node?: number;
  /** Boot memory (default 1 GiB). */
  readonly memory?: bigint;
  /** Leave the virtio-mem device out (to check how a guest without one is reported). */
  readonly withoutVirtioMem?: boolean;
  /**
   * Machine type (default q35). i440fx (`pc`) keeps up to 3.5 GiB of boot memory below 4 GiB,
   * so a guest with more than q35's 2.75 GiB still has its device memory begin at 4 GiB.
   */
  readonly machine?: 'q35' | 'pc';
  /** Physical address bits of the vCPU (`-cpu max,phys-bits=N`; default QEMU's 40 under TCG: 1 TiB). */
  readonly physBits?: number;
  /**
   * Allow `requestedSize` above the region: QEMU accepts such a requested-size on the command
   * line (and only there; `qom-set` refuses it).
   */
  readonly requestedBeyondRegion?: boolean;
  /**
   * Guest time from the instruction counter (`-icount shift=auto,sleep=off`) on one vCPU: while
   * the guest idles its clock jumps to the next timer, so the driver's BUSY back-off (50 s,
   * doubling to 300 s) passes in a fraction of a second. With two vCPUs such a guest hangs at
   * boot, hence `-smp 1`.
   */
  readonly icount?: boolean;
  /**
   * Enable ACPI S3 on q35 (`-global ICH9-LPC.disable_s3=0`) so the guest can suspend to RAM
   * (`suspend` steps). QEMU ≥ 9.2 then offers PERSISTENT_SUSPEND; 7.2 never does.
   */
  readonly suspendToRam?: boolean;
  /**
   * Further virtio-mem devices (QOM ids `vm1`, `vm2`, …), each on its own NUMA node, for
   * multi-device vectors. With them the guest gets one NUMA node per node number up to the
   * highest, boot memory split by `memdev` over the nodes and one CPU per node where there are
   * CPUs (a node with neither CPU nor memory is missing from the guest's SRAT, and Linux maps its
   * memory to node 0).
   */
  readonly extraDevices?: readonly GuestExtraDevice[];
}

/** A further virtio-mem device of a multi-device guest (block size as the first device's). */
export interface GuestExtraDevice {
  /** NUMA node of the device. */
  readonly node: number;
  /** Size of its memory backend = its region (default 1 GiB). */
  readonly regionSize?: bigint;
  /** Guest-physical start of its region (`memaddr`; default: QEMU places it). */
  readonly addr?: bigint;
}

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

/** The QOM id of the guest's virtio-mem device. */
export const GUEST_DEVICE_ID = 'vm0';

/** The kernel command line. */
export const GUEST_KERNEL_ARGS = 'console=ttyS0 memhp_default_state=online_movable panic=-1';

/** QEMU's size syntax, in whole MiB where possible (`-m` reads a bare number as MiB, so memory is always whole MiB). */
const QEMU_MIB: SizeStyle = { units: [[20n, 'M']], separator: '', bytesUnit: '', zero: '0M' };

function sizeArg(bytes: bigint): string {
  return formatSize(bytes, QEMU_MIB);
}

/** QEMU's argument vector for a guest (without daemonize/pidfile). Pure; checked values only. */
export function guestQemuArguments(
  manifest: Pick<GuestManifest, 'kernel' | 'initrd'>,
  files: {
    qmpSocket: string;
    controlSocket: string;
    traceLog: string;
    consoleLog: string;
    gdbSocket?: string;
    memoryFile?: string;
  },
  sshPort: number,
  device: GuestDeviceOptions,
): string[] {
  const blockSize = device.blockSize ?? 2n * MiB;
  const regionSize = device.regionSize ?? 1n * GiB;
  const requested = device.requestedSize ?? 0n;
  const memory = device.memory ?? 1n * GiB;
  if (blockSize < MiB || (blockSize & (blockSize - 1n)) !== 0n)
    throw new GuestOptionError(`--block-size ${blockSize} must be a power of two of at least 1 MiB`);
  if (regionSize <= 0n || regionSize % blockSize !== 0n)
    throw new GuestOptionError(`--region-size ${regionSize} must be a positive multiple of the block size`);
  const requestedLimit = device.requestedBeyondRegion ? requested : regionSize;
  if (requested < 0n || requested > requestedLimit || requested % blockSize !== 0n)
    throw new GuestOptionError(`--requested-size ${requested} must be a multiple of the block size within the region`);
  if (memory < 256n * MiB || memory % MiB !== 0n)
    throw new GuestOptionError(`--memory ${memory} must be a whole number of MiB, at least 256 MiB`);
  if (!Number.isInteger(sshPort) || sshPort < 1 || sshPort > 65535) throw new GuestVmError(`bad SSH port ${sshPort}`);
  const physBits = device.physBits;
  if (physBits !== undefined && (!Number.isInteger(physBits) || physBits < 36 || physBits > 52))
    throw new GuestOptionError(`phys-bits ${physBits} must be a whole number from 36 to 52`);
  const node = device.node ?? 0;
  if (!Number.isInteger(node) || node < 0) throw new GuestOptionError(`node ${node} must be a NUMA node number`);
  if (device.addr !== undefined && (device.addr < DEVICE_MEMORY_BASE || device.addr % blockSize !== 0n))
    throw new GuestOptionError(`addr ${device.addr} must be at or above 4 GiB and aligned to the block size`);
  // Device memory (from 4 GiB on q35 with this little boot memory) must reach the region's end.
  const regionEnd = (device.addr ?? DEVICE_MEMORY_BASE) + regionSize - DEVICE_MEMORY_BASE;
  const extraDevices = device.extraDevices ?? [];
  const roundUp = (bytes: bigint): bigint => ((bytes + GiB - 1n) / GiB) * GiB;
  // Further devices go after the first (or at their own address): device memory must reach the last end.
  let deviceEnd = roundUp(regionEnd);
  for (const extra of extraDevices) {
    const size = extra.regionSize ?? GiB;
    const placed = extra.addr === undefined ? 0n : roundUp(extra.addr + size - DEVICE_MEMORY_BASE);
    deviceEnd = deviceEnd + roundUp(size) > placed ? deviceEnd + roundUp(size) : placed;
  }
  const maxMem = memory + deviceEnd + GiB;
  const args = [
    '-machine',
    device.machine ?? 'q35',
    '-accel',
    'tcg',
    '-cpu',
    physBits === undefined ? 'max' : `max,phys-bits=${physBits}`,
    '-smp',
    device.icount ? '1' : '2',
    '-m',
    `${sizeArg(memory)},maxmem=${sizeArg(maxMem)}`,
    '-nodefaults',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    `file:${files.consoleLog}`,
    '-kernel',
    manifest.kernel,
    '-initrd',
    manifest.initrd,
    '-append',
    GUEST_KERNEL_ARGS,
    '-netdev',
    `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22`,
    '-device',
    'virtio-net-pci,netdev=n0',
    '-qmp',
    `unix:${files.qmpSocket},server=on,wait=off`,
    '-chardev',
    `socket,id=vmemct-control,path=${files.controlSocket},server=on,wait=off`,
    '-mon',
    'chardev=vmemct-control,mode=control',
    '-D',
    files.traceLog,
    '-trace',
    'enable=virtio_mem_*',
    // Wall-clock stamps on trace lines: requests carry the time QEMU took them (retry_delay).
    '-msg',
    'timestamp=on',
  ];
  if (files.gdbSocket) args.push('-gdb', `unix:${files.gdbSocket},server=on,wait=off`);
  if (device.icount) args.push('-icount', 'shift=auto,sleep=off');
  if (device.suspendToRam)
    args.push('-global', device.machine === 'pc' ? 'PIIX4_PM.disable_s3=0' : 'ICH9-LPC.disable_s3=0');
  if (extraDevices.length > 0) args.push(...numaNodeArguments(memory, node, extraDevices));
  else if (node > 0) {
    args.push('-object', `memory-backend-ram,id=vmemct-ram0,size=${sizeArg(memory)}`);
    args.push('-numa', 'node,nodeid=0,memdev=vmemct-ram0');
    for (let n = 1; n <= node; n++) args.push('-numa', `node,nodeid=${n}`);
  }
  if (!device.withoutVirtioMem) {
    const placed = [
      ...(device.addr !== undefined ? [`memaddr=${device.addr}`] : []),
      ...(node > 0 ? [`node=${node}`] : []),
      // Always explicit: QEMU ≥ 8.1 turns it on by default for its newer machine types.
      `unplugged-inaccessible=${device.unpluggedInaccessible ? 'on' : 'off'}`,
    ];
    args.push(
      '-object',
      files.memoryFile
        ? // A file shared with the host: QEMU punches a hole for every block it unplugs.
          `memory-backend-file,id=vmemct-mem0,size=${sizeArg(regionSize)},mem-path=${files.memoryFile},share=on`
        : // reserve=off: a large region is backed only where blocks are plugged (as over qtest).
          `memory-backend-ram,id=vmemct-mem0,size=${sizeArg(regionSize)},reserve=off`,
      '-device',
      [
        `virtio-mem-pci,id=${GUEST_DEVICE_ID},memdev=vmemct-mem0,block-size=${sizeArg(blockSize)},requested-size=${sizeArg(requested)}`,
        ...placed,
      ].join(','),
    );
  }
  args.push(...extraDeviceArguments(blockSize, extraDevices));
  return args;
}

/**
 * The NUMA nodes of a multi-device guest: nodes 0 to the highest device node, boot memory split
 * over them in whole MiB (the last node takes the rest) and CPU n on node n for the two CPUs.
 */
function numaNodeArguments(memory: bigint, firstNode: number, extraDevices: readonly GuestExtraDevice[]): string[] {
  const nodes = Math.max(firstNode, ...extraDevices.map((d) => d.node)) + 1;
  for (const d of extraDevices)
    if (!Number.isInteger(d.node) || d.node < 0)
      throw new GuestOptionError(`node ${d.node} must be a NUMA node number`);
  const share = (memory / BigInt(nodes) / MiB) * MiB;
  if (share < 128n * MiB)
    throw new GuestOptionError(`--memory ${memory} leaves less than 128 MiB of boot memory on each of ${nodes} nodes`);
  const args: string[] = [];
  for (let n = 0; n < nodes; n++) {
    const size = n === nodes - 1 ? memory - share * BigInt(nodes - 1) : share;
    args.push('-object', `memory-backend-ram,id=vmemct-ram${n},size=${sizeArg(size)}`);
    args.push('-numa', `node,nodeid=${n},${n < 2 ? `cpus=${n},` : ''}memdev=vmemct-ram${n}`);
  }
  return args;
}

/** A `virtio-mem-pci` device `vm<i>` (i from 1) per further device, each on its node. */
function extraDeviceArguments(blockSize: bigint, extraDevices: readonly GuestExtraDevice[]): string[] {
  const args: string[] = [];
  extraDevices.forEach((d, i) => {
    const id = `vm${i + 1}`;
    const regionSize = d.regionSize ?? GiB;
    if (regionSize <= 0n || regionSize % blockSize !== 0n)
      throw new GuestOptionError(`region size ${regionSize} of ${id} must be a positive multiple of the block size`);
    if (d.addr !== undefined && (d.addr < DEVICE_MEMORY_BASE || d.addr % blockSize !== 0n))
      throw new GuestOptionError(`addr ${d.addr} of ${id} must be at or above 4 GiB and aligned to the block size`);
    args.push('-object', `memory-backend-ram,id=vmemct-mem${i + 1},size=${sizeArg(regionSize)},reserve=off`);
    args.push(
      '-device',
      [
        `virtio-mem-pci,id=${id},memdev=vmemct-mem${i + 1},block-size=${sizeArg(blockSize)},requested-size=0`,
        ...(d.addr !== undefined ? [`memaddr=${d.addr}`] : []),
        `node=${d.node}`,
        // As the first device: explicit, since QEMU ≥ 8.1 turns it on by default.
        'unplugged-inaccessible=off',
      ].join(','),
    );
  });
  return args;
}

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
