/**
 * Shared set-up of the QEMU test suite (`npm run test:qemu`): these tests start real QEMU
 * processes and fail, rather than skip, when QEMU is missing.
 */
import * as path from 'node:path';
import { locateQemu } from '../src/qemu-process';
import type { DeviceSetup } from '../../core/src/contract';
import { loadVectors } from '../../../conformance/src/vectors/load';
import type { Vector } from '../../../conformance/src/vectors/types';

/** The QEMU under test (throws with the package to install when it is missing). */
export const QEMU = locateQemu();

/** The repository root. */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

const MiB = 1n << 20n;

/** A device of 512 blocks of 2 MiB at 4 GiB, 64 MiB requested. */
export const SMALL_DEVICE: DeviceSetup = { block_size: 2n * MiB, region_size: 1024n * MiB, addr: 4n << 30n, requested_size: 64n * MiB, node_id: 0, plugged: [] };

/** The shipped device vectors. */
export function deviceVectors(): Vector[] {
  const loaded = loadVectors([path.join(ROOT, 'conformance', 'vectors', 'device')]);
  if (loaded.problems.length > 0) throw new Error(`corpus problems: ${loaded.problems.map((p) => p.reason).join('; ')}`);
  return loaded.vectors;
}
