/**
 * The whole protocol as one JSON-ready document: what `vmemct spec --json` prints and what the
 * docs generator reads. Built from the tables of this folder; validated by `SpecDocumentSchema`.
 */
import {
  BLOCK_STATES,
  FEATURE_BITS,
  REQUEST_TYPES,
  RESPONSE_CODES,
  VIRTIO_ID_MEM,
  VIRTIO_MEM_GUEST_REQUEST_QUEUE,
  VIRTIO_MEM_PCI_DEVICE_ID,
  VIRTIO_PCI_VENDOR_ID,
  NamedConstant,
} from './constants';
import { LAYOUTS, LayoutSpec } from './layouts';
import { REQUIREMENTS, Requirement } from './requirements';
import { CORE_REQUIREMENTS, SUITE_REQUIREMENTS } from './requirements-beyond';

/** The document printed by `vmemct spec --json`. */
export interface SpecDocument {
  readonly specVersion: '1.4';
  readonly section: '5.15';
  readonly deviceId: number;
  readonly pci: { readonly vendorId: string; readonly deviceId: string };
  readonly queues: readonly { readonly index: number; readonly name: string }[];
  readonly features: readonly NamedConstant[];
  readonly requestTypes: readonly NamedConstant[];
  readonly responseCodes: readonly NamedConstant[];
  readonly blockStates: readonly NamedConstant[];
  readonly layouts: readonly LayoutSpec[];
  /** The 71 statements of §5.15. */
  readonly requirements: readonly Requirement[];
  /** Statements beyond §5.15 that vectors and checks cite: the virtio core ones, then the suite's own. */
  readonly beyond: readonly Requirement[];
}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;

/** Builds the protocol document. */
export function buildSpecDocument(): SpecDocument {
  return {
    specVersion: '1.4',
    section: '5.15',
    deviceId: VIRTIO_ID_MEM,
    pci: { vendorId: hex4(VIRTIO_PCI_VENDOR_ID), deviceId: hex4(VIRTIO_MEM_PCI_DEVICE_ID) },
    queues: [{ index: VIRTIO_MEM_GUEST_REQUEST_QUEUE.index, name: VIRTIO_MEM_GUEST_REQUEST_QUEUE.name }],
    features: FEATURE_BITS,
    requestTypes: REQUEST_TYPES,
    responseCodes: RESPONSE_CODES,
    blockStates: BLOCK_STATES,
    layouts: [LAYOUTS.config, LAYOUTS.request, LAYOUTS.response],
    requirements: REQUIREMENTS,
    beyond: [...CORE_REQUIREMENTS, ...SUITE_REQUIREMENTS],
  };
}
