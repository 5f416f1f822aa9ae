/**
 * The model host: one {@link VirtioMemDevice} with its profile, and every operation a host (a
 * VMM, a test harness) performs on it, as typed calls returning result unions.
 *
 * Both ways of serving the model go through it: the in-process `model` adapter and the
 * vhost-user back-end (`vmemct serve-vhost-user`) with its control extension are codecs over a
 * ModelHost, so resize, BUSY injection, resets, suspend/wake and memory-access checks behave
 * the same whichever way the model is reached.
 *
 * Pure: no I/O, no clocks, no randomness. Where a host operation unplugs blocks (an UNPLUG, an
 * UNPLUG ALL, a system reset, a wake-up without PERSISTENT_SUSPEND) the result names the blocks
 * that went from plugged to unplugged, so a server that keeps the device memory elsewhere (the
 * back-end: the front-end's shared region) can discard their pages.
 */
import {
  DeviceSetup,
  BlockRange,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VirtioMemRequestLayout,
  usableRegionSizeProblem,
} from '../../../spec/src/index';
import { VirtioMemConfig, decodeRequest } from '../codec/codec';
import { DescriptorChain, DeviceParams, DeviceParamsError, StatusWriteResult, VirtioMemDevice } from '../device/device';
import type { MemoryAccessResult } from '../device/memory';
import type { DeviceSteering } from '../device/steering';
import { DeviceProfile, SPEC_PROFILE } from '../device/profiles';

/** Builds the device of a host; a mutation test passes broken variants. */
export type DeviceFactory = (params: DeviceParams, profile: DeviceProfile) => VirtioMemDevice;

/** The model's own device class. */
export const MODEL_DEVICE: DeviceFactory = (params, profile) => new VirtioMemDevice(params, profile);

/** Result of {@link ModelHost.create}. */
export type HostSetupResult =
  | { readonly kind: 'ready'; readonly host: ModelHost }
  /** The set-up cannot be modelled (zero block size, too many blocks, plugged runs outside the region) or states a usable_region_size no device starts with. */
  | { readonly kind: 'refused'; readonly field: string; readonly reason: string };

/** What the device did with one chain. */
export type ChainCompletion =
  /** A used entry: the used length and the bytes written (the first `length` of them count). */
  | {
      readonly kind: 'used';
      readonly length: number;
      readonly written: Uint8Array;
      readonly unplugged: readonly BlockRange[];
    }
  /** No used entry (the device flagged NEEDS_RESET or is stuck). */
  | { readonly kind: 'no-used-entry'; readonly unplugged: readonly BlockRange[] };

/** Result of a host-side change of requested_size. */
export type HostResize =
  | { readonly kind: 'applied'; readonly notified: boolean }
  /** The host's management layer refuses the value (the profile's resize validation). */
  | { readonly kind: 'refused'; readonly reason: string };

/** Result of a suspend to RAM followed by a wake-up. */
export type SuspendWake =
  /** `persistent`: PERSISTENT_SUSPEND was negotiated, so block states survived (dev.op.8). */
  | { readonly kind: 'woken'; readonly persistent: boolean; readonly unplugged: readonly BlockRange[] }
  | { readonly kind: 'refused'; readonly reason: string };

/** Whether a guest CPU may access a range of the device region now. */
export type AccessCheck =
  | { readonly kind: 'allowed' }
  /** `reason` reads `<failure>: <detail>`, e.g. `inaccessible: read touches unplugged block 3 …`. */
  | { readonly kind: 'refused'; readonly reason: string };

/** One model device and its profile, driven from the host side. */
export class ModelHost {
  private constructor(
    /** The device. The driver pump and the runner's oracle read it; hosts change it only through this class. */
    readonly device: VirtioMemDevice,
    /** Choices made for the device from outside its profile (lint's replay of a vector); conforming ones only. */
    private readonly steering?: DeviceSteering,
  ) {}

