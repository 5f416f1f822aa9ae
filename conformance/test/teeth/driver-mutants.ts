/**
 * Broken variants of the reference driver, each a bug a driver author could plausibly write.
 */
import {
  DriverAction,
  ReferenceDriver,
  VirtioMemConfig,
  decodeConfig,
  encodeConfig,
  encodeRequest,
} from '../../../model/src/index';
import { VIRTIO_MEM_REQ_PLUG } from '../../../spec/src/index';

import { Mutant, driverMutant } from './mutant-kit';

/** drv.op.8: once idle, the driver never reacts again (a resize goes unanswered). */
class DriverIgnoresResize extends ReferenceDriver {
  private sleeping = false;
  override next(): DriverAction {
    if (this.sleeping) return { kind: 'idle', reason: 'mutant: asleep for good' };
    const action = super.next();
    if (action.kind === 'idle') this.sleeping = true;
    return action;
  }
}

/**
 * drv.op.9 (SHOULD): the first PLUG asks for one block more than requested_size allows. (Only the
 * first: a driver that overshoots on every PLUG never converges and spins through resyncs up to
 * the request limit, which makes the run slow without adding anything.)
 */
class DriverPlugsBeyondRequested extends ReferenceDriver {
  private overshot = false;
  override next(): DriverAction {
    const action = super.next();
    if (
      !this.overshot &&
      action.kind === 'request' &&
      action.request.type === VIRTIO_MEM_REQ_PLUG &&
      action.request.nb_blocks < 0xffff
    ) {
      this.overshot = true;
      const request = { ...action.request, nb_blocks: action.request.nb_blocks + 1 };
      return { ...action, request, bytes: encodeRequest(request) };
    }
    return action;
  }
}

/** drv.init.2 (SHOULD): memory found plugged at start is ignored; no UNPLUG ALL or STATE first. */
class DriverSkipsUnplugAllAtInit extends ReferenceDriver {
  private first = true;
  override onConfig(bytes: Uint8Array): void {
    if (this.first) {
      this.first = false;
      const d = decodeConfig(bytes);
      if (d.ok && d.value.plugged_size > 0n) return super.onConfig(encodeConfig({ ...d.value, plugged_size: 0n }));
    }
    super.onConfig(bytes);
  }
}

/** drv.op.1: the initialisation write after a PLUG goes to the last block of the region, which is not plugged. */
class DriverWritesUnpluggedMemory extends ReferenceDriver {
  private seen?: VirtioMemConfig;
  override onConfig(bytes: Uint8Array): void {
    const d = decodeConfig(bytes);
    if (d.ok) this.seen = d.value;
    super.onConfig(bytes);
  }
  override next(): DriverAction {
    const action = super.next();
    if (action.kind === 'write-memory' && this.seen) {
      return { ...action, addr: this.seen.addr + this.seen.region_size - BigInt(action.length) };
    }
    return action;
  }
}

/** ACPI_PXM ignored: every device's memory is added to node 0, whatever node_id says (the two-node example). */
class DriverIgnoresNodeId extends ReferenceDriver {
  override get memoryNode(): number | undefined {
    return super.memoryNode === undefined ? undefined : 0;
  }
}

/** The driver mutants. */
export const DRIVER_MUTANTS: readonly Mutant[] = [
  driverMutant('driver never reacts to a resize', DriverIgnoresResize),
  driverMutant('driver plugs beyond requested_size (SHOULD, strict)', DriverPlugsBeyondRequested, true),
  driverMutant('driver skips UNPLUG ALL at init (SHOULD, strict)', DriverSkipsUnplugAllAtInit, true),
  driverMutant('driver writes unplugged memory', DriverWritesUnpluggedMemory),
];

/**
 * Driver mutants only a multi-device vector sees (where each device's memory lands): the teeth
 * test runs them; the driver fuzzer, which drives one device, has no way to see them.
 */
export const MULTI_DEVICE_DRIVER_MUTANTS: readonly Mutant[] = [
  driverMutant('driver adds every device memory to node 0', DriverIgnoresNodeId),
];
