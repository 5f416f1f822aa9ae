import { FEATURE_MASKS } from '../../../spec/src/index';
import { NO_PXM_REASON, featureSetRefusal, guestQemuBinaryFor, guestQemuFor } from './guest-qemu-choice';

const { VERSION_1: V1, ACPI_PXM: PXM, PERSISTENT_SUSPEND: PS, UNPLUGGED_INACCESSIBLE: UI } = FEATURE_MASKS;

describe('guestQemuFor: the stock QEMU a driver vector needs on x86', () => {
  it('takes any QEMU when the vector names no feature set', () => {
    expect(guestQemuFor({ setup: {} })).toEqual({ kind: 'any' });
  });
  it('needs 10.0 for PERSISTENT_SUSPEND and 7.2 without it (10.0 always offers it on pc/q35)', () => {
    expect(guestQemuFor({ setup: { features: V1 | PXM | PS } })).toMatchObject({ kind: 'version', version: '10.0' });
    expect(guestQemuFor({ setup: { features: V1 | PXM } })).toMatchObject({ kind: 'version', version: '7.2' });
    expect(guestQemuFor({ setup: { features: V1 | PXM | UI } })).toMatchObject({ kind: 'version', version: '7.2' });
  });
  it('names no QEMU for a set-up without ACPI_PXM, with the rule', () => {
    for (const features of [V1, V1 | PS, V1 | UI])
      expect(guestQemuFor({ setup: { features } })).toEqual({ kind: 'none', reason: NO_PXM_REASON });
  });
});

describe('featureSetRefusal: why the guest device cannot serve a vector', () => {
  it('accepts the exact feature set', () => {
    expect(featureSetRefusal(V1 | PXM | PS, V1 | PXM | PS)).toBeUndefined();
  });
  it('names the ACPI_PXM rule, and the QEMU to boot for PERSISTENT_SUSPEND', () => {
    expect(featureSetRefusal(V1 | PXM, V1)).toMatch(/needs exactly 0x100000000: no stock QEMU on x86 .*ACPI_PXM/);
    expect(featureSetRefusal(V1 | PXM, V1 | PXM | PS)).toMatch(
      /offers PERSISTENT_SUSPEND: .*boot the guest with QEMU 10\.0$/,
    );
    expect(featureSetRefusal(V1 | PXM | PS, V1 | PXM)).toMatch(
      /leaves PERSISTENT_SUSPEND out: .*boot the guest with QEMU 7\.2$/,
    );
    expect(featureSetRefusal(V1 | PXM, V1 | PXM | UI)).toBe(
      "the guest's device offers features 0x100000001; this vector needs exactly 0x100000003",
    );
  });
});

describe('guestQemuBinaryFor: the grouping key of a vector', () => {
  const fetched = (series: string): string => `/cache/qemu-${series}/qemu-system-x86_64`;
  it('is the fetched 10.0 for PERSISTENT_SUSPEND, the default QEMU otherwise, none without ACPI_PXM', () => {
    expect(guestQemuBinaryFor({ setup: { features: V1 | PXM | PS } }, fetched)).toBe(
      '/cache/qemu-10.0/qemu-system-x86_64',
    );
    expect(guestQemuBinaryFor({ setup: { features: V1 | PXM } }, fetched)).toBe('');
    expect(guestQemuBinaryFor({ setup: {} }, fetched)).toBe('');
    expect(guestQemuBinaryFor({ setup: { features: V1 } }, fetched)).toBeUndefined();
  });
});
