/**
 * One virtio-mem-pci device as the host controls it over QMP: what it holds
 * (`query-memory-devices`), how much the host asks for (`qom-set … requested-size`) and the
 * machine reset that empties it (`system_reset`). Both QEMU adapters play the host this way:
 * `qemu` on a QEMU it started (no guest), `ssh-guest` on the QEMU running the guest.
 */
import { QmpClient, QmpEvent } from './qmp';

/** The device as QEMU's host side reports it (QMP `query-memory-devices`). */
export interface HostView {
  /** Plugged size (`size`). */
  readonly size: bigint;
  readonly requestedSize: bigint;
  readonly blockSize: bigint;
  readonly maxSize: bigint;
  readonly memaddr: bigint;
  readonly node: number;
}

/** The `data` of one virtio-mem entry of `query-memory-devices`, as QEMU sent it. */
export type MemoryDeviceEntry = Readonly<Record<string, unknown>>;

/** Looking a device up: found (with its current state), or why not (a sentence saying how to fix it). */
export type FoundMemoryDevice =
  | { readonly kind: 'found'; readonly device: QemuMemoryDevice; readonly view: HostView }
  | { readonly kind: 'missing'; readonly reason: string };

/** What a `system_reset` came to: QEMU's RESET event arrived, or waiting for it failed. */
export type SystemResetOutcome =
  { readonly kind: 'reset'; readonly event: QmpEvent } | { readonly kind: 'no-reset-event'; readonly error: Error };

/** The virtio-mem entries of `query-memory-devices`, in QEMU's order. */
export async function listVirtioMemDevices(qmp: QmpClient): Promise<MemoryDeviceEntry[]> {
  const devices = (await qmp.execute('query-memory-devices')) as { type: string; data: Record<string, unknown> }[];
  return devices.filter((d) => d.type === 'virtio-mem').map((d) => d.data);
}

/** The host view of one entry; throws when QEMU left out a size or gave a non-integer. */
function hostViewOf(entry: MemoryDeviceEntry, id: string): HostView {
  const integer = (key: string): bigint => {
    const value = entry[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value))
      throw new Error(`query-memory-devices gave no integer '${key}' for '${id}'`);
    return BigInt(value);
  };
  return {
    size: integer('size'),
    requestedSize: integer('requested-size'),
    blockSize: integer('block-size'),
    maxSize: integer('max-size'),
    memaddr: integer('memaddr'),
    node: Number(entry.node ?? 0),
  };
}

/** The host's handle on one virtio-mem-pci device, by its QOM id. */
export class QemuMemoryDevice {
  constructor(
    private readonly qmp: QmpClient,
    /** The device's QOM id (`-device virtio-mem-pci,id=…`). */
    readonly id: string,
  ) {}

  /** The device with QOM id `id`, or the first virtio-mem device when no id is given. */
  static async find(qmp: QmpClient, id?: string): Promise<FoundMemoryDevice> {
    const entries = await listVirtioMemDevices(qmp);
    const chosen = id ? entries.find((d) => d.id === id) : entries[0];
    if (!chosen) {
      const reason = id
        ? `QEMU has no virtio-mem device with id '${id}' (has: ${entries.map((d) => String(d.id)).join(', ') || 'none'})`
        : 'the VM has no virtio-mem device (query-memory-devices lists none); add -device virtio-mem-pci,id=vm0,memdev=…';
      return { kind: 'missing', reason };
    }
    if (typeof chosen.id !== 'string')
      return {
        kind: 'missing',
        reason:
          'the virtio-mem device has no id; give it one (-device virtio-mem-pci,id=vm0,…) so it can be resized by QMP',
      };
    return { kind: 'found', device: new QemuMemoryDevice(qmp, chosen.id), view: hostViewOf(chosen, chosen.id) };
  }

  /** What the device holds and was asked for, now. */
  async hostView(): Promise<HostView> {
    const entry = (await listVirtioMemDevices(this.qmp)).find((d) => d.id === this.id);
    if (!entry) throw new Error(`query-memory-devices lists no virtio-mem device '${this.id}'`);
    return hostViewOf(entry, this.id);
  }

  /** Asks the device for `size` bytes plugged (`qom-set … requested-size`); QEMU refuses sizes the device cannot take with a QmpError. */
  async setRequestedSize(size: bigint): Promise<void> {
    await this.qmp.execute('qom-set', { path: this.id, property: 'requested-size', value: size });
  }

  /**
   * Resets the whole machine (`system_reset`; the device unplugs everything) and waits for QEMU's
   * RESET event. A failed command rejects; a missing event is an outcome, since a caller that
   * reconnects to the guest anyway need not care.
   */
  async systemReset(): Promise<SystemResetOutcome> {
    this.qmp.clearEvents();
    await this.qmp.execute('system_reset');
    try {
      return { kind: 'reset', event: await this.qmp.nextEvent('RESET') };
    } catch (e) {
      return { kind: 'no-reset-event', error: e as Error };
    }
  }
}
