/**
 * The `vmemct` command line: commands wired by name (concrete adapters are wired in
 * adapter-options.ts).
 */
import { EXIT_HARNESS_ERROR, EXIT_OK, EXIT_USAGE, UsageError, isHarnessError, isUsageError } from './usage-error';
import { unknownOptionMessage } from './args';
import { COMMAND_HELP, asksForHelp, commandHelpText, isCommandName, unknownCommandMessage } from './command-help';

/** Where the CLI writes; injectable for tests. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Whether stderr is a terminal (progress is rewritten in place there, printed as lines elsewhere); undefined: no progress. */
  readonly stderrIsTerminal?: boolean;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stderrIsTerminal: process.stderr.isTTY === true,
};

/** Text of `vmemct --help`. */
export const HELP = `vmemct — virtio-mem conformance suite and reference model

usage:
  vmemct help [COMMAND]  ·  vmemct COMMAND --help   a command's usage and options
  vmemct --version  ·  vmemct version [--json]    package, corpus, spec and harness protocol versions
  vmemct run [options]                          run the vectors (default: all, against the model)
      --adapter model  --profile spec|qemu-7.2|qemu-10.0|cloud-hypervisor|firecracker (qemu = qemu-7.2)
      --adapter qemu   [--qemu PATH | --qemu-version SERIES]
                            QEMU's real virtio-mem-pci (device vectors; needs qemu-system-x86, or a
                            QEMU fetched with vmemct qemu fetch: --qemu-version 10.0 names it)
      --adapter ssh-guest --ssh [USER@]HOST[:PORT] --qmp PATH|tcp:HOST:PORT --qemu-trace FILE
                       [--ssh-key FILE] [--ssh-known-hosts FILE] [--device-id ID] [--gdb PATH]
                       [--icount]
                            a live Linux guest's virtio_mem driver (driver vectors)
      --adapter ssh-guest --target device --ssh [USER@]HOST[:PORT] [--qmp PATH | --host-control FILE]
                            the device a VMM gives a guest, through the in-guest agent (device vectors)
      --adapter ssh-guest --target device --boot-guest
                            the same in guests vmemct boots from the built guest, one per device
                            configuration the vectors need (ended with the run)
      --adapter vhost-user --socket PATH   a vhost-user back-end (device vectors; needs npm run build:native)
      --adapter exec (--command PROGRAM [--arg A]… | --socket PATH) [--harness-log FILE]
                       [--harness-timeout MS]
                            your own device or driver through a harness speaking vmemct-harness/1
                            (JSON Lines; vmemct starts PROGRAM with the --arg values, no shell, or
                            connects to a harness listening on PATH); --harness-log appends every
                            line both ways; --harness-timeout: per message (default 10000, times
                            the harness's timeout_multiplier); use --arg=-x for an argument with a dash
      --vectors PATH (repeatable)   your own vector files or folders instead of the corpus
      --filter GLOB --tag T --requirement ID --target device|driver --shard i/n
                            (repeat an option to OR its values; different options AND)
      --expectations FILE   known results of the implementation (strict both ways)
      --strict              SHOULD-level deviations (non-strict) count as failures
      --busy-retries N      retries of a BUSY the vector does not list (0–1000, default 3); a
                            device still answering BUSY fails \`progress\` (dev.suite.1)
      --retries N           rerun an unexpected fail, error or timeout up to N times (0–10); a
                            vector that fails, then passes, is reported flaky (never pass)
      --reporter human|tap  --junit FILE  --json FILE  --timeout MS  --verbose  --quiet
                            progress on stderr: a rewritten line on a terminal, else a line every
                            5 s (VMEMCT_PROGRESS_INTERVAL=SECONDS); --quiet: none
      --write-expectations FILE   write every result that is not a plain pass as an expectation
                            file; an existing FILE is updated (reasons kept, moved verdicts marked
                            for review, new entries added, stale ones removed; summary on stderr)
  vmemct merge FILE… [--json OUT] [--junit OUT] [--reporter human|tap] [--expectations FILE]
      [--vectors PATH] [--verbose]
                            merge the results files of --shard runs (several implementations are
                            kept apart: OUT.IMPLEMENTATION.json); run's exit codes; exit 3 for a
                            missing shard or one vector with two different results
  vmemct list [selection options] [--json]      the vectors: id, target, requirements, tags
  vmemct lint [PATH …]                          check vector files (schema and meaning)
  vmemct docs --out DIR [--results FILE …]      the protocol, requirements, vectors and results as a static site
      [--force]             write into a non-empty folder that is not a previous docs output
  vmemct guest build|up|down|status [--dir DIR]  a Linux guest to test with (Debian kernel, busybox, dropbear)
      [--kernel 6.1|6.12|7.x]  the kernel (default 6.1); each has its own default folder
      up: [--block-size 2MiB] [--region-size 1GiB] [--requested-size 0] [--memory 1GiB]
          [--unplugged-inaccessible] [--icount] [--shared-memory] [--extra-device NODE …] [--qemu PATH]; prints the run options for the guest
  vmemct qemu fetch [--version 10.0] [--cache DIR] [--quiet]
                            QEMU SERIES from Debian's backports suite (mirrors taken from this machine's
                            apt sources, private apt configuration), unpacked into DIR (default
                            ~/.cache/vmemct/qemu-SERIES); reuses a complete earlier fetch; prints the
                            binary. Exit 2: no apt, no Debian sources, network, not that version
  vmemct qemu expectations [--qemu PATH | --qemu-version SERIES] [--quiet]
                            runs the QEMU (default: qemu-system-x86_64 on PATH), prints the shipped
                            expectation file of its major.minor (7.2, 10.0); exit 2 for another version
  vmemct serve-harness [--profile P] [--socket PATH] [--quiet]
                            the model served over the harness protocol (vmemct-harness/1), device and
                            driver target: on stdin/stdout, or on a unix socket (one session per connection)
  vmemct serve-vhost-user --socket PATH         a vhost-user back-end serving the model, one device per connection
      [--block-size 2MiB] [--region-size 1GiB] [--requested-size 0] [--addr 4GiB] [--node-id 0]
      [--profile spec|qemu-7.2|qemu-10.0|cloud-hypervisor|firecracker (qemu = qemu-7.2)] [--quiet]
  vmemct vhost-user-ctl --socket PATH resize SIZE | status   host side of a running serve-vhost-user
  vmemct vhost-user-check --socket PATH [--backend-pid PID]
      [--filter GLOB] [--expectations FILE] [--strict] [--reporter human|tap] [--junit FILE]
      [--json FILE|-] [--timeout MS]
                            the vu.* transport checks of any vhost-user back-end (handshake, acks,
                            memory slots, fds), through the same runner and reports as run
  vmemct record --ops N --out FILE [--adapter model|qemu] [--profile P] [--qemu PATH | --qemu-version V] [--seed S]
      [--ops-per-vector 100] [--block-size 2MiB] [--region-size 1GiB] [--addr 4GiB] [--requested-size 64MiB]
                            record a device's answers to seeded random operations as a vector file
  vmemct fuzz [--adapter A and its options as for run] [--target device|driver] [--seed S]
      [--budget N | --time T] [--out FILE] [--json FILE] [--quiet] [--strict]
                            explore an implementation with seeded operations (boundaries, invalid
                            requests, layouts, resizes, resets, BUSY; for a driver: set-ups, resizes,
                            scripted answers, resets, suspend) judged against the reference
                            model; the first difference is shrunk and written as a vector (default
                            vmemct-fuzz-SEED.yaml). Default budget 10000 operations; --time 90s, 5m.
                            --strict: SHOULD-level (non-strict) findings count as differences.
                            Exit 0 nothing found, 1 difference found (vector written)
  vmemct coverage [--vectors PATH] [--json]     requirement → vectors; exit 1 if one is uncovered
  vmemct spec [--json]                          the protocol: layouts, constants, the 71 requirements
  vmemct encode config|request|response F=V …   encode a structure, print its bytes as hex
  vmemct decode config|request|response HEX     decode hex bytes, print the fields as JSON

values: decimal, 0x hex, or sizes with binary units (2MiB, 1GiB); type=PLUG, type=ACK, state=MIXED;
padding fields take hex bytes (padding=0x000000000000).

exit codes: 0 ok · 1 unexpected results · 2 harness or adapter error · 3 bad usage or input
`;

