/**
 * Robustness of `vmemct serve-vhost-user` against malformed input, run against the real CLI in a
 * child process (build first: `npm run build:native && npm run build`).
 *
 * Each named case sends one kind of bad input (truncated headers, wrong sizes, unknown requests,
 * missing or extra fds, bad version bits, oversized payloads, memory regions larger than their
 * fd, garbage in the ring) and checks that the server logs a specific line, stays up, completes a
 * full handshake on a new connection and closes every fd it received (its /proc/PID/fd count
 * returns to the baseline). A seeded fuzz run then sends more than 10,000 mutated messages over
 * many connections and checks the same, plus a real virtio-mem request through the ring.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SharedRegion, VhostUserFrontEnd } from '../../vhost-user/src/frontend';
import { VhostNative, vhostNative } from '../../vhost-user/src/native';
import {
  ConfigHeaderLayout,
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FLAG_VERSION,
  HEADER_SIZE,
  HeaderLayout,
  MAX_PAYLOAD,
  MemoryRegionLayout,
  ProtocolFeature,
  Request,
  VRING_NOFD,
  VmemctRequest,
  VringAddressLayout,
  VringStateLayout,
  encodeStruct,
  frameMessage,
  protocolMask,
  u64Payload,
} from '../../vhost-user/src/protocol';
import { FRONTEND_PROTOCOL_FEATURES } from '../../vhost-user/src/vhost-user-adapter';
import { decodeConfig, encodeRequest } from '../../../model/src/codec/codec';
import {
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_REQ_STATE,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VirtioMemConfigLayout,
  VirtqDescLayout as DescriptorLayout,
} from '../../../spec/src/index';
import { RawPeer, ServerUnderTest, memTablePayload, normalClientServed, sleep } from './server-harness';

const MiB = 1n << 20n;
/** The fuzz run's seed; it is in the test's name so a failure can be replayed. */
const FUZZ_SEED = 0x5eed2026;
/** Messages the fuzz run sends at least. */
const FUZZ_MESSAGES = 10_000;

const native: VhostNative = vhostNative();

/** Ring layout inside a test region (offsets). */
const RING = { desc: 0x0n, avail: 0x1000n, used: 0x2000n, buffers: 0x4000n } as const;
const QUEUE_SIZE = 256;

let tmpDir: string;
let server: ServerUnderTest;
let baseline: number;
let baselineFds: string;

/** A connection that completes the handshake and reads the whole configuration. */
async function handshakeAndConfig(): Promise<void> {
  const frontEnd = VhostUserFrontEnd.connect(native, server.socketPath);
  try {
    const negotiated = await frontEnd.handshake(FRONTEND_PROTOCOL_FEATURES);
    expect(negotiated.protocolFeatures & protocolMask(ProtocolFeature.CONFIG)).not.toBe(0n);
    const config = decodeConfig(await frontEnd.getConfig(0, VirtioMemConfigLayout.size));
    expect(config.ok).toBe(true);
  } finally {
    frontEnd.close();
  }
}

/** After each case: the server is up, a new connection works, and every fd it received is closed. */
async function expectHealthy(): Promise<void> {
  expect(server.alive).toBe(true);
  await handshakeAndConfig();
  await expectBaselineFds();
}

/** The server's fd count settles back to the baseline (the failure names the fds it has open). */
async function expectBaselineFds(extra = 0): Promise<void> {
  const count = await server.settleFds(baseline + extra);
  if (count !== baseline + extra)
    throw new Error(
      `the server has ${count} fds open, expected ${baseline} + ${extra}.\nbaseline: ${baselineFds}\nnow:      ${server.describeFds()}`,
    );
}

/** A front-end after the handshake, with one memfd region (gpa 0) holding vring 0, set up and enabled. */
async function frontEndWithRing(): Promise<{ frontEnd: VhostUserFrontEnd; region: SharedRegion; kickFd: number }> {
  const frontEnd = VhostUserFrontEnd.connect(native, server.socketPath);
  const negotiated = await frontEnd.handshake(FRONTEND_PROTOCOL_FEATURES);
  await frontEnd.setFeatures(0n, negotiated.offeredFeatures);
  const region = frontEnd.createRegion(0n, 1n * MiB, 'robustness-ram');
  await frontEnd.setMemTable([region]);
  const kickFd = frontEnd.createEventfd();
  const callFd = frontEnd.createEventfd();
  const ua = region.userAddress;
  await frontEnd.setupVring(
    0,
    QUEUE_SIZE,
    { desc: ua + RING.desc, avail: ua + RING.avail, used: ua + RING.used },
    kickFd,
    callFd,
  );
  return { frontEnd, region, kickFd };
}

/** A descriptor as the test writes it. */
interface TestDescriptor {
  readonly index: number;
  readonly addr: bigint;
  readonly len: number;
  readonly flags: number;
  readonly next: number;
}

/** Writes the descriptors and makes `head` the avail entry number `availIndex` (no kick). */
function placeChain(
  region: { mapping: Parameters<VhostNative['write']>[0] },
  availIndex: number,
  head: number,
  descriptors: readonly TestDescriptor[],
): void {
  for (const d of descriptors)
    native.write(region.mapping, RING.desc + BigInt(16 * d.index), encodeStruct(DescriptorLayout, d));
  const slot = Buffer.alloc(2);
  slot.writeUInt16LE(head);
  native.write(region.mapping, RING.avail + 4n + BigInt(2 * (availIndex % QUEUE_SIZE)), slot);
  const idx = Buffer.alloc(2);
  idx.writeUInt16LE((availIndex + 1) & 0xffff);
  native.write(region.mapping, RING.avail + 2n, idx);
}

