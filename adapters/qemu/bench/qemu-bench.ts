/**
 * Benchmark of the QEMU adapter (ARCHITECTURE.md, "Performance targets": ≥ 10 k requests/s through the adapter, QEMU start
 * to ready < 0.5 s, the whole device corpus < 30 s). Reports; never fails. Skipped when QEMU is
 * not installed.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRequest } from '../../../model/src/codec/codec';
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VirtioMemResponseLayout,
} from '../../../spec/src/index';
import type { DeviceSetup } from '../../core/src/contract';
import { createQemuAdapter, qemuArguments } from '../src/qemu-adapter';
import { QemuMissingError, locateQemu } from '../../qemu-platform/src/index';
import { QemuProcess } from '../src/qemu-process';
import { probeOverQtest } from '../src/qtest-bus';

const MiB = 1n << 20n;
const SETUP: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 1024n * MiB,
  addr: 4n << 30n,
  requested_size: 512n * MiB,
  node_id: 0,
  plugged: [],
};
const STARTS = 10;
const REQUESTS = 10_000;
const CORPUS_RUNS = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  let binary;
  try {
    binary = locateQemu();
  } catch (e) {
    if (e instanceof QemuMissingError) {
      console.log(`qemu benchmark skipped: ${e.message}`);
      return;
    }
    throw e;
  }
  console.log(
    `qemu benchmark: QEMU ${binary.version}, node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load ${os.loadavg()[0]!.toFixed(2)}`,
  );

  // Start to ready: spawn, qtest and QMP answering, the function enumerated and its BAR mapped.
  const starts: number[] = [];
  const firstAnswers: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    const t0 = performance.now();
    const qemu = await QemuProcess.start(binary, qemuArguments(SETUP), 10_000);
    const driver = await probeOverQtest(qemu.qtest);
    starts.push(performance.now() - t0);
    await driver.initialise((offered) => offered);
    await driver.submit({
      readable: [encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: SETUP.addr, nb_blocks: 1 })],
      writableSizes: [VirtioMemResponseLayout.size],
    });
    firstAnswers.push(performance.now() - t0);
    await qemu.stop();
  }
  console.log(
    `  QEMU start to ready (qtest + QMP + PCI probe): median ${median(starts).toFixed(0)} ms, max ${Math.max(...starts).toFixed(0)} ms over ${STARTS} (target < 500 ms)`,
  );
  console.log(`  start to first answered request (+ handshake + STATE): median ${median(firstAnswers).toFixed(0)} ms`);

  // Requests per second through the adapter's session (one qtest batch per request).
  const adapter = createQemuAdapter({ located: binary });
  try {
    const session = await adapter.openDevice(SETUP);
    await session.initialise((offered) => offered);
    const state = {
      readable: [encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: SETUP.addr, nb_blocks: 8 })],
      writableSizes: [VirtioMemResponseLayout.size],
    };
    for (let i = 0; i < 1000; i++) await session.submit(state); // warm-up
    let t0 = performance.now();
    for (let i = 0; i < REQUESTS; i++) await session.submit(state);
    let ms = performance.now() - t0;
    console.log(
      `  ${REQUESTS} STATE requests: ${((REQUESTS / ms) * 1000).toFixed(0)} requests/s (${ms.toFixed(0)} ms; target ≥ 10,000/s)`,
    );
    const plug = {
      readable: [encodeRequest({ type: VIRTIO_MEM_REQ_PLUG, addr: SETUP.addr, nb_blocks: 1 })],
      writableSizes: [VirtioMemResponseLayout.size],
    };
    const unplug = {
      readable: [encodeRequest({ type: VIRTIO_MEM_REQ_UNPLUG, addr: SETUP.addr, nb_blocks: 1 })],
      writableSizes: [VirtioMemResponseLayout.size],
    };
    t0 = performance.now();
    for (let i = 0; i < REQUESTS; i++) await session.submit(i % 2 === 0 ? plug : unplug);
    ms = performance.now() - t0;
    console.log(
      `  ${REQUESTS} alternating PLUG/UNPLUG: ${((REQUESTS / ms) * 1000).toFixed(0)} requests/s (${ms.toFixed(0)} ms)`,
    );
    await session.close();
  } finally {
    await adapter.dispose();
  }

  // The whole device corpus through the CLI, process start included.
  const root = path.resolve(__dirname, '..', '..', '..', '..');
  const bin = path.join(root, 'conformance', 'bin', 'vmemct.js');
  const times: number[] = [];
  let summary = '';
  for (let i = 0; i < CORPUS_RUNS; i++) {
    const t0 = performance.now();
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'run',
        '--adapter',
        'qemu',
        '--target',
        'device',
        '--expectations',
        path.join(root, 'conformance', 'expectations', 'qemu-7.2.yaml'),
      ],
      { cwd: root, encoding: 'utf8' },
    );
    times.push(performance.now() - t0);
    summary = r.stdout.trimEnd().split('\n').pop() ?? `exit ${r.status}`;
  }
  console.log(
    `  vmemct run --adapter qemu --target device: median ${(median(times) / 1000).toFixed(1)} s over ${CORPUS_RUNS} runs (target < 30 s) — ${summary}`,
  );
}

main().catch((e: unknown) => {
  console.error(`qemu benchmark failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
