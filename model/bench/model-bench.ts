/**
 * `npm run bench`: speed and memory of the reference model (reports; never fails).
 * Targets (ARCHITECTURE.md, "Performance targets"): ≥ 1 M single-block requests/s in-process; STATE over 65,535 blocks in
 * microseconds; UNPLUG ALL on a 1 TiB region of 2 MiB blocks without per-block loops; that
 * region's state in a few hundred KiB.
 */
import * as os from 'node:os';
import { VirtioMemDevice, encodeRequest, QEMU_PROFILE } from '../src/index';

const MiB = 1n << 20n;
const TiB = 1n << 40n;
const BS = 2n * MiB;

function time(label: string, iterations: number, body: () => void): number {
  body(); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) body();
  const ns = Number(process.hrtime.bigint() - start);
  const perOp = ns / iterations;
  console.log(
    `${label.padEnd(58)} ${(1e9 / perOp).toFixed(0).padStart(12)} ops/s  ${(perOp / 1000).toFixed(3).padStart(10)} µs/op`,
  );
  return 1e9 / perOp;
}

console.log(
  `node ${process.version} · ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} · ${os.platform()} ${os.release()}`,
);

const device = new VirtioMemDevice({ block_size: BS, addr: 0n, region_size: TiB, requested_size: TiB }, QEMU_PROFILE);
console.log(`1 TiB / 2 MiB region: ${device.blockCount} blocks, block state ${device.stateBytes / 1024} KiB`);

// Single-block PLUG/UNPLUG pairs through the full byte path: decode, conforming set, profile choice, invariants.
const plugs: Uint8Array[] = [];
const unplugs: Uint8Array[] = [];
for (let i = 0; i < 1024; i++) {
  plugs.push(encodeRequest({ type: 0, addr: BigInt(i * 7) * BS, nb_blocks: 1 }));
  unplugs.push(encodeRequest({ type: 1, addr: BigInt(i * 7) * BS, nb_blocks: 1 }));
}
let k = 0;
const rate =
  time('single-block PLUG/UNPLUG (bytes in, bytes out, invariants)', 400_000, () => {
    const j = k++ & 1023;
    device.processRequest(plugs[j]);
    device.processRequest(unplugs[j]);
  }) * 2;
console.log(`${'  → single-block requests/s'.padEnd(58)} ${rate.toFixed(0).padStart(12)}  (target ≥ 1,000,000)`);

device.processRequest(encodeRequest({ type: 0, addr: 0n, nb_blocks: 65535 }));
const state = encodeRequest({ type: 3, addr: BS, nb_blocks: 65535 });
time('STATE over 65,535 blocks (MIXED)', 20_000, () => device.processRequest(state));

const unplugAll = encodeRequest({ type: 2 });
const plugBig = encodeRequest({ type: 0, addr: 0n, nb_blocks: 65535 });
time('PLUG 65,535 blocks + UNPLUG ALL on 1 TiB', 5_000, () => {
  device.processRequest(plugBig);
  device.processRequest(unplugAll);
});

const before = process.memoryUsage().heapUsed;
const many: VirtioMemDevice[] = [];
for (let i = 0; i < 20; i++)
  many.push(new VirtioMemDevice({ block_size: BS, addr: 0n, region_size: TiB, requested_size: 0n }));
const after = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
console.log(
  `memory per 1 TiB device (20 instances, heap + array buffers): ~${((after - before) / 20 / 1024).toFixed(0)} KiB`,
);
