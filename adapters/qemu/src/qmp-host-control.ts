/**
 * The host side of a QEMU the suite started, over QMP: `qom-set requested-size`, `system_reset`,
 * an outgoing migration kept active for a host-made BUSY (qemu-platform/src/migration-busy.ts), and suspend-to-RAM
 * with `system_wakeup` (s3-suspend.ts; entering S3 goes over qtest, as a guest's ACPI code would).
 */
import type { ResizeOutcome } from '../../core/src/contract';
import type { HostControl } from '../../device-session/src/host-control';
import { MigrationBusy, QemuMemoryDevice, QmpError } from '../../qemu-platform/src/index';
import type { QmpClient } from '../../qemu-platform/src/index';
import type { QtestClient } from './qtest';
import { suspendAndWake } from './s3-suspend';

/** {@link HostControl} over a QEMU's QMP monitor (and its qtest channel, for S3). */
export class QmpHostControl implements HostControl {
  readonly name = 'QMP';

  constructor(
    private readonly qmp: QmpClient,
    private readonly qtest: QtestClient,
    /** The host's handle on the device. */
    readonly memory: QemuMemoryDevice,
    /** The outgoing migration that makes the device busy. */
    readonly migration: MigrationBusy,
    /** Bound on each wait of a multi-command host operation (suspend), in milliseconds. */
    private readonly boundMs: number,
  ) {}

  /** `qom-set requested-size`; QEMU's GenericError (a value it refuses) is `refused`. */
  async resize(requestedSize: bigint): Promise<ResizeOutcome> {
    try {
      await this.memory.setRequestedSize(requestedSize);
    } catch (e) {
      if (e instanceof QmpError && e.qmpClass === 'GenericError') return { kind: 'refused', reason: e.message };
      throw e;
    }
    return { kind: 'applied' };
  }

  /** `system_reset`, then QEMU's RESET event. */
  async systemReset(): Promise<void> {
    const reset = await this.memory.systemReset();
    if (reset.kind === 'no-reset-event') throw reset.error;
  }

  /** An outgoing migration kept active makes QEMU's device busy; cancelling it releases it. */
  async hostBusy(busy: boolean): Promise<void> {
    await (busy ? this.migration.start() : this.migration.stop());
  }

  /** S3 through ICH9's PM registers over qtest, then `system_wakeup`. */
  suspendAndWake(): Promise<void> {
    return suspendAndWake(this.qmp, this.qtest, this.boundMs);
  }
}
