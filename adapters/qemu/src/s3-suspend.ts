/**
 * Suspend-to-RAM (ACPI S3) and wake-up of a QEMU q35 machine, driven from the host side: the
 * ICH9 power-management registers are written over qtest (what a guest's ACPI code would do),
 * QMP reports the machine `suspended`, and QMP `system_wakeup` wakes it. QEMU 7.2 cannot suspend
 * from the prelaunch state, so a machine not yet running is continued first; its CPU only runs
 * the halting firmware QemuProcess gives every machine, so nothing else touches the
 * machine. The wake-up resets the platform (the device's virtio status is 0 afterwards and its
 * PCI BARs are cleared); the machine is paused again afterwards.
 */
import { AdapterTimeoutError } from '../../core/src/contract';
import { sleep } from '../../core/src/sleep';
import type { QmpClient } from '../../qemu-platform/src/index';
import { qtestCommand as q } from './qtest';
import type { QtestClient } from './qtest';

/** q35's ICH9 LPC bridge (00:1f.0) in the PCI configuration mechanism #1 numbering. */
const LPC_BDF = 0x1f << 3;
/** ICH9 LPC configuration registers: PMBASE (I/O base of the ACPI registers) and ACPI_CNTL. */
const LPC_PMBASE = 0x40;
const LPC_ACPI_CNTL = 0x44;
/** ACPI_CNTL bit 7: the ACPI I/O registers decode. */
const ACPI_ENABLE = 0x80;
/** Where the adapter places the ACPI registers (the firmware's usual choice on q35). */
const PM_BASE = 0x600;
/** PM1a_CNT sits 4 bytes into the ACPI registers. */
const PM1_CNT = PM_BASE + 4;
/** PM1a_CNT: SLP_EN (bit 13) with SLP_TYP 1 (bits 10..12), which QEMU's ICH9 takes as S3. */
const PM1_CNT_SUSPEND = (1 << 13) | (1 << 10);
/** How often `query-status` is polled while waiting for a run state. */
const POLL_MS = 5;

function pciConfigAddress(offset: number): number {
  return (0x8000_0000 | (LPC_BDF << 8) | offset) >>> 0;
}

/** The qtest lines that enable ICH9's ACPI registers at {@link PM_BASE} and enter S3 through PM1a_CNT. */
export function enterS3Commands(): string[] {
  return [
    q.outl(0xcf8, pciConfigAddress(LPC_PMBASE)),
    q.outl(0xcfc, PM_BASE | 1),
    q.outl(0xcf8, pciConfigAddress(LPC_ACPI_CNTL)),
    q.outb(0xcfc, ACPI_ENABLE),
    q.outw(PM1_CNT, PM1_CNT_SUSPEND),
  ];
}

/** The QMP run state (`query-status`). */
export async function runState(qmp: QmpClient): Promise<string> {
  return ((await qmp.execute('query-status')) as { status: string }).status;
}

/** Polls `query-status` until it reports `wanted`; AdapterTimeoutError after `boundMs`. */
export async function waitForRunState(qmp: QmpClient, wanted: string, boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const status = await runState(qmp);
    if (status === wanted) return;
    if (Date.now() >= deadline)
      throw new AdapterTimeoutError(`QEMU did not become ${wanted} within ${boundMs} ms (query-status: ${status})`);
    await sleep(POLL_MS);
  }
}

/**
 * Suspends the machine to RAM and wakes it up: runs it if it is not running, enters S3, waits for
 * `suspended`, wakes it with `system_wakeup`, waits until the wake-up (with its platform reset) is
 * done (the WAKEUP event and `running`), then pauses it again. Each wait is bounded by `boundMs`.
 */
export async function suspendAndWake(qmp: QmpClient, qtest: QtestClient, boundMs: number): Promise<void> {
  // 7.2 refuses the prelaunch → suspended transition: the machine must run first.
  if ((await runState(qmp)) !== 'running') await qmp.execute('cont');
  await qtest.batch(enterS3Commands());
  await waitForRunState(qmp, 'suspended', boundMs);
  await qmp.nextEvent('SUSPEND', boundMs).catch(() => undefined);
  await qmp.execute('system_wakeup');
  // The wake-up's platform reset happens in QEMU's main loop; WAKEUP is sent once it is done.
  await qmp.nextEvent('WAKEUP', boundMs).catch((e: Error) => {
    throw new AdapterTimeoutError(`QEMU sent no WAKEUP event within ${boundMs} ms after system_wakeup: ${e.message}`);
  });
  await waitForRunState(qmp, 'running', boundMs);
  await qmp.execute('stop');
  await waitForRunState(qmp, 'paused', boundMs);
}
