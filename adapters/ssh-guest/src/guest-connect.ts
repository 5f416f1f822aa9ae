/**
 * Connecting to a guest under test and checking everything the `ssh-guest` adapter needs, in
 * the order a person would fix them: QEMU's QMP and its virtio-mem device, the trace log, SSH
 * into the guest, its virtio-mem PCI functions (the device's found by its address), virtio_mem as
 * a module, a readable PCI_CFG window. Each failure is a {@link SshGuestSetupError} saying what to change.
 */
import * as fs from 'node:fs';
import {
  HostView,
  QemuMemoryDevice,
  QmpClient,
  QmpTcpAddress,
  listVirtioMemDevices,
} from '../../qemu-platform/src/index';
import { formatHex } from '../../../spec/src/index';
import { decodeConfig } from '../../../model/src/codec/codec';
import { ConfigWindow } from './config-window';
import { GuestLink } from './guest-link';
import { sharedMemoryFile } from './guest-memory-file';
import { TraceFollower } from './qemu-trace';
import { SshError, SshTarget } from './ssh-shell';

/** How to reach the guest and its hypervisor. */
export interface SshGuestOptions {
  readonly ssh: SshTarget;
  /** QMP of the QEMU running the guest: a unix socket path or a TCP address. */
  readonly qmp: string | QmpTcpAddress;
  /** The file QEMU writes its trace events to (`-D FILE -trace enable=virtio_mem_*`). */
  readonly traceLog: string;
  /** QOM id of the virtio-mem device (default: the first one QMP lists). */
  readonly deviceId?: string;
  /** Bound on each SSH command and QMP command (default 30 s). */
  readonly commandTimeoutMs?: number;
  /** How long the driver must be quiet, once converged, to count as settled (default 800 ms). */
  readonly quietMs?: number;
  /** How long without any progress before a driver that has not converged counts as stalled (default 8 s). */
  readonly stallMs?: number;
  /** Bound on one settle (default 90 s). */
  readonly settleBoundMs?: number;
  /** Bound on draining the device (shrink to 0) between vectors (default 60 s). */
  readonly drainTimeoutMs?: number;
  /**
   * Drain the device between vectors by a system reset (QEMU unplugs everything) rather than by
   * shrinking it: for a large region, where the driver takes minutes to unplug under TCG.
   */
  readonly drainByReset?: boolean;
  /** QEMU's gdbstub socket (`-gdb unix:PATH,server=on,wait=off`): answers are injected through it (`inject-responses`). */
  readonly gdbSocket?: string;
  /**
   * The guest was booted with `icount` (`vmemct guest up --icount`): its clock jumps to the next
   * timer while it idles, so the driver's BUSY back-off passes in host milliseconds.
   */
  readonly icount?: boolean;
}

/** The guest or hypervisor cannot be used; the message says which and how to fix it (exit 2). */
export class SshGuestSetupError extends Error {
  override readonly name = 'SshGuestSetupError';
}

/** A guest that passed every check: the link to it and what the checks found. */
export interface ConnectedGuest {
  readonly link: GuestLink;
  /** The device as QMP reported it at set-up; its geometry (block size, region, node) is fixed. */
  readonly geometry: HostView;
  /** Following QEMU's trace log from its current end. */
  readonly trace: TraceFollower;
  readonly window: ConfigWindow;
  /** `uname -r` of the guest. */
  readonly kernelRelease: string;
  /** The features the device offers (both 32-bit halves). */
  readonly offered: bigint;
  /**
   * Every virtio-mem PCI function the guest sees (sysfs folders), the device's among them: a
   * guest with several serves multi-device vectors.
   */
  readonly pciDevices: readonly string[];
  /** The file backing the device region, shared with QEMU (`memory-access`), or why there is none. */
  readonly memoryFile: { readonly path: string } | { readonly reason: string };
  /** QEMU's version (`query-version`), e.g. `7.2.0`: which device set-ups it can build depends on it. */
  readonly qemuVersion: string;
}

/** `major.minor.micro` from QMP's `query-version` answer ('0.0.0' when it has none). */
export function qemuVersionOf(answer: unknown): string {
  const q = (answer as { qemu?: { major?: unknown; minor?: unknown; micro?: unknown } } | undefined)?.qemu;
  const part = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) ? v : 0);
  return `${part(q?.major)}.${part(q?.minor)}.${part(q?.micro)}`;
}

/** The virtio-mem PCI function (vendor 0x1af4, device 0x1040 + 24), as sysfs folders. */
const FIND_VIRTIO_MEM_PCI =
  'for d in /sys/bus/pci/devices/*; do if [ "$(cat $d/vendor)" = 0x1af4 ] && [ "$(cat $d/device)" = 0x1058 ]; then echo $d; fi; done';
