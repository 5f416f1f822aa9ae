import { virtioHandshakeSync } from '../../adapters/virtio/src/index';
import { VirtioMemDevice } from './device/device';
import { deviceRegisters } from './device/registers';
import { ReferenceDriver } from './driver/driver';
import { runDriverLoop } from './loop';

const BS = 2n << 20n;

function device(requestedBlocks: number): VirtioMemDevice {
  return new VirtioMemDevice({
    block_size: BS,
    addr: 1n << 32n,
    region_size: 64n * BS,
    requested_size: BigInt(requestedBlocks) * BS,
  });
}

describe('runDriverLoop', () => {
  test('should stop at the request limit before asking the driver again, and deliver the pending request first next time', () => {
    const d = device(8);
    const driver = new ReferenceDriver({ maxBlocksPerRequest: 2 });
    virtioHandshakeSync(deviceRegisters(d), (offered) => driver.negotiate(offered));
    const first = runDriverLoop(driver, d, { maxRequests: 1 });
    expect(first.stop).toMatchObject({ kind: 'request-limit' });
    expect(first.requests).toBe(1);
    let pending = first.stop.kind === 'request-limit' ? first.stop.pending : undefined;
    let runs = 1;
    for (;;) {
      const next = runDriverLoop(driver, d, { maxRequests: 1, pending });
      runs++;
      if (next.stop.kind !== 'request-limit') break;
      pending = next.stop.pending;
    }
    expect(d.readConfig().plugged_size).toBe(8n * BS);
    expect(runs).toBeGreaterThanOrEqual(4);
  });

  test('should deliver a notification raised between two runs when told what the driver has seen', () => {
    const d = device(4);
    const driver = new ReferenceDriver();
    virtioHandshakeSync(deviceRegisters(d), (offered) => driver.negotiate(offered));
    const first = runDriverLoop(driver, d);
    expect(first.stop.kind).toBe('idle');
    expect(d.setRequestedSize(12n * BS)).toMatchObject({ ok: true, notified: true });
    const second = runDriverLoop(driver, d, { notificationsSeen: first.notificationsSeen });
    expect(second.stop.kind).toBe('idle');
    expect(second.requests).toBeGreaterThan(0);
    expect(d.readConfig().plugged_size).toBe(12n * BS);
  });

  test('should let a hook answer a request and show the driver other configuration bytes', () => {
    const d = device(4);
    const driver = new ReferenceDriver();
    virtioHandshakeSync(deviceRegisters(d), (offered) => driver.negotiate(offered));
    const seen: (Uint8Array | null)[] = [];
    let views = 0;
    const run = runDriverLoop(driver, d, {
      answer: () => null,
      configView: (bytes) => {
        views++;
        return bytes;
      },
      onRequest: (_request, response) => seen.push(response),
    });
    expect(views).toBeGreaterThan(0);
    expect(seen[0]).toBeNull();
    expect(run.requests).toBe(seen.length);
    expect(d.readConfig().plugged_size).toBe(0n);
  });

  test('should stop when the driver has backed off longer than allowed', () => {
    const d = device(4);
    const driver = new ReferenceDriver({ initialBackoffMs: 100, maxBackoffMs: 1000 });
    virtioHandshakeSync(deviceRegisters(d), (offered) => driver.negotiate(offered));
    d.injectBusy(100);
    const run = runDriverLoop(driver, d, { maxWaitMs: 1000 });
    expect(run.stop.kind).toBe('wait-limit');
    expect(run.waitedMs).toBeGreaterThan(1000);
  });
});
