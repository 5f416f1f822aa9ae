/**
 * Hostile front-ends against `vmemct serve-vhost-user`, run against the real CLI in a child
 * process over a real socket with real fd passing (build first: `npm run build:native && npm run
 * build`). Each case plays a peer that tries to crash, freeze or exhaust the server, then checks
 * the contract: the server is alive, its fd count and RSS are back near the baseline, its peak RSS
 * stayed bounded, and a normal client still gets a virtio-mem request answered through the ring.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SharedRegion, VhostUserFrontEnd } from '../../vhost-user/src/frontend';
import { VhostNative, vhostNative } from '../../vhost-user/src/native';
import {
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  Request,
  VmemctRequest,
  VmemctStatus,
  encodeStruct,
  encodeVmemctSetup,
  protocolMask,
  u64Payload,
} from '../../vhost-user/src/protocol';
import { FRONTEND_PROTOCOL_FEATURES } from '../../vhost-user/src/vhost-user-adapter';
import { encodeRequest } from '../../../model/src/codec/codec';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_REQ_STATE,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VirtqDescLayout,
} from '../../../spec/src/index';
import { RawPeer, ServerUnderTest, normalClientServed, sleep } from './server-harness';

const native: VhostNative = vhostNative();
const MiB = 1n << 20n;
/** How far the server's RSS may stay above its baseline after a case (V8 keeps some heap). */
const RSS_SLACK_KIB = 64 * 1024;
/** How far its peak RSS may rise during a case. */
const PEAK_SLACK_KIB = 160 * 1024;

/** Ring layout inside a test region (offsets), room for a queue of up to 1024 entries. */
const RING = { desc: 0x0n, avail: 0x4000n, used: 0x5000n, buffers: 0x10000n } as const;

let tmpDir: string;
let server: ServerUnderTest;
let baselineFds: number;
let baselineFdList: string;
let baselineRssKiB: number;

/** A field of /proc/PID/status in KiB (VmRSS now, VmHWM the peak). */
function readKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

/** The server's field of /proc/PID/status in KiB. */
function memoryKiB(field: 'VmRSS' | 'VmHWM'): number {
  return readKiB(server.pid, field);
}

/** Both ends of a pipe, non-blocking. */
function pipeEnds(): { read: number; write: number } {
  const [read, write] = native.pipe();
  return { read, write };
}

/** A front-end after the handshake with one memfd region (gpa 0) holding vring 0 of `queueSize`, enabled. */
async function ringFrontEnd(
  queueSize: number,
  regionSize = 2n * MiB,
): Promise<{ frontEnd: VhostUserFrontEnd; region: SharedRegion; kickFd: number; callFd: number }> {
  const frontEnd = VhostUserFrontEnd.connect(native, server.socketPath, { replyTimeoutMs: 10_000 });
  const negotiated = await frontEnd.handshake(FRONTEND_PROTOCOL_FEATURES);
  await frontEnd.setFeatures(0n, negotiated.offeredFeatures);
  const region = frontEnd.createRegion(0n, regionSize, 'hostile-ram');
  await frontEnd.setMemTable([region]);
  const kickFd = frontEnd.createEventfd();
  const callFd = frontEnd.createEventfd();
  const ua = region.userAddress;
  await frontEnd.setupVring(
    0,
    queueSize,
    { desc: ua + RING.desc, avail: ua + RING.avail, used: ua + RING.used },
    kickFd,
    callFd,
  );
  return { frontEnd, region, kickFd, callFd };
}

/** Writes descriptor `index`. */
function writeDescriptor(
  region: SharedRegion,
  index: number,
  d: { addr: bigint; len: number; flags: number; next: number },
): void {
  native.write(region.mapping, RING.desc + BigInt(16 * index), encodeStruct(VirtqDescLayout, d));
}

/** Publishes `head` in avail slot `availIndex % queueSize` and sets avail.idx to `availIndex + count`. */
function publish(region: SharedRegion, queueSize: number, availIndex: number, head: number, count = 1): void {
  const slot = Buffer.alloc(2);
  slot.writeUInt16LE(head);
  native.write(region.mapping, RING.avail + 4n + BigInt(2 * (availIndex % queueSize)), slot);
  const idx = Buffer.alloc(2);
  idx.writeUInt16LE((availIndex + count) & 0xffff);
  native.write(region.mapping, RING.avail + 2n, idx);
}