type Command = (args: readonly string[], io: CliIo) => Promise<number>;

/** Wraps a command that only prints text. */
const printing =
  (command: (args: readonly string[]) => string): Command =>
  async (args, io) => {
    io.stdout(`${command(args)}\n`);
    return EXIT_OK;
  };

/**
 * The commands by name, each loading its module when it runs: a command starts without loading
 * the others (`serve-harness`, started once per harness session, needs none of the run stack).
 */
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  run: async () => (await import('./run-commands')).runCommand,
  list: async () => (await import('./run-commands')).listCommand,
  lint: async () => (await import('./run-commands')).lintCommand,
  coverage: async () => (await import('./run-commands')).coverageCommand,
  record: async () => (await import('./record-command')).recordCommand,
  fuzz: async () => (await import('./fuzz-command')).fuzzCommand,
  merge: async () => (await import('./merge-command')).mergeCommand,
  docs: async () => (await import('./run-commands')).docsCommand,
  guest: async () => (await import('./guest-commands')).guestCommand,
  qemu: async () => (await import('./qemu-commands')).qemuCommand,
  'serve-harness': async () => (await import('./harness-commands')).serveHarnessCommand,
  'serve-vhost-user': async () => (await import('./vhost-user-commands')).serveVhostUserCommand,
  'vhost-user-ctl': async () => (await import('./vhost-user-commands')).vhostUserCtlCommand,
  'vhost-user-check': async () => (await import('./vhost-user-commands')).vhostUserCheckCommand,
  spec: async () => printing((await import('./spec-command')).specCommand),
  encode: async () => printing((await import('./wire-commands')).encodeCommand),
  decode: async () => printing((await import('./wire-commands')).decodeCommand),
  version: async () => (await import('./version-command')).versionCommand,
};

