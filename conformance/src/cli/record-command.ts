/**
 * `vmemct record`: drives a device with seeded random operations (the differential machinery's
 * generator) and writes what it answered as a vector file, then loads and lints the file it wrote.
 *
 * ```sh
 * vmemct record --adapter qemu --ops 2000 --seed 7 --out my-device.yaml
 * vmemct run --adapter qemu --vectors my-device.yaml     # passes on the device it was recorded from
 * ```
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Adapter, DeviceSession, DeviceSetup } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { createQemuAdapter } from '../../../adapters/qemu/src/qemu-adapter';
import { QemuMissingError } from '../../../adapters/qemu-platform/src/index';
import { deviceProfileNames, DeviceSteering, findDeviceProfile } from '../../../model/src/index';
import { formatSize, isPowerOfTwo } from '../../../spec/src/index';
import { loadVectorText } from '../loader/load';
import { formatProblem } from '../loader/types';
import { lintReport } from '../runner/lint';
import { RecordingError, recordVectorFile } from '../differential/recorder';
import { OptionSpec, parseArgs, positiveInt } from './args';
import { parseSize } from './guest-commands';
import { EXIT_OK, EXIT_UNEXPECTED, HarnessError, UsageError } from './usage-error';
import { qemuBinaryOption } from './qemu-commands';
import { progressIntervalMs, progressMode, startProgress } from './progress';
import type { CliIo } from './main';

const COMMAND = 'record';

/** Adapters a recording can drive (device targets with host resize and device reset). */
export const RECORD_ADAPTERS = ['model', 'qemu'] as const;

/** The options of `vmemct record`. */
export const RECORD_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  adapter: { kind: 'value' },
  profile: { kind: 'value' },
  qemu: { kind: 'value' },
  'qemu-version': { kind: 'value' },
  ops: { kind: 'value' },
  seed: { kind: 'value' },
  'ops-per-vector': { kind: 'value' },
  out: { kind: 'value' },
  'block-size': { kind: 'value' },
  'region-size': { kind: 'value' },
  addr: { kind: 'value' },
  'requested-size': { kind: 'value' },
  quiet: { kind: 'flag' },
};

/** The most operations one recording takes (a file of about 200 MB of YAML). */
const MAX_OPERATIONS = 1_000_000;

/** The adapter to record from, as the options name it. */
function recordAdapter(values: ReadonlyMap<string, string>): Adapter {
  const name = values.get('adapter') ?? 'model';
  if (!(RECORD_ADAPTERS as readonly string[]).includes(name))
    throw new UsageError(`${COMMAND}: unknown adapter '${name}' (record from: ${RECORD_ADAPTERS.join(', ')})`);
  if (name !== 'model' && values.has('profile'))
    throw new UsageError(`${COMMAND}: --profile selects a model profile; it does not apply to --adapter ${name}`);
  const binary = qemuBinaryOption(COMMAND, values, name);
  if (name === 'qemu') {
    try {
      return createQemuAdapter({ binary });
    } catch (e) {
      if (e instanceof QemuMissingError) throw new HarnessError(`${COMMAND}: ${e.message}`);
      throw e;
    }
  }
  const profileName = values.get('profile') ?? 'spec';
  const profile = findDeviceProfile(profileName);
  if (!profile)
    throw new UsageError(`${COMMAND}: unknown profile '${profileName}' (profiles: ${deviceProfileNames()})`);
  return createModelAdapter({ profile });
}