/** The used ring's index. */
function usedIndex(region: SharedRegion): number {
  return native.read(region.mapping, RING.used + 2n, 2).readUInt16LE(0);
}

/** Writes a STATE request of the first block with its response buffer as descriptors `first` and `first + 1`. */
function stateRequestChain(region: SharedRegion, first: number): void {
  const request = Buffer.from(encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: 1n << 32n, nb_blocks: 1 }));
  native.write(region.mapping, RING.buffers, request);
  writeDescriptor(region, first, { addr: RING.buffers, len: 24, flags: VIRTQ_DESC_F_NEXT, next: first + 1 });
  writeDescriptor(region, first + 1, { addr: RING.buffers + 0x100n, len: 10, flags: VIRTQ_DESC_F_WRITE, next: 0 });
}

/** After each case: alive, fds and RSS back near the baseline, and a normal client served. */
async function expectHealthy(): Promise<void> {
  expect(server.alive).toBe(true);
  await normalClientServed(server.socketPath);
  const fds = await server.settleFds(baselineFds);
  if (fds !== baselineFds)
    throw new Error(
      `the server has ${fds} fds open, expected ${baselineFds}:\nnow:      ${server.describeFds()}\nbaseline: ${baselineFdList}\n${server.tail(30)}`,
    );
  expect(memoryKiB('VmRSS')).toBeLessThan(baselineRssKiB + RSS_SLACK_KIB);
  expect(server.alive).toBe(true);
}