  /**
   * Builds the device from the set-up record. Never throws for a set-up the model cannot build:
   * that is a `refused` result naming the field. With `steering`, chains and resizes take the
   * conforming outcomes it picks instead of the profile's (see {@link DeviceSteering}).
   */
  static create(
    setup: DeviceSetup,
    profile: DeviceProfile = SPEC_PROFILE,
    factory: DeviceFactory = MODEL_DEVICE,
    steering?: DeviceSteering,
  ): HostSetupResult {
    const usableProblem = usableRegionSizeProblem(setup);
    if (usableProblem) return { kind: 'refused', field: 'usable_region_size', reason: usableProblem };
    try {
      return { kind: 'ready', host: new ModelHost(factory(setup, profile), steering) };
    } catch (e) {
      if (e instanceof DeviceParamsError) return { kind: 'refused', field: e.field, reason: e.message };
      throw e;
    }
  }

  /** The device's profile. */
  get profile(): DeviceProfile {
    return this.device.profile;
  }

  // ---------------------------------------------------------------- transport (the registers a driver's handshake goes through)

  /** Features the device offers. */
  get offeredFeatures(): bigint {
    return this.device.offeredFeatures;
  }

  /** The driver's accepted features, as a transport delivers them (before FEATURES_OK). */
  writeDriverFeatures(features: bigint): void {
    this.device.writeDriverFeatures(features);
  }

  /** The status register written by a transport; 0 is a device reset. */
  writeStatus(value: number): StatusWriteResult {
    return this.device.writeStatus(value);
  }

  /** The device status register. */
  readStatus(): number {
    return this.device.deviceStatus;
  }

  /** The transport could not process the queue (bad memory, a malformed ring): DEVICE_NEEDS_RESET is set. */
  markNeedsReset(): void {
    this.device.writeStatus(this.device.deviceStatus | VIRTIO_CONFIG_S_NEEDS_RESET);
  }

  // ---------------------------------------------------------------- requests and configuration

  /** Processes one chain from the request queue. */
  submit(chain: DescriptorChain): ChainCompletion {
    // UNPLUG ALL unplugs whatever was plugged: remember what that was (only for this type, the runs cost a bitmap walk).
    const before = isUnplugAll(chain) ? this.device.pluggedRuns() : [];
    const result = this.device.processChain(chain, this.steering);
    const chosen = result.chosen;
    let unplugged: readonly BlockRange[] = [];
    if (chosen.kind === 'response' && chosen.effect.kind === 'unplug')
      unplugged = [{ first: chosen.effect.firstBlock, count: chosen.effect.count }];
    if (chosen.kind === 'response' && chosen.effect.kind === 'unplug-all') unplugged = before;
    if (!result.used) return { kind: 'no-used-entry', unplugged };
    return { kind: 'used', length: result.used.length, written: result.used.written, unplugged };
  }

  /** The 56 configuration bytes. */
  readConfig(): Uint8Array {
    return this.device.readConfigBytes();
  }

  /** The configuration generation (what virtio-pci shows as `config_generation`; dev.virtio.6). */
  readConfigGeneration(): number {
    return this.device.configGeneration;
  }

  /** The configuration, decoded. */
  config(): VirtioMemConfig {
    return this.device.readConfig();
  }

  /** Configuration-change notifications the device raised so far. */
  get notificationCount(): number {
    return this.device.notificationCount;
  }

  // ---------------------------------------------------------------- host side

  /** The host changes requested_size (dev.cfg.4, dev.cfg.9); refused by the profile's resize validation. */
  resize(requestedSize: bigint): HostResize {
    const r = this.device.setRequestedSize(requestedSize, this.steering);
    return r.ok ? { kind: 'applied', notified: r.notified } : { kind: 'refused', reason: r.reason };
  }

  /** A virtio device reset (status ← 0); blocks and configuration stay (dev.init.2, dev.init.3). */
  deviceReset(): void {
    this.device.writeStatus(0);
  }

