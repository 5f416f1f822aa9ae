/**
 * Devices that get the host-made busy period wrong (capability `host-busy`): one acts on the
 * requests it answers BUSY, one answers STATE with BUSY, one stays busy after the host released
 * it. The host-busy vectors must catch each.
 */
import { DescriptorChain, ProcessResult, VirtioMemDevice } from '../../../model/src/index';
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_BUSY,
} from '../../../spec/src/index';

import { Mutant, answered, deviceMutant, requestOf } from './mutant-kit';

/** A device that remembers whether the host holds it busy. */
abstract class HostBusyAware extends VirtioMemDevice {
  protected hostBusy = false;
  override setHostBusy(busy: boolean): void {
    this.hostBusy = busy;
    super.setHostBusy(busy);
  }
}

/** dev.plug.5, dev.unplug.5, dev.unplugall.3: while the host is busy it performs PLUG, UNPLUG and UNPLUG ALL but answers BUSY. */
class ActsWhileAnsweringBusy extends HostBusyAware {
  override processChain(chain: DescriptorChain): ProcessResult {
    const type = requestOf(chain)?.type;
    const acts = type === VIRTIO_MEM_REQ_PLUG || type === VIRTIO_MEM_REQ_UNPLUG || type === VIRTIO_MEM_REQ_UNPLUG_ALL;
    if (!this.hostBusy || !acts) return super.processChain(chain);
    const evaluation = this.evaluate(chain);
    super.setHostBusy(false);
    super.processChain(chain);
    super.setHostBusy(true);
    return answered(evaluation, VIRTIO_MEM_RESP_BUSY);
  }
}

/** dev.state.5: while the host is busy it answers STATE with BUSY, which is no answer to STATE. */
class StateBusyWhileHostBusy extends HostBusyAware {
  override processChain(chain: DescriptorChain): ProcessResult {
    if (this.hostBusy && requestOf(chain)?.type === VIRTIO_MEM_REQ_STATE)
      return answered(this.evaluate(chain), VIRTIO_MEM_RESP_BUSY);
    return super.processChain(chain);
  }
}

/** dev.suite.1: the host's release is ignored; once busy, the device stays busy. */
class BusyAfterRelease extends VirtioMemDevice {
  override setHostBusy(busy: boolean): void {
    if (busy) super.setHostBusy(true);
  }
}

/** The host-busy device mutants. */
export const BUSY_DEVICE_MUTANTS: readonly Mutant[] = [
  deviceMutant('acts on requests while answering BUSY under host-busy', ActsWhileAnsweringBusy),
  deviceMutant('answers STATE with BUSY under host-busy', StateBusyWhileHostBusy),
  deviceMutant('stays busy after the host released it', BusyAfterRelease),
];
