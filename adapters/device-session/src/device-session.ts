/**
 * The device session every way into a virtio-mem PCI function shares (QEMU over qtest, a guest
 * over its agent): the virtio part goes through the one virtio-pci driver
 * ({@link VirtioPciDriver}, over whatever bus the adapter brings), the host part through a
 * {@link HostControl}. What the adapter owns (the process, its diagnostics, whether the device
 * may serve another vector) stays behind a {@link DeviceHandle}.
 */
import {
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  VirtioMemConfigLayout,
  VirtioMemResponseLayout,
} from '../../../spec/src/index';
import { decodeConfig, decodeResponse, encodeRequest } from '../../../model/src/codec/codec';
import {
  AdapterError,
  Chain,
  Completion,
  DeviceSession,
  DeviceSetup,
  HandshakeResult,
  MemoryAccess,
  ResizeOutcome,
  UnsupportedSetupError,
} from '../../core/src/contract';
import type { VirtioPciDriver } from '../../virtio/src/index';
import type { HostControl } from './host-control';

/** One device as an adapter holds it, across the sessions that use it. */
export interface DeviceHandle {
  /** The driver attached to the function (replaced after a platform reset). */
  driver: VirtioPciDriver;
  /** Enumerates the function again (after a platform reset cleared its BARs). */
  probe(): Promise<VirtioPciDriver>;
  /** The host the device runs in. */
  readonly host: HostControl;
  /** Set when the device must not serve another vector (broken device, failed command, timeout). */
  spoiled: boolean;
}

/** How one session reports and ends. */
export interface DeviceSessionOptions {
  /** The adapter's name, for messages. */
  readonly adapterName: string;
  /** Largest memory access the way in can carry in one go (larger: `unsupported`). */
  readonly maxAccessBytes: number;
  /** Turns a failure (the handle is already spoiled) into the error the runner reports, with the target's diagnostics. */
  failure(what: string, error: Error): Promise<AdapterError>;
  /** Gives the handle back once the session closed. */
  release(): Promise<void>;
}

/** Submits `request` and throws unless the device acknowledged it. */
async function expectAck(
  driver: VirtioPciDriver,
  request: Parameters<typeof encodeRequest>[0],
  what: string,
): Promise<void> {
  const completion = await driver.submit({
    readable: [encodeRequest(request)],
    writableSizes: [VirtioMemResponseLayout.size],
  });
  if (completion.kind !== 'used') throw new Error(`${what}: no used entry`);
  const response = decodeResponse(completion.written);
  if (!response.ok || response.value.type !== VIRTIO_MEM_RESP_ACK)
    throw new Error(`${what}: the device did not acknowledge it`);
}

/**
 * Brings a device to a vector's starting state and leaves it reset: on a `reused` device the
 * host sets `requested_size` and UNPLUG ALL empties it; the initial blocks are plugged through the
 * queue. The interrupt count starts from zero. A reused device whose host cannot resize keeps its
 * requested size, so only a vector starting at that size can run.
 * @throws when the device does not cooperate; {@link UnsupportedSetupError} when (reused) the
 * host cannot give the device the vector's requested size.
 */
export async function prepareDevice(handle: DeviceHandle, setup: DeviceSetup, reused: boolean): Promise<void> {
  const { driver, host } = handle;
  await driver.reset();
  if (reused && host.resize) {
    const outcome = await host.resize(setup.requested_size);
    if (outcome.kind === 'refused') throw new Error(`the host refused requested_size: ${outcome.reason}`);
  } else if (reused) {
    // The host cannot set it: the vector runs only if the device already asks for its size.
    const config = decodeConfig(await driver.readDeviceConfig(VirtioMemConfigLayout.size));
    if (config.ok && config.value.requested_size !== setup.requested_size)
      throw new UnsupportedSetupError(
        `the device asks for requested_size 0x${config.value.requested_size.toString(16)}; this vector starts at 0x${setup.requested_size.toString(16)}, and ${host.name} cannot set it (${host.missing?.resize ?? 'no resize action'})`,
      );
  }
  const plugged = setup.plugged.reduce((n, r) => n + BigInt(r.count), 0n) * setup.block_size;
  if (reused || plugged > 0n) {
    const init = await driver.initialise((offered) => offered);
    if (!init.featuresOk) throw new Error(`FEATURES_OK refused while preparing the device (status ${init.status})`);
    if (reused) await expectAck(driver, { type: VIRTIO_MEM_REQ_UNPLUG_ALL, addr: 0n, nb_blocks: 0 }, 'UNPLUG ALL');
    for (const range of setup.plugged) {
      for (let first = range.first, left = range.count; left > 0;) {
        const count = Math.min(left, 0xffff);
        await expectAck(
          driver,
          { type: VIRTIO_MEM_REQ_PLUG, addr: setup.addr + BigInt(first) * setup.block_size, nb_blocks: count },
          `PLUG of the initial blocks ${first}+${count}`,
        );
        first += count;
        left -= count;
      }
    }
    await driver.reset();
  }
  await driver.pollIsr();
  driver.configInterrupts = 0;
}

/** One vector's session on a device reached through a {@link VirtioPciDriver} and a {@link HostControl}. */
export class VirtioDeviceSession implements DeviceSession {
  private closed = false;
  private inFlight = 0;
  /** Whether the host made the device busy and has not released it. */
  private busy = false;
  /** The features the last handshake wrote (a wake-up restores them). */
  private accepted: bigint | undefined;

  constructor(
    protected readonly handle: DeviceHandle,
    private readonly setup: DeviceSetup,
    private readonly options: DeviceSessionOptions,
  ) {
    const host = handle.host;
    // The contract's optional methods exist only when the host can take the action.
    if (!host.resize) this.resize = undefined;
    if (!host.systemReset) this.systemReset = undefined;
    if (!host.hostBusy) this.hostBusy = undefined;
    if (!host.suspendAndWake) this.suspendAndWake = undefined;
  }