beforeAll(async () => {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-robust-'));
  server = await ServerUnderTest.start(path.join(tmpDir, 's.sock'));
  // One full connection first, so anything the server opens lazily is open before the baseline;
  // the baseline is taken once the server has ended that connection (a loaded machine is slow).
  const since = server.mark();
  await handshakeAndConfig();
  await server.waitForLine(/^connection \d+: ended \(/, since);
  let previous = -1;
  for (let i = 0; i < 50; i++) {
    const count = server.fdCount();
    if (count === previous) break;
    previous = count;
    await sleep(50);
  }
  baseline = server.fdCount();
  baselineFds = server.describeFds();
}, 30_000);

afterAll(async () => {
  if (server) {
    const exit = await server.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(server.socketPath)).toBe(false);
  }
  fs.rmSync(tmpDir, { recursive: true, force: true });
}, 30_000);

describe('serve-vhost-user survives malformed input (named cases)', () => {
  test('a truncated header, then a hang-up', async () => {
    const since = server.mark();
    const peer = new RawPeer(server.socketPath);
    peer.sendBytes(frameMessage(Request.GET_FEATURES, FLAG_VERSION).subarray(0, 5));
    await sleep(20);
    peer.close();
    await server.waitForLine(
      /^connection \d+: ended \(the peer hung up mid-message \(5 of 12 header bytes\)\)$/,
      since,
    );
    await expectHealthy();
  });

  test('a header announcing 264 bytes, then a hang-up mid-payload (with an fd in flight)', async () => {
    const since = server.mark();
    const peer = new RawPeer(server.socketPath);
    const memfd = native.memfd('robustness', 4096);
    const frame = frameMessage(
      Request.SET_MEM_TABLE,
      FLAG_VERSION | FLAG_NEED_REPLY,
      memTablePayload(
        8,
        Array.from({ length: 8 }, () => ({ guestAddress: 0n, size: 4096n, userAddress: 0n, mmapOffset: 0n })),
      ),
    );
    expect(frame.length).toBe(HEADER_SIZE + 264);
    peer.sendBytes(frame.subarray(0, HEADER_SIZE + 100), [memfd]);
    native.close(memfd);
    await sleep(20);
    peer.close();
    await server.waitForLine(
      /^connection \d+: ended \(the peer hung up mid-message \(100 of 264 payload bytes\)\)$/,
      since,
    );
    await expectHealthy();
  });

  test('wrong payload sizes with NEED_REPLY: a failure ack each, and the connection keeps working', async () => {
    const since = server.mark();
    const peer = new RawPeer(server.socketPath);
    expect(await peer.ack(Request.SET_FEATURES, Buffer.alloc(4))).not.toBe(0n);
    await server.waitForLine(/^connection \d+: SET_FEATURES: payload of 4 bytes, expected 8$/, since);
    expect(await peer.ack(Request.SET_VRING_NUM, Buffer.alloc(12))).not.toBe(0n);
    await server.waitForLine(/^connection \d+: SET_VRING_NUM: payload of 12 bytes, expected 8$/, since);
    // A count above the 8 regions SET_MEM_TABLE may carry, and a count that does not match the payload.
    expect(await peer.ack(Request.SET_MEM_TABLE, memTablePayload(9, []))).not.toBe(0n);
    await server.waitForLine(/^connection \d+: SET_MEM_TABLE: 9 regions; SET_MEM_TABLE carries at most 8$/, since);
    const memfd = native.memfd('robustness', 4096);
    expect(
      await peer.ack(
        Request.SET_MEM_TABLE,
        memTablePayload(3, [{ guestAddress: 0n, size: 4096n, userAddress: 0n, mmapOffset: 0n }]),
        [memfd],
      ),
    ).not.toBe(0n);
    native.close(memfd);
    await server.waitForLine(
      /^connection \d+: SET_MEM_TABLE: payload of 40 bytes for 3 regions \(expected 104\)$/,
      since,
    );
    expect(await peer.ack(Request.SET_VRING_ADDR, Buffer.alloc(VringAddressLayout.size - 1))).not.toBe(0n);
    await server.waitForLine(/^connection \d+: SET_VRING_ADDR: payload of 39 bytes, expected 40$/, since);
    await peer.stillWorks();
    await expectBaselineFds(1);
    peer.close();
    await expectHealthy();
  });

  test('unknown request codes: a failure ack with NEED_REPLY, silence without, and the connection keeps working', async () => {
    const since = server.mark();
    const peer = new RawPeer(server.socketPath);
    expect(await peer.ack(99)).not.toBe(0n);
    await server.waitForLine(
      /^connection \d+: request 99: unknown request 99 \(0-byte payload, 0 fd\(s\)\) ignored$/,
      since,
    );
    expect(await peer.ack(0xffffffff, Buffer.alloc(16))).not.toBe(0n);
    await server.waitForLine(
      /^connection \d+: request 4294967295: unknown request 4294967295 \(16-byte payload, 0 fd\(s\)\) ignored$/,
      since,
    );
    // Without NEED_REPLY nothing comes back: the next reply is GET_FEATURES's.
    expect(peer.send(0, FLAG_VERSION)).toBe(true);
    await server.waitForLine(/^connection \d+: request 0: unknown request 0 /, since);
    await peer.stillWorks();
    peer.close();
    await expectHealthy();
  });

  test('missing fds: SET_VRING_KICK without fd or NOFD, SET_MEM_TABLE with 2 regions and 1 fd', async () => {
    const since = server.mark();
    const peer = new RawPeer(server.socketPath);
    expect(await peer.ack(Request.SET_VRING_KICK, u64Payload(0n))).not.toBe(0n);
    await server.waitForLine(/^connection \d+: SET_VRING_KICK: expected 1 fd, got 0$/, since);
    // NOFD without an fd is fine.
    expect(await peer.ack(Request.SET_VRING_KICK, u64Payload(VRING_NOFD))).toBe(0n);
    const memfd = native.memfd('robustness', 8192);
    const regions = [
      { guestAddress: 0n, size: 4096n, userAddress: 0x10000n, mmapOffset: 0n },
      { guestAddress: 0x100000n, size: 4096n, userAddress: 0x20000n, mmapOffset: 4096n },
    ];
    expect(await peer.ack(Request.SET_MEM_TABLE, memTablePayload(2, regions), [memfd])).not.toBe(0n);
    native.close(memfd);
    await server.waitForLine(/^connection \d+: SET_MEM_TABLE: 2 regions but 1 fd\(s\)$/, since);
    await peer.stillWorks();
    // The memfd that came without its partner was closed: only the connection's socket is extra.
    await expectBaselineFds(1);
    peer.close();
    await expectHealthy();
  });

  test('extra fds: GET_FEATURES carrying 3 eventfds is answered, logged, and the fds are closed', async () => {
    const since = server.mark();
    const peer = new RawPeer(server.socketPath);
    const eventfds = [native.eventfd(), native.eventfd(), native.eventfd()];
    expect(peer.send(Request.GET_FEATURES, FLAG_VERSION, undefined, eventfds)).toBe(true);
    for (const fd of eventfds) native.close(fd);
    expect((await peer.reply(Request.GET_FEATURES)).payload.length).toBe(8);
    await server.waitForLine(/^connection \d+: GET_FEATURES: 3 unexpected fd\(s\) closed$/, since);
    // The connection is still open, the three eventfds are not.
    await expectBaselineFds(1);
    // The same on a message with an fd of its own: SET_VRING_CALL with 2 fds fails and both are closed.
    const two = [native.eventfd(), native.eventfd()];
    expect(await peer.ack(Request.SET_VRING_CALL, u64Payload(0n), two)).not.toBe(0n);
    for (const fd of two) native.close(fd);
    await server.waitForLine(/^connection \d+: SET_VRING_CALL: expected 1 fd, got 2$/, since);
    await expectBaselineFds(1);
    await peer.stillWorks();
    peer.close();
    await expectHealthy();
  });

  test('fds of the wrong kind: a memfd as the back-end channel or as the kick fd is refused and closed', async () => {
    const since = server.mark();
    const peer = new RawPeer(server.socketPath);
    const memfd = native.memfd('robustness', 4096);
    expect(await peer.ack(Request.SET_BACKEND_REQ_FD, undefined, [memfd])).not.toBe(0n);
    await server.waitForLine(
      /^connection \d+: SET_BACKEND_REQ_FD: fd refused: it is \/memfd:robustness \(deleted\), not a socket$/,
      since,
    );
    expect(await peer.ack(Request.SET_VRING_KICK, u64Payload(0n), [memfd])).not.toBe(0n);
    await server.waitForLine(
      /^connection \d+: SET_VRING_KICK: fd refused: it is \/memfd:robustness \(deleted\), not an eventfd$/,
      since,
    );
    native.close(memfd);
    await expectBaselineFds(1);
    await peer.stillWorks();
    peer.close();
    await expectHealthy();
  });

  test('bad version bits end that connection only, with a log line', async () => {
    const bystander = VhostUserFrontEnd.connect(native, server.socketPath);
    try {
      await bystander.handshake(FRONTEND_PROTOCOL_FEATURES);
      for (const flags of [0x0, 0x2, 0x3, 0x4 | 0x2]) {
        const since = server.mark();
        const peer = new RawPeer(server.socketPath);
        peer.sendBytes(frameMessage(Request.GET_FEATURES, flags));
        expect(await peer.endedByServer()).toBe(true);
        await server.waitForLine(
          new RegExp(
            `^connection \\d+: ended \\(framing error: header flags 0x${flags.toString(16)}: version bits must be 0x1 \\(request 1\\)\\)$`,
          ),
          since,
        );
        peer.close();
      }
      expect((await bystander.getConfig(0, VirtioMemConfigLayout.size)).length).toBe(VirtioMemConfigLayout.size);
    } finally {
      bystander.close();
    }
    await expectHealthy();
  });

  test('an oversized size field (> 4096) ends that connection only, with a log line', async () => {
    const bystander = VhostUserFrontEnd.connect(native, server.socketPath);
    try {
      await bystander.handshake(FRONTEND_PROTOCOL_FEATURES);
      for (const size of [MAX_PAYLOAD + 1, 0x10000, 0xffffffff]) {
        const since = server.mark();
        const peer = new RawPeer(server.socketPath);
        const header = encodeStruct(HeaderLayout, { request: Request.SET_MEM_TABLE, flags: FLAG_VERSION, size });
        const eventfd = native.eventfd();
        peer.sendBytes(Buffer.concat([header, Buffer.alloc(64)]), [eventfd]);
        native.close(eventfd);
        expect(await peer.endedByServer()).toBe(true);
        await server.waitForLine(
          new RegExp(
            `^connection \\d+: ended \\(framing error: payload size ${size} exceeds 4096 bytes \\(request 5\\)\\)$`,
          ),
          since,
        );
        peer.close();
      }
      // A payload of exactly 4096 bytes is still accepted (and answered).
      const peer = new RawPeer(server.socketPath);
      expect(await peer.ack(Request.SET_FEATURES, Buffer.alloc(MAX_PAYLOAD))).not.toBe(0n);
      await peer.stillWorks();
      peer.close();
      expect((await bystander.getConfig(0, VirtioMemConfigLayout.size)).length).toBe(VirtioMemConfigLayout.size);
    } finally {
      bystander.close();
    }
    await expectHealthy();
  });

  test('a memory region larger than its memfd is refused (no mapping past the end of the fd)', async () => {
    const since = server.mark();
    const frontEnd = VhostUserFrontEnd.connect(native, server.socketPath);
    const memfd = native.memfd('robustness-short', 64 * 1024);
    try {
      const negotiated = await frontEnd.handshake(FRONTEND_PROTOCOL_FEATURES);
      await frontEnd.setFeatures(0n, negotiated.offeredFeatures);
      const userAddress = 0x7f0000000000n;
      const payload = memTablePayload(1, [{ guestAddress: 0n, size: 1n * MiB, userAddress, mmapOffset: 0n }]);
      await expect(frontEnd.command(Request.SET_MEM_TABLE, payload, [memfd])).rejects.toThrow(
        /SET_MEM_TABLE: the back-end reported failure/,
      );
      await server.waitForLine(
        /^connection \d+: SET_MEM_TABLE: region 0: map: the fd holds 65536 bytes, fewer than the 1048576 to map$/,
        since,
      );
      // The ring placed past the end of the fd: had the region been mapped, reading it would raise SIGBUS.
      const kickFd = frontEnd.createEventfd();
      const callFd = frontEnd.createEventfd();
      await frontEnd.setupVring(
        0,
        QUEUE_SIZE,
        { desc: userAddress + 0x80000n, avail: userAddress + 0x90000n, used: userAddress + 0xa0000n },
        kickFd,
        callFd,
      );
      native.signal(kickFd);
      await server.waitForLine(
        /^connection \d+: the vring addresses are not inside the shared memory; the queue is not processed$/,
        since,
      );
      // Also with an mmap offset that moves a fitting size past the end.
      const shifted = memTablePayload(1, [{ guestAddress: 0n, size: 64n * 1024n, userAddress, mmapOffset: 4096n }]);
      await expect(frontEnd.command(Request.SET_MEM_TABLE, shifted, [memfd])).rejects.toThrow(/reported failure/);
      await server.waitForLine(
        /^connection \d+: SET_MEM_TABLE: region 0: map: the fd holds 65536 bytes, fewer than the 69632 to map$/,
        since,
      );
      expect((await frontEnd.getConfig(0, VirtioMemConfigLayout.size)).length).toBe(VirtioMemConfigLayout.size);
    } finally {
      native.close(memfd);
      frontEnd.close();
    }
    await expectHealthy();
  });

  test('a region whose memfd shrinks after it was mapped: the server survives the SIGBUS', async () => {
    const since = server.mark();
    const { frontEnd, region, kickFd } = await frontEndWithRing();
    try {
      // A valid STATE request, published, then the memfd is cut to nothing before the kick.
      const request = Buffer.from(encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: 1n << 32n, nb_blocks: 1 }));
      native.write(region.mapping, RING.buffers, request);
      placeChain(region, 0, 0, [
        { index: 0, addr: RING.buffers, len: 24, flags: VIRTQ_DESC_F_NEXT, next: 1 },
        { index: 1, addr: RING.buffers + 0x100n, len: 10, flags: VIRTQ_DESC_F_WRITE, next: 0 },
      ]);
      fs.ftruncateSync(region.fd, 0);
      // From here this process must not touch the region's memory either (it would get SIGBUS too).
      native.signal(kickFd);
      await server.waitForLine(
        /^connection \d+: the ring cannot be processed: read: the mapped file is shorter than the access \(SIGBUS\); the device is marked NEEDS_RESET$/,
        since,
      );
      expect(Number(await frontEnd.queryU64(Request.GET_STATUS)) & VIRTIO_CONFIG_S_NEEDS_RESET).toBe(
        VIRTIO_CONFIG_S_NEEDS_RESET,
      );
      expect((await frontEnd.getConfig(0, VirtioMemConfigLayout.size)).length).toBe(VirtioMemConfigLayout.size);
    } finally {
      frontEnd.close();
    }
    await expectHealthy();
  });

  test('descriptors pointing outside shared memory, and garbage in the ring, after a proper vring set-up', async () => {
    const since = server.mark();
    const { frontEnd, region, kickFd } = await frontEndWithRing();
    try {
      let avail = 0;
      const cases: { descriptors: TestDescriptor[]; head: number; line: RegExp }[] = [
        {
          head: 0,
          descriptors: [{ index: 0, addr: 0xdead00000000n, len: 24, flags: 0, next: 0 }],
          line: /chain at descriptor 0: readable buffer \[0xdead00000000, \+24\) is not in shared memory; the device is marked NEEDS_RESET$/,
        },
        {
          head: 1,
          descriptors: [
            { index: 1, addr: RING.buffers, len: 24, flags: 1, next: 2 },
            { index: 2, addr: 2n * MiB - 4n, len: 10, flags: 2, next: 0 },
          ],
          line: /chain at descriptor 1: writable buffer \[0x1ffffc, \+10\) is not in shared memory/,
        },
        {
          head: 4000,
          descriptors: [],
          line: /chain at descriptor 4000: descriptor index 4000 outside the table of 256/,
        },
        {
          head: 3,
          descriptors: [
            { index: 3, addr: RING.buffers, len: 24, flags: 1, next: 4 },
            { index: 4, addr: RING.buffers, len: 24, flags: 1, next: 3 },
          ],
          line: /chain at descriptor 3: the chain loops/,
        },
        {
          head: 5,
          descriptors: [{ index: 5, addr: RING.buffers, len: 24, flags: 1, next: 999 }],
          line: /chain at descriptor 5: descriptor index 999 outside the table of 256/,
        },
        {
          head: 6,
          descriptors: [{ index: 6, addr: 0n, len: 0x80000000, flags: 0, next: 0 }],
          line: /chain at descriptor 6: readable buffer of 2147483648 bytes is too large/,
        },
        {
          head: 7,
          descriptors: [{ index: 7, addr: 0xfffffffffffffff0n, len: 0x100, flags: 0, next: 0 }],
          line: /chain at descriptor 7: readable buffer \[0xfffffffffffffff0, \+256\) is not in shared memory/,
        },
      ];
      for (const c of cases) {
        placeChain(region, avail++, c.head, c.descriptors);
        native.signal(kickFd);
        await server.waitForLine(c.line, since);
      }
      expect(Number(await frontEnd.queryU64(Request.GET_STATUS)) & VIRTIO_CONFIG_S_NEEDS_RESET).toBe(
        VIRTIO_CONFIG_S_NEEDS_RESET,
      );
      // Garbage everywhere in the ring area, several kicks.
      const random = new SeededRandom(7);
      for (let round = 0; round < 20; round++) {
        native.write(region.mapping, 0n, random.bytes(Number(RING.buffers) + 4096));
        native.signal(kickFd);
        await sleep(5);
      }
      // Ring addresses outside the shared memory altogether.
      await frontEnd.command(
        Request.SET_VRING_ADDR,
        encodeStruct(VringAddressLayout, { index: 0, desc: 0x1000n, used: 0x2000n, avail: 0x3000n }),
      );
      native.signal(kickFd);
      await server.waitForLine(
        /the vring addresses are not inside the shared memory; the queue is not processed$/,
        since,
      );
      expect((await frontEnd.getConfig(0, VirtioMemConfigLayout.size)).length).toBe(VirtioMemConfigLayout.size);
    } finally {
      frontEnd.close();
    }
    expect(server.lines.slice(since).filter((l) => l.includes('internal error'))).toEqual([]);
    await expectHealthy();
  });
});

