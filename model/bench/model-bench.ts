/**
 * `npm run bench`: speed and memory of the reference model (reports; never fails).
 * Targets (ARCHITECTURE.md, "Performance targets"): ≥ 1 M single-block requests/s in-process; STATE over 65,535 blocks in
 * at most 5 µs; UNPLUG ALL on a 1 TiB region of 2 MiB blocks without per-block loops; that
 * region's state in a few hundred KiB.
 *
 * Each figure is printed beside its target and beside a raw baseline measured in the same run
 * (a bare loop doing the least the operation must do: decode 24 bytes and write 10, or read the
 * words of 65,535 bits), so the ratio stays meaningful on a loaded or slow machine. Every timing
 * is the median of several rounds.
 */
import * as os from 'node:os';
import { VirtioMemRequestLayout, VirtioMemResponseLayout, layoutField } from '../../spec/src/index';
import { VirtioMemDevice, encodeRequest, QEMU_PROFILE } from '../src/index';

const MiB = 1n << 20n;
const TiB = 1n << 40n;
const BS = 2n * MiB;
const ROUNDS = 7;
const TYPE_AT = layoutField(VirtioMemRequestLayout, 'type').offset;
const ADDR_AT = layoutField(VirtioMemRequestLayout, 'addr').offset;
const NB_BLOCKS_AT = layoutField(VirtioMemRequestLayout, 'nb_blocks').offset;

/** Nanoseconds per call of `body`: the median of {@link ROUNDS} rounds of `iterations` calls, after a warm-up round. */
function measure(iterations: number, body: () => void): number {
  const rounds: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) body();
    const ns = Number(process.hrtime.bigint() - start) / iterations;
    if (r > 0) rounds.push(ns); // round 0 warms up
  }
  rounds.sort((a, b) => a - b);
  return rounds[rounds.length >> 1];
}

function rate(nsPerOp: number): string {
  return `${(1e9 / nsPerOp).toFixed(0).padStart(10)} /s`;
}

function micros(nsPerOp: number): string {
  return `${(nsPerOp / 1000).toFixed(3).padStart(8)} µs`;
}

/** One line: the figure, its target, and the baseline with the ratio figure/baseline in time per operation. */
function report(label: string, figure: string, target: string, nsPerOp: number, baselineNs: number): void {
  const ratio = (nsPerOp / baselineNs).toFixed(1);
  console.log(`${label.padEnd(44)} ${figure}  ${target.padEnd(20)} ${`${ratio}× baseline`.padStart(14)}`);
}

/** Keeps the baselines' results alive so the compiler cannot drop their loops. */
let sink = 0;

console.log(
  `node ${process.version} · ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} · ${os.platform()} ${os.release()}`,
);

const device = new VirtioMemDevice({ block_size: BS, addr: 0n, region_size: TiB, requested_size: TiB }, QEMU_PROFILE);
console.log(`1 TiB / 2 MiB region: ${device.blockCount} blocks, block state ${device.stateBytes / 1024} KiB`);
console.log('');

// ---------------------------------------------------------------- single-block requests

const plugs: Uint8Array[] = [];
const unplugs: Uint8Array[] = [];
for (let i = 0; i < 1024; i++) {
  plugs.push(encodeRequest({ type: 0, addr: BigInt(i * 7) * BS, nb_blocks: 1 }));
  unplugs.push(encodeRequest({ type: 1, addr: BigInt(i * 7) * BS, nb_blocks: 1 }));
}
const response = new Uint8Array(VirtioMemResponseLayout.size);

// Baseline: read the fields of a 24-byte request and write a 10-byte response, nothing else.
const le16 = (bytes: Uint8Array, at: number): number => bytes[at] | (bytes[at + 1] << 8);
const le32 = (bytes: Uint8Array, at: number): number => (le16(bytes, at) | (le16(bytes, at + 2) << 16)) >>> 0;
const decodeNs = measure(2_000_000, () => {
  const bytes = plugs[sink & 1023];
  const type = le16(bytes, TYPE_AT);
  const addr = le32(bytes, ADDR_AT + 4) * 2 ** 32 + le32(bytes, ADDR_AT);
  const nb = le16(bytes, NB_BLOCKS_AT);
  response.fill(0);
  response[0] = type;
  sink = (sink + nb + (addr & 1) + 1) | 0;
});

