/**
 * Starting and ending QEMU. The VM never runs guest code: `-S` keeps the CPU paused, and a
 * machine that must run (to enter S3, see s3-suspend.ts) only halts: its firmware is
 * {@link haltFirmware}, not SeaBIOS, so nothing but the runner touches the devices. qtest
 * (`-qtest stdio`) is the driver's access to memory and I/O, QMP (a unix socket in a private
 * temporary directory) is the host's.
 *
 * Hygiene: the argument vector is built without a shell; QEMU is started under
 * `setpriv --pdeathsig SIGKILL` so the kernel kills it when this process dies, even by SIGKILL;
 * every live instance is also killed by PID when this process exits; stderr is drained into a
 * bounded buffer that failing vectors get as diagnostics.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  QemuBinary,
  QmpClient,
  dataDirArguments,
  forgetChild,
  killOnExit,
  processAlive,
} from '../../qemu-platform/src/index';
import { QtestClient } from './qtest';

/** QEMU started but did not become ready (bad arguments, a crash at start-up). */
export class QemuStartError extends Error {
  override readonly name = 'QemuStartError';
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

/** Where to find QEMU and how long to wait for it. */
export interface QemuBinaryOptions {
  /** Path or name of `qemu-system-x86_64` (default: `$VMEMCT_QEMU` or the one on PATH). */
  readonly binary?: string;
  /** Bound on start-up and on each qtest batch or QMP command, in milliseconds. */
  readonly commandTimeoutMs?: number;
}

const STDERR_LIMIT = 16 * 1024;
/** Size of the halting firmware: x86 firmware images are a multiple of 64 KiB. */
const FIRMWARE_SIZE = 64 * 1024;
/** HLT: with interrupts off (as after a reset) the CPU stays halted on the first instruction. */
const HLT = 0xf4;

/**
 * A firmware image of HLT instructions only: the CPU starts at the reset vector near its end,
 * halts there with interrupts disabled, and does nothing else (no PCI enumeration, no reboot).
 */
export function haltFirmware(): Uint8Array {
  return new Uint8Array(FIRMWARE_SIZE).fill(HLT);
}
const TEMP_PREFIX = 'vmemct-qemu-';

/**
 * Removes temporary directories left by runs that were killed (SIGKILL leaves no chance to clean
 * up): their names carry the runner's pid, and a directory whose runner is gone is stale.
 */
export function removeStaleTempDirs(): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(os.tmpdir());
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const entry of entries) {
    const m = new RegExp(`^${TEMP_PREFIX}([0-9]+)-`).exec(entry);
    if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    const dir = path.join(os.tmpdir(), entry);
    try {
      // Only our own leftovers: another user's directory is theirs to clean.
      if (uid !== undefined && fs.statSync(dir).uid !== uid) continue;
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

/** A running QEMU with its qtest and QMP connections. */
export class QemuProcess {
  private stderrText = '';
  private exitInfo: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly qtest: QtestClient,
    /** QEMU's private folder (its QMP socket, the migration sink); removed when QEMU ends. */
    readonly tempDir: string,
    /** The arguments QEMU was started with (for diagnostics). */
    readonly argv: readonly string[],
  ) {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderrText = (this.stderrText + chunk).slice(-STDERR_LIMIT);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `killed by ${signal}` : `exited with status ${code}`;
        qtest.fail(new Error(`QEMU ${this.exitInfo}`));
        this.qmpClient?.close();
        resolve();
      });
    });
  }

  private qmpClient: QmpClient | undefined;

  /** The QMP connection. */
  get qmp(): QmpClient {
    if (!this.qmpClient) throw new Error('QMP not connected');
    return this.qmpClient;
  }

  /** QEMU's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether QEMU is still running. */
  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Why QEMU ended, if it did. */
  get exitDescription(): string | undefined {
    return this.exitInfo;
  }

  /** The last 16 KiB QEMU wrote to stderr. */
  get stderr(): string {
    return this.stderrText;
  }

  /**
   * Starts QEMU with `args` (device and machine options; qtest and QMP options are added here,
   * and an unpacked QEMU's `-L` data folders go first) and waits until qtest and QMP both answer.
   */
  static async start(
    binary: QemuBinary,
    args: readonly string[],
    startTimeoutMs: number,
    commandTimeoutMs = startTimeoutMs,
  ): Promise<QemuProcess> {
    const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), `${TEMP_PREFIX}${process.pid}-`));
    const qmpSocket = path.join(tempDir, 'qmp.sock');
    const firmware = path.join(tempDir, 'halt.bin');
    fs.writeFileSync(firmware, haltFirmware());
    const qemuArgv = [
      ...dataDirArguments(binary.launch),
      ...args,
      '-bios',
      firmware,
      '-qtest',
      'stdio',
      '-qtest-log',
      '/dev/null',
      '-qmp',
      `unix:${qmpSocket},server=on,wait=off`,
    ];
    const [command, argv] = binary.setpriv
      ? [binary.setpriv, ['--pdeathsig', 'SIGKILL', '--', binary.path, ...qemuArgv]]
      : [binary.path, qemuArgv];
    const child = spawn(command, argv, {
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
      env: { ...process.env, ...binary.launch.environment },
    });
    killOnExit(child);
    const qtest = new QtestClient(child.stdin!, child.stdout!, commandTimeoutMs);
    const qemu = new QemuProcess(child, qtest, tempDir, [binary.path, ...qemuArgv]);
    const spawnFailure = new Promise<never>((_, reject) => child.once('error', (e) => reject(e)));
    spawnFailure.catch(() => undefined);
    try {
      const deadline = Date.now() + startTimeoutMs;
      const ready = Promise.all([
        qtest.command('endianness'),
        QmpClient.connect(qmpSocket, deadline, commandTimeoutMs, () => !qemu.running).then((c) => {
          qemu.qmpClient = c;
        }),
      ]);
      const died = qemu.exited.then(() => {
        throw new Error(`QEMU ${qemu.exitInfo} during start-up`);
      });
      await Promise.race([ready, died, spawnFailure]);
      return qemu;
    } catch (e) {
      await qemu.kill();
      throw new QemuStartError(`QEMU did not start: ${firstLine(qemu.stderr) ?? (e as Error).message}`, qemu.stderr);
    }
  }

  /** Waits up to `ms` for QEMU to exit; resolves whether it has. */
  async waitForExit(ms: number): Promise<boolean> {
    if (!this.running) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
    const ended = await Promise.race([this.exited.then(() => true), timeout]);
    clearTimeout(timer);
    return ended;
  }

  /** Asks QEMU to quit, then kills it by PID if it has not exited promptly. Never throws. */
  async stop(graceMs = 500): Promise<void> {
    if (this.running) {
      this.qmpClient?.execute('quit').catch(() => undefined);
      if (!(await this.waitForExit(graceMs))) await this.kill();
    }
    this.cleanUp();
  }

  /** Kills QEMU by PID at once and waits for it to be reaped. Never throws. */
  async kill(): Promise<void> {
    if (this.running && this.child.pid === undefined) {
      this.exitInfo = 'did not start';
      forgetChild(this.child);
      this.qtest.fail(new Error('QEMU did not start'));
    }
    if (this.running) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
      await this.exited;
    }
    this.cleanUp();
  }

  private cleanUp(): void {
    this.qmpClient?.close();
    fs.rmSync(this.tempDir, { recursive: true, force: true });
  }
}

function firstLine(text: string): string | undefined {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.length > 0 && !l.includes('g_timer_elapsed'));
  return line;
}
