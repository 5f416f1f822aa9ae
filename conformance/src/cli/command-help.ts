/**
 * `vmemct help [COMMAND]` and `vmemct COMMAND --help`: each command's usage and options. The
 * options listed are the specs the command itself hands to `parseArgs` (loaded from its module), so
 * help cannot list an option the command refuses or miss one it takes; each option's one-line
 * description comes from {@link OPTION_HELP}.
 */
import type { OptionSpec } from './args';
import { nearest } from './args';

/** The option specs of one command, as the command passes them to `parseArgs`. */
type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** What `vmemct COMMAND --help` prints about one command. */
export interface CommandHelp {
  /** What the command does, in one line. */
  readonly summary: string;
  /** The arguments after `vmemct COMMAND` (options in brackets, subcommands spelt out). */
  readonly usage: string;
  /** The command's option specs, loaded from its module. */
  readonly options: () => Promise<OptionSpecs>;
  /** Lines printed after the options (examples, exit codes particular to the command). */
  readonly notes?: readonly string[];
}

/** One option's description: its value's placeholder (none for a flag) and what it does. */
export interface OptionHelp {
  readonly placeholder?: string;
  readonly text: string;
}

const EXIT_CODES = 'exit codes: 0 ok · 1 unexpected results · 2 harness or adapter error · 3 bad usage or input';

/** Every command of `vmemct` but `help`, by name. */
export const COMMAND_HELP = {
  run: {
    summary: 'run the vectors (default: the whole corpus, against the reference model)',
    usage: '[options]',
    options: async () => (await import('./run-commands')).RUN_OPTIONS,
    notes: [
      'without a terminal on stderr, a progress line every few seconds (VMEMCT_PROGRESS_INTERVAL=SECONDS; --quiet: none)',
      EXIT_CODES,
    ],
  },
  list: {
    summary: 'the vectors: id, target, requirements, tags',
    usage: '[selection options] [--json]',
    options: async () => (await import('./run-commands')).LIST_OPTIONS,
  },
  lint: {
    summary: 'check vector files (schema and meaning); exit 3 on a problem',
    usage: '[PATH …]',
    options: async () => (await import('./run-commands')).LINT_OPTIONS,
  },
  coverage: {
    summary: 'requirement → vectors; exit 1 if a testable requirement is uncovered',
    usage: '[--vectors PATH] [--json]',
    options: async () => (await import('./run-commands')).COVERAGE_OPTIONS,
  },
  record: {
    summary: "record a device's answers to seeded random operations as a vector file",
    usage: '--ops N --out FILE [options]',
    options: async () => (await import('./record-command')).RECORD_OPTIONS,
  },
  fuzz: {
    summary: 'explore an implementation with seeded operations judged against the reference model',
    usage: '[--adapter A and its options as for run] [options]',
    options: async () => (await import('./fuzz-command')).FUZZ_OPTIONS,
    notes: ['exit 0 nothing found, 1 difference found (shrunk and written as a vector)'],
  },
  merge: {
    summary: 'merge the results files of --shard runs (several implementations kept apart) into one report',
    usage: 'FILE… [options]',
    options: async () => (await import('./merge-command')).MERGE_OPTIONS,
    notes: ["run's exit codes; exit 3 for a missing shard, shards of different runs, or one vector with two results"],
  },
  docs: {
    summary: 'the protocol, requirements, vectors and results as a static site',
    usage: '--out DIR [--results FILE …] [--force]',
    options: async () => (await import('./run-commands')).DOCS_OPTIONS,
  },
  guest: {
    summary: 'a Linux guest to test with (Debian kernel, busybox, dropbear)',
    usage: 'build|up|down|status [--dir DIR] [up options]',
    options: async () => (await import('./guest-commands')).GUEST_OPTIONS,
  },
  qemu: {
    summary:
      "fetch a QEMU release series from Debian's backports suite, or pick the expectation file for a QEMU's version",
    usage:
      'fetch [--version SERIES] [--cache DIR] [--quiet] | expectations [--qemu PATH | --qemu-version SERIES] [--quiet]',
    options: async () => (await import('./qemu-commands')).QEMU_OPTIONS,
    notes: [
      'fetch: unpacks QEMU SERIES into DIR and prints the binary',
      'expectations: runs the QEMU, prints the shipped expectation file of its major.minor (exit 2 for a version without one)',
    ],
  },
  'serve-harness': {
    summary: 'the model served over the harness protocol (vmemct-harness/1), device and driver target',
    usage: '[--profile P] [--socket PATH] [--quiet]',
    options: async () => (await import('./harness-commands')).SERVE_HARNESS_OPTIONS,
  },
  'serve-vhost-user': {
    summary: 'a vhost-user back-end serving the model, one device per connection',
    usage: '--socket PATH [options]',
    options: async () => (await import('./vhost-user-commands')).SERVE_OPTIONS,
  },
  'vhost-user-ctl': {
    summary: 'host side of a running serve-vhost-user',
    usage: '--socket PATH resize SIZE | status',
    options: async () => (await import('./vhost-user-commands')).CTL_OPTIONS,
  },
  'vhost-user-check': {
    summary: 'the vu.* transport checks of any vhost-user back-end, through the same runner and reports as run',
    usage: '--socket PATH [--backend-pid PID] [options]',
    options: async () => (await import('./vhost-user-commands')).CHECK_OPTIONS,
    notes: [EXIT_CODES],
  },
  spec: {
    summary: 'the protocol: layouts, constants, the requirements',
    usage: '[--json]',
    options: async () => (await import('./spec-command')).SPEC_OPTIONS,
  },
  encode: {
    summary: 'encode a structure, print its bytes as hex',
    usage: 'config|request|response FIELD=VALUE …',
    options: async (): Promise<OptionSpecs> => ({}),
    notes: [
      'values: decimal, 0x hex, or sizes with binary units (2MiB); type=PLUG, state=MIXED; padding takes hex bytes',
    ],
  },
  decode: {
    summary: 'decode hex bytes, print the fields as JSON',
    usage: 'config|request|response HEX',
    options: async (): Promise<OptionSpecs> => ({}),
  },
  version: {
    summary: 'the package, corpus, spec and harness protocol versions (also: vmemct --version)',
    usage: '[--json]',
    options: async () => (await import('./version-command')).VERSION_OPTIONS,
  },
} as const satisfies Record<string, CommandHelp>;

