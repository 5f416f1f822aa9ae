/** The wall clock a virtio-pci driver waits by on the host (the virtio layer has no clock of its own). */
import { sleep } from '../../core/src/sleep';
import type { DriverClock } from '../../virtio/src/index';

/** Date.now and a timer: what the QEMU and guest device sessions give their driver. */
export const HOST_CLOCK: DriverClock = { now: () => Date.now(), pause: (ms) => sleep(ms) };