beforeAll(async () => {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-hostile-'));
  server = await ServerUnderTest.start(path.join(tmpDir, 's.sock'));
  // One normal client first, so what the server opens lazily is open before the baseline.
  const since = server.mark();
  await normalClientServed(server.socketPath);
  await server.waitForLine(/^connection \d+: ended \(/, since);
  await sleep(100);
  baselineFds = server.fdCount();
  baselineFdList = server.describeFds();
  baselineRssKiB = memoryKiB('VmRSS');
}, 60_000);

afterAll(async () => {
  if (server) {
    const exit = await server.stop();
    expect(exit).toEqual({ code: 0, signal: null });
  }
  fs.rmSync(tmpDir, { recursive: true, force: true });
}, 30_000);

describe('serve-vhost-user against hostile front-ends', () => {
  test('kick, call and err fds that are pipe ends or unix sockets, and a back-end channel that is a pipe, are refused; closing their peers harms nothing', async () => {
    const since = server.mark();
    const peer = new RawPeer(server.socketPath);
    const peersToClose: number[] = [];
    const requests = [Request.SET_VRING_KICK, Request.SET_VRING_CALL, Request.SET_VRING_ERR] as const;
    for (const request of requests) {
      const pipe = pipeEnds();
      const [ours, theirs] = native.socketPair();
      for (const [fd, peerEnd, kind] of [
        [pipe.read, pipe.write, 'pipe'],
        [pipe.write, pipe.read, 'pipe'],
        [theirs, ours, 'socket'],
      ] as const) {
        expect(await peer.ack(request, u64Payload(0n), [fd])).not.toBe(0n);
        await server.waitForLine(
          new RegExp(`^connection \\d+: \\w+: fd refused: it is ${kind}, not an eventfd$`),
          since,
        );
        void peerEnd;
      }
      native.close(pipe.read);
      native.close(pipe.write);
      native.close(theirs);
      peersToClose.push(ours);
    }
    // The back-end channel must be a socket: a pipe end is refused alike.
    const pipe = pipeEnds();
    expect(await peer.ack(Request.SET_BACKEND_REQ_FD, undefined, [pipe.write])).not.toBe(0n);
    await server.waitForLine(/^connection \d+: SET_BACKEND_REQ_FD: fd refused: it is pipe, not a socket$/, since);
    native.close(pipe.write);
    peersToClose.push(pipe.read);
    // The peers' ends go away; a server that kept the fds would now see errors or hang-ups.
    for (const fd of peersToClose) native.close(fd);
    await sleep(200);
    await peer.stillWorks();
    peer.close();
    await expectHealthy();
  });

  test('a descriptor whose next is itself, and a chain of 1024 descriptors, each with a 1 MiB buffer: the queue fails, memory stays bounded', async () => {
    const peakBefore = memoryKiB('VmHWM');
    for (const shape of ['self-loop', 'long chain'] as const) {
      const since = server.mark();
      const { frontEnd, region, kickFd } = await ringFrontEnd(1024, 4n * MiB);
      try {
        if (shape === 'self-loop') {
          writeDescriptor(region, 0, { addr: RING.buffers, len: 1 << 20, flags: VIRTQ_DESC_F_NEXT, next: 0 });
        } else {
          for (let i = 0; i < 1024; i++)
            writeDescriptor(region, i, {
              addr: RING.buffers,
              len: 1 << 20,
              flags: i < 1023 ? VIRTQ_DESC_F_NEXT : 0,
              next: i + 1,
            });
        }
        publish(region, 1024, 0, 0);
        native.signal(kickFd);
        await server.waitForLine(
          /^connection \d+: chain at descriptor 0: .*; the device is marked NEEDS_RESET$/,
          since,
        );
        expect(Number(await frontEnd.queryU64(Request.GET_STATUS)) & VIRTIO_CONFIG_S_NEEDS_RESET).toBe(
          VIRTIO_CONFIG_S_NEEDS_RESET,
        );
      } finally {
        frontEnd.close();
      }
    }
    expect(memoryKiB('VmHWM')).toBeLessThan(peakBefore + PEAK_SLACK_KIB);
    await expectHealthy();
  });

  test('a back-end channel the peer set back to blocking and never reads: the server disconnects it, never blocks', async () => {
    const since = server.mark();
    const frontEnd = VhostUserFrontEnd.connect(native, server.socketPath, { replyTimeoutMs: 5000 });
    // No REPLY_ACK: every configuration change is sent without waiting for an ack.
    const wanted = protocolMask(ProtocolFeature.BACKEND_REQ, ProtocolFeature.CONFIG, ProtocolFeature.VMEMCT_CONTROL);
    await frontEnd.setProtocolFeatures(wanted, false);
    await frontEnd.command(Request.SET_OWNER);
    // A running device (DRIVER_OK): only then are configuration changes announced.
    const offered = await frontEnd.queryU64(Request.GET_FEATURES);
    await frontEnd.setFeatures(offered & ~PROTOCOL_FEATURES_BIT, offered);
    const driver = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
    await frontEnd.command(Request.SET_STATUS, u64Payload(BigInt(driver)));
    await frontEnd.command(Request.SET_STATUS, u64Payload(BigInt(driver | VIRTIO_CONFIG_S_DRIVER_OK)));
    const [ours, theirs] = native.socketPair();
    native.setBlocking(theirs, true);
    await frontEnd.command(Request.SET_BACKEND_REQ_FD, undefined, [theirs]);
    native.close(theirs);
    const bystander = new RawPeer(server.socketPath);
    const started = Date.now();
    const disconnected = /^connection \d+: ended \(the back-end channel cannot take its messages\)$/;
    try {
      for (let i = 0; i < 20_000; i++) {
        if (server.lines.slice(since).some((l) => disconnected.test(l))) break;
        if (i % 200 === 0) await bystander.stillWorks();
        await frontEnd.vmemct(VmemctRequest.RESIZE, u64Payload((i % 2 ? 64n : 128n) * MiB));
      }
    } catch {
      // The server ended the connection between a resize and its reply; the log says why.
    } finally {
      frontEnd.close();
      native.close(ours);
    }
    try {
      await server.waitForLine(disconnected, since);
      expect(Date.now() - started).toBeLessThan(30_000);
      await bystander.stillWorks();
    } finally {
      bystander.close();
    }
    await expectHealthy();
  });

  test('a front-end keeping its whole queue available (1024 chains a kick) does not starve another client', async () => {
    const hostile = await ringFrontEnd(1024);
    const latencies: number[] = [];
    let flooding = true;
    try {
      // Every avail slot holds the same valid STATE request: each kick makes a whole queue of chains
      // available (the most a driver may; an index further ahead is a malformed ring).
      stateRequestChain(hostile.region, 0);
      for (let slot = 0; slot < 1024; slot++) publish(hostile.region, 1024, slot, 0, 0);
      let availIndex = 0;
      const flood = (async () => {
        while (flooding) {
          const used = usedIndex(hostile.region);
          availIndex = (used + 1024) & 0xffff;
          const idx = Buffer.alloc(2);
          idx.writeUInt16LE(availIndex);
          native.write(hostile.region.mapping, RING.avail + 2n, idx);
          native.signal(hostile.kickFd);
          await sleep(20);
        }
      })();
      await sleep(200);
      const other = new RawPeer(server.socketPath);
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        const sent = Date.now();
        await other.stillWorks();
        latencies.push(Date.now() - sent);
      }
      other.close();
      flooding = false;
      await flood;
      // The hostile queue was being served all along.
      expect(usedIndex(hostile.region)).not.toBe(0);
    } finally {
      flooding = false;
      hostile.frontEnd.close();
    }
    latencies.sort((a, b) => a - b);
    const worst = latencies[latencies.length - 1]!;
    expect({ answered: latencies.length > 10, worst: worst < 500 }).toEqual({ answered: true, worst: true });
    await expectHealthy();
  });

  test('connections beyond the limit are refused with a log line; the server serves again once they close', async () => {
    const since = server.mark();
    const peers: RawPeer[] = [];
    try {
      for (let i = 0; i < 64; i++) {
        const peer = new RawPeer(server.socketPath);
        peers.push(peer);
        await peer.stillWorks();
      }
      const extra = new RawPeer(server.socketPath);
      expect(await extra.endedByServer(5000)).toBe(true);
      extra.close();
      await server.waitForLine(/^connection refused: all 64 connections are in use$/, since);
    } finally {
      for (const peer of peers) peer.close();
    }
    await server.settleFds(baselineFds);
    await expectHealthy();
  });

  test('a control SETUP of 2^30 blocks is refused with a log line; the largest allowed device resets quickly', async () => {
    const since = server.mark();
    const peakBefore = memoryKiB('VmHWM');
    const control = VhostUserFrontEnd.connect(native, server.socketPath, { replyTimeoutMs: 10_000 });
    try {
      await control.setProtocolFeatures(protocolMask(ProtocolFeature.VMEMCT_CONTROL), false);
      const huge = encodeVmemctSetup({
        block_size: 2n * MiB,
        region_size: (1n << 30n) * 2n * MiB,
        addr: 1n << 40n,
        requested_size: 0n,
        node_id: 0,
        plugged: [],
      });
      const refused = await control.vmemct(VmemctRequest.SETUP, huge);
      expect(refused.status).toBe(VmemctStatus.REFUSED);
      await server.waitForLine(
        /^connection \d+: VMEMCT_SETUP: refused: a region of 1073741824 blocks exceeds the 4194304 blocks a connection may set up$/,
        since,
      );
      const largest = encodeVmemctSetup({
        block_size: 2n * MiB,
        region_size: (1n << 22n) * 2n * MiB,
        addr: 1n << 40n,
        requested_size: (1n << 21n) * 2n * MiB,
        node_id: 0,
        plugged: [{ first: 0, count: 1 << 21 }],
      });
      expect((await control.vmemct(VmemctRequest.SETUP, largest)).status).toBe(VmemctStatus.OK);
      const started = Date.now();
      expect((await control.vmemct(VmemctRequest.SYSTEM_RESET)).status).toBe(VmemctStatus.OK);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      control.close();
    }
    expect(memoryKiB('VmHWM')).toBeLessThan(peakBefore + PEAK_SLACK_KIB);
    await expectHealthy();
  });

  test('SYSTEM_RESET of a 2^30-block device (the operator set its size) is quick and blocks nobody', async () => {
    const big = await ServerUnderTest.start(path.join(tmpDir, 'big.sock'), [
      '--region-size',
      String((1n << 30n) * 2n * MiB),
      '--requested-size',
      String(64n * MiB),
    ]);
    try {
      const peakBefore = readKiB(big.pid, 'VmHWM');
      const hostile = VhostUserFrontEnd.connect(native, big.socketPath, { replyTimeoutMs: 30_000 });
      const bystander = new RawPeer(big.socketPath);
      try {
        await hostile.setProtocolFeatures(protocolMask(ProtocolFeature.VMEMCT_CONTROL), false);
        await hostile.command(Request.SET_OWNER);
        const timings: number[] = [];
        for (let i = 0; i < 5; i++) {
          const started = Date.now();
          const reset = hostile.vmemct(VmemctRequest.SYSTEM_RESET);
          await bystander.stillWorks();
          expect((await reset).status).toBe(VmemctStatus.OK);
          timings.push(Date.now() - started);
        }
        expect(Math.max(...timings)).toBeLessThan(250);
      } finally {
        hostile.close();
        bystander.close();
      }
      expect(readKiB(big.pid, 'VmHWM')).toBeLessThan(peakBefore + PEAK_SLACK_KIB);
      expect(big.alive).toBe(true);
    } finally {
      expect(await big.stop()).toEqual({ code: 0, signal: null });
    }
  });
});