/** A command name of `vmemct` (without `help`). */
export type CommandName = keyof typeof COMMAND_HELP;

/**
 * One line per option name, shared by the commands that take it; `COMMAND:NAME` describes an
 * option whose meaning differs in that command.
 */
export const OPTION_HELP: Readonly<Record<string, OptionHelp>> = {
  adapter: { placeholder: 'NAME', text: 'the implementation to test: model, qemu, ssh-guest, vhost-user or exec' },
  'record:adapter': { placeholder: 'NAME', text: 'the device to record: model (default) or qemu' },
  profile: {
    placeholder: 'P',
    text: 'model profile: spec, qemu-7.2, qemu-10.0, cloud-hypervisor, firecracker (qemu = qemu-7.2)',
  },
  qemu: { placeholder: 'PATH', text: 'the qemu-system-x86_64 binary to run' },
  'qemu:qemu': {
    placeholder: 'PATH',
    text: 'expectations: the qemu-system-x86_64 binary whose version picks the file',
  },
  'qemu:qemu-version': {
    placeholder: 'SERIES',
    text: 'expectations: a QEMU fetched with vmemct qemu fetch (e.g. 10.0)',
  },
  'qemu:quiet': { text: 'no log lines on stderr' },
  'qemu-version': { placeholder: 'SERIES', text: 'a QEMU fetched with vmemct qemu fetch (e.g. 10.0)' },
  ssh: { placeholder: '[USER@]HOST[:PORT]', text: 'the live guest to drive (--adapter ssh-guest)' },
  'ssh-key': { placeholder: 'FILE', text: 'private key for --ssh' },
  'ssh-known-hosts': { placeholder: 'FILE', text: 'known_hosts file for --ssh' },
  qmp: { placeholder: 'PATH|tcp:HOST:PORT', text: "the guest's QEMU monitor (--adapter ssh-guest)" },
  'qemu-trace': { placeholder: 'FILE', text: "the guest's QEMU virtio-mem trace log (--adapter ssh-guest)" },
  'device-id': { placeholder: 'ID', text: 'the virtio-mem device of the guest (--adapter ssh-guest)' },
  'host-control': {
    placeholder: 'FILE',
    text: 'argv hooks (YAML/JSON) for the host actions of a VMM without QMP (--adapter ssh-guest --target device)',
  },
  gdb: {
    placeholder: 'PATH',
    text: "the guest's QEMU gdbstub socket: scripted answers reach the real driver through it (--adapter ssh-guest)",
  },
  icount: {
    text: 'the guest runs with guest up --icount: its timers pass fast while it idles (--adapter ssh-guest --target driver)',
  },
  kernel: {
    placeholder: '6.1|6.12|7.x',
    text: 'with --boot-guest: the kernel of the guests booted (6.1 by default), from the folder `guest build --kernel` wrote',
  },
  'boot-guest': {
    text: 'boot the built guest for the run (attached), and one per other device configuration vectors need (--adapter ssh-guest; driver target: with the gdbstub, vectors grouped by set-up)',
  },
  socket: {
    placeholder: 'PATH',
    text: 'unix socket of a vhost-user back-end (--adapter vhost-user) or of a listening harness (--adapter exec)',
  },
  'serve-harness:socket': { placeholder: 'PATH', text: 'listen on this unix socket instead of stdin/stdout' },
  'serve-vhost-user:socket': { placeholder: 'PATH', text: 'the unix socket to listen on' },
  'vhost-user-ctl:socket': { placeholder: 'PATH', text: 'the socket of the running serve-vhost-user' },
  'vhost-user-check:socket': { placeholder: 'PATH', text: 'the socket of the vhost-user back-end to check' },
  command: { placeholder: 'PROGRAM', text: 'the harness to start (--adapter exec; no shell)' },
  arg: { placeholder: 'A', text: 'an argument of --command PROGRAM (repeatable; --arg=-x for one with a dash)' },
  'harness-log': { placeholder: 'FILE', text: 'append every harness protocol line, both ways' },
  'harness-timeout': { placeholder: 'MS', text: "per harness message (default 10000, times the harness's multiplier)" },
  vectors: { placeholder: 'PATH', text: 'your own vector files or folders instead of the corpus (repeatable)' },
  filter: { placeholder: 'GLOB', text: 'vector ids matching GLOB (repeatable: any of them)' },
  'vhost-user-check:filter': { placeholder: 'GLOB', text: 'check ids matching GLOB (repeatable: any of them)' },
  tag: { placeholder: 'T', text: 'vectors with tag T (repeatable: any of them)' },
  target: { placeholder: 'device|driver', text: 'vectors of one target' },
  'fuzz:target': { placeholder: 'device|driver', text: 'what to fuzz (default device)' },
  requirement: { placeholder: 'ID', text: 'vectors citing requirement ID or an ID below it (repeatable)' },
  shard: { placeholder: 'i/n', text: 'the i-th of n equal parts of the selection' },
  expectations: { placeholder: 'FILE', text: 'known results of the implementation (strict both ways)' },
  strict: { text: 'SHOULD-level deviations (non-strict findings) count as failures' },
  reporter: { placeholder: 'human|tap', text: 'the report on stdout (default human)' },
  junit: { placeholder: 'FILE', text: 'also write a JUnit XML report' },
  json: { placeholder: 'FILE', text: "also write the results document (results.json; '-' for stdout)" },
  'list:json': { text: 'print the vectors as JSON' },
  'coverage:json': { text: 'print the coverage as JSON' },
  'spec:json': { text: 'print the protocol document as JSON' },
  'guest:json': { text: 'status as JSON' },
  'guest:kernel': {
    placeholder: '6.1|6.12|7.x',
    text: "the guest's kernel: 6.1 (default; the machine's suites), 6.12 (bookworm-backports) or 7.x (trixie-backports); each has its own default folder (~/.cache/vmemct/guest-6.12)",
  },
  'version:json': { text: 'the versions as JSON' },
  'fuzz:json': { placeholder: 'FILE', text: 'write a summary of the fuzzing as JSON' },
  timeout: { placeholder: 'MS', text: 'per vector (a longer one is a timeout)' },
  retries: {
    placeholder: 'N',
    text: 'rerun an unexpected fail, error or timeout up to N times (0–10, default 0); a later pass is flaky',
  },
  'write-expectations': {
    placeholder: 'FILE',
    text: 'write every result not a plain pass as an expectation file; an existing FILE is updated',
  },
  'merge:json': { placeholder: 'OUT', text: 'write the merged results document (one per implementation)' },
  'merge:junit': { placeholder: 'OUT', text: 'write the merged JUnit XML report' },
  'merge:expectations': { placeholder: 'FILE', text: 'judge the merged results against this expectation file' },
  'busy-retries': {
    placeholder: 'N',
    text: 'retries of a BUSY the vector does not list (0–1000, default 3; dev.suite.1)',
  },
  verbose: { text: 'every vector in the report, not only the unexpected ones' },
  quiet: { text: 'no progress or log lines on stderr' },
  out: { placeholder: 'FILE', text: 'the vector file to write' },
  'fuzz:out': { placeholder: 'FILE', text: 'where a found difference goes (default vmemct-fuzz-SEED.yaml)' },
  'docs:out': { placeholder: 'DIR', text: 'the folder to write the site into' },
  force: { text: 'write into a non-empty folder that is not a previous docs output' },
  results: { placeholder: 'FILE', text: 'a results.json of a run to show (repeatable)' },
  seed: { placeholder: 'S', text: 'seed of the random operations (0 to 4294967295)' },
  budget: { placeholder: 'N', text: 'operations to run (default 10000)' },
  time: { placeholder: 'T', text: 'run for a duration instead (500ms, 90s, 5m, 1h)' },
  ops: { placeholder: 'N', text: 'operations to record' },
  'ops-per-vector': { placeholder: 'N', text: 'operations per vector of the file (default 100)' },
  'block-size': { placeholder: 'SIZE', text: 'device block size (default 2MiB)' },
  'region-size': { placeholder: 'SIZE', text: 'device region size (default 1GiB)' },
  'requested-size': { placeholder: 'SIZE', text: 'initial requested size' },
  addr: { placeholder: 'ADDR', text: 'guest-physical address of the region (default 4GiB)' },
  'node-id': { placeholder: 'N', text: 'NUMA node id of the device (default 0)' },
  memory: { placeholder: 'SIZE', text: "the guest's boot memory (default 1GiB)" },
  'unplugged-inaccessible': { text: 'offer VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE' },
  'guest:icount': {
    text: "guest time from the instruction counter on one vCPU: the driver's BUSY back-off passes in about a second",
  },
  'shared-memory': {
    text: "back the device region with a file in /dev/shm shared with the host (the ssh-guest adapter's memory-access)",
  },
  'extra-device': {
    placeholder: 'NODE',
    text: 'guest up: a further virtio-mem device on NUMA node NODE (repeatable; boot memory split over the nodes) for multi-device vectors',
  },
  dir: { placeholder: 'DIR', text: 'the guest folder (default ~/.cache/vmemct/guest)' },
  'backend-pid': { placeholder: 'PID', text: 'process id of the back-end (enables the fd checks)' },
  version: { placeholder: 'SERIES', text: 'fetch: the QEMU release series to fetch (default 10.0)' },
  cache: { placeholder: 'DIR', text: 'fetch: where to unpack it (default ~/.cache/vmemct/qemu-SERIES)' },
};

