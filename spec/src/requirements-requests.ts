/**
 * Normative statements of VIRTIO 1.4 §5.15.6.3 to §5.15.6.6: the PLUG, UNPLUG, UNPLUG ALL and STATE requests.
 * Part of the catalogue assembled in order in `requirements.ts` (see there for sources and IDs).
 */
import type { Requirement } from './requirements';

/** Normative statements of VIRTIO 1.4 §5.15.6.3 to §5.15.6.6: the PLUG, UNPLUG, UNPLUG ALL and STATE requests. */
export const REQUEST_REQUIREMENTS: readonly Requirement[] = [
  // §5.15.6.3.1 Driver Requirements: PLUG request
  {
    id: 'drv.plug.1', section: '5.15.6.3.1', level: 'MUST', side: 'driver', topic: 'plug',
    summary: 'The driver judges a PLUG response by its `type` field alone.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.6.3.2 Device Requirements: PLUG request
  {
    id: 'dev.plug.1', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'A PLUG outcome depends only on `type` and the request-specific data (header padding is ignored).',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.2', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'A PLUG outcome does not depend on the padding after `nb_blocks`.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.3', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'PLUG gets VIRTIO_MEM_RESP_ERROR if `addr` is not `block_size`-aligned, `nb_blocks` is 0, or a block lies outside the usable region.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.4', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'PLUG gets VIRTIO_MEM_RESP_ERROR if any block it covers is plugged already.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.5', section: '5.15.6.3.2', level: 'MAY', side: 'device', topic: 'plug',
    summary: 'The device may answer PLUG with VIRTIO_MEM_RESP_BUSY when it cannot process it right now.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.6', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'Once all covered blocks are plugged, the device answers VIRTIO_MEM_RESP_ACK.',
    testable: true, needs: [],
  },
  {
    id: 'dev.plug.7', section: '5.15.6.3.2', level: 'MUST', side: 'device', topic: 'plug',
    summary: 'After a successful PLUG, `plugged_size` includes the newly plugged blocks.',
    testable: true, needs: [],
  },

  // §5.15.6.4.1 Driver Requirements: UNPLUG request
  {
    id: 'drv.unplug.1', section: '5.15.6.4.1', level: 'MUST', side: 'driver', topic: 'unplug',
    summary: 'The driver judges an UNPLUG response by its `type` field alone.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.6.4.2 Device Requirements: UNPLUG request
  {
    id: 'dev.unplug.1', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'An UNPLUG outcome depends only on `type` and the request-specific data (header padding is ignored).',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.2', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'An UNPLUG outcome does not depend on the padding after `nb_blocks`.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.3', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'UNPLUG gets VIRTIO_MEM_RESP_ERROR if `addr` is not `block_size`-aligned, `nb_blocks` is 0, or a block lies outside the usable region.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.4', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'UNPLUG gets VIRTIO_MEM_RESP_ERROR if any block it covers is unplugged already.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.5', section: '5.15.6.4.2', level: 'MAY', side: 'device', topic: 'unplug',
    summary: 'The device may answer UNPLUG with VIRTIO_MEM_RESP_BUSY when it cannot process it right now.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.6', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'Once all covered blocks are unplugged, the device answers VIRTIO_MEM_RESP_ACK.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplug.7', section: '5.15.6.4.2', level: 'MUST', side: 'device', topic: 'unplug',
    summary: 'After a successful UNPLUG, `plugged_size` no longer counts the unplugged blocks.',
    testable: true, needs: [],
  },

  // §5.15.6.5.1 Driver Requirements (the spec titles it "UNPLUG request"): UNPLUG ALL request
  {
    id: 'drv.unplugall.1', section: '5.15.6.5.1', level: 'MUST', side: 'driver', topic: 'unplugall',
    summary: 'The driver judges an UNPLUG ALL response by its `type` field alone.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.6.5.2 Device Requirements (the spec titles it "UNPLUG request"): UNPLUG ALL request
  {
    id: 'dev.unplugall.1', section: '5.15.6.5.2', level: 'MUST', side: 'device', topic: 'unplugall',
    summary: 'An UNPLUG ALL outcome depends only on the request `type`; `addr`, `nb_blocks` and all padding are ignored.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplugall.2', section: '5.15.6.5.2', level: 'MUST', side: 'device', topic: 'unplugall',
    summary: 'An UNPLUG ALL outcome does not depend on the padding in the request-specific part.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplugall.3', section: '5.15.6.5.2', level: 'MAY', side: 'device', topic: 'unplugall',
    summary: 'The device may answer UNPLUG ALL with VIRTIO_MEM_RESP_BUSY when it cannot process it right now.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplugall.4', section: '5.15.6.5.2', level: 'MUST', side: 'device', topic: 'unplugall',
    summary: 'Once every block is unplugged, the device answers UNPLUG ALL with VIRTIO_MEM_RESP_ACK.',
    testable: true, needs: [],
  },
  {
    id: 'dev.unplugall.5', section: '5.15.6.5.2', level: 'MUST', side: 'device', topic: 'unplugall',
    summary: 'When UNPLUG ALL is acknowledged, `plugged_size` is 0.',
    testable: true, needs: [],
  },
  {
    // A permission: the verdict records whether the usable region changed (with no notification).
    id: 'dev.unplugall.6', section: '5.15.6.5.2', level: 'MAY', side: 'device', topic: 'unplugall',
    summary: 'The device may change (typically shrink) `usable_region_size` before it acknowledges UNPLUG ALL.',
    testable: true, needs: [],
  },

  // §5.15.6.6.1 Driver Requirements: STATE request
  {
    id: 'drv.state.1', section: '5.15.6.6.1', level: 'MUST', side: 'driver', topic: 'state',
    summary: 'From a STATE response the driver uses only `type` and the state field; padding is disregarded.',
    testable: true, needs: ['observe-driver'],
  },
  {
    id: 'drv.state.2', section: '5.15.6.6.1', level: 'MUST', side: 'driver', topic: 'state',
    summary: 'The driver disregards the state field unless the STATE response type is VIRTIO_MEM_RESP_ACK.',
    testable: true, needs: ['observe-driver'],
  },

  // §5.15.6.6.2 Device Requirements: STATE request
  {
    id: 'dev.state.1', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'A STATE outcome depends only on `type` and the request-specific data (header padding is ignored).',
    testable: true, needs: [],
  },
  {
    id: 'dev.state.2', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'A STATE outcome does not depend on the padding after `nb_blocks`.',
    testable: true, needs: [],
  },
  {
    id: 'dev.state.3', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'STATE gets VIRTIO_MEM_RESP_ERROR if `addr` is not `block_size`-aligned, `nb_blocks` is 0, or a block lies outside the usable region.',
    testable: true, needs: [],
  },
  {
    // The sentence itself is unconditional; read with dev.state.3 it covers every request that is
    // not rejected with ERROR.
    id: 'dev.state.4', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: "The device answers STATE with VIRTIO_MEM_RESP_ACK and reports the covered blocks' state.",
    testable: true, needs: [],
  },
  {
    id: 'dev.state.5', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'STATE reports VIRTIO_MEM_STATE_PLUGGED when every covered block is plugged.',
    testable: true, needs: [],
  },
  {
    id: 'dev.state.6', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'STATE reports VIRTIO_MEM_STATE_UNPLUGGED when every covered block is unplugged.',
    testable: true, needs: [],
  },
  {
    id: 'dev.state.7', section: '5.15.6.6.2', level: 'MUST', side: 'device', topic: 'state',
    summary: 'STATE reports VIRTIO_MEM_STATE_MIXED when the covered blocks are partly plugged and partly unplugged.',
    testable: true, needs: [],
  },
];
