/**
 * `host-busy` on QEMU: an outgoing migration to the adapter's sink makes virtio-mem answer BUSY,
 * migrate_cancel releases it, and a session closed while busy cancels the migration, closes the
 * sink and leaves the QEMU fit for reuse.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeResponse, encodeRequest } from '../../../model/src/codec/codec';
import { RESPONSE_CODE_NAMES, VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_STATE } from '../../../spec/src/index';
import type { DeviceSession } from '../../core/src/contract';
import { createQemuAdapter } from '../src/qemu-adapter';
import { QEMU, SMALL_DEVICE } from './qemu-test-support';

async function answer(session: DeviceSession, type: number, first: number, count: number): Promise<string> {
  const addr = SMALL_DEVICE.addr + BigInt(first) * SMALL_DEVICE.block_size;
  const c = await session.submit({ readable: [encodeRequest({ type, addr, nb_blocks: count })], writableSizes: [10] });
  if (c.kind !== 'used') return c.kind;
  const r = decodeResponse(c.written);
  return r.ok ? (RESPONSE_CODE_NAMES[r.value.type] ?? String(r.value.type)) : 'undecodable';
}

/** Migration sinks left in this process's QEMU folders. */
function sinks(): string[] {
  return fs
    .readdirSync(os.tmpdir())
    .filter((d) => d.startsWith(`vmemct-qemu-${process.pid}-`))
    .map((d) => path.join(os.tmpdir(), d, 'migration-sink.sock'))
    .filter((f) => fs.existsSync(f));
}

test('busy while the migration is active: PLUG BUSY, STATE answered; released: PLUG acknowledged', async () => {
  const adapter = createQemuAdapter({ located: QEMU });
  try {
    const session = await adapter.openDevice(SMALL_DEVICE);
    await session.initialise((offered) => offered);
    await session.hostBusy!(true);
    expect(sinks()).toHaveLength(1);
    expect(await answer(session, VIRTIO_MEM_REQ_PLUG, 0, 2)).toBe('BUSY');
    expect(await answer(session, VIRTIO_MEM_REQ_STATE, 0, 2)).toBe('ACK');
    await session.hostBusy!(false);
    expect(sinks()).toEqual([]);
    expect(await answer(session, VIRTIO_MEM_REQ_PLUG, 0, 2)).toBe('ACK');
    await session.close();
  } finally {
    await adapter.dispose();
  }
});

test('a session closed while busy cancels the migration and closes the sink; the QEMU is reused, not busy', async () => {
  const started: number[] = [];
  const adapter = createQemuAdapter({ located: QEMU, onStart: (pid) => started.push(pid!) });
  try {
    const first = await adapter.openDevice(SMALL_DEVICE);
    await first.initialise((offered) => offered);
    await first.hostBusy!(true);
    expect(await answer(first, VIRTIO_MEM_REQ_PLUG, 0, 1)).toBe('BUSY');
    await first.close();
    expect(sinks()).toEqual([]);

    const second = await adapter.openDevice(SMALL_DEVICE);
    await second.initialise((offered) => offered);
    expect(await answer(second, VIRTIO_MEM_REQ_PLUG, 0, 1)).toBe('ACK');
    // A new busy period on the same QEMU works as the first did.
    await second.hostBusy!(true);
    expect(await answer(second, VIRTIO_MEM_REQ_PLUG, 1, 1)).toBe('BUSY');
    await second.close();
    expect(started).toHaveLength(1);
  } finally {
    await adapter.dispose();
  }
  expect(sinks()).toEqual([]);
});