/** The description of option `name` as `command` takes it. */
export function optionHelp(command: string, name: string): OptionHelp | undefined {
  return OPTION_HELP[`${command}:${name}`] ?? OPTION_HELP[name];
}

/** Whether `name` is a command {@link COMMAND_HELP} describes. */
export function isCommandName(name: string): name is CommandName {
  return Object.prototype.hasOwnProperty.call(COMMAND_HELP, name);
}

/** The text of `vmemct COMMAND --help`. */
export async function commandHelpText(command: CommandName): Promise<string> {
  const help: CommandHelp = COMMAND_HELP[command];
  const specs = await help.options();
  const rows = Object.entries(specs).map(([name, spec]) => {
    const described = optionHelp(command, name);
    const value = spec.kind === 'flag' ? '' : ` ${described?.placeholder ?? 'VALUE'}`;
    const repeat = spec.kind === 'list' ? ' …' : '';
    return { left: `--${name}${value}${repeat}`, text: described?.text ?? '' };
  });
  const width = Math.min(
    34,
    rows.reduce((w, r) => Math.max(w, r.left.length), 0),
  );
  const lines = [`usage: vmemct ${command} ${help.usage}`, '', help.summary];
  if (rows.length > 0) {
    lines.push('', 'options:');
    for (const r of rows)
      lines.push(
        r.left.length > width
          ? `  ${r.left}\n  ${' '.repeat(width)}  ${r.text}`
          : `  ${r.left.padEnd(width)}  ${r.text}`,
      );
  }
  lines.push('  --help, -h'.padEnd(width + 2) + '  this text');
  if (help.notes) lines.push('', ...help.notes);
  return `${lines.join('\n')}\n`;
}

/** Whether `args` ask for help: `--help` anywhere, or `-h` that is not the value of the option before it. */
export function asksForHelp(args: readonly string[], specs: OptionSpecs): boolean {
  return args.some((arg, i) => {
    if (arg === '--help') return true;
    if (arg !== '-h') return false;
    const before = i > 0 ? args[i - 1] : '';
    if (!before.startsWith('--') || before.includes('=')) return true;
    const spec = specs[before.slice(2)] as OptionSpec | undefined;
    return spec === undefined || spec.kind === 'flag';
  });
}

/** The message of an unknown command, with the nearest command when it is close. */
export function unknownCommandMessage(name: string, commands: readonly string[]): string {
  const near = nearest(name, commands);
  return `unknown command '${name}'${near === undefined ? '' : `; did you mean ${near}?`} (commands: ${commands.join(', ')}; see vmemct help)`;
}