/** Loads virtio_mem if needed and says whether it is a module, built in, or missing. */
const DRIVER_KIND =
  '[ -d /sys/module/virtio_mem ] || modprobe virtio_mem; if [ -e /sys/module/virtio_mem/initstate ]; then echo module; elif [ -d /sys/module/virtio_mem ]; then echo builtin; else echo missing; fi';

/** The configuration window of the PCI function (one of `devices`) whose region starts at `addr`. */
export async function windowAt(link: GuestLink, devices: readonly string[], addr: bigint): Promise<ConfigWindow> {
  const seen: string[] = [];
  for (const device of devices) {
    const opened = await ConfigWindow.open(link, device);
    if (opened.kind === 'unreadable') throw new SshGuestSetupError(opened.reason);
    if (devices.length === 1) return opened.window;
    const config = decodeConfig(await opened.window.readConfig());
    if (config.ok && config.value.addr === addr) return opened.window;
    seen.push(`${device}: ${config.ok ? formatHex(config.value.addr) : 'unreadable'}`);
  }
  throw new SshGuestSetupError(
    `no virtio-mem PCI function of the guest has its region at ${formatHex(addr)} (${seen.join(', ')})`,
  );
}

/** Connects to the guest and its QEMU and checks them; throws {@link SshGuestSetupError}, closing what it opened. */
export async function connectGuest(options: SshGuestOptions): Promise<ConnectedGuest> {
  const timeoutMs = options.commandTimeoutMs ?? 30_000;
  const qmpWhere = typeof options.qmp === 'string' ? options.qmp : `${options.qmp.host}:${options.qmp.port}`;
  let qmp: QmpClient;
  try {
    qmp = await QmpClient.connect(options.qmp, Date.now() + 3000, timeoutMs);
  } catch (e) {
    throw new SshGuestSetupError(
      `QMP unreachable at ${qmpWhere} (${(e as Error).message}); start QEMU with -qmp unix:PATH,server=on,wait=off (or tcp:HOST:PORT) and pass it with --qmp`,
    );
  }
  let link: GuestLink | undefined;
  try {
    const found = await QemuMemoryDevice.find(qmp, options.deviceId);
    if (found.kind === 'missing') throw new SshGuestSetupError(found.reason);
    link = new GuestLink(options.ssh, qmp, found.device, timeoutMs);
    if (!fs.existsSync(options.traceLog)) {
      throw new SshGuestSetupError(
        `no QEMU trace log at ${options.traceLog}; start QEMU with -D ${options.traceLog} -trace enable=virtio_mem_* and pass the file with --qemu-trace`,
      );
    }
    const trace = new TraceFollower(options.traceLog);
    try {
      await qmp.execute('trace-event-set-state', { name: 'virtio_mem_*', enable: true });
    } catch (e) {
      throw new SshGuestSetupError(
        `QEMU cannot trace virtio_mem events (${(e as Error).message}); a QEMU built with the log trace back-end is needed`,
      );
    }
    try {
      await link.open();
    } catch (e) {
      if (e instanceof SshError) throw new SshGuestSetupError(e.message);
      throw e;
    }
    const kernelRelease = (await link.sh('uname -r', 'uname')).trim();
    const devices = (await link.sh(FIND_VIRTIO_MEM_PCI, 'PCI scan'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    if (devices.length === 0)
      throw new SshGuestSetupError(
        `the guest (${kernelRelease}) sees no virtio-mem PCI device (1af4:1058); add one with -device virtio-mem-pci`,
      );
    const driver = await link.runAtSetUp(DRIVER_KIND);
    const kind = driver.output.trim().split('\n').pop();
    if (kind === 'missing')
      throw new SshGuestSetupError(
        `the guest (${kernelRelease}) has no virtio_mem driver: \`modprobe virtio_mem\` failed (${driver.output.trim().split('\n')[0] ?? ''}); use a kernel with CONFIG_VIRTIO_MEM=m`,
      );
    if (kind === 'builtin')
      throw new SshGuestSetupError(
        `virtio_mem is built into the guest's kernel (${kernelRelease}); the adapter reloads the driver for every vector, so it must be a module (CONFIG_VIRTIO_MEM=m)`,
      );
    // With several devices, the one QMP named is the PCI function whose configuration has its address.
    const window = await windowAt(link, devices, found.view.memaddr);
    const offered = await window.offeredFeatures();
    const qemuVersion = qemuVersionOf(await qmp.execute('query-version'));
    const entry = (await listVirtioMemDevices(qmp)).find((d) => d.id === found.device.id) ?? {};
    const memoryFile = await sharedMemoryFile(qmp, entry, found.view.maxSize);
    return {
      link,
      geometry: found.view,
      trace,
      window,
      kernelRelease,
      offered,
      qemuVersion,
      memoryFile,
      pciDevices: devices,
    };
  } catch (e) {
    if (link) void link.dispose();
    else qmp.close();
    throw e;
  }
}
