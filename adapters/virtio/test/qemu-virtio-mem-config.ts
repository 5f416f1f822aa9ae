/** PCI config space of QEMU 7.2's virtio-mem-pci on q35, as recorded (first 0x90 bytes; the rest zero). */
const QEMU_VIRTIO_MEM_CONFIG = `
 f4 1a 58 10 07 01 10 00 01 00 ff 00 00 00 00 00
 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
 0c 80 bf fe 00 00 00 00 00 00 00 00 f4 1a 00 11
 00 00 00 00 84 00 00 00 00 00 00 00 0a 01 00 00
 09 00 10 01 04 00 00 00 00 00 00 00 00 10 00 00
 09 40 10 03 04 00 00 00 00 10 00 00 00 10 00 00
 09 50 10 04 04 00 00 00 00 20 00 00 00 10 00 00
 09 60 14 02 04 00 00 00 00 30 00 00 00 10 00 00
 04 00 00 00 09 70 14 05 00 00 00 00 00 00 00 00`;

/** A fresh copy of the 256-byte config space (tests may change it). */
export function qemuVirtioMemPciConfig(): Uint8Array {
  const bytes = new Uint8Array(256);
  bytes.set(
    QEMU_VIRTIO_MEM_CONFIG.trim()
      .split(/\s+/)
      .map((b) => parseInt(b, 16)),
  );
  return bytes;
}
