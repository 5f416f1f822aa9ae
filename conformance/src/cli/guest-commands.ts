/**
 * `vmemct guest build|up|down|status`: a Linux guest to test the virtio_mem driver with.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestBuildError, buildGuest } from '../../../adapters/ssh-guest/src/guest-build';
import {
  type GuestExtraDevice,
  GuestOptionError,
  GuestVm,
  GuestVmError,
  downGuest,
  guestStatus,
  runArguments,
} from '../../../adapters/ssh-guest/src/guest-vm';
import {
  DEFAULT_GUEST_KERNEL,
  GUEST_KERNELS,
  GuestKernel,
  guestKernelSource,
} from '../../../adapters/ssh-guest/src/guest-kernel';
import { QemuMissingError } from '../../../adapters/qemu-platform/src/index';
import { parseValue } from '../../../spec/src/index';
import { OptionSpec, nearest, parseArgs } from './args';
import { fetchedQemuBinary, parseSeries } from './qemu-commands';
import { EXIT_OK, HarnessError, UsageError } from './usage-error';
import type { CliIo } from './main';

/**
 * Where guests are built by default: `$VMEMCT_GUEST_DIR`, else `~/.cache/vmemct/guest`, for the
 * default kernel; a folder of its own for each other kernel (`…/guest-6.12`, or
 * `$VMEMCT_GUEST_DIR-6.12`), so guests of several kernels coexist.
 */
export function defaultGuestDir(kernel: GuestKernel = DEFAULT_GUEST_KERNEL): string {
  const suffix = kernel === DEFAULT_GUEST_KERNEL ? '' : `-${kernel}`;
  if (process.env.VMEMCT_GUEST_DIR) return `${process.env.VMEMCT_GUEST_DIR}${suffix}`;
  const cache =
    process.env.XDG_CACHE_HOME && process.env.XDG_CACHE_HOME.length > 0
      ? process.env.XDG_CACHE_HOME
      : path.join(os.homedir(), '.cache');
  return path.join(cache, 'vmemct', `guest${suffix}`);
}

/** `--kernel SERIES` of `vmemct guest`: one of the kernels a guest is built with. */
export function parseGuestKernel(command: string, text: string | undefined): GuestKernel {
  if (text === undefined) return DEFAULT_GUEST_KERNEL;
  const source = guestKernelSource(text);
  if (!source)
    throw new UsageError(
      `${command}: --kernel must be one of ${GUEST_KERNELS.map((k) => k.kernel).join(', ')} (got '${text}')`,
    );
  return source.kernel;
}

/** The largest size option: 2^64 - 1 (sizes and addresses are 64-bit fields). */
const MAX_SIZE = (1n << 64n) - 1n;

/** A size option, in the value syntax of vectors: decimal or 0x hex bytes, or a number with a binary unit (`2MiB`, `1G`). */
export function parseSize(command: string, option: string, text: string): bigint {
  const parsed = parseValue(text);
  if (!parsed.ok) throw new UsageError(`${command}: --${option} must be a size such as 2MiB or 1GiB (got '${text}')`);
  if (parsed.value > MAX_SIZE)
    throw new UsageError(`${command}: --${option} must be at most 64 bits (${MAX_SIZE}) (got '${text}')`);
  return parsed.value;
}

/** The options of `vmemct guest` (some for `guest up` only). */
export const GUEST_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  dir: { kind: 'value' },
  kernel: { kind: 'value' },
  'block-size': { kind: 'value' },
  'region-size': { kind: 'value' },
  'requested-size': { kind: 'value' },
  memory: { kind: 'value' },
  'unplugged-inaccessible': { kind: 'flag' },
  icount: { kind: 'flag' },
  'shared-memory': { kind: 'flag' },
  'extra-device': { kind: 'list' },
  qemu: { kind: 'value' },
  'qemu-version': { kind: 'value' },
  json: { kind: 'flag' },
};

const UP_ONLY = [
  'block-size',
  'region-size',
  'requested-size',
  'memory',
  'unplugged-inaccessible',
  'icount',
  'shared-memory',
  'qemu',
  'qemu-version',
  'extra-device',
];

/**
 * `--extra-device NODE` (repeatable): a further virtio-mem device on NUMA node NODE, each placed
 * 1 GiB after the previous device's region (the first device's region is at 4 GiB).
 */
export function extraDevicesOption(command: string, values: readonly string[], regionSize: bigint): GuestExtraDevice[] {
  const GiB = 1n << 30n;
  const step = ((regionSize + GiB - 1n) / GiB) * GiB;
  return values.map((text, i) => {
    if (!/^[0-9]{1,3}$/.test(text))
      throw new UsageError(`${command}: --extra-device takes a NUMA node number (got '${text}')`);
    return { node: Number(text), regionSize, addr: 4n * GiB + step * BigInt(i + 1) };
  });
}

