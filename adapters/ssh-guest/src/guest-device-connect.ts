/**
 * Connecting `--adapter ssh-guest --target device`: the in-guest agent over SSH, and the host
 * control — QMP when the guest runs under a QEMU whose QMP socket the suite has (`vmemct guest
 * up` prints it), argv hooks (`--host-control FILE`) for any other VMM, or none (host actions
 * `unsupported`). A guest or agent that cannot be used is a {@link SshGuestSetupError} with the
 * reason and the fix (exit 2).
 */
import type { Adapter, DeviceSetup, ResizeOutcome } from '../../core/src/contract';
import type { HostAction, HostControl } from '../../device-session/src/host-control';
import { QemuMemoryDevice, QmpClient, QmpError } from '../../qemu-platform/src/index';
import type { QmpTcpAddress } from '../../qemu-platform/src/index';
import { AgentBus, AgentError } from './agent-link';
import { SshGuestSetupError } from './guest-connect';
import { openGuestDeviceAdapter } from './guest-device-adapter';
import type { SshTarget } from './ssh-shell';

/** How to reach the guest's device and its host. */
export interface GuestDeviceConnectOptions {
  readonly ssh: SshTarget;
  /** QMP of the QEMU running the guest (a QEMU the suite may drive). */
  readonly qmp?: string | QmpTcpAddress;
  /** QOM id of the virtio-mem device (default: the first one QMP lists). */
  readonly deviceId?: string;
  /** Host actions for a VMM without QMP (argv hooks). */
  readonly hostControl?: HostControl;
  /** Bound on each agent request and QMP command (default 10 s). */
  readonly commandTimeoutMs?: number;
  /** Why QEMU (of the version QMP reports) would refuse to build a set-up's device, or undefined (used with `qmp`). */
  readonly refusal?: (setup: DeviceSetup, qemuVersion: string) => string | undefined;
}

/** Why a QEMU guest's host control lacks the actions beyond resize. */
const QMP_GUEST_MISSING: Readonly<Partial<Record<HostAction, string>>> = {
  systemReset: 'a platform reset reboots the guest and ends its agent; run reset vectors with --adapter qemu',
  hostBusy: 'the BUSY-making migration would migrate the running guest; run host-busy vectors with --adapter qemu',
  suspendAndWake: 'suspending a running guest from the host is not driven through the agent',
};

/** The host side of a guest's QEMU over QMP: `qom-set requested-size` only. */
export class QmpGuestHostControl implements HostControl {
  readonly name = 'QMP';
  readonly missing = QMP_GUEST_MISSING;

  constructor(private readonly memory: QemuMemoryDevice) {}

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
}

/** A host control with no action, for a VMM reached neither by QMP nor by hooks. */
const NO_HOST_CONTROL: HostControl = {
  name: 'no host control',
  missing: {
    resize: 'no --qmp and no --host-control FILE with a resize hook',
    systemReset: 'no --host-control FILE with a system_reset hook',
    hostBusy: 'no --host-control FILE with host_busy and host_release hooks',
    suspendAndWake: 'no --host-control FILE with a suspend hook',
  },
};

/** The refusal of `qemuVersion`, when both are known. */
function refusalFor(
  refusal: GuestDeviceConnectOptions['refusal'],
  qemuVersion: string | undefined,
): { refusal?: (setup: DeviceSetup) => string | undefined } {
  return refusal && qemuVersion !== undefined ? { refusal: (setup) => refusal(setup, qemuVersion) } : {};
}

/**
 * Connects to the guest's host (QMP or hooks) and its agent, and reaches the device once.
 * @throws SshGuestSetupError with the reason and the fix.
 */
export async function connectGuestDeviceAdapter(options: GuestDeviceConnectOptions): Promise<Adapter> {
  const timeoutMs = options.commandTimeoutMs ?? 10_000;
  let qmp: QmpClient | undefined;
  let host = options.hostControl ?? NO_HOST_CONTROL;
  let implementation = 'virtio-mem device via guest agent';
  let qemuVersion: string | undefined;
  /** What the device held before the agent took it (QMP), and the agent's bus. */
  let pluggedBefore = 0n;
  let bus: AgentBus | undefined;
  try {
    if (options.qmp !== undefined) {
      const where = typeof options.qmp === 'string' ? options.qmp : `${options.qmp.host}:${options.qmp.port}`;
      try {
        qmp = await QmpClient.connect(options.qmp, Date.now() + 3000, timeoutMs);
      } catch (e) {
        throw new SshGuestSetupError(
          `QMP unreachable at ${where} (${(e as Error).message}); pass the socket \`vmemct guest up\` printed`,
        );
      }
      const found = await QemuMemoryDevice.find(qmp, options.deviceId);
      if (found.kind === 'missing') throw new SshGuestSetupError(found.reason);
      pluggedBefore = found.view.size;
      const version = (await qmp.execute('query-version')) as { qemu: { major: number; minor: number; micro: number } };
      qemuVersion = `${version.qemu.major}.${version.qemu.minor}.${version.qemu.micro}`;
      implementation = `QEMU ${qemuVersion} via guest agent`;
      host = new QmpGuestHostControl(found.device);
    }
    const link = qmp;
    const adapter = await openGuestDeviceAdapter({
      openBus: async () => (bus = await AgentBus.overSsh(options.ssh, { timeoutMs })),
      host,
      implementation,
      otherConfiguration: (option) =>
        link !== undefined && option !== undefined
          ? `boot a guest with it: \`vmemct guest up ${option} …\``
          : 'start the VMM with a device of that configuration',
      ...refusalFor(options.refusal, qemuVersion),
      onDispose: async () => link?.close(),
      // Memory the guest's own driver plugged is in use by the guest's kernel: the suite's requests
      // would pull it away. (Blocks left plugged with no driver bound are an earlier run's.)
      checkReached: () => {
        if (bus?.function?.unbound && pluggedBefore > 0n)
          throw new SshGuestSetupError(
            `the guest's own virtio_mem driver had ${pluggedBefore} bytes of the device plugged; the agent took the device from it, and the suite's requests would pull that memory from the guest's kernel: boot the guest with requested size 0 (\`vmemct guest up --requested-size 0\`)`,
          );
      },
    });
    return adapter;
  } catch (e) {
    qmp?.close();
    if (e instanceof AgentError || e instanceof SshGuestSetupError) throw new SshGuestSetupError(e.message);
    // The agent answered, but the function is not a usable virtio-mem PCI device.
    throw new SshGuestSetupError(
      `the guest agent reached the device, but the suite's driver cannot use it: ${(e as Error).message}`,
    );
  }
}
