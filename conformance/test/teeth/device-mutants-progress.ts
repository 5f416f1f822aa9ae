/**
 * Devices that make no progress (dev.suite.1: BUSY is temporary): each answers BUSY — an answer
 * the spec permits for any one request — where a useful device would eventually act. Each must
 * be caught by the runner's bounded BUSY retry (`progress`), not pass as `acceptable`.
 */
import { DescriptorChain, ProcessResult, VirtioMemDevice } from '../../../model/src/index';
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_BUSY,
} from '../../../spec/src/index';

import { Mutant, answered, deviceMutant, requestOf } from './mutant-kit';

/** The request types BUSY may answer (every type but STATE). */
const BUSY_ANSWERABLE: readonly number[] = [VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_UNPLUG, VIRTIO_MEM_REQ_UNPLUG_ALL];

/** dev.suite.1: every PLUG, UNPLUG and UNPLUG ALL is answered BUSY, forever. */
class AlwaysBusy extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const type = requestOf(chain)?.type;
    if (type !== undefined && BUSY_ANSWERABLE.includes(type))
      return answered(this.evaluate(chain), VIRTIO_MEM_RESP_BUSY);
    return super.processChain(chain);
  }
}

/** dev.suite.1: every PLUG is answered BUSY (UNPLUG and UNPLUG ALL work), so nothing can ever be plugged. */
class BusyToEveryPlug extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    if (requestOf(chain)?.type === VIRTIO_MEM_REQ_PLUG) return answered(this.evaluate(chain), VIRTIO_MEM_RESP_BUSY);
    return super.processChain(chain);
  }
}

/** dev.suite.1: once it has answered BUSY (an injected one, say), every later PLUG, UNPLUG and UNPLUG ALL is BUSY too, resets included. */
class StickyBusy extends VirtioMemDevice {
  private stuck = false;
  override processChain(chain: DescriptorChain): ProcessResult {
    const type = requestOf(chain)?.type;
    const answerable = type !== undefined && BUSY_ANSWERABLE.includes(type);
    if (this.stuck && answerable) return answered(this.evaluate(chain), VIRTIO_MEM_RESP_BUSY);
    const result = super.processChain(chain);
    if (result.response?.type === VIRTIO_MEM_RESP_BUSY) this.stuck = true;
    return result;
  }
}

/** The no-progress device mutants. */
export const PROGRESS_DEVICE_MUTANTS: readonly Mutant[] = [
  deviceMutant('BUSY to every PLUG, UNPLUG and UNPLUG ALL', AlwaysBusy),
  deviceMutant('BUSY to every PLUG', BusyToEveryPlug),
  deviceMutant('BUSY forever once it answered BUSY', StickyBusy),
];