/** `vmemct guest …`. */
export async function guestCommand(args: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'build' && sub !== 'up' && sub !== 'down' && sub !== 'status') {
    const near = sub === undefined ? undefined : nearest(sub, ['build', 'up', 'down', 'status']);
    throw new UsageError(
      `guest: expected build, up, down or status${sub ? ` (got '${sub}')` : ''}${near ? `; did you mean ${near}?` : ''}`,
    );
  }
  const command = `guest ${sub}`;
  const parsed = parseArgs(command, rest, GUEST_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`${command}: unexpected argument '${parsed.positional[0]}'`);
  if (sub !== 'up') {
    const stray = UP_ONLY.find((o) => parsed.values.has(o) || parsed.flags.has(o));
    if (stray) throw new UsageError(`${command}: --${stray} applies to guest up only`);
  }
  const kernel = parseGuestKernel(command, parsed.values.get('kernel'));
  const dir = path.resolve(parsed.values.get('dir') ?? defaultGuestDir(kernel));
  const log = (line: string): void => io.stderr(`vmemct: ${line}\n`);
  try {
    if (sub === 'build') {
      const m = await buildGuest({ dir, kernel, log });
      io.stdout(
        `${m.kernelPackage} ${m.kernelPackageVersion} (${m.kernelRelease}) with busybox, dropbear and the agent in ${dir}\nnext: vmemct guest up --dir ${dir}\n`,
      );
      return EXIT_OK;
    }
    if (sub === 'up') {
      const size = (o: string): bigint | undefined =>
        parsed.values.has(o) ? parseSize(command, o, parsed.values.get(o)!) : undefined;
      if (parsed.values.has('qemu') && parsed.values.has('qemu-version'))
        throw new UsageError(`${command}: give --qemu PATH or --qemu-version SERIES, not both`);
      const qemu = parsed.values.has('qemu-version')
        ? fetchedQemuBinary(command, parseSeries(command, 'qemu-version', parsed.values.get('qemu-version')!))
        : parsed.values.get('qemu');
      const vm = await GuestVm.boot(
        {
          dir,
          detached: true,
          blockSize: size('block-size'),
          regionSize: size('region-size'),
          requestedSize: size('requested-size'),
          memory: size('memory'),
          unpluggedInaccessible: parsed.flags.has('unplugged-inaccessible'),
          icount: parsed.flags.has('icount'),
          sharedMemory: parsed.flags.has('shared-memory'),
          qemu,
          // `suspend` steps: ACPI S3 (QEMU ≥ 9.2 then offers PERSISTENT_SUSPEND).
          suspendToRam: true,
          ...(parsed.lists.has('extra-device')
            ? {
                addr: 4n << 30n,
                extraDevices: extraDevicesOption(
                  command,
                  parsed.lists.get('extra-device')!,
                  size('region-size') ?? 1n << 30n,
                ),
              }
            : {}),
          // The adapter injects scripted answers through it (`--gdb`).
          gdbstub: true,
        },
        log,
      );
      if (parsed.flags.has('json')) io.stdout(`${JSON.stringify(vm.state, null, 2)}\n`);
      else
        io.stdout(
          `guest up: QEMU pid ${vm.state.pid}, SSH on 127.0.0.1:${vm.state.sshPort}\nrun the driver vectors with:\n  vmemct run --target driver ${runArguments(vm.state).join(' ')}\nend it with: vmemct guest down --dir ${dir}\n`,
        );
      return EXIT_OK;
    }
    if (sub === 'down') {
      const was = await downGuest(dir);
      io.stdout(was ? `guest in ${dir} ended\n` : `no guest was running in ${dir}\n`);
      return EXIT_OK;
    }
    const status = await guestStatus(dir);
    if (parsed.flags.has('json')) {
      io.stdout(`${JSON.stringify(status, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
    } else if (!status.running) {
      io.stdout(`no guest running in ${dir}\n`);
    } else {
      const s = status.state!;
      const d = status.device;
      io.stdout(
        `guest running: QEMU pid ${s.pid}, kernel ${s.kernelRelease}, SSH 127.0.0.1:${s.sshPort} (${status.sshAnswers ? 'answering' : 'not answering'})\n` +
          (d
            ? `virtio-mem ${String(d.id)}: block ${String(d['block-size'])}, region ${String(d['max-size'])} at ${String(d.memaddr)}, requested ${String(d['requested-size'])}, plugged ${String(d.size)}\n`
            : 'virtio-mem: none or QMP not answering\n') +
          `  vmemct run --target driver ${runArguments(s).join(' ')}\n`,
      );
    }
    return status.running ? EXIT_OK : 1;
  } catch (e) {
    if (e instanceof GuestOptionError) throw new UsageError(`${command}: ${e.message}`);
    if (e instanceof GuestBuildError || e instanceof GuestVmError || e instanceof QemuMissingError)
      throw new HarnessError(`${command}: ${e.message}`);
    throw e;
  }
}
