import { ConfigSnapshot, ConfigSnapshotReader, readConsistentConfig } from './index';

/** A reader that returns the given snapshots in turn and counts its reads. */
function scripted(snapshots: readonly ConfigSnapshot[]): ConfigSnapshotReader & { reads: number } {
  const reader = {
    reads: 0,
    readSnapshot: async () => snapshots[Math.min(reader.reads++, snapshots.length - 1)]!,
  };
  return reader;
}

const snapshot = (before: number, byte: number, after: number): ConfigSnapshot => ({
  generationBefore: before,
  bytes: Uint8Array.of(byte),
  generationAfter: after,
});

describe('readConsistentConfig (VIRTIO 1.4 §2.5.1)', () => {
  test('should return the first snapshot read between two equal generations', async () => {
    const reader = scripted([snapshot(1, 0xaa, 2), snapshot(2, 0xbb, 3), snapshot(3, 0xcc, 3)]);
    expect(await readConsistentConfig(reader, 5)).toEqual({ kind: 'consistent', bytes: Uint8Array.of(0xcc) });
    expect(reader.reads).toBe(3);
  });

  test('should give up after the given number of attempts when the generation keeps changing', async () => {
    const reader = scripted([snapshot(1, 0, 2)]);
    expect(await readConsistentConfig(reader, 4)).toEqual({ kind: 'kept-changing', attempts: 4 });
    expect(reader.reads).toBe(4);
  });
});