  /**
   * Runs `work`; a failure spoils the device and becomes the adapter's error. Work still in
   * flight when the session closes (the runner gave up on a hang) spoils it too.
   */
  protected async guarded<T>(what: string, work: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await work();
    } catch (e) {
      if (e instanceof UnsupportedSetupError) throw e;
      this.handle.spoiled = true;
      throw await this.options.failure(what, e as Error);
    } finally {
      this.inFlight--;
    }
  }

  private get driver(): VirtioPciDriver {
    return this.handle.driver;
  }

  initialise(accept: (offered: bigint) => bigint): Promise<HandshakeResult> {
    return this.guarded('initialise', async () => {
      const init = await this.driver.initialise(accept);
      this.accepted = init.accepted;
      this.noteStatus(init.status);
      return init;
    });
  }

  readConfig(): Promise<Uint8Array> {
    return this.guarded('read config', () => this.driver.readDeviceConfig(VirtioMemConfigLayout.size));
  }

  readConfigGeneration(): Promise<number> {
    return this.guarded('read config_generation', () => this.driver.readConfigGeneration());
  }

  submit(chain: Chain): Promise<Completion> {
    return this.guarded('submit', async () => {
      const completion = await this.driver.submit(chain);
      if (completion.kind === 'no-used-entry') this.noteStatus(await this.driver.readStatus());
      return completion;
    });
  }

  notificationCount(): Promise<number> {
    return this.guarded('read ISR', async () => {
      await this.driver.pollIsr();
      return this.driver.configInterrupts;
    });
  }

  readStatus(): Promise<number> {
    return this.guarded('read status', async () => this.noteStatus(await this.driver.readStatus()));
  }

  deviceReset(): Promise<void> {
    return this.guarded('device reset', () => this.driver.reset());
  }

  resize? = (requestedSize: bigint): Promise<ResizeOutcome> =>
    this.guarded('resize', async () => {
      const outcome = await this.handle.host.resize!(requestedSize);
      if (outcome.kind === 'applied') await this.driver.pollIsr();
      return outcome;
    });

  hostBusy? = (busy: boolean): Promise<void> =>
    this.guarded(`${busy ? 'host busy' : 'host release'} (${this.handle.host.name})`, async () => {
      await this.handle.host.hostBusy!(busy);
      this.busy = busy;
    });

  systemReset? = (): Promise<void> =>
    this.guarded('system reset', async () => {
      await this.handle.host.systemReset!();
      await this.probeAgain();
    });

  /**
   * `suspend`: the host suspends and wakes the platform, which resets it; the session then does
   * what a guest's driver does on resume: it enumerates the function again and, when the device
   * was running (DRIVER_OK) before the suspend, initialises it again with the features it had
   * accepted, so the device is operational with a fresh request queue. A device the driver had
   * left reset stays reset. What the wake-up did to the blocks is the device's own.
   */
  suspendAndWake? = (): Promise<void> =>
    this.guarded('suspend and wake-up', async () => {
      const before = await this.driver.readStatus();
      await this.handle.host.suspendAndWake!();
      await this.probeAgain();
      const accepted = this.accepted;
      if ((before & VIRTIO_CONFIG_S_DRIVER_OK) === 0 || accepted === undefined) return;
      const init = await this.driver.initialise((offered) => offered & accepted);
      if (!init.featuresOk || init.accepted !== accepted)
        throw new AdapterError(
          `re-initialising after the wake-up failed (status ${init.status}, accepted 0x${init.accepted.toString(16)})`,
        );
      this.noteStatus(init.status);
    });

  /** The platform reset cleared the BARs: enumerate again, keeping the interrupt count. */
  private async probeAgain(): Promise<void> {
    const interrupts = this.driver.configInterrupts;
    this.handle.driver = await this.handle.probe();
    this.handle.driver.configInterrupts = interrupts;
  }

  readMemory(addr: bigint, length: number): Promise<MemoryAccess> {
    return this.guarded('read memory', async () => {
      const check = this.checkAccess(addr, length);
      if (check) return check;
      return { ok: true, data: length === 0 ? new Uint8Array(0) : await this.driver.readMemory(addr, length) };
    });
  }

  writeMemory(addr: bigint, data: Uint8Array): Promise<MemoryAccess> {
    return this.guarded('write memory', async () => {
      const check = this.checkAccess(addr, data.length);
      if (check) return check;
      if (data.length > 0) await this.driver.writeMemory(addr, data);
      return { ok: true, data: new Uint8Array(0) };
    });
  }

  /** Accesses stay inside the device region and within what the way in carries in one go. */
  private checkAccess(addr: bigint, length: number): MemoryAccess | undefined {
    const end = this.setup.addr + this.setup.region_size;
    if (addr < this.setup.addr || addr + BigInt(length) > end)
      return { ok: false, reason: 'outside the device region' };
    if (length > this.options.maxAccessBytes)
      throw new UnsupportedSetupError(
        `memory accesses above ${this.options.maxAccessBytes >> 20} MiB are not supported by the ${this.options.adapterName} adapter`,
      );
    return undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.inFlight > 0) this.handle.spoiled = true;
    // A device left busy (the vector ended busy, or timed out) is released; failing that, it is not reused.
    if (this.busy && !this.handle.spoiled)
      await this.handle.host.hostBusy!(false).catch(() => (this.handle.spoiled = true));
    await this.options.release();
  }

  /** Remembers a broken device: it is not reused. */
  private noteStatus(status: number): number {
    if (status & VIRTIO_CONFIG_S_NEEDS_RESET) this.handle.spoiled = true;
    return status;
  }
}