/** The names of the commands (`help` aside). */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMANDS);

/** `vmemct help [COMMAND]`: the overview, or one command's usage and options. */
async function helpCommand(args: readonly string[], io: CliIo): Promise<number> {
  if (args.length === 0) {
    io.stdout(HELP);
    return EXIT_OK;
  }
  const [name, ...rest] = args;
  if (rest.length > 0) throw new UsageError(`help: unexpected argument '${rest[0]}' (usage: vmemct help [COMMAND])`);
  if (!isCommandName(name)) throw new UsageError(`help: ${unknownCommandMessage(name, COMMAND_NAMES)}`);
  io.stdout(await commandHelpText(name));
  return EXIT_OK;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    io.stdout(HELP);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  try {
    if (name === 'help') return await helpCommand(args, io);
    if (name === '--version') return await main(['version', ...args], io);
    const load = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!load) {
      if (name.startsWith('-'))
        throw new UsageError(unknownOptionMessage('', name.replace(/^-+/, ''), ['help', 'version']));
      throw new UsageError(unknownCommandMessage(name, COMMAND_NAMES));
    }
    if (isCommandName(name) && (args.includes('--help') || args.includes('-h'))) {
      if (asksForHelp(args, await COMMAND_HELP[name].options())) {
        io.stdout(await commandHelpText(name));
        return EXIT_OK;
      }
    }
    const command = await load();
    return await command(args, io);
  } catch (error) {
    if (isUsageError(error)) {
      io.stderr(`vmemct: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (isHarnessError(error)) {
      io.stderr(`vmemct: ${error.message}\n`);
      return EXIT_HARNESS_ERROR;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`vmemct: internal error: ${message}\n`);
    if (process.env.VMEMCT_DEBUG && error instanceof Error) io.stderr(`${error.stack}\n`);
    return EXIT_HARNESS_ERROR;
  }
}