/** A small deterministic generator (xorshift32). */
class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }

  /** A uniformly distributed u32. */
  u32(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** An integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.below(high - low + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }

  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      for (let k = 0; k < 4 && i + k < n; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
    }
    return out;
  }
}

/** fds the fuzz run attaches: its own copies stay open for the whole run (the kernel passes duplicates). */
interface FdPool {
  readonly eventfds: readonly number[];
  readonly memfds: readonly number[];
}

/** Size of each pooled memfd (a few pages, filled with random bytes). */
const POOL_MEMFD_SIZE = 64 * 1024;
/**
 * Pooled memfd contents that look like a ring at {@link RING}: descriptors whose addresses fall
 * inside the memfd (as guest address 0…), random flags and links, a random avail index and
 * heads, and random bytes elsewhere; so walking it reaches the model with random requests.
 */
function plausibleRing(random: SeededRandom): Buffer {
  const bytes = random.bytes(POOL_MEMFD_SIZE);
  for (let i = 0; i < QUEUE_SIZE; i++) {
    encodeStruct(
      DescriptorLayout,
      {
        addr: BigInt(random.below(POOL_MEMFD_SIZE)),
        len: random.pick([24, 10, 8, random.below(64)]),
        flags: random.below(4),
        next: random.below(QUEUE_SIZE),
      },
      bytes,
      Number(RING.desc) + 16 * i,
    );
  }
  for (let i = 0; i < QUEUE_SIZE; i++) bytes.writeUInt16LE(random.below(QUEUE_SIZE), Number(RING.avail) + 4 + 2 * i);
  return bytes;
}

