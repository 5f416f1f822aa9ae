/**
 * The outcome of a driver's device initialisation (VIRTIO 1.4 §3.1.1): reset, ACKNOWLEDGE,
 * DRIVER, the feature negotiation, FEATURES_OK and, when it stuck, DRIVER_OK.
 *
 * Declared here, once, because every side reports it: the model's synchronous handshake, the
 * virtio layer's handshake over a transport, and the adapter contract.
 */

/** What the driver's device initialisation ended with. */
export interface HandshakeResult {
  /** Features the device offered. */
  readonly offered: bigint;
  /** Features the driver wrote. */
  readonly accepted: bigint;
  /** Whether FEATURES_OK stuck after it was written. */
  readonly featuresOk: boolean;
  /** The status register at the end: after DRIVER_OK, or after FEATURES_OK was refused. */
  readonly status: number;
}
