import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeRequest, encodeResponse } from '../../../model/src/codec/codec';
import { DriverActivity, DriverEvent } from '../../core/src/contract';
import { UnpluggedWriteWatch, nonZeroPages, openMemoryFile, sharedMemoryFile } from './guest-memory-file';

const MiB = 1n << 20n;
const MEMADDR = 4n << 30n;
const BLOCK = 2n * MiB;
const REGION = 32n * MiB;
const GEOMETRY = { memaddr: MEMADDR, blockSize: BLOCK, maxSize: REGION };

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-memfile-test-'));
  file = path.join(dir, 'region');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, Number(REGION));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The guest writes `bytes` at region offset `offset` (as QEMU's shared mapping would). */
function guestWrites(offset: bigint, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, Number(offset));
  fs.closeSync(fd);
}

function request(type: number, block: number, nb: number, answer = 0): DriverEvent {
  return {
    kind: 'request',
    exchange: {
      request: encodeRequest({ type, addr: MEMADDR + BigInt(block) * BLOCK, nb_blocks: nb }),
      response: encodeResponse({ type: answer }),
    },
  };
}

function activity(events: DriverEvent[]): DriverActivity {
  return { events, settled: true, stop: 'converged', waitedMs: 0 };
}

describe('nonZeroPages', () => {
  test('joins neighbouring dirty pages into one run and skips clean ones', () => {
    const bytes = new Uint8Array(5 * 4096);
    bytes[10] = 1;
    bytes[4096 + 4095] = 7;
    bytes[4 * 4096] = 2;
    expect(nonZeroPages(bytes)).toEqual([
      [0, 8192],
      [16384, 4096],
    ]);
    expect(nonZeroPages(new Uint8Array(8192))).toEqual([]);
  });
});

describe('UnpluggedWriteWatch on a region file', () => {
  test('writes into blocks the device holds plugged are not reported; writes into unplugged blocks are, page by page', () => {
    const memory = openMemoryFile(file);
    const watch = new UnpluggedWriteWatch(memory, GEOMETRY, [{ first: 1, count: 2 }]);
    guestWrites(BLOCK + 100n, new Uint8Array([1, 2, 3]));
    guestWrites(5n * BLOCK + 8192n, new Uint8Array([9]));
    const seen = watch.observe(activity([]));
    expect(seen.events).toEqual([{ kind: 'memory-write', addr: MEMADDR + 5n * BLOCK + 8192n, length: 4096 }]);
    memory.close();
  });

  test("the settle's ACKed requests move the blocks: unplugged by UNPLUG, plugged by PLUG; NACKed ones change nothing", () => {
    const memory = openMemoryFile(file);
    const watch = new UnpluggedWriteWatch(memory, GEOMETRY, [{ first: 0, count: 4 }]);
    guestWrites(3n * BLOCK, new Uint8Array([1]));
    guestWrites(8n * BLOCK, new Uint8Array([1]));
    guestWrites(9n * BLOCK, new Uint8Array([1]));
    // Block 3 unplugged while it still holds data (QEMU would have discarded it: data there now is a write after that).
    const events = [request(1, 3, 1), request(0, 8, 1), request(0, 9, 1, 1)];
    const seen = watch.observe(activity(events));
    expect(seen.events.slice(0, 3)).toEqual(events);
    expect(seen.events.slice(3)).toEqual([
      { kind: 'memory-write', addr: MEMADDR + 3n * BLOCK, length: 4096 },
      { kind: 'memory-write', addr: MEMADDR + 9n * BLOCK, length: 4096 },
    ]);
    memory.close();
  });

  test('UNPLUG ALL and a reset leave every block unplugged', () => {
    const memory = openMemoryFile(file);
    const watch = new UnpluggedWriteWatch(memory, GEOMETRY, [{ first: 0, count: 16 }]);
    guestWrites(0n, new Uint8Array([5]));
    expect(watch.observe(activity([])).events).toEqual([]);
    expect(watch.observe(activity([request(2, 0, 0)])).events.slice(1)).toEqual([
      { kind: 'memory-write', addr: MEMADDR, length: 4096 },
    ]);
    const again = new UnpluggedWriteWatch(memory, GEOMETRY, [{ first: 0, count: 16 }]);
    again.reset();
    expect(again.unpluggedWrites()).toEqual([{ kind: 'memory-write', addr: MEMADDR, length: 4096 }]);
    memory.close();
  });
});

describe('sharedMemoryFile (which QEMU memory backends give memory-access)', () => {
  const device = { id: 'vm0', memdev: '/objects/vmemct-mem0' };
  const qmp = (props: Record<string, unknown>) => ({
    execute: async (command: string, args?: Record<string, unknown>): Promise<unknown> => {
      if (command !== 'qom-get' || args?.path !== device.memdev) throw new Error('unexpected');
      if (!(String(args.property) in props)) throw new Error('Property not found');
      return props[String(args.property)];
    },
  });

  test('a shared file of the region size on this machine', async () => {
    expect(await sharedMemoryFile(qmp({ 'mem-path': file, share: true }), device, REGION)).toEqual({ path: file });
  });

  test('a RAM backend, an unshared file, a missing file and a file of another size are refused with the reason', async () => {
    expect(await sharedMemoryFile(qmp({ share: false }), device, REGION)).toEqual({
      reason:
        "the device's memory backend /objects/vmemct-mem0 is not a file (boot with `vmemct guest up --shared-memory`)",
    });
    expect(await sharedMemoryFile(qmp({ 'mem-path': file, share: false }), device, REGION)).toEqual({
      reason: `the device's memory backend file ${file} is not shared (share=on)`,
    });
    expect(await sharedMemoryFile(qmp({ 'mem-path': `${file}.gone`, share: true }), device, REGION)).toEqual({
      reason: `the device's memory backend file ${file}.gone cannot be read on this machine`,
    });
    expect(await sharedMemoryFile(qmp({ 'mem-path': file, share: true }), device, 2n * REGION)).toEqual({
      reason: `${file} is not a file of the region's size (67108864 bytes)`,
    });
  });
});
