/**
 * A shell in the guest over one long-lived OpenSSH connection (`ssh -T … sh`). Commands are
 * written to the remote shell's stdin, each followed by a marker line carrying its exit status,
 * so one connection serves a whole run with one round trip per command.
 *
 * Safety: command text is built by this adapter from numbers it checked; nothing from a vector
 * is ever written here as text. Host keys are verified (`StrictHostKeyChecking=yes`) against
 * `knownHosts`, or the user's own known_hosts files when none is given.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { sleep } from '../../core/src/sleep';
import { killOnExit } from '../../qemu-platform/src/index';

/** Where and as whom to log in. */
export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Private key file (`-i`); default: ssh's own choice. */
  readonly key?: string;
  /** known_hosts file to verify the host key against; default: ssh's (~/.ssh/known_hosts). */
  readonly knownHosts?: string;
}

/** Why the connection failed, in terms a user can act on. */
export type SshFailureKind = 'unreachable' | 'auth' | 'host-key' | 'closed' | 'timeout' | 'missing-client';

/** The connection failed or a command did not finish in time. */
export class SshError extends Error {
  override readonly name = 'SshError';
  constructor(
    message: string,
    readonly kind: SshFailureKind,
  ) {
    super(message);
  }
}

/** The result of one command. */
export interface ShellResult {
  readonly status: number;
  readonly output: string;
}

/** `ssh` arguments for a target (no remote command). */
export function sshArguments(target: SshTarget, connectTimeoutS = 5): string[] {
  const args = [
    '-T',
    '-p',
    String(target.port),
    '-o',
    'BatchMode=yes',
    '-o',
    `ConnectTimeout=${connectTimeoutS}`,
    '-o',
    'ServerAliveInterval=2',
    '-o',
    'ServerAliveCountMax=5',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    // INFO, not ERROR: ssh reports a server that stopped answering ("Timeout, server … not
    // responding", after ServerAliveCountMax keepalives) and a closed connection at INFO level.
    'LogLevel=INFO',
  ];
  if (target.key) args.push('-i', target.key, '-o', 'IdentitiesOnly=yes');
  if (target.knownHosts)
    args.push('-o', `UserKnownHostsFile=${target.knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null');
  if (!/^[A-Za-z0-9._-]+$/.test(target.user)) throw new Error(`invalid SSH user name '${target.user}'`);
  if (!/^[A-Za-z0-9.:_%-]+$/.test(target.host)) throw new Error(`invalid SSH host '${target.host}'`);
  args.push(`${target.user}@${target.host}`);
  return args;
}

/** Classifies what ssh printed when it gave up. */
export function classifySshFailure(stderr: string, target: SshTarget): SshError {
  const where = `${target.user}@${target.host}:${target.port}`;
  const text =
    stderr
      .trim()
      .split('\n')
      .filter((l) => l.trim().length > 0)
      .slice(-2)
      .join(' / ') || 'ssh exited';
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(stderr)) {
    return new SshError(
      `${where}: the guest's host key is not trusted (${text}); add it to the known_hosts file given with --ssh-known-hosts (vmemct guest up writes one)`,
      'host-key',
    );
  }
  if (/Permission denied|Too many authentication failures|no mutual signature/i.test(stderr)) {
    return new SshError(
      `${where}: login refused (${text}); check --ssh-key and that its public half is in the guest's authorized_keys`,
      'auth',
    );
  }
  if (/Timeout, server .* not responding/i.test(stderr)) {
    return new SshError(`${where}: the guest stopped answering (${text})`, 'timeout');
  }
  if (
    /Connection refused|timed out|No route to host|Could not resolve|Network is unreachable|Connection reset|closed by remote host|kex_exchange_identification/i.test(
      stderr,
    )
  ) {
    return new SshError(
      `${where}: cannot reach the guest's SSH server (${text}); check the host and port, and that the guest is up`,
      'unreachable',
    );
  }
  return new SshError(`${where}: ssh failed (${text})`, 'closed');
}

