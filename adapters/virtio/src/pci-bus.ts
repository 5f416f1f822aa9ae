/**
 * How a virtio-pci driver reaches one PCI function and the guest-physical memory around it,
 * whatever stands between: QEMU's qtest protocol (the driver plays firmware and guest at once),
 * or an agent inside a running guest (sysfs configuration space, the BAR mapped from sysfs,
 * locked pages for rings and buffers).
 *
 * The operations are those of a bus, nothing virtio-specific, so one driver serves every way in.
 * An exchange is a list of operations performed in order; a transport sends it as one round trip
 * where it can (one qtest batch, one agent message), so a whole request (buffers, ring entries,
 * notification, used ring) costs one round trip.
 */

/** Width in bytes of a scalar configuration-space access. */
export type PciConfigWidth = 1 | 2 | 4;

/** Width in bytes of a scalar memory or MMIO access (little-endian). */
export type PciAccessWidth = 1 | 2 | 4 | 8;

/** One operation of a {@link PciFunctionBus} exchange. */
export type PciBusOperation =
  /** Reads the function's configuration space at `offset`. */
  | { readonly kind: 'config-read'; readonly offset: number; readonly width: PciConfigWidth }
  /** Writes the function's configuration space at `offset`. */
  | { readonly kind: 'config-write'; readonly offset: number; readonly width: PciConfigWidth; readonly value: number }
  /** A scalar read at a guest-physical address (a register in a BAR, or RAM). */
  | { readonly kind: 'read'; readonly addr: bigint; readonly width: PciAccessWidth }
  /** A scalar write at a guest-physical address (a register in a BAR, or RAM). */
  | { readonly kind: 'write'; readonly addr: bigint; readonly width: PciAccessWidth; readonly value: bigint }
  /** Reads `length` bytes of guest-physical memory. */
  | { readonly kind: 'read-bytes'; readonly addr: bigint; readonly length: number }
  /** Writes bytes to guest-physical memory. */
  | { readonly kind: 'write-bytes'; readonly addr: bigint; readonly bytes: Uint8Array }
  /** Writes `length` zero bytes to guest-physical memory. */
  | { readonly kind: 'zero-bytes'; readonly addr: bigint; readonly length: number };

/**
 * The answer to one operation, in the order of the operations: `value` for `config-read` and
 * `read`, `bytes` for `read-bytes`, `done` for every write.
 */
export type PciBusAnswer =
  | { readonly kind: 'value'; readonly value: bigint }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'done' };

/** A guest-physical range. */
export interface PhysicalRange {
  readonly base: bigint;
  readonly length: bigint;
}

/** Where the function sits once the bus has made it reachable. */
export interface PciFunctionSite {
  /** Bus/device/function number, for messages. */
  readonly bdf: number;
  /**
   * Guest-physical base of memory BAR `bar`, assigned and enabled for memory decoding by the bus
   * (by the bus itself over qtest, where no firmware ran; by the guest's firmware and kernel
   * inside a guest).
   */
  barBase(bar: number): Promise<bigint>;
}

/** What a virtio-pci driver needs of the machine its device sits in. */
export interface PciFunctionBus {
  /** Names the way in, for messages ("qtest", "guest agent"). */
  readonly name: string;
  /** Finds the virtio-mem PCI function (vendor 0x1af4, device 0x1058) and returns where it sits. */
  open(): Promise<PciFunctionSite>;
  /**
   * Performs `operations` in order and resolves with one answer per operation.
   * @throws when the transport fails (the caller decides what that means for the vector).
   */
  exchange(operations: readonly PciBusOperation[]): Promise<PciBusAnswer[]>;
  /** Guest RAM the driver may use for its rings and buffers (at least 2 MiB, 4 KiB aligned). */
  dmaWindow(): PhysicalRange;
}