/** The front-end user address the fuzz run pretends its regions are at. */
const FUZZ_USER_BASE = 0x7f0000000000n;

/** One message as the fuzz run sends it. */
interface FuzzMessage {
  readonly bytes: Buffer;
  readonly fds: readonly number[];
  /** Hang up right after sending (the bytes end mid-message). */
  readonly hangUp: boolean;
  readonly description: string;
}

/**
 * Requests the fuzz run starts from. The vmemct SETUP, RESIZE, SYSTEM_RESET and SUSPEND_WAKE
 * controls are left out: they legitimately rebuild devices (SETUP may ask for a 2^30-block bitmap)
 * or resize the whole server.
 */
const VALID_CODES = [
  ...Object.values(Request),
  VmemctRequest.INFO,
  VmemctRequest.STATUS,
  VmemctRequest.CHECK_ACCESS,
  VmemctRequest.INJECT_BUSY,
];

/** Generates mutated vhost-user messages from well-formed ones. */
class MessageFuzzer {
  constructor(
    private readonly random: SeededRandom,
    private readonly pool: FdPool,
  ) {}

  private region(): { guestAddress: bigint; size: bigint; userAddress: bigint; mmapOffset: bigint } {
    const r = this.random;
    return {
      guestAddress: r.pick([0n, 1n << 32n, 0x100000n, r.u64()]),
      size: r.pick([
        BigInt(POOL_MEMFD_SIZE),
        4096n,
        BigInt(POOL_MEMFD_SIZE) * 2n,
        0n,
        r.u64(),
        BigInt(r.below(POOL_MEMFD_SIZE)),
      ]),
      userAddress: r.pick([FUZZ_USER_BASE, FUZZ_USER_BASE + 0x100000n, r.u64()]),
      mmapOffset: r.pick([0n, 0n, 4096n, BigInt(r.below(POOL_MEMFD_SIZE)), r.u64()]),
    };
  }