/** A remote shell. */
export class GuestShell {
  private buffered = '';
  private stderrText = '';
  private exited = false;
  /** Why this side ended the connection (a command that outlasted its bound), if it did. */
  private endedBecause: SshError | undefined;
  private readonly marker = `__vmemct_${randomBytes(6).toString('hex')}`;
  private sequence = 0;
  private current:
    { resolve: (r: ShellResult) => void; reject: (e: Error) => void; tag: string; timer: NodeJS.Timeout } | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly child: ChildProcess,
    readonly target: SshTarget,
  ) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onOutput(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderrText = (this.stderrText + chunk).slice(-8192);
    });
    child.stdin!.on('error', () => undefined);
    child.once('exit', () => {
      this.exited = true;
      if (this.current) {
        clearTimeout(this.current.timer);
        this.current.reject(classifySshFailure(this.stderrText, target));
        this.current = undefined;
      }
    });
  }

  /**
   * Logs in and checks the shell answers within `timeoutMs`. `sshBinary` defaults to `ssh` on
   * PATH; `setpriv`, when given, ties ssh to this process (`--pdeathsig SIGKILL`).
   */
  static async connect(
    target: SshTarget,
    timeoutMs: number,
    options: { sshBinary?: string; setpriv?: string } = {},
  ): Promise<GuestShell> {
    if (target.key && !fs.existsSync(target.key)) throw new SshError(`SSH key ${target.key} does not exist`, 'auth');
    if (target.knownHosts && !fs.existsSync(target.knownHosts))
      throw new SshError(`known_hosts file ${target.knownHosts} does not exist`, 'host-key');
    const ssh = options.sshBinary ?? 'ssh';
    const argv = [...sshArguments(target, Math.max(1, Math.ceil(timeoutMs / 1000))), 'exec /bin/sh'];
    const [command, args] = options.setpriv
      ? [options.setpriv, ['--pdeathsig', 'SIGKILL', '--', ssh, ...argv]]
      : [ssh, argv];
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    killOnExit(child);
    const shell = new GuestShell(child, target);
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', (e) =>
        reject(
          new SshError(
            `cannot run ${ssh}: ${e.message}; install it with \`apt-get install --no-install-recommends openssh-client\``,
            'missing-client',
          ),
        ),
      ),
    );
    spawnError.catch(() => undefined);
    try {
      const probe = await Promise.race([shell.run('echo vmemct-ready', timeoutMs), spawnError]);
      if (!probe.output.includes('vmemct-ready'))
        throw new SshError(`${target.host}:${target.port}: the remote shell did not echo`, 'closed');
      return shell;
    } catch (e) {
      shell.close();
      throw e;
    }
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.exited;
  }

  /** Runs `command` (one shell command list) and returns its status and output (stdout and stderr). */
  run(command: string, timeoutMs: number): Promise<ShellResult> {
    const next = this.queue.then(() => this.runNow(command, timeoutMs));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Runs `command` and fails unless its status is 0. */
  async check(command: string, timeoutMs: number, what: string): Promise<string> {
    const r = await this.run(command, timeoutMs);
    if (r.status !== 0)
      throw new SshError(
        `${what}: status ${r.status}${r.output.trim() ? `: ${r.output.trim().split('\n').slice(-2).join(' / ')}` : ''}`,
        'closed',
      );
    return r.output;
  }

  private runNow(command: string, timeoutMs: number): Promise<ShellResult> {
    if (this.endedBecause) return Promise.reject(this.endedBecause);
    if (this.exited) return Promise.reject(classifySshFailure(this.stderrText, this.target));
    const tag = `${this.marker}_${++this.sequence}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.current = undefined;
        const timedOut = new SshError(
          `${this.target.host}:${this.target.port}: the guest did not answer within ${timeoutMs} ms`,
          'timeout',
        );
        // The shell is now out of step (the command may still be running): end the connection.
        // Later commands on it fail the same way, not as an unexplained exit of ssh.
        this.endedBecause = timedOut;
        this.close();
        reject(timedOut);
      }, timeoutMs);
      this.current = { resolve, reject, tag, timer };
      this.buffered = '';
      // A subshell, so `exit` in a command ends the command, not the connection.
      this.child.stdin!.write(`(\n${command}\n) </dev/null 2>&1; echo "${tag} $?"\n`);
    });
  }

  private onOutput(chunk: string): void {
    this.buffered += chunk;
    const current = this.current;
    if (!current) return;
    const at = this.buffered.indexOf(`${current.tag} `);
    if (at < 0) return;
    const end = this.buffered.indexOf('\n', at);
    if (end < 0) return;
    const status = Number(this.buffered.slice(at + current.tag.length + 1, end).trim());
    const output = this.buffered.slice(0, at);
    this.buffered = this.buffered.slice(end + 1);
    clearTimeout(current.timer);
    this.current = undefined;
    current.resolve({ status, output });
  }

  /** Ends the connection (and the ssh process). Never throws. */
  close(): void {
    if (this.current) {
      clearTimeout(this.current.timer);
      this.current.reject(new SshError('connection closed', 'closed'));
      this.current = undefined;
    }
    if (!this.exited) {
      try {
        this.child.stdin!.end();
        this.child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

/**
 * Polls until the guest logs in (a booting or rebooting guest), for up to `timeoutMs`. Fails at
 * once on what waiting cannot fix (a refused key, an untrusted host key, no ssh client), or when
 * `gone()` says the machine has ended.
 */
export async function waitForSsh(
  target: SshTarget,
  timeoutMs: number,
  options: { setpriv?: string; gone?: () => string | undefined } = {},
): Promise<GuestShell> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | undefined;
  while (Date.now() < deadline) {
    const gone = options.gone?.();
    if (gone) throw new SshError(gone, 'closed');
    try {
      return await GuestShell.connect(target, 3000, { setpriv: options.setpriv });
    } catch (e) {
      last = e as Error;
      if (e instanceof SshError && (e.kind === 'auth' || e.kind === 'host-key' || e.kind === 'missing-client')) throw e;
    }
    await sleep(250);
  }
  throw new SshError(
    `${target.host}:${target.port}: the guest did not answer over SSH within ${timeoutMs} ms (${last?.message ?? 'no attempt'})`,
    'timeout',
  );
}
