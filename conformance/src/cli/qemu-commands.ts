/**
 * `vmemct qemu fetch`: a second QEMU beside the installed one, from Debian's backports suite,
 * unpacked into a cache folder; `vmemct qemu expectations`: the shipped expectation file for a
 * QEMU's version; and `--qemu-version SERIES`, which names a fetch in `run` and `record`.
 *
 *     vmemct qemu fetch                       # QEMU 10.0 into ~/.cache/vmemct/qemu-10.0; prints the binary
 *     vmemct qemu expectations                # the installed QEMU 7.2 → …/conformance/expectations/qemu-7.2.yaml
 *     vmemct run --adapter qemu --qemu-version 10.0 --target device
 */
import * as path from 'node:path';
import {
  FetchFailureKind,
  FetchHost,
  SYSTEM_HOST,
  defaultQemuCacheDir,
  QemuMissingError,
  fetchQemu,
  locateQemu,
  readFetchedQemu,
} from '../../../adapters/qemu-platform/src/index';
import { OptionSpec, nearest, packageRoot, parseArgs } from './args';
import { expectationsForVersion, shippedQemuExpectations } from './qemu-expectations';
import { EXIT_HARNESS_ERROR, EXIT_OK, EXIT_USAGE, HarnessError, UsageError } from './usage-error';
import type { CliIo } from './main';

/** The QEMU series `vmemct qemu fetch` takes when no `--version` is given. */
export const DEFAULT_FETCH_SERIES = '10.0';

/** The options of `vmemct qemu fetch`. */
export const FETCH_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  version: { kind: 'value' },
  cache: { kind: 'value' },
  quiet: { kind: 'flag' },
};

/** The options of `vmemct qemu expectations`. */
export const EXPECTATIONS_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  qemu: { kind: 'value' },
  'qemu-version': { kind: 'value' },
  quiet: { kind: 'flag' },
};

/** The options of `vmemct qemu` (each sub-command parses its own: {@link FETCH_OPTIONS}, {@link EXPECTATIONS_OPTIONS}). */
export const QEMU_OPTIONS: Readonly<Record<string, OptionSpec>> = { ...FETCH_OPTIONS, ...EXPECTATIONS_OPTIONS };

/** The sub-commands of `vmemct qemu`. */
const QEMU_SUBCOMMANDS = ['fetch', 'expectations'] as const;

/**
 * Exit code of each way a fetch fails: 3 for a cache folder that is not ours to replace (bad
 * input), 2 for everything else (the machine cannot provide the QEMU).
 */
export const FETCH_FAILURE_EXIT: Readonly<Record<FetchFailureKind, number>> = {
  'no-apt': EXIT_HARNESS_ERROR,
  'no-sources': EXIT_HARNESS_ERROR,
  network: EXIT_HARNESS_ERROR,
  'missing-package': EXIT_HARNESS_ERROR,
  version: EXIT_HARNESS_ERROR,
  'not-runnable': EXIT_HARNESS_ERROR,
  unpack: EXIT_HARNESS_ERROR,
  cache: EXIT_USAGE,
};

/** A QEMU release series (`10.0`); anything else is a usage error naming `option`. */
export function parseSeries(command: string, option: string, text: string): string {
  if (!/^[0-9]{1,3}\.[0-9]{1,3}$/.test(text))
    throw new UsageError(`${command}: --${option} must be a QEMU release series such as 10.0 (got '${text}')`);
  return text;
}

/** `vmemct qemu …`; `host` is the machine the fetch reads and runs tools on (tests pass a fake one). */
export async function qemuCommand(args: readonly string[], io: CliIo, host: FetchHost = SYSTEM_HOST): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'expectations') return expectationsCommand(rest, io);
  if (sub !== 'fetch') {
    const near = sub === undefined ? undefined : nearest(sub, QEMU_SUBCOMMANDS);
    throw new UsageError(
      `qemu: expected ${QEMU_SUBCOMMANDS.join(' or ')}${sub ? ` (got '${sub}')` : ''}${near ? `; did you mean ${near}?` : ''}`,
    );
  }
  const command = 'qemu fetch';
  const parsed = parseArgs(command, rest, FETCH_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`${command}: unexpected argument '${parsed.positional[0]}'`);
  const series = parseSeries(command, 'version', parsed.values.get('version') ?? DEFAULT_FETCH_SERIES);
  const cache = parsed.values.get('cache');
  if (cache !== undefined && cache.length === 0) throw new UsageError(`${command}: --cache needs a folder`);
  const dir = path.resolve(cache ?? defaultQemuCacheDir(series));
  const quiet = parsed.flags.has('quiet');
  const outcome = await fetchQemu({
    series,
    dir,
    log: quiet ? undefined : (line) => io.stderr(`vmemct: ${line}\n`),
    host,
  });
  if (!outcome.ok) {
    io.stderr(`vmemct: ${command}: ${outcome.reason}\n  fix: ${outcome.fix}\n`);
    return FETCH_FAILURE_EXIT[outcome.kind];
  }
  const f = outcome.fetched;
  if (!quiet)
    io.stderr(
      `vmemct: QEMU ${f.qemuVersion} ${outcome.reused ? 'already in' : 'fetched into'} ${f.dir} (${f.suite}: ${Object.entries(
        f.packages,
      )
        .map(([name, version]) => `${name} ${version}`)
        .join(', ')})\n`,
    );
  io.stdout(`${f.binary}\n`);
  return EXIT_OK;
}

