/**
 * Host control for a VMM the suite did not start (cloud-hypervisor, Firecracker, …): each host
 * action runs a program the user named in a host-control file (`--host-control FILE`), as an argv
 * template. No shell is involved: the program is started with its arguments as given, after the
 * placeholders (`{requested_size}`, `{requested_size_mib}`, …) were replaced by numbers the suite
 * computed. Nothing from a vector reaches the program but those numbers.
 *
 * A hook that exits non-zero is an `error` for that vector, one that does not finish in time a
 * `timeout` (it is killed); both carry the end of its stderr.
 */
import { spawn } from 'node:child_process';
import { AdapterError, AdapterTimeoutError } from '../../core/src/contract';
import type { ResizeOutcome } from '../../core/src/contract';
import type { HostAction, HostControl } from './host-control';

/** The hooks of a host-control file, and the host action each one serves. */
export const HOOKS = {
  resize: {
    action: 'resize',
    placeholders: [
      'requested_size',
      'requested_size_kib',
      'requested_size_mib',
      'requested_size_gib',
      'total_size',
      'total_size_kib',
      'total_size_mib',
      'total_size_gib',
    ],
  },
  system_reset: { action: 'systemReset', placeholders: [] },
  host_busy: { action: 'hostBusy', placeholders: [] },
  host_release: { action: 'hostBusy', placeholders: [] },
  suspend: { action: 'suspendAndWake', placeholders: [] },
} as const satisfies Readonly<Record<string, { action: HostAction; placeholders: readonly string[] }>>;

/** The name of one hook (a key of a host-control file). */
export type HookName = keyof typeof HOOKS;

/** Every hook name, in a stable order. */
export const HOOK_NAMES = Object.keys(HOOKS) as readonly HookName[];

/** Every placeholder a template may name, with the unit (in bytes) its number is counted in. */
export const PLACEHOLDER_UNITS: Readonly<Record<string, bigint>> = {
  requested_size: 1n,
  requested_size_kib: 1n << 10n,
  requested_size_mib: 1n << 20n,
  requested_size_gib: 1n << 30n,
  // The VM's whole memory: the file's base_size plus requested_size (cloud-hypervisor's `resize --memory`).
  total_size: 1n,
  total_size_kib: 1n << 10n,
  total_size_mib: 1n << 20n,
  total_size_gib: 1n << 30n,
};

/** Whether a template argument names a `{total_size…}` placeholder (the file then needs `base_size`). */
export function namesTotalSize(arg: string): boolean {
  return [...arg.matchAll(PLACEHOLDER)].some((m) => m[1]!.startsWith('total_size'));
}

/** A placeholder in a template argument: `{name}` (other braces are literal). */
const PLACEHOLDER = /\{([a-z_][a-z0-9_]*)\}/g;

/** Where a template was declared, for messages. */
export interface TemplateSite {
  readonly file: string;
  readonly line: number;
  /** The field, e.g. `resize[3]`. */
  readonly field: string;
}

/** One hook: the program and its arguments, with placeholders. */
export interface ArgvTemplate {
  readonly argv: readonly string[];
  /** Where each argument was declared (same length as `argv`). */
  readonly sites: readonly TemplateSite[];
}

/** A host-control file, checked. */
export interface HostControlTemplates {
  readonly file: string;
  /** Bound on each hook, in milliseconds. */
  readonly timeoutMs: number;
  /** Memory the VM has besides the device's requested size, in bytes (for `{total_size…}`). */
  readonly baseSize?: bigint;
  readonly hooks: Readonly<Partial<Record<HookName, ArgvTemplate>>>;
}

/** Where-and-why of a template that does not fit its hook. */
export interface TemplateProblem {
  readonly site: TemplateSite;
  readonly reason: string;
}

/** The placeholders of `template` its hook does not offer (none: the template is usable). */
export function checkTemplate(hook: HookName, template: ArgvTemplate): TemplateProblem[] {
  const allowed: readonly string[] = HOOKS[hook].placeholders;
  const problems: TemplateProblem[] = [];
  template.argv.forEach((arg, i) => {
    for (const m of arg.matchAll(PLACEHOLDER)) {
      const name = m[1]!;
      if (!allowed.includes(name))
        problems.push({
          site: template.sites[i]!,
          reason:
            allowed.length === 0
              ? `unknown placeholder {${name}}: '${hook}' takes none`
              : `unknown placeholder {${name}}: '${hook}' takes ${allowed.map((a) => `{${a}}`).join(', ')}`,
        });
    }
  });
  return problems;
}