  private ringAddress(): bigint {
    const r = this.random;
    return r.chance(0.85) ? FUZZ_USER_BASE + BigInt(r.below(POOL_MEMFD_SIZE)) : r.u64();
  }

  /** A well-formed message (or close to it) for a request code. */
  private valid(request: number): { payload: Buffer; fds: number[] } {
    const r = this.random;
    const none = { payload: Buffer.alloc(0), fds: [] as number[] };
    switch (request) {
      case Request.SET_FEATURES:
      case Request.SET_STATUS:
        return {
          payload: u64Payload(r.chance(0.5) ? BigInt(r.pick([0, 1, 3, 7, 11, 15, 0x40, 0x8f])) : r.u64()),
          fds: [],
        };
      case Request.SET_PROTOCOL_FEATURES:
        return { payload: u64Payload(r.chance(0.7) ? FRONTEND_PROTOCOL_FEATURES & r.u64() : r.u64()), fds: [] };
      case Request.SET_MEM_TABLE: {
        const n = r.between(0, 3);
        const regions = Array.from({ length: n }, () => this.region());
        return { payload: memTablePayload(n, regions), fds: regions.map(() => r.pick(this.pool.memfds)) };
      }
      case Request.ADD_MEM_REG:
      case Request.REM_MEM_REG: {
        const payload = Buffer.alloc(8 + MemoryRegionLayout.size);
        encodeStruct(MemoryRegionLayout, this.region(), payload, 8);
        return { payload, fds: request === Request.ADD_MEM_REG ? [r.pick(this.pool.memfds)] : [] };
      }
      case Request.SET_VRING_NUM:
      case Request.SET_VRING_BASE:
      case Request.SET_VRING_ENABLE:
      case Request.GET_VRING_BASE:
        return {
          payload: encodeStruct(VringStateLayout, {
            index: r.pick([0, 0, 0, 1, r.u32()]),
            num: r.pick([256, 16, 1, 0, 3, 1 << 15, 1 << 16, r.u32()]),
          }),
          fds: [],
        };
      case Request.SET_VRING_ADDR:
        return {
          payload: encodeStruct(VringAddressLayout, {
            index: r.pick([0, 0, 0, 2]),
            flags: r.pick([0, 1, r.u32()]),
            desc: this.ringAddress(),
            used: this.ringAddress(),
            avail: this.ringAddress(),
            log: r.u64(),
          }),
          fds: [],
        };
      case Request.SET_VRING_KICK:
      case Request.SET_VRING_CALL:
      case Request.SET_VRING_ERR: {
        const noFd = r.chance(0.2);
        return {
          payload: u64Payload(BigInt(r.pick([0, 0, 0, 1, 255])) | (noFd ? VRING_NOFD : 0n)),
          fds: noFd ? [] : [r.pick(this.pool.eventfds)],
        };
      }
      case Request.SET_BACKEND_REQ_FD:
        return {
          payload: Buffer.alloc(0),
          fds: [r.chance(0.5) ? r.pick(this.pool.eventfds) : r.pick(this.pool.memfds)],
        };
      case Request.GET_CONFIG:
      case Request.SET_CONFIG: {
        const size = r.pick([56, 8, 0, r.below(300)]);
        const payload = Buffer.concat([
          encodeStruct(ConfigHeaderLayout, { offset: r.pick([0, 8, 55, r.u32()]), size, flags: r.pick([0, 1]) }),
          r.bytes(size),
        ]);
        return { payload, fds: [] };
      }
      case Request.SET_LOG_BASE:
        return { payload: r.bytes(16), fds: [r.pick(this.pool.memfds)] };
      case Request.SET_LOG_FD:
        return { payload: Buffer.alloc(0), fds: [r.pick(this.pool.eventfds)] };
      case VmemctRequest.CHECK_ACCESS:
        return { payload: r.bytes(24), fds: [] };
      case VmemctRequest.INJECT_BUSY:
        return { payload: u64Payload(BigInt(r.below(4))), fds: [] };
      default:
        return none;
    }
  }

