/**
 * More broken variants of the reference driver (issue 15), each a bug a driver author could
 * plausibly write: wrong reactions to BUSY, NACK and ERROR, requests the device must refuse,
 * memory touched after it was given back, features and suspend rules ignored. They use the
 * driver's public surface only: they override its stepping methods, or rewrite the bytes that
 * go in (configuration, responses) and out (requests, memory writes).
 */
import {
  DriverAction,
  ReferenceDriver,
  SuspendPermission,
  VirtioMemConfig,
  VirtioMemRequest,
  decodeConfig,
  encodeConfig,
  encodeRequest,
  encodeResponse,
  readResponseType,
} from '../../../model/src/index';
import {
  VIRTIO_MEM_KNOWN_FEATURES,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  VIRTIO_MEM_RESP_BUSY,
  VIRTIO_MEM_RESP_ERROR,
  VIRTIO_MEM_RESP_NACK,
} from '../../../spec/src/index';

import { Mutant, driverMutant } from './mutant-kit';

/** A request action with some fields changed (the driver's own record of it stays as planned). */
function rewritten(
  action: Extract<DriverAction, { kind: 'request' }>,
  change: Partial<VirtioMemRequest>,
): DriverAction {
  const request = { ...action.request, ...change };
  return { ...action, request, bytes: encodeRequest(request) };
}

/** A driver that remembers the configuration it last read (as the device showed it). */
class ConfigWatchingDriver extends ReferenceDriver {
  protected seen?: VirtioMemConfig;
  override onConfig(bytes: Uint8Array): void {
    const d = decodeConfig(bytes);
    if (d.ok) this.seen = d.value;
    super.onConfig(bytes);
  }
}

/** drv.suite.1: after BUSY the driver waits for a configuration change that never comes, instead of retrying. */
class DriverGivesUpAfterBusy extends ReferenceDriver {
  private holding = false;
  override onResponse(bytes: Uint8Array | null): void {
    if (bytes && readResponseType(bytes) === VIRTIO_MEM_RESP_BUSY) this.holding = true;
    super.onResponse(bytes);
  }
  override onConfigChange(): void {
    this.holding = false;
    super.onConfigChange();
  }
  override next(): DriverAction {
    if (this.holding) return { kind: 'idle', reason: 'mutant: waits for a configuration change after BUSY' };
    return super.next();
  }
}

/** drv.suite.3: a NACKed PLUG is taken for BUSY, so the driver backs off and asks again, for ever. */
class DriverRetriesNackedPlug extends ReferenceDriver {
  private lastType?: number;
  override next(): DriverAction {
    const action = super.next();
    if (action.kind === 'request') this.lastType = action.request.type;
    return action;
  }
  override onResponse(bytes: Uint8Array | null): void {
    const nackedPlug =
      bytes !== null && this.lastType === VIRTIO_MEM_REQ_PLUG && readResponseType(bytes) === VIRTIO_MEM_RESP_NACK;
    super.onResponse(nackedPlug ? encodeResponse({ type: VIRTIO_MEM_RESP_BUSY }) : bytes);
  }
}

/** drv.suite.2: no backoff at all; a BUSY request is sent again at once. */
class DriverHammersBusyDevice extends ReferenceDriver {
  constructor() {
    super({ initialBackoffMs: 0 });
  }
}

/** drv.plug.1 / drv.unplug.1: ERROR is read as ACK, so the driver believes blocks plugged (or unplugged) that are not. */
class DriverTakesErrorForAck extends ReferenceDriver {
  override onResponse(bytes: Uint8Array | null): void {
    const error = bytes !== null && readResponseType(bytes) === VIRTIO_MEM_RESP_ERROR;
    super.onResponse(error ? encodeResponse({ type: VIRTIO_MEM_RESP_ACK }) : bytes);
  }
}

/**
 * drv.op.9: usable_region_size is ignored and blocks are taken from the top of the region down,
 * as if the whole region were usable. The driver's view is the mirror image of the device's, so
 * it is consistent except for the usable region.
 */