/**
 * The binary of the fetched QEMU `series` in the default cache folder (`--qemu-version`); a
 * harness error naming `vmemct qemu fetch` when it has not been fetched.
 */
export function fetchedQemuBinary(command: string, series: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = defaultQemuCacheDir(series, env);
  const fetched = readFetchedQemu(dir, series);
  if (!fetched)
    throw new HarnessError(
      `${command}: QEMU ${series} has not been fetched (nothing complete in ${dir}); run \`vmemct qemu fetch --version ${series}\` first`,
    );
  return fetched.binary;
}

/** The two ways to name the QEMU binary. */
const QEMU_BINARY_OPTIONS = [
  { name: 'qemu', value: 'PATH' },
  { name: 'qemu-version', value: 'SERIES' },
] as const;

/**
 * The QEMU binary `--qemu PATH` or `--qemu-version SERIES` names (undefined: the default, on
 * PATH); both at once, or either without `--adapter qemu` (`adapter`), is a usage error.
 */
export function qemuBinaryOption(
  command: string,
  values: ReadonlyMap<string, string>,
  adapter: string,
): string | undefined {
  const given = QEMU_BINARY_OPTIONS.filter((o) => values.has(o.name));
  if (given.length > 0 && adapter !== 'qemu')
    throw new UsageError(`${command}: --${given[0]!.name} ${given[0]!.value} applies to --adapter qemu only`);
  if (given.length > 1) throw new UsageError(`${command}: give --qemu PATH or --qemu-version SERIES, not both`);
  if (values.has('qemu-version'))
    return fetchedQemuBinary(command, parseSeries(command, 'qemu-version', values.get('qemu-version')!));
  return values.get('qemu');
}

/**
 * `vmemct qemu expectations [--qemu PATH | --qemu-version SERIES] [--quiet]`: runs the QEMU (the
 * one `run --adapter qemu` would run with the same option), reads its version and prints the
 * shipped expectation file of that major.minor. A version without a shipped file is a harness
 * error (exit 2) naming the known versions and how to write a file of one's own.
 */
async function expectationsCommand(args: readonly string[], io: CliIo): Promise<number> {
  const command = 'qemu expectations';
  const parsed = parseArgs(command, args, EXPECTATIONS_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`${command}: unexpected argument '${parsed.positional[0]}'`);
  const wanted = qemuBinaryOption(command, parsed.values, 'qemu');
  if (wanted !== undefined && wanted.length === 0) throw new UsageError(`${command}: --qemu needs a path`);
  let binary;
  try {
    binary = locateQemu(wanted);
  } catch (e) {
    if (e instanceof QemuMissingError) throw new HarnessError(`${command}: ${e.message}`);
    throw e;
  }
  const dir = path.join(packageRoot(), 'conformance', 'expectations');
  const choice = expectationsForVersion(binary.version, shippedQemuExpectations(dir));
  if (!choice.ok) {
    const qemuOption = wanted === undefined ? '' : ` --qemu ${binary.path}`;
    throw new HarnessError(
      `${command}: no expectation file is shipped for QEMU ${choice.series} (${binary.path} is QEMU ${binary.version}); ` +
        `known versions: ${choice.known.join(', ') || 'none'}. Write your own from a run and review it: ` +
        `vmemct run --adapter qemu${qemuOption} --target device --write-expectations FILE, then run with --expectations FILE`,
    );
  }
  if (!parsed.flags.has('quiet'))
    io.stderr(`vmemct: QEMU ${binary.version} (${binary.path}): expectations of QEMU ${choice.series}\n`);
  io.stdout(`${choice.file}\n`);
  return EXIT_OK;
}