  /**
   * A well-formed opening: features, owner, one pooled memfd as memory and vring 0 in it (at
   * {@link FUZZ_USER_BASE}), enabled.
   */
  validPrefix(): FuzzMessage[] {
    const r = this.random;
    const message = (request: number, payload?: Uint8Array, fds: number[] = []): FuzzMessage => ({
      bytes: frameMessage(request, FLAG_VERSION, payload),
      fds,
      hangUp: false,
      description: `valid request ${request}`,
    });
    const region = { guestAddress: 0n, size: BigInt(POOL_MEMFD_SIZE), userAddress: FUZZ_USER_BASE, mmapOffset: 0n };
    return [
      message(Request.GET_FEATURES),
      message(
        Request.SET_PROTOCOL_FEATURES,
        u64Payload(FRONTEND_PROTOCOL_FEATURES & ~protocolMask(ProtocolFeature.REPLY_ACK)),
      ),
      message(Request.SET_OWNER),
      message(Request.SET_FEATURES, u64Payload(0n)),
      message(Request.SET_MEM_TABLE, memTablePayload(1, [region]), [r.pick(this.pool.memfds)]),
      message(Request.SET_VRING_NUM, encodeStruct(VringStateLayout, { index: 0, num: r.pick([16, 256]) })),
      message(Request.SET_VRING_BASE, encodeStruct(VringStateLayout, { index: 0, num: 0 })),
      message(
        Request.SET_VRING_ADDR,
        encodeStruct(VringAddressLayout, {
          index: 0,
          desc: FUZZ_USER_BASE + RING.desc,
          avail: FUZZ_USER_BASE + RING.avail,
          used: FUZZ_USER_BASE + RING.used,
        }),
      ),
      message(Request.SET_VRING_KICK, u64Payload(0n), [r.pick(this.pool.eventfds)]),
      message(Request.SET_VRING_CALL, u64Payload(0n), [r.pick(this.pool.eventfds)]),
      message(Request.SET_VRING_ENABLE, encodeStruct(VringStateLayout, { index: 0, num: 1 })),
    ];
  }

