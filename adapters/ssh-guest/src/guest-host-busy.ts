/**
 * `host-busy` for the guest's driver: QEMU's own BUSY. While an outgoing migration is active,
 * QEMU's virtio-mem answers every PLUG, UNPLUG and UNPLUG ALL with BUSY (STATE never), so the host
 * holds the device busy with a migration that cannot finish (throttled, to a sink that never
 * reads) and releases it with `migrate_cancel` ({@link MigrationBusy}, shared with the `qemu`
 * adapter). No process is started for it: the sink is a unix socket of this process, in a
 * private folder removed on dispose.
 *
 * This is not how the corpus's scripted BUSY answers (`inject`) reach the driver: a migration
 * makes the whole machine busy, for every request type and every virtio-mem device, for as long
 * as it runs, so "the next N PLUG requests" holds only as far as the driver sends one request per
 * wake-up. Those go through the gdbstub, which answers exactly the requests the script names.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MigrationBusy, QmpClient } from '../../qemu-platform/src/index';

/** The migration that makes the guest's device busy, and its private folder. */
export class GuestHostBusy {
  private folder: string | undefined;
  private migration: MigrationBusy | undefined;

  constructor(
    private readonly qmp: Pick<QmpClient, 'execute'>,
    /** Bound on each wait for a migration state, in milliseconds. */
    private readonly boundMs: number,
  ) {}

  /** Whether the device is held busy. */
  get busy(): boolean {
    return this.migration?.active ?? false;
  }

  /** `true`: starts the migration and resolves once it is active; `false`: cancels it. Idempotent. */
  async set(busy: boolean): Promise<void> {
    if (!busy) return this.migration?.stop();
    if (!this.migration) {
      this.folder = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-host-busy-'));
      this.migration = new MigrationBusy(this.qmp, this.folder, this.boundMs);
    }
    await this.migration.start();
  }

  /** Releases a device left busy (best effort) and removes the sink's folder. Never throws. */
  async dispose(): Promise<void> {
    await this.migration?.stop().catch(() => this.migration?.closeSink());
    this.migration = undefined;
    if (this.folder) fs.rmSync(this.folder, { recursive: true, force: true });
    this.folder = undefined;
  }
}