class DriverIgnoresUsableRegion extends ReferenceDriver {
  private seen?: VirtioMemConfig;
  override onConfig(bytes: Uint8Array): void {
    const d = decodeConfig(bytes);
    if (!d.ok) return super.onConfig(bytes);
    this.seen = d.value;
    super.onConfig(encodeConfig({ ...d.value, usable_region_size: d.value.region_size }));
  }
  override next(): DriverAction {
    const action = super.next();
    const c = this.seen;
    if (!c || c.block_size === 0n) return action;
    const mirror = (addr: bigint, blocks: bigint): bigint =>
      c.addr + c.region_size - (addr - c.addr) - blocks * c.block_size;
    if (action.kind === 'request' && action.request.type !== VIRTIO_MEM_REQ_UNPLUG_ALL)
      return rewritten(action, { addr: mirror(action.request.addr, BigInt(action.request.nb_blocks)) });
    if (action.kind === 'write-memory') {
      const block = (action.addr - c.addr) / c.block_size;
      const offset = (action.addr - c.addr) % c.block_size;
      return { ...action, addr: mirror(c.addr + block * c.block_size, 1n) + offset };
    }
    return action;
  }
}

/** drv.op.9: an off-by-one in the UNPLUG address: the range starts one block too high and covers an unplugged block. */
class DriverUnplugsUnpluggedBlock extends ConfigWatchingDriver {
  override next(): DriverAction {
    const action = super.next();
    if (action.kind === 'request' && action.request.type === VIRTIO_MEM_REQ_UNPLUG && this.seen)
      return rewritten(action, { addr: action.request.addr + this.seen.block_size });
    return action;
  }
}

/** drv.op.9: PLUG addresses are computed in pages, not blocks: one 4 KiB page past the block boundary. */
class DriverSendsMisalignedPlug extends ReferenceDriver {
  override next(): DriverAction {
    const action = super.next();
    if (action.kind === 'request' && action.request.type === VIRTIO_MEM_REQ_PLUG)
      return rewritten(action, { addr: action.request.addr + 4096n });
    return action;
  }
}

/** drv.op.8: an inclusive/exclusive mix-up: UNPLUG asks for one block fewer than planned (none at all for a single block). */
class DriverUnplugsOneBlockShort extends ReferenceDriver {
  override next(): DriverAction {
    const action = super.next();
    if (action.kind === 'request' && action.request.type === VIRTIO_MEM_REQ_UNPLUG)
      return rewritten(action, { nb_blocks: action.request.nb_blocks - 1 });
    return action;
  }
}

/** drv.op.1: after an acknowledged UNPLUG the driver still clears the first page of the range it gave back. */
class DriverWritesAfterUnplug extends ReferenceDriver {
  private lastRequest?: VirtioMemRequest;
  private owed?: bigint;
  private writing = false;
  override next(): DriverAction {
    if (this.owed !== undefined) {
      const addr = this.owed;
      this.owed = undefined;
      this.writing = true;
      return { kind: 'write-memory', addr, length: 4096, purpose: 'mutant: scrub memory just unplugged' };
    }
    const action = super.next();
    if (action.kind === 'request') this.lastRequest = action.request;
    return action;
  }
  override onResponse(bytes: Uint8Array | null): void {
    const r = this.lastRequest;
    if (bytes && r?.type === VIRTIO_MEM_REQ_UNPLUG && readResponseType(bytes) === VIRTIO_MEM_RESP_ACK)
      this.owed = r.addr;
    super.onResponse(bytes);
  }
  override onMemoryWritten(ok: boolean): void {
    if (this.writing) {
      this.writing = false;
      return;
    }
    super.onMemoryWritten(ok);
  }
}

/** drv.op.8: the configuration-change notification is dropped, so the driver never re-reads the configuration. */
class DriverDropsConfigNotifications extends ReferenceDriver {
  private started = false;
  override onConfigChange(): void {
    // The first notification (before the driver has read anything) is harmless to keep.
    if (!this.started) super.onConfigChange();
  }
  override onConfig(bytes: Uint8Array): void {
    this.started = true;
    super.onConfig(bytes);
  }
}