/**
 * The argv of `template` with its placeholders filled from `values` (bytes).
 * @throws AdapterError naming file, line and field when a value is not a whole number of the unit asked.
 */
export function expandTemplate(template: ArgvTemplate, values: Readonly<Record<string, bigint>>): string[] {
  return template.argv.map((arg, i) =>
    arg.replace(PLACEHOLDER, (_all, name: string) => {
      const unit = PLACEHOLDER_UNITS[name];
      const site = template.sites[i]!;
      const base = name.replace(/_(kib|mib|gib)$/, '');
      const value = values[base];
      if (unit === undefined || value === undefined)
        throw new AdapterError(`${site.file}:${site.line}: ${site.field}: no value for {${name}}`);
      if (value % unit !== 0n)
        throw new AdapterError(
          `${site.file}:${site.line}: ${site.field}: ${base} ${value} is not a whole number of ${name.slice(base.length + 1).toUpperCase() || 'bytes'}; use a finer unit`,
        );
      return (value / unit).toString();
    }),
  );
}

/** How many bytes of a hook's stderr are kept for messages. */
const STDERR_TAIL_BYTES = 2048;

/** Runs one hook: resolves when it exits 0; AdapterError / AdapterTimeoutError otherwise, with its stderr tail. */
export function runHook(name: string, argv: readonly string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    let settled = false;
    const finish = (error?: AdapterError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], shell: false });
    const tail = (): string => (stderr.trim() ? `stderr (end):\n${stderr.trim()}` : 'stderr: (empty)');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new AdapterTimeoutError(`host-control hook '${name}' did not finish within ${timeoutMs} ms`, tail()));
    }, timeoutMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
    });
    child.on('error', (e) =>
      finish(new AdapterError(`host-control hook '${name}' (${argv[0]}) cannot start: ${e.message}`)),
    );
    child.on('close', (code, signal) => {
      if (code === 0) finish();
      else
        finish(
          new AdapterError(
            `host-control hook '${name}' (${argv[0]}) ${signal ? `was killed by ${signal}` : `exited with ${code}`}`,
            tail(),
          ),
        );
    });
  });
}

/** {@link HostControl} through the argv templates of a host-control file. */
export class ArgvHostControl implements HostControl {
  readonly name: string;
  readonly missing: Partial<Record<HostAction, string>> = {};

  constructor(private readonly templates: HostControlTemplates) {
    this.name = `host-control file ${templates.file}`;
    const has = (hook: HookName): boolean => templates.hooks[hook] !== undefined;
    const lacking = (hooks: readonly HookName[]): string =>
      `${templates.file} has no ${hooks.map((h) => `'${h}'`).join(' and ')} hook`;
    if (!has('resize')) {
      this.resize = undefined;
      this.missing.resize = lacking(['resize']);
    }
    if (!has('system_reset')) {
      this.systemReset = undefined;
      this.missing.systemReset = lacking(['system_reset']);
    }
    if (!has('host_busy') || !has('host_release')) {
      this.hostBusy = undefined;
      this.missing.hostBusy = lacking(['host_busy', 'host_release'].filter((h) => !has(h as HookName)) as HookName[]);
    }
    if (!has('suspend')) {
      this.suspendAndWake = undefined;
      this.missing.suspendAndWake = lacking(['suspend']);
    }
  }

  private run(hook: HookName, values: Readonly<Record<string, bigint>> = {}): Promise<void> {
    const template = this.templates.hooks[hook]!;
    return runHook(hook, expandTemplate(template, values), this.templates.timeoutMs);
  }

  /** The `resize` hook; its success means the VMM took the new requested size. */
  resize? = async (requestedSize: bigint): Promise<ResizeOutcome> => {
    const values: Record<string, bigint> = { requested_size: requestedSize };
    if (this.templates.baseSize !== undefined) values.total_size = this.templates.baseSize + requestedSize;
    await this.run('resize', values);
    return { kind: 'applied' };
  };

  /** The `system_reset` hook. */
  systemReset? = (): Promise<void> => this.run('system_reset');

  /** The `host_busy` hook (`true`) or the `host_release` hook (`false`). */
  hostBusy? = (busy: boolean): Promise<void> => this.run(busy ? 'host_busy' : 'host_release');

  /** The `suspend` hook: suspends the VM and wakes it up again. */
  suspendAndWake? = (): Promise<void> => this.run('suspend');
}
