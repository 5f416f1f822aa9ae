/**
 * Benchmark of the vhost-user front-end and back-end (ARCHITECTURE.md, "Performance targets": ≥ 20 k request round trips/s
 * between them; handshake < 10 ms). The back-end runs as its own process (`vmemct
 * serve-vhost-user`), as a user would run it. Reports; never fails.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
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
import { VhostUserFrontEnd } from '../src/frontend';
import { openFdCount, vhostNative } from '../src/native';
import { Request } from '../src/protocol';
import { FRONTEND_PROTOCOL_FEATURES, connectVhostUserAdapter } from '../src/vhost-user-adapter';

const MiB = 1n << 20n;
const SETUP: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 1024n * MiB,
  addr: 4n << 30n,
  requested_size: 512n * MiB,
  node_id: 0,
  plugged: [],
};
const HANDSHAKES = 50;
const REQUESTS = 20_000;
const CORPUS_RUNS = 3;
const repoRoot = path.resolve(__dirname, '..', '..', '..', '..');
const cli = path.join(repoRoot, 'conformance', 'bin', 'vmemct.js');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Starts `vmemct serve-vhost-user` and resolves once it listens. */
function serve(socketPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'serve-vhost-user', '--socket', socketPath, '--quiet'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve-vhost-user exited with ${code}`)));
    child.stdout!.once('data', () => resolve(child));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function main(): Promise<void> {
  const native = vhostNative();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-vhost-bench-'));
  const socketPath = path.join(dir, 'backend.sock');
  console.log(
    `vhost-user benchmark: node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load ${os.loadavg()[0]!.toFixed(2)}`,
  );
  const server = await serve(socketPath);
  try {
    // Handshake: connect to the ring enabled, every message acknowledged (REPLY_ACK).
    const handshakes: number[] = [];
    for (let i = 0; i < HANDSHAKES; i++) {
      const t0 = performance.now();
      const frontEnd = VhostUserFrontEnd.connect(native, socketPath);
      const negotiated = await frontEnd.handshake(FRONTEND_PROTOCOL_FEATURES);
      await frontEnd.setFeatures(negotiated.offeredFeatures, negotiated.offeredFeatures);
      const ram = frontEnd.createRegion(0n, 1n * MiB);
      await frontEnd.setMemTable([ram]);
      await frontEnd.setupVring(
        0,
        256,
        { desc: ram.userAddress, avail: ram.userAddress + 0x1000n, used: ram.userAddress + 0x2000n },
        frontEnd.createEventfd(),
        frontEnd.createEventfd(),
      );
      await frontEnd.queryU64(Request.GET_STATUS);
      handshakes.push(performance.now() - t0);
      frontEnd.close();
    }
    console.log(
      `  handshake (connect … SET_VRING_ENABLE, ${HANDSHAKES} runs): median ${median(handshakes).toFixed(2)} ms, first ${handshakes[0]!.toFixed(2)} ms, max ${Math.max(...handshakes).toFixed(2)} ms (target < 10 ms)`,
    );

    // Round trips: one request in flight; publish avail, kick, wait for call, read used.
    const adapter = await connectVhostUserAdapter({ socketPath, native });
    const session = await adapter.openDevice(SETUP);
    await session.initialise((offered) => offered);
    const plug = encodeRequest({ type: VIRTIO_MEM_REQ_PLUG, addr: SETUP.addr, nb_blocks: 1 });
    const unplug = encodeRequest({ type: VIRTIO_MEM_REQ_UNPLUG, addr: SETUP.addr, nb_blocks: 1 });
    const state = encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: SETUP.addr, nb_blocks: 16 });
    for (let i = 0; i < 500; i++)
      await session.submit({ readable: [state], writableSizes: [VirtioMemResponseLayout.size] });
    const t0 = performance.now();
    for (let i = 0; i < REQUESTS; i++) {
      const request = i % 3 === 0 ? plug : i % 3 === 1 ? unplug : state;
      const done = await session.submit({ readable: [request], writableSizes: [VirtioMemResponseLayout.size] });
      if (done.kind !== 'used') throw new Error(`request ${i}: no used entry`);
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `  request round trips (PLUG/UNPLUG/STATE, one in flight): ${(REQUESTS / seconds).toFixed(0)}/s, ${((seconds * 1e6) / REQUESTS).toFixed(1)} µs each over ${REQUESTS} (target ≥ 20,000/s)`,
    );
    await session.close();
    await adapter.dispose();
    console.log(`  back-end fds after the runs: ${openFdCount(server.pid!)} (its own process)`);

    // The whole device corpus over the socket, CLI start included.
    const times: number[] = [];
    for (let i = 0; i < CORPUS_RUNS; i++) {
      const t1 = performance.now();
      const run = spawn(
        process.execPath,
        [cli, 'run', '--adapter', 'vhost-user', '--socket', socketPath, '--target', 'device', '--quiet'],
        { stdio: 'ignore' },
      );
      const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
      times.push(performance.now() - t1);
      if (code !== 0) console.log(`  corpus run ${i + 1} exited ${code}`);
    }
    console.log(
      `  device corpus over vhost-user (CLI start included): median ${median(times).toFixed(0)} ms over ${CORPUS_RUNS} runs`,
    );
  } finally {
    await stop(server);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`vhost-user benchmark failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