  /** A mutated message. */
  next(): FuzzMessage {
    const r = this.random;
    let request: number = r.pick(VALID_CODES);
    let { payload, fds } = this.valid(request);
    let flags = FLAG_VERSION | (r.chance(0.5) ? FLAG_NEED_REPLY : 0);
    let sizeField: number | undefined;
    let cut: number | undefined;
    let hangUp = false;
    const applied: string[] = [];
    const mutations = r.chance(0.1) ? 0 : r.between(1, 3);
    for (let i = 0; i < mutations; i++) {
      const kind = r.pick([
        'code',
        'code',
        'size',
        'size',
        'payload',
        'fds',
        'fds',
        'flags',
        'lie',
        'truncate',
        'oversize',
      ] as const);
      applied.push(kind);
      switch (kind) {
        case 'code':
          request = r.chance(0.6) ? r.pick(VALID_CODES) : r.u32();
          break;
        case 'size':
          payload = r.chance(0.5)
            ? payload.subarray(0, r.below(payload.length + 1))
            : Buffer.concat([payload, r.bytes(r.between(1, 64))]);
          break;
        case 'payload':
          payload = r.chance(0.5) ? r.bytes(payload.length) : r.bytes(r.below(300));
          break;
        case 'fds':
          fds = Array.from({ length: r.between(0, 4) }, () =>
            r.chance(0.5) ? r.pick(this.pool.eventfds) : r.pick(this.pool.memfds),
          );
          break;
        case 'flags':
          flags = r.pick([0, 2, 3, FLAG_VERSION | FLAG_REPLY, FLAG_VERSION | (r.u32() & ~3), r.u32()]) >>> 0;
          break;
        case 'lie':
          sizeField = Math.max(0, payload.length + r.pick([-8, -1, 1, 4, 40]));
          break;
        case 'truncate':
          hangUp = true;
          break;
        case 'oversize':
          sizeField = r.pick([MAX_PAYLOAD + 1, 0x10000, 0xffffffff, MAX_PAYLOAD + 1 + r.below(1 << 20)]);
          break;
      }
    }
    const frame = frameMessage(request, flags, payload);
    if (sizeField !== undefined) frame.writeUInt32LE(sizeField >>> 0, 8);
    if (hangUp) cut = r.between(1, frame.length - 1);
    const bytes = cut === undefined ? frame : frame.subarray(0, cut);
    const description = `request ${request} flags 0x${flags.toString(16)} payload ${payload.length}${sizeField !== undefined ? ` size-field ${sizeField}` : ''} fds ${fds.length}${cut !== undefined ? ` cut at ${cut}` : ''} [${applied.join(',') || 'none'}]`;
    return { bytes, fds, hangUp, description };
  }
}

