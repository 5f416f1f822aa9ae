/**
 * A consistent read of the device-specific configuration (VIRTIO 1.4 §2.5.1, §4.1.4.3.1): the
 * driver reads `config_generation`, the configuration, then `config_generation` again, and reads
 * again until the two generations agree, so no field comes from before a change and another
 * from after it.
 *
 * Written once over a {@link ConfigSnapshotReader}: the QEMU adapter reads the three over qtest
 * in one batch, the ssh-guest adapter through the PCI_CFG window in one shell script.
 */

/** One attempt: `config_generation`, the configuration bytes, `config_generation` again. */
export interface ConfigSnapshot {
  readonly generationBefore: number;
  readonly bytes: Uint8Array;
  readonly generationAfter: number;
}

/** How a transport reads one {@link ConfigSnapshot} (in as few round trips as it can). */
export interface ConfigSnapshotReader {
  readSnapshot(): Promise<ConfigSnapshot>;
}

/** Result of {@link readConsistentConfig}. */
export type ConsistentConfig =
  /** The configuration, read between two equal generations. */
  | { readonly kind: 'consistent'; readonly bytes: Uint8Array }
  /** The generation differed on every attempt. */
  | { readonly kind: 'kept-changing'; readonly attempts: number };

/** Reads snapshots until one has equal generations, at most `attempts` times. */
export async function readConsistentConfig(reader: ConfigSnapshotReader, attempts: number): Promise<ConsistentConfig> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const snapshot = await reader.readSnapshot();
    if (snapshot.generationBefore === snapshot.generationAfter) return { kind: 'consistent', bytes: snapshot.bytes };
  }
  return { kind: 'kept-changing', attempts };
}
