/**
 * The request evaluators, one module per request type around one shared range check (the shape
 * of QEMU's `virtio_mem_handle_request`). Each returns the facts about the request and the
 * graded set of conforming outcomes; the device's profile chooses from both (`../choice.ts`).
 */
import { VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_UNPLUG, VIRTIO_MEM_REQ_UNPLUG_ALL } from '../../../../spec/src/index';
import type { NonzeroPadding, VirtioMemRequest } from '../../codec/codec';
import { evaluatePlug } from './plug';
import { evaluateState } from './state';
import { evaluateUnplug } from './unplug';
import { evaluateUnplugAll } from './unplug-all';
import type { DeviceView, RequestAssessment } from './request-facts';

export type { DeviceView, RequestAssessment, RequestFacts, RequestKind } from './request-facts';

/**
 * Evaluates a well-formed request of a known type (PLUG, UNPLUG, UNPLUG ALL or STATE; the chain
 * evaluation has set aside every other type). Header padding never matters; payload padding is
 * cited by the statement that says to ignore it. Reads the view only; changes nothing.
 */
export function evaluateRequest(
  view: DeviceView,
  request: VirtioMemRequest,
  padding: readonly NonzeroPadding[],
): RequestAssessment {
  const payloadPaddingTouched = padding.some((p) => p.field === 'payload_padding');
  switch (request.type) {
    case VIRTIO_MEM_REQ_PLUG:
      return evaluatePlug(view, request, payloadPaddingTouched);
    case VIRTIO_MEM_REQ_UNPLUG:
      return evaluateUnplug(view, request, payloadPaddingTouched);
    case VIRTIO_MEM_REQ_UNPLUG_ALL:
      return evaluateUnplugAll(view, payloadPaddingTouched);
    default:
      return evaluateState(view, request, payloadPaddingTouched);
  }
}