describe('serve-vhost-user survives a seeded fuzz run', () => {
  test(`>= ${FUZZ_MESSAGES} malformed messages, seed 0x${FUZZ_SEED.toString(16)}: alive, no fd leak, still serving`, async () => {
    const random = new SeededRandom(FUZZ_SEED);
    const pool: FdPool = {
      eventfds: Array.from({ length: 4 }, () => native.eventfd()),
      memfds: Array.from({ length: 4 }, (_, i) => native.memfd(`fuzz-${i}`, POOL_MEMFD_SIZE)),
    };
    pool.memfds.forEach((fd, i) =>
      fs.writeSync(fd, i < 2 ? plausibleRing(random) : random.bytes(POOL_MEMFD_SIZE), 0, POOL_MEMFD_SIZE, 0),
    );
    const fuzzer = new MessageFuzzer(random, pool);
    const since = server.mark();
    const fdsBefore = server.fdCount();
    const started = Date.now();
    let messages = 0;
    let prefixMessages = 0;
    let connections = 0;
    let endedByServer = 0;
    let maxFds = fdsBefore;
    let recent: string[] = [];
    try {
      while (messages < FUZZ_MESSAGES) {
        if (!server.alive)
          throw new Error(
            `the server died during connection ${connections} (${JSON.stringify(server.exit)}); its messages:\n${recent.join('\n')}\nits log:\n${server.tail()}`,
          );
        // Keep the number of connections the server has not finished yet bounded.
        for (let waited = 0; server.fdCount() > baseline + 60 && waited < 5000; waited += 5) await sleep(5);
        maxFds = Math.max(maxFds, server.fdCount());
        const peer = new RawPeer(server.socketPath);
        connections++;
        recent = [];
        let gone = false;
        // A third of the connections first set up memory and vring 0 properly, so the mutations
        // also meet a device with a ring (whose memory holds garbage) to walk.
        if (random.chance(0.33)) {
          for (const m of fuzzer.validPrefix()) {
            recent.push(m.description);
            if (!peer.sendBytes(m.bytes, m.fds)) gone = true;
            else prefixMessages++;
          }
        }
        const planned = random.between(5, 60);
        for (let i = 0; i < planned && !gone; i++) {
          const m = fuzzer.next();
          recent.push(m.description);
          if (!peer.sendBytes(m.bytes, m.fds)) {
            gone = true;
            break;
          }
          messages++;
          if (m.hangUp) break;
          // Now and then a kick on a pooled eventfd, so rings set up by the fuzz get walked.
          if (random.chance(0.03)) native.signal(random.pick(pool.eventfds));
          if (i % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
        }
        // Let the server work through what was sent before hanging up: a reply due after the
        // hang-up would fail (EPIPE) and end the connection before the rest was read.
        if (await peer.quiet(15)) {
          // Sometimes hang up in the middle of one more message.
          if (random.chance(0.2)) {
            const m = fuzzer.next();
            recent.push(`${m.description} (hang-up mid-message)`);
            if (peer.sendBytes(m.bytes.subarray(0, random.between(1, m.bytes.length - 1)), m.fds)) messages++;
          }
        } else {
          endedByServer++;
        }
        peer.close();
      }
      const seconds = (Date.now() - started) / 1000;
      expect(server.alive).toBe(true);
      // Connections still in the listen backlog hold no server fd yet, so the fd count can be at
      // the baseline before the last ones were served: wait until every connection has logged its
      // end (its fds are closed just before), then for the count.
      await server.settleLines(/: ended \(/, since, connections, 60_000);
      const fdsAfter = await server.settleFds(baseline, 10_000);
      const lines = server.lines.slice(since);
      const internal = lines.filter((l) => l.includes('internal error'));
      const count = (pattern: RegExp): number => lines.filter((l) => pattern.test(l)).length;
      // eslint-disable-next-line no-console
      console.log(
        `fuzz seed 0x${FUZZ_SEED.toString(16)}: ${messages} malformed messages (plus ${prefixMessages} valid set-up messages) over ${connections} connections ` +
          `in ${seconds.toFixed(1)} s (${Math.round(messages / seconds)} messages/s); ${endedByServer} connections ended by the server; ` +
          `server fds: ${fdsBefore} before, at most ${maxFds} during, ${fdsAfter} after (baseline ${baseline}); ` +
          `${lines.length} log lines: ${count(/framing error/)} framing errors, ${count(/mid-message/)} hang-ups mid-message, ` +
          `${count(/unknown request/)} unknown requests, ${count(/payload of/)} wrong sizes, ${count(/fd/)} fd problems, ` +
          `${count(/chain at descriptor|vring addresses|ring cannot/)} ring problems, ${internal.length} internal errors`,
      );
      expect(messages).toBeGreaterThanOrEqual(FUZZ_MESSAGES);
      expect(internal).toEqual([]);
      expect(fdsAfter).toBe(baseline);
      expect(lines.filter((l) => /: ended \(/.test(l)).length).toBeGreaterThanOrEqual(connections);
    } finally {
      for (const fd of [...pool.eventfds, ...pool.memfds]) native.close(fd);
    }
    // A fresh connection: handshake and GET_CONFIG, then a real virtio-mem request through the ring.
    await handshakeAndConfig();
    await normalClientServed(server.socketPath);
    await expectBaselineFds();
  }, 120_000);
});
