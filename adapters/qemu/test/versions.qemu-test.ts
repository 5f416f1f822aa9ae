/**
 * The knobs in which the qemu-7.2 and qemu-10.0 profiles differ, each checked on its binary
 * directly, beside the corpus:
 * - the default offer (PERSISTENT_SUSPEND from 9.2 on);
 * - UNPLUG ALL while a migration keeps the device busy, with nothing plugged (BUSY on 7.2, ACK
 *   since 8.1) and with plugged blocks (BUSY on both);
 * - the S3 wake-up (s3-suspend.ts: the ICH9 power-management registers over qtest, then QMP
 *   `system_wakeup`, as the adapter's `suspend` does): it unplugs every block on 7.2 and keeps
 *   them on 10.0 (with PERSISTENT_SUSPEND negotiated or not).
 */
import { encodeRequest } from '../../../model/src/codec/codec';
import { DeviceProfile, QEMU_10_0_PROFILE, QEMU_7_2_PROFILE } from '../../../model/src/index';
import {
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_ACPI_PXM,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  featureMask,
} from '../../../spec/src/index';
import type { DeviceSetup } from '../../core/src/contract';
import type { QemuBinary } from '../../qemu-platform/src/index';
import { qemuArguments } from '../src/qemu-adapter';
import { QemuProcess } from '../src/qemu-process';
import { runState, suspendAndWake } from '../src/s3-suspend';
import { probeOverQtest } from '../src/qtest-bus';
import { QEMU, SMALL_DEVICE, locateQemu10 } from './qemu-test-support';

/** QEMU 10.0 for this suite: the fetched cache (`npm run test:qemu` fetches it first). */
const QEMU10: QemuBinary = locateQemu10();

const PS = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);
const BASIC = featureMask(VIRTIO_F_VERSION_1) | featureMask(VIRTIO_MEM_F_ACPI_PXM);
const RESPONSES = ['ACK', 'NACK', 'BUSY', 'ERROR'] as const;

/** One QEMU with the driver attached, for a set-up. */
async function start(binary: QemuBinary, setup: DeviceSetup) {
  const qemu = await QemuProcess.start(binary, qemuArguments(setup, binary.version), 15_000, 5_000);
  const driver = await probeOverQtest(qemu.qtest);
  const request = async (type: number, nb_blocks: number): Promise<string> => {
    const c = await driver.submit({
      readable: [encodeRequest({ type, addr: setup.addr, nb_blocks })],
      writableSizes: [10],
    });
    return c.kind === 'used' ? RESPONSES[c.written[0]! | (c.written[1]! << 8)]! : 'no used entry';
  };
  const pluggedSize = async (): Promise<bigint> =>
    BigInt((await qemu.qmp.execute('qom-get', { path: '/machine/peripheral/vm0', property: 'size' })) as number);
  return { qemu, driver, request, pluggedSize };
}

/** How long a migration may take to reach the awaited status (TCG on a loaded machine is slow). */
const MIGRATION_STATUS_TIMEOUT_MS = 30_000;

/** Polls `query-migrate` until `until` holds for its status or the time is up; the last status. */
async function migrationStatus(qemu: QemuProcess, until: (status: string) => boolean): Promise<string> {
  const deadline = Date.now() + MIGRATION_STATUS_TIMEOUT_MS;
  for (;;) {
    const status = ((await qemu.qmp.execute('query-migrate')) as { status?: string }).status ?? '';
    if (until(status) || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const PAIRS: readonly (readonly [string, QemuBinary, DeviceProfile])[] = [
  ['7.2', QEMU, QEMU_7_2_PROFILE],
  ['10.0', QEMU10, QEMU_10_0_PROFILE],
];

describe.each(PAIRS)('QEMU %s against its profile', (_version, binary, profile) => {
  test(`offers ${profile.name}'s default features (PERSISTENT_SUSPEND: ${profile.platformCanSuspend})`, async () => {
    const { qemu, driver } = await start(binary, SMALL_DEVICE);
    try {
      const init = await driver.initialise((offered) => offered);
      expect(init.offered & (BASIC | PS | featureMask(1))).toBe(profile.defaultFeatures);
    } finally {
      await qemu.kill();
    }
  });

  test(`UNPLUG ALL during a migration answers as ${profile.name}'s unplugAllWhileBusy (${profile.unplugAllWhileBusy}) says`, async () => {
    const { qemu, driver, request } = await start(binary, SMALL_DEVICE);
    const busy = async (): Promise<void> => {
      // A throttled migration into a sink stays active until it is cancelled.
      await qemu.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 4096 });
      await qemu.qmp.execute('migrate', { uri: 'exec:cat > /dev/null' });
      expect(await migrationStatus(qemu, (s) => s === 'active')).toBe('active');
    };
    const idle = async (): Promise<void> => {
      await qemu.qmp.execute('migrate_cancel');
      expect(await migrationStatus(qemu, (s) => s !== 'active' && s !== 'cancelling')).toBe('cancelled');
    };
    try {
      await driver.initialise((offered) => offered);
      await busy();
      expect(await request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0)).toBe(profile.unplugAllWhileBusy === 'busy' ? 'BUSY' : 'ACK');
      expect(await request(VIRTIO_MEM_REQ_PLUG, 2)).toBe('BUSY');
      await idle();
      expect(await request(VIRTIO_MEM_REQ_PLUG, 2)).toBe('ACK');
      await busy();
      // With memory plugged every version answers BUSY.
      expect(await request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0)).toBe('BUSY');
      await idle();
      expect(await request(VIRTIO_MEM_REQ_UNPLUG_ALL, 0)).toBe('ACK');
    } finally {
      await qemu.kill();
    }
  });

  const negotiations = profile.platformCanSuspend ? [BASIC, BASIC | PS] : [BASIC];
  test.each(negotiations.map((f) => [(f & PS) !== 0n ? 'with' : 'without', f] as const))(
    `the S3 wake-up %s PERSISTENT_SUSPEND does to the blocks what ${profile.name} says`,
    async (_with, features) => {
      const { qemu, driver, request, pluggedSize } = await start(binary, { ...SMALL_DEVICE, features });
      try {
        await driver.initialise((offered) => offered & features);
        expect(await request(VIRTIO_MEM_REQ_PLUG, 4)).toBe('ACK');
        expect(await pluggedSize()).toBe(4n * SMALL_DEVICE.block_size);
        // Entered through the ICH9 power-management registers, left with system_wakeup (the adapter's way).
        await suspendAndWake(qemu.qmp, qemu.qtest, 5_000);
        expect(await runState(qemu.qmp)).toBe('paused');
        const negotiated = (features & PS) !== 0n;
        const kept = negotiated || profile.suspendWithoutPersistence === 'keep';
        expect(await pluggedSize()).toBe(kept ? 4n * SMALL_DEVICE.block_size : 0n);
      } finally {
        await qemu.kill();
      }
    },
  );
});