  /** A platform reset (reboot); with the `unplug-all` policy every plugged block is unplugged (dev.op.7). */
  systemReset(): { readonly unplugged: readonly BlockRange[] } {
    const before = this.device.pluggedRuns();
    this.device.systemReset(this.steering);
    return { unplugged: this.unpluggedSince(before) };
  }

  /**
   * Suspend to RAM, then wake up. Without PERSISTENT_SUSPEND negotiated the profile may unplug
   * every block (`suspendWithoutPersistence`); with it block states survive (dev.op.8).
   */
  suspendAndWake(): SuspendWake {
    if (this.device.suspended) return { kind: 'refused', reason: 'the device is already suspended' };
    const before = this.device.pluggedRuns();
    const { persistent } = this.device.suspend();
    this.device.wake(this.steering);
    return { kind: 'woken', persistent, unplugged: this.unpluggedSince(before) };
  }

  /** The next `count` requests that would succeed are answered BUSY (as during migration). */
  injectBusy(count: number): void {
    this.device.injectBusy(count);
  }

  /** The host makes the device busy (`true`, as a migration does in QEMU) or releases it (`false`). */
  setHostBusy(busy: boolean): void {
    this.device.setHostBusy(busy);
  }

  // ---------------------------------------------------------------- guest memory

  /** A guest CPU read of the device region (judged as {@link VirtioMemDevice.readMemory} says). */
  readMemory(addr: bigint, length: number): MemoryAccessResult {
    return this.device.readMemory(addr, length);
  }

  /** A guest CPU write to the device region (judged as {@link VirtioMemDevice.writeMemory} says). */
  writeMemory(addr: bigint, data: Uint8Array): MemoryAccessResult {
    return this.device.writeMemory(addr, data);
  }

  /**
   * Whether a guest CPU may access [addr, addr + length) now, without touching memory (for a
   * server whose memory lives elsewhere): outside the region, beyond usable_region_size, or in
   * an unplugged block with UNPLUGGED_INACCESSIBLE negotiated (drv.op.1, drv.op.2, drv.op.5) is refused.
   * @throws RangeError when `length` is not a non-negative safe integer (a caller's mistake).
   */
  checkAccess(addr: bigint, length: number, what: 'read' | 'write'): AccessCheck {
    const refused = this.device.accessRefusal(addr, length, what);
    return refused ? { kind: 'refused', reason: `${refused.reason}: ${refused.detail}` } : { kind: 'allowed' };
  }

  /** Runs from `before` whose blocks are unplugged now. */
  private unpluggedSince(before: readonly BlockRange[]): BlockRange[] {
    const out: BlockRange[] = [];
    for (const run of before) {
      let start = -1;
      for (let b = run.first; b <= run.first + run.count; b++) {
        const unplugged = b < run.first + run.count && !this.device.isPlugged(b);
        if (unplugged && start < 0) start = b;
        if (!unplugged && start >= 0) {
          out.push({ first: start, count: b - start });
          start = -1;
        }
      }
    }
    return out;
  }
}

/** Whether a chain carries an UNPLUG ALL request (read through the codec, as the device reads it). */
function isUnplugAll(chain: DescriptorChain): boolean {
  const first = chain.readable[0];
  if (!first) return false;
  const bytes =
    first.length >= VirtioMemRequestLayout.size ? first : joinReadable(chain.readable, VirtioMemRequestLayout.size);
  const decoded = decodeRequest(bytes);
  return decoded.ok && decoded.value.type === VIRTIO_MEM_REQ_UNPLUG_ALL;
}

function joinReadable(parts: readonly Uint8Array[], limit: number): Uint8Array {
  const out = new Uint8Array(
    Math.min(
      limit,
      parts.reduce((n, p) => n + p.length, 0),
    ),
  );
  let at = 0;
  for (const p of parts) {
    if (at >= out.length) break;
    const piece = p.subarray(0, out.length - at);
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