let k = 0;
const fastNs =
  measure(400_000, () => {
    const j = k++ & 1023;
    device.processRequestFast(plugs[j], response);
    device.processRequestFast(unplugs[j], response);
  }) / 2;
const fullNs =
  measure(50_000, () => {
    const j = k++ & 1023;
    device.processRequest(plugs[j]);
    device.processRequest(unplugs[j]);
  }) / 2;

console.log(`baseline: decode 24 bytes, write 10 bytes ${rate(decodeNs)}  ${micros(decodeNs)}`);
report(
  'single-block PLUG/UNPLUG, fast path',
  `${rate(fastNs)}  ${micros(fastNs)}`,
  '(target ≥ 1,000,000)',
  fastNs,
  decodeNs,
);
report(
  'single-block PLUG/UNPLUG, full path',
  `${rate(fullNs)}  ${micros(fullNs)}`,
  '(outcome set, checks)',
  fullNs,
  decodeNs,
);
console.log('');

// ---------------------------------------------------------------- STATE over 65,535 blocks

device.processRequestFast(encodeRequest({ type: 0, addr: 0n, nb_blocks: 65535 }), response);
// All plugged: the state check must read every word of the range (MIXED could stop early).
const state = encodeRequest({ type: 3, addr: 0n, nb_blocks: 65535 });
const mixed = encodeRequest({ type: 3, addr: BS, nb_blocks: 65535 });

// Baseline: read the 2,048 words that hold 65,535 bits, as a bare Uint32Array loop.
const words = new Uint32Array(2048).fill(0xffffffff);
const wordNs = measure(20_000, () => {
  let all = 0xffffffff;
  for (let w = 0; w < words.length; w++) all &= words[w];
  sink = (sink + all) | 0;
});
const stateFastNs = measure(20_000, () => device.processRequestFast(state, response));
const mixedFastNs = measure(20_000, () => device.processRequestFast(mixed, response));
const stateFullNs = measure(5_000, () => device.processRequest(state));

console.log(`baseline: read 2,048 words (65,535 bits)  ${rate(wordNs)}  ${micros(wordNs)}`);
report(
  'STATE 65,535 blocks (PLUGGED), fast path',
  `${rate(stateFastNs)}  ${micros(stateFastNs)}`,
  '(target ≤ 5 µs)',
  stateFastNs,
  wordNs,
);
report(
  'STATE 65,535 blocks (MIXED), fast path',
  `${rate(mixedFastNs)}  ${micros(mixedFastNs)}`,
  '(target ≤ 5 µs)',
  mixedFastNs,
  wordNs,
);
report(
  'STATE 65,535 blocks (PLUGGED), full path',
  `${rate(stateFullNs)}  ${micros(stateFullNs)}`,
  '(outcome set, checks)',
  stateFullNs,
  wordNs,
);
console.log('');

// ---------------------------------------------------------------- large changes and memory

const unplugAll = encodeRequest({ type: 2 });
const plugBig = encodeRequest({ type: 0, addr: 0n, nb_blocks: 65535 });
const bigNs = measure(2_000, () => {
  device.processRequestFast(plugBig, response);
  device.processRequestFast(unplugAll, response);
});
report(
  'PLUG 65,535 blocks + UNPLUG ALL on 1 TiB',
  `${rate(bigNs)}  ${micros(bigNs)}`,
  '(no per-block loop)',
  bigNs,
  wordNs,
);

const before = process.memoryUsage().heapUsed;
const many: VirtioMemDevice[] = [];
for (let i = 0; i < 20; i++)
  many.push(new VirtioMemDevice({ block_size: BS, addr: 0n, region_size: TiB, requested_size: 0n }));
const after = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
console.log(
  `memory per 1 TiB device (20 instances, heap + array buffers): ~${((after - before) / 20 / 1024).toFixed(0)} KiB`,
);
if (sink === 0x7fffffff) console.log(''); // uses the sink
