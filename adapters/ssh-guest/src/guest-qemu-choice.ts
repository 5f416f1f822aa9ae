/**
 * Which stock QEMU can be the VMM of a driver vector's guest, decided by the feature set the
 * vector's device offers (x86-64, q35 or pc):
 *
 * - ACPI_PXM is always offered: `virtio_mem_get_features` adds it whenever the machine has NUMA
 *   state and ACPI is built in, which is every pc/q35 machine. A set-up without it is built by no
 *   stock QEMU on x86.
 * - PERSISTENT_SUSPEND is offered by QEMU ≥ 9.2 whenever the machine supports wake-up from
 *   suspend, and every pc/q35 machine does (`ICH9-LPC.disable_s3=1` does not change it; checked
 *   on 10.0.2). QEMU 7.2 never offers it. So a set-up with it needs QEMU 10.0, one without it
 *   needs QEMU 7.2.
 * - UNPLUGGED_INACCESSIBLE is a device property on both (`unplugged-inaccessible=on|off`).
 *
 * A vector that names no feature set takes whatever the guest's device offers.
 */
import { FEATURE_MASKS, formatHex } from '../../../spec/src/index';

/** The QEMU versions the project runs (Debian 12's, and bookworm-backports' via `vmemct qemu fetch`). */
export type GuestQemuVersion = '7.2' | '10.0';

/** Which QEMU a vector's guest needs. */
export type GuestQemuNeed =
  | { readonly kind: 'any' }
  | { readonly kind: 'version'; readonly version: GuestQemuVersion; readonly reason: string }
  /** No stock QEMU builds the set-up on x86. */
  | { readonly kind: 'none'; readonly reason: string };

/** Why a set-up without ACPI_PXM cannot be built. */
export const NO_PXM_REASON =
  'no stock QEMU on x86 builds a virtio-mem device without ACPI_PXM: pc/q35 always offer it (virtio_mem_get_features: NUMA state with ACPI built in)';

const PS_REASON =
  'QEMU ≥ 9.2 offers PERSISTENT_SUSPEND on every x86 pc/q35 machine (it supports wake-up from suspend) and QEMU 7.2 never does';

/** What a vector is asked about: the feature set its device offers (undefined: the device's default). */
export interface FeatureSetVector {
  readonly setup: { readonly features?: bigint };
}

/** Which QEMU the guest of `vector` must run under (see the file comment). */
export function guestQemuFor(vector: FeatureSetVector): GuestQemuNeed {
  const features = vector.setup.features;
  if (features === undefined) return { kind: 'any' };
  if ((features & FEATURE_MASKS.ACPI_PXM) === 0n) return { kind: 'none', reason: NO_PXM_REASON };
  const withSuspend = (features & FEATURE_MASKS.PERSISTENT_SUSPEND) !== 0n;
  return withSuspend
    ? { kind: 'version', version: '10.0', reason: `the set-up offers PERSISTENT_SUSPEND: ${PS_REASON}` }
    : { kind: 'version', version: '7.2', reason: `the set-up leaves PERSISTENT_SUSPEND out: ${PS_REASON}` };
}

/**
 * Why the guest's device (offering `offered`) cannot be the device of a vector wanting exactly
 * `wanted` (both masked to the bits compared), naming the QEMU rule; undefined when they match.
 */
export function featureSetRefusal(offered: bigint, wanted: bigint): string | undefined {
  if (offered === wanted) return undefined;
  const plain = `the guest's device offers features ${formatHex(offered)}; this vector needs exactly ${formatHex(wanted)}`;
  const need = guestQemuFor({ setup: { features: wanted } });
  if (need.kind === 'none') return `${plain}: ${need.reason}`;
  const psDiffers = ((offered ^ wanted) & FEATURE_MASKS.PERSISTENT_SUSPEND) !== 0n;
  if (need.kind === 'version' && psDiffers) return `${plain}: ${need.reason}; boot the guest with QEMU ${need.version}`;
  return plain;
}

/**
 * The QEMU binary for the guest of `vector`, as a per-configuration grouping key wants it: the
 * default QEMU (`''`, Debian 12's 7.2 on PATH) unless the vector needs 10.0, then the fetched one
 * (`fetched('10.0')`, e.g. the binary `vmemct qemu fetch` unpacked). Undefined when no stock
 * QEMU builds the set-up (the vector is `unsupported` with {@link GuestQemuNeed}'s reason).
 */
export function guestQemuBinaryFor(vector: FeatureSetVector, fetched: (series: string) => string): string | undefined {
  const need = guestQemuFor(vector);
  if (need.kind === 'none') return undefined;
  return need.kind === 'version' && need.version === '10.0' ? fetched('10.0') : '';
}