/** The device every recorded vector starts from (default: 512 blocks of 2 MiB at 4 GiB, 64 MiB requested). */
function recordSetup(values: ReadonlyMap<string, string>): DeviceSetup {
  const size = (name: string, fallback: bigint): bigint => {
    const text = values.get(name);
    return text === undefined ? fallback : parseSize(COMMAND, name, text);
  };
  const setup: DeviceSetup = {
    block_size: size('block-size', 2n << 20n),
    region_size: size('region-size', 1n << 30n),
    addr: size('addr', 1n << 32n),
    requested_size: size('requested-size', 64n << 20n),
    node_id: 0,
    plugged: [],
  };
  const bs = setup.block_size;
  if (!isPowerOfTwo(bs)) throw new UsageError(`${COMMAND}: --block-size must be a power of two`);
  if (setup.region_size < bs || setup.region_size % bs !== 0n)
    throw new UsageError(`${COMMAND}: --region-size must be a positive multiple of --block-size`);
  if (setup.addr % bs !== 0n) throw new UsageError(`${COMMAND}: --addr must be a multiple of --block-size`);
  if (setup.requested_size > setup.region_size || setup.requested_size % bs !== 0n)
    throw new UsageError(
      `${COMMAND}: --requested-size must be a multiple of --block-size up to --region-size (${formatSize(setup.region_size)})`,
    );
  return setup;
}

/** A lower-case name for vector ids from an implementation's name (`QEMU 7.2` → `qemu-7-2`). */
export function implementationSlug(implementation: string): string {
  return (
    implementation
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'device'
  );
}

/** `vmemct record`. */
export async function recordCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(COMMAND, args, RECORD_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`${COMMAND}: unexpected argument '${parsed.positional[0]}'`);
  const values = parsed.values;
  const out = values.get('out');
  if (out === undefined) throw new UsageError(`${COMMAND}: --out FILE is required (where the vector file goes)`);
  const opsText = values.get('ops');
  if (opsText === undefined) throw new UsageError(`${COMMAND}: --ops N is required (how many operations to record)`);
  const operations = positiveInt(COMMAND, 'ops', opsText, MAX_OPERATIONS);
  const seedText = values.get('seed') ?? '1';
  if (!/^[0-9]+$/.test(seedText) || Number(seedText) > 0xffff_ffff)
    throw new UsageError(`${COMMAND}: --seed must be an integer from 0 to 4294967295 (got '${seedText}')`);
  const seed = Number(seedText);
  const opsPerVector = positiveInt(COMMAND, 'ops-per-vector', values.get('ops-per-vector') ?? '100', 10_000);
  const setup = recordSetup(values);
  const intervalMs = progressIntervalMs();
  const outPath = path.resolve(out);
  if (!fs.existsSync(path.dirname(outPath)))
    throw new UsageError(`${COMMAND}: --out ${out}: the folder ${path.dirname(outPath)} does not exist`);
  const adapter = recordAdapter(values);
  const implementation = adapter.info.implementation;
  const progress = startProgress({
    mode: progressMode(io, parsed.flags.has('quiet')),
    label: COMMAND,
    noun: 'vectors',
    total: Math.ceil(operations / opsPerVector),
    write: io.stderr,
    intervalMs,
  });
  let text: string;
  try {
    text = await recordVectorFile(
      adapter,
      { setup, seed, operations, opsPerVector, slug: implementationSlug(implementation), implementation },
      (done, total) => progress.update({ done, total }),
    );
  } catch (e) {
    if (e instanceof RecordingError) throw new HarnessError(`${COMMAND}: ${e.message}`);
    throw e;
  } finally {
    progress.stop();
    await adapter.dispose();
  }
  fs.writeFileSync(outPath, text);
  const loaded = loadVectorText(outPath, text);
  if (loaded.problems.length > 0)
    throw new HarnessError(
      `${COMMAND}: the recording does not load (a bug of the recorder):\n${loaded.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
    );
  const lint = await lintReport(loaded.vectors, referenceDevice);
  io.stdout(
    `${COMMAND}: ${operations} operations of seed ${seed} from ${implementation} in ${loaded.vectors.length} vectors: ${out}\n`,
  );
  if (lint.problems.length > 0) {
    io.stderr(
      `${COMMAND}: the device gave ${lint.problems.length} answer${lint.problems.length > 1 ? 's' : ''} no conforming device gives (the file states them as recorded):\n${lint.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}\n`,
    );
    return EXIT_UNEXPECTED;
  }
  return EXIT_OK;
}

/** Lint's reference device (`spec` profile), steered by the vector it replays. */
function referenceDevice(setup: DeviceSetup, steering: DeviceSteering): Promise<DeviceSession> {
  return createModelAdapter({ steering }).openDevice(setup);
}