/** drv.init.1 / virtio feature negotiation: every feature the driver knows is accepted, offered or not. */
class DriverAcceptsUnofferedFeatures extends ReferenceDriver {
  override negotiate(offered: bigint): bigint {
    super.negotiate(offered);
    return VIRTIO_MEM_KNOWN_FEATURES | offered;
  }
}

/** drv.op.11: the suspend hook was never written: deep sleep is always allowed. */
class DriverAlwaysAllowsSuspend extends ReferenceDriver {
  override maySuspend(): SuspendPermission {
    return { allowed: true, reason: 'mutant: no suspend hook' };
  }
}

/** drv.op.11: suspend allowed without PERSISTENT_SUSPEND once nothing is plugged (what Linux >= 6.10 does). */
class DriverAllowsSuspendWithNothingPlugged extends ReferenceDriver {
  override maySuspend(): SuspendPermission {
    if (this.pluggedBlocks === 0) return { allowed: true, reason: 'mutant: nothing plugged, nothing to lose' };
    return super.maySuspend();
  }
}

/** drv.op.6: a shrink is done with UNPLUG ALL (giving back memory still in use), the driver's view left as if it were an UNPLUG. */
class DriverShrinksWithUnplugAll extends ReferenceDriver {
  override next(): DriverAction {
    const action = super.next();
    if (action.kind === 'request' && action.request.type === VIRTIO_MEM_REQ_UNPLUG)
      return rewritten(action, { type: VIRTIO_MEM_REQ_UNPLUG_ALL, addr: 0n, nb_blocks: 0 });
    return action;
  }
}

/** drv.state.2: the state field of a STATE answer is read whatever the answer, so an ERROR reads as PLUGGED. */
class DriverReadsStateOfError extends ReferenceDriver {
  private lastType?: number;
  override next(): DriverAction {
    const action = super.next();
    if (action.kind === 'request') this.lastType = action.request.type;
    return action;
  }
  override onResponse(bytes: Uint8Array | null): void {
    if (bytes && this.lastType === VIRTIO_MEM_REQ_STATE && readResponseType(bytes) !== VIRTIO_MEM_RESP_ACK) {
      const state = bytes.length >= 10 ? bytes[8]! | (bytes[9]! << 8) : 0;
      return super.onResponse(encodeResponse({ type: VIRTIO_MEM_RESP_ACK, state }));
    }
    super.onResponse(bytes);
  }
}

/** The driver mutants added for issue 15. */
export const MORE_DRIVER_MUTANTS: readonly Mutant[] = [
  driverMutant('driver gives up after BUSY until the configuration changes', DriverGivesUpAfterBusy),
  driverMutant('driver retries a NACKed PLUG for ever', DriverRetriesNackedPlug),
  driverMutant('driver retries BUSY at once, without any delay', DriverHammersBusyDevice),
  driverMutant('driver takes ERROR for ACK', DriverTakesErrorForAck),
  driverMutant('driver ignores usable_region_size (plugs from the top of the region)', DriverIgnoresUsableRegion),
  driverMutant('driver unplugs a block that is not plugged (UNPLUG one block too high)', DriverUnplugsUnpluggedBlock),
  driverMutant('driver sends PLUG at a misaligned address', DriverSendsMisalignedPlug),
  driverMutant('driver unplugs one block fewer than planned (nb_blocks 0 for one block)', DriverUnplugsOneBlockShort),
  driverMutant('driver writes memory right after unplugging it', DriverWritesAfterUnplug),
  driverMutant('driver drops configuration-change notifications', DriverDropsConfigNotifications),
  driverMutant('driver accepts features that were not offered', DriverAcceptsUnofferedFeatures),
  driverMutant('driver always allows suspend', DriverAlwaysAllowsSuspend),
  driverMutant('driver allows suspend with nothing plugged', DriverAllowsSuspendWithNothingPlugged),
  driverMutant('driver shrinks with UNPLUG ALL', DriverShrinksWithUnplugAll),
  // drv.state.2 is a MUST, but what the runner sees of it is the next PLUG or UNPLUG contradicting the block states (drv.op.9, SHOULD).
  driverMutant(
    'driver reads the state field of a STATE ERROR (seen through drv.op.9: SHOULD, strict)',
    DriverReadsStateOfError,
    true,
  ),
];
