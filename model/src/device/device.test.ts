import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_F_VERSION_1,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  featureMask,
} from '../../../spec/src/index';
import {
  DeviceParams,
  DeviceParamsError,
  DeviceProfile,
  ProcessResult,
  QEMU_PROFILE,
  SPEC_PROFILE,
  CLOUD_HYPERVISOR_PROFILE,
  FIRECRACKER_PROFILE,
  VirtioMemDevice,
  decodeResponse,
  encodeRequest,
  describeOutcome,
  RequestEvaluation,
  sameObservable,
  DEVICE_PROFILES,
  DeviceSnapshot,
  DeviceUsageError,
  checkPersistentSuspendOffer,
  checkTransition,
  initialiseDevice,
} from '../index';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
const BS = 2n * MiB;
const BASE = 4n * GiB;

/** A 1 GiB region of 2 MiB blocks at 4 GiB, 256 MiB requested. */
function makeDevice(overrides: Partial<DeviceParams> = {}, profile: DeviceProfile = SPEC_PROFILE): VirtioMemDevice {
  return new VirtioMemDevice({ block_size: BS, addr: BASE, region_size: 1n * GiB, requested_size: 256n * MiB, ...overrides }, profile);
}

/** The device after a driver's handshake (DRIVER_OK), accepting every offered feature. */
function activated(device: VirtioMemDevice): VirtioMemDevice {
  initialiseDevice(device, (offered) => offered);
  return device;
}

const PLUG = 0;
const UNPLUG = 1;
const UNPLUG_ALL = 2;
const STATE = 3;

function send(device: VirtioMemDevice, type: number, block: number | bigint, nb_blocks: number, extra: Record<string, unknown> = {}): ProcessResult {
  const addr = typeof block === 'bigint' ? block : BASE + BigInt(block) * BS;
  return device.processRequest(encodeRequest({ type, addr, nb_blocks, ...extra }));
}

function answer(result: ProcessResult): string {
  return describeOutcome(result.chosen);
}

/** True when the profile's choice is one of the conforming outcomes. */
function choiceConforms(evaluation: RequestEvaluation): boolean {
  return evaluation.outcomes.some((o) => sameObservable(o, evaluation.chosen));
}

function allowed(result: ProcessResult): string[] {
  return result.outcomes.map((o) => `${describeOutcome(o)}:${o.class}`);
}

describe('VirtioMemDevice construction', () => {
  test('should start with every block unplugged and usable_region_size from the profile', () => {
    const spec = makeDevice();
    expect(spec.readConfig().plugged_size).toBe(0n);
    expect(spec.readConfig().usable_region_size).toBe(256n * MiB);
    const qemu = makeDevice({}, QEMU_PROFILE);
    expect(qemu.readConfig().usable_region_size).toBe(512n * MiB);
    const ch = makeDevice({}, CLOUD_HYPERVISOR_PROFILE);
    expect(ch.readConfig().usable_region_size).toBe(1n * GiB);
  });

  test('should reproduce the QEMU example: 16 GiB region, 1 GiB requested → 1.25 GiB usable', () => {
    const device = new VirtioMemDevice({ block_size: BS, addr: BASE, region_size: 16n * GiB, requested_size: 1n * GiB }, QEMU_PROFILE);
    expect(device.readConfig().usable_region_size).toBe(1280n * MiB);
  });

  test('should account initial plugged blocks in plugged_size', () => {
    const device = makeDevice({ plugged: [{ first: 3, count: 5 }] });
    expect(device.readConfig().plugged_size).toBe(5n * BS);
    expect(device.pluggedRuns()).toEqual([{ first: 3, count: 5 }]);
  });

  test('should refuse parameters it cannot model, naming the field', () => {
    expect(() => makeDevice({ block_size: 0n })).toThrow(DeviceParamsError);
    expect(() => makeDevice({ block_size: 1n, region_size: 1n << 40n })).toThrow(/region_size/);
    expect(() => makeDevice({ plugged: [{ first: 510, count: 5 }] })).toThrow(/plugged/);
  });

  test('should keep a 1 TiB region of 2 MiB blocks in a few hundred KiB', () => {
    const device = new VirtioMemDevice({ block_size: BS, addr: 0n, region_size: 1n << 40n, requested_size: 0n });
    expect(device.stateBytes).toBeLessThanOrEqual(256 * 1024);
  });
});

describe('dev.cfg.5 dev.cfg.6 configuration invariants', () => {
  test('dev.cfg.5: should report a block_size that is not a power of two', () => {
    const device = makeDevice({ block_size: 6n * MiB, region_size: 600n * MiB, requested_size: 0n });
    expect(device.checkInvariants().map((v) => v.requirements).flat()).toContain('dev.cfg.5');
  });

  test('dev.cfg.6: should report fields that are not multiples of block_size', () => {
    const device = makeDevice({ region_size: 1n * GiB + MiB });
    const violation = device.checkInvariants().find((v) => v.invariant === 'fields-aligned');
    expect(violation?.requirements).toEqual(['dev.cfg.6']);
    expect(violation?.detail).toMatch(/region_size/);
  });

  test('dev.cfg.4: should report usable_region_size below requested_size', () => {
    const device = makeDevice({ usable_region_size: 128n * MiB });
    expect(device.checkInvariants().map((v) => v.invariant)).toContain('usable-covers-requested');
  });

  test('should report no violation for a conforming configuration', () => {
    expect(makeDevice().checkInvariants()).toEqual([]);
  });
});

describe('dev.plug', () => {
  test('dev.plug.6 dev.plug.7: should ACK a valid plug and add it to plugged_size', () => {
    const device = makeDevice();
    const result = send(device, PLUG, 0, 4);
    expect(answer(result)).toBe('ACK');
    expect(result.chosen.class).toBe('required');
    expect(result.chosen.requirements).toEqual(expect.arrayContaining(['dev.plug.6', 'dev.plug.7']));
    expect(device.readConfig().plugged_size).toBe(4n * BS);
    expect(result.violations).toEqual([]);
    expect(result.used?.length).toBe(10);
  });

  test.each([
    ['unaligned addr', BASE + MiB, 1],
    ['nb_blocks = 0', BASE, 0],
    ['addr below the region', BASE - BS, 1],
    ['range past the usable region', BASE + 127n * BS, 2],
    ['addr far beyond the region', 1n << 62n, 1],
  ])('dev.plug.3: should answer ERROR for %s', (_label, addr, nb) => {
    const device = makeDevice();
    const result = send(device, PLUG, addr, nb);
    expect(answer(result)).toBe('ERROR');
    expect(result.chosen.requirements).toContain('dev.plug.3');
    expect(allowed(result)).toEqual(['ERROR:required', 'BUSY:permitted']);
    expect(device.readConfig().plugged_size).toBe(0n);
  });

  test('dev.plug.4: should answer ERROR when a covered block is already plugged', () => {
    const device = makeDevice({ plugged: [{ first: 5, count: 1 }] });
    const result = send(device, PLUG, 4, 3);
    expect(answer(result)).toBe('ERROR');
    expect(result.chosen.requirements).toContain('dev.plug.4');
    expect(device.readConfig().plugged_size).toBe(BS);
  });

  test('dev.plug.4: with the state and the budget both failing, ERROR is required and NACK unspecified; QEMU picks NACK', () => {
    const params = { requested_size: 2n * BS, usable_region_size: 64n * BS, plugged: [{ first: 0, count: 2 }] };
    const spec = send(makeDevice(params), PLUG, 1, 2);
    expect(allowed(spec)).toEqual(['ERROR:required', 'NACK:unspecified', 'BUSY:permitted']);
    expect(answer(spec)).toBe('ERROR');
    const qemu = send(makeDevice(params, QEMU_PROFILE), PLUG, 1, 2);
    expect(answer(qemu)).toBe('NACK');
    expect(choiceConforms(qemu)).toBe(true);
  });

  test('should prefer NACK for a plug beyond requested_size (descriptive text), allow ERROR, discourage ACK at target', () => {
    const device = makeDevice({ requested_size: 2n * BS, usable_region_size: 64n * BS, plugged: [{ first: 0, count: 2 }] });
    const result = send(device, PLUG, 10, 1);
    expect(answer(result)).toBe('NACK');
    expect(allowed(result)).toEqual(['NACK:recommended', 'ERROR:unspecified', 'ACK:discouraged', 'BUSY:permitted']);
    expect(device.readConfig().plugged_size).toBe(2n * BS);
  });

  test('should treat an overshooting plug (below target, ending above) as NACK recommended, ACK unspecified', () => {
    const device = makeDevice({ requested_size: 4n * BS, usable_region_size: 64n * BS, plugged: [{ first: 0, count: 2 }] });
    const result = send(device, PLUG, 2, 3);
    expect(allowed(result)).toEqual(['NACK:recommended', 'ERROR:unspecified', 'ACK:unspecified', 'BUSY:permitted']);
  });

  test('dev.plug.3: cloud-hypervisor checks the budget first and answers NACK for nb_blocks = 0 — nonconforming', () => {
    const device = makeDevice({ requested_size: 2n * BS, plugged: [{ first: 0, count: 3 }] }, CLOUD_HYPERVISOR_PROFILE);
    const result = send(device, PLUG, 4, 0);
    expect(answer(result)).toBe('NACK');
    expect(result.chosen.class).toBe('nonconforming');
    expect(result.chosen.requirements).toContain('dev.plug.3');
    expect(choiceConforms(result)).toBe(false);
  });

  test('dev.plug.1 dev.plug.2: should ignore header and payload padding, citing the statements', () => {
    const clean = send(makeDevice(), PLUG, 0, 1);
    const device = makeDevice();
    const dirty = send(device, PLUG, 0, 1, { padding: Uint8Array.of(1, 2, 3, 4, 5, 6), payload_padding: Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff) });
    expect(answer(dirty)).toBe(answer(clean));
    expect(dirty.used?.written).toEqual(clean.used?.written);
    expect(dirty.nonzeroPadding.map((p) => p.field)).toEqual(['padding', 'payload_padding']);
    expect(dirty.chosen.requirements).toEqual(expect.arrayContaining(['dev.plug.1', 'dev.plug.2']));
  });

  test('dev.plug.5: should answer BUSY when busy and change nothing; BUSY is permitted', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    device.injectBusy(1);
    const busy = send(device, PLUG, 0, 1);
    expect(answer(busy)).toBe('BUSY');
    expect(busy.chosen.class).toBe('permitted');
    expect(device.readConfig().plugged_size).toBe(0n);
    expect(answer(send(device, PLUG, 0, 1))).toBe('ACK');
  });

  test('dev.cfg.10: should not notify when only plugged_size changes, but bump the config generation', () => {
    const device = makeDevice();
    const generation = device.configGeneration;
    const result = send(device, PLUG, 0, 1);
    expect(result.notified).toBe(false);
    expect(device.configGeneration).not.toBe(generation);
  });

  test('should write a 10-byte response with zero padding', () => {
    const result = send(makeDevice(), PLUG, 0, 1);
    expect(result.used?.written).toEqual(new Uint8Array(10));
  });
});

describe('dev.unplug', () => {
  test('dev.unplug.6 dev.unplug.7: should ACK a valid unplug and subtract it', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 8 }] });
    const result = send(device, UNPLUG, 4, 4);
    expect(answer(result)).toBe('ACK');
    expect(result.chosen.requirements).toEqual(expect.arrayContaining(['dev.unplug.6', 'dev.unplug.7']));
    expect(device.readConfig().plugged_size).toBe(4n * BS);
  });

  test('dev.unplug.3: should answer ERROR for an unaligned, empty or out-of-range unplug', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 8 }] });
    expect(answer(send(device, UNPLUG, BASE + 1n, 1))).toBe('ERROR');
    expect(answer(send(device, UNPLUG, 0, 0))).toBe('ERROR');
    expect(answer(send(device, UNPLUG, 127, 2))).toBe('ERROR');
    expect(device.readConfig().plugged_size).toBe(8n * BS);
  });

  test('dev.unplug.4: should answer ERROR when a covered block is already unplugged', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    const result = send(device, UNPLUG, 1, 2);
    expect(answer(result)).toBe('ERROR');
    expect(result.chosen.requirements).toContain('dev.unplug.4');
  });

  test('should ACK an unplug that takes plugged_size below requested_size (never NACK)', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    const result = send(device, UNPLUG, 0, 2);
    expect(answer(result)).toBe('ACK');
    expect(result.outcomes.some((o) => describeOutcome(o) === 'NACK')).toBe(false);
  });

  test('dev.unplug.5: BUSY is permitted for UNPLUG', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    device.injectBusy(1);
    const result = send(device, UNPLUG, 0, 1);
    expect(answer(result)).toBe('BUSY');
    expect(result.chosen.requirements).toContain('dev.unplug.5');
  });
});

describe('dev.unplugall', () => {
  test('dev.unplugall.4 dev.unplugall.5: should ACK, leave plugged_size 0 and keep usable ≥ requested', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 8 }, { first: 100, count: 3 }] }, QEMU_PROFILE);
    const result = send(device, UNPLUG_ALL, 0, 0);
    expect(answer(result)).toBe('ACK');
    expect(device.readConfig().plugged_size).toBe(0n);
    expect(device.pluggedRuns()).toEqual([]);
    expect(device.readConfig().usable_region_size).toBeGreaterThanOrEqual(device.readConfig().requested_size);
    expect(result.violations).toEqual([]);
  });

  test('dev.unplugall.6 dev.cfg.9: may shrink usable_region_size without a notification', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    device.setRequestedSize(800n * MiB);
    device.setRequestedSize(0n);
    const usable = device.readConfig().usable_region_size;
    expect(usable).toBeGreaterThan(0n);
    const result = send(device, UNPLUG_ALL, 0, 0);
    expect(device.readConfig().usable_region_size).toBe(0n);
    expect(result.notified).toBe(false);
    expect(result.violations).toEqual([]);
    const effect = result.chosen.kind === 'response' ? result.chosen.effect : undefined;
    expect(effect).toEqual({ kind: 'unplug-all', usableMin: 0n, usableMax: GiB });
  });

  test('dev.unplugall.1: should ignore addr and nb_blocks (garbage gives the same answer)', () => {
    const a = send(makeDevice({ plugged: [{ first: 0, count: 1 }] }), UNPLUG_ALL, 0, 0);
    const b = send(makeDevice({ plugged: [{ first: 0, count: 1 }] }), UNPLUG_ALL, 0xdeadbeefn, 0xffff, { payload_padding: Uint8Array.of(9, 9, 9, 9, 9, 9) });
    expect(answer(b)).toBe(answer(a));
    expect(b.chosen.requirements).toEqual(expect.arrayContaining(['dev.unplugall.1', 'dev.unplugall.2']));
  });

  test('dev.unplugall.3: BUSY is permitted; ERROR and NACK are unspecified', () => {
    const result = send(makeDevice(), UNPLUG_ALL, 0, 0);
    expect(allowed(result)).toEqual(['ACK:required', 'BUSY:permitted', 'ERROR:unspecified', 'NACK:unspecified']);
  });

  test('dev.cfg.4: Firecracker zeroes usable_region_size on UNPLUG ALL even with requested_size > 0', () => {
    const device = makeDevice({}, FIRECRACKER_PROFILE);
    device.setRequestedSize(256n * MiB);
    const result = send(device, UNPLUG_ALL, 0, 0);
    expect(result.violations.map((v) => v.requirements).flat()).toContain('dev.cfg.4');
  });
});

describe('dev.state', () => {
  test('dev.state.5 dev.state.6 dev.state.7: should report PLUGGED, UNPLUGGED and MIXED', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 4 }] });
    const plugged = send(device, STATE, 0, 4);
    expect(answer(plugged)).toBe('ACK(PLUGGED)');
    expect(plugged.chosen.requirements).toContain('dev.state.5');
    expect(decodeResponse(plugged.used!.written)).toMatchObject({ ok: true, value: { type: 0, state: 0 } });
    expect(answer(send(device, STATE, 4, 4))).toBe('ACK(UNPLUGGED)');
    const mixed = send(device, STATE, 2, 4);
    expect(answer(mixed)).toBe('ACK(MIXED)');
    expect(mixed.chosen.requirements).toContain('dev.state.7');
  });

  test('dev.state.3: should answer ERROR for unaligned, empty and out-of-range STATE; never BUSY', () => {
    const device = makeDevice();
    for (const [addr, nb] of [[BASE + 4096n, 1], [BASE, 0], [BASE + 128n * BS, 1]] as const) {
      const result = send(device, STATE, addr, nb);
      expect(answer(result)).toBe('ERROR');
      expect(allowed(result)).toEqual(['ERROR:required']);
    }
  });

  test('dev.state.4: should answer STATE over 65,535 blocks with one word-wise count', () => {
    const device = new VirtioMemDevice({ block_size: BS, addr: 0n, region_size: 1n << 40n, requested_size: 1n << 39n });
    send(device, PLUG, 0n, 65535);
    expect(answer(send(device, STATE, 0n, 65535))).toBe('ACK(PLUGGED)');
    expect(answer(send(device, STATE, BS, 65535))).toBe('ACK(MIXED)');
  });

  test('dev.state.1 dev.state.2: padding does not change the answer', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 1 }] });
    const result = send(device, STATE, 0, 1, { padding: Uint8Array.of(1, 1, 1, 1, 1, 1), payload_padding: Uint8Array.of(2, 2, 2, 2, 2, 2) });
    expect(answer(result)).toBe('ACK(PLUGGED)');
    expect(result.chosen.requirements).toEqual(expect.arrayContaining(['dev.state.1', 'dev.state.2']));
  });
});

describe('malformed chains', () => {
  test('should treat an unknown type as unspecified; QEMU flags NEEDS_RESET and returns no used entry', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    const result = send(device, 7, 0, 1);
    expect(result.problem).toBe('unknown-type');
    expect(allowed(result)).toEqual(['needs-reset:unspecified', 'error-response:unspecified', 'used-length-zero:unspecified', 'no-used-entry:discouraged']);
    expect(result.used).toBeNull();
    expect(device.needsReset).toBe(true);
    expect(result.notified).toBe(true);
    // Nothing is processed until a device reset.
    expect(send(device, PLUG, 0, 1).used).toBeNull();
    device.deviceReset();
    expect(answer(send(device, PLUG, 0, 1))).toBe('ACK');
  });

  test('should flag a short request buffer and a short response buffer', () => {
    const device = makeDevice();
    const short = device.processChain({ readable: [new Uint8Array(20)], writableSizes: [10] });
    expect(short.problem).toBe('short-request');
    const noRoom = makeDevice().processChain({ readable: [encodeRequest({ type: PLUG, addr: BASE, nb_blocks: 1 })], writableSizes: [8] });
    expect(noRoom.problem).toBe('short-response');
    expect(noRoom.outcomes.some((o) => describeOutcome(o) === 'error-response')).toBe(false);
  });

  test('cloud-hypervisor answers ERROR to an unknown type', () => {
    const result = send(makeDevice({}, CLOUD_HYPERVISOR_PROFILE), 9, 0, 1);
    expect(answer(result)).toBe('error-response');
    expect(result.used?.length).toBe(10);
  });

  test('should accept a request split over descriptors (Message Framing); single-descriptor profiles refuse it', () => {
    const bytes = encodeRequest({ type: PLUG, addr: BASE, nb_blocks: 1 });
    const chain = { readable: [bytes.subarray(0, 8), bytes.subarray(8)], writableSizes: [4, 6] };
    const spec = makeDevice().processChain(chain);
    expect(answer(spec)).toBe('ACK');
    const ch = makeDevice({}, CLOUD_HYPERVISOR_PROFILE).processChain(chain);
    expect(ch.chosen.class).toBe('nonconforming');
    expect(ch.used?.length).toBe(0);
  });
});

describe('host resize', () => {
  test('dev.cfg.9 dev.cfg.4: should grow usable first and notify when requested_size changes', () => {
    const device = activated(makeDevice({}, QEMU_PROFILE));
    const result = device.setRequestedSize(768n * MiB);
    expect(result).toMatchObject({ ok: true, notified: true, usableAfter: 1n * GiB, violations: [] });
    expect(device.readConfig().requested_size).toBe(768n * MiB);
  });

  test('dev.cfg.8: should never shrink usable_region_size on a resize', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    device.setRequestedSize(768n * MiB);
    const result = device.setRequestedSize(2n * BS);
    expect(result.ok && result.usableAfter).toBe(1n * GiB);
  });

  test('dev.cfg.11: QEMU notifies even when nothing changed; the spec profile does not', () => {
    const qemu = activated(makeDevice({}, QEMU_PROFILE));
    expect(qemu.setRequestedSize(256n * MiB)).toMatchObject({ ok: true, notified: true });
    const spec = activated(makeDevice());
    expect(spec.setRequestedSize(256n * MiB)).toMatchObject({ ok: true, notified: false });
  });

  test('dev.cfg.9: a resize before DRIVER_OK takes effect without a notification (no driver to receive it)', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    expect(device.setRequestedSize(768n * MiB)).toMatchObject({ ok: true, notified: false, violations: [] });
    expect(device.notificationCount).toBe(0);
    activated(device);
    expect(device.readConfig().requested_size).toBe(768n * MiB);
    expect(device.setRequestedSize(512n * MiB)).toMatchObject({ ok: true, notified: true });
    expect(device.notificationCount).toBe(1);
  });

  test('should refuse unaligned sizes and sizes beyond the region, changing nothing', () => {
    const device = makeDevice({}, QEMU_PROFILE);
    expect(device.setRequestedSize(MiB)).toMatchObject({ ok: false, reason: expect.stringMatching(/multiple of block_size/) });
    expect(device.setRequestedSize(2n * GiB)).toMatchObject({ ok: false, reason: expect.stringMatching(/exceeds region_size/) });
    expect(device.readConfig().requested_size).toBe(256n * MiB);
    expect(device.notificationCount).toBe(0);
  });

  test('cloud-hypervisor refuses a resize to the current value', () => {
    expect(makeDevice({}, CLOUD_HYPERVISOR_PROFILE).setRequestedSize(256n * MiB)).toMatchObject({ ok: false });
  });

  test('Firecracker grows usable in 128 MiB slots', () => {
    const device = makeDevice({ requested_size: 0n }, FIRECRACKER_PROFILE);
    expect(device.readConfig().usable_region_size).toBe(0n);
    device.setRequestedSize(130n * MiB);
    expect(device.readConfig().usable_region_size).toBe(256n * MiB);
  });
});

describe('resets', () => {
  test('dev.init.2: a device reset changes no block and no configuration field', () => {
    const device = makeDevice({ plugged: [{ first: 1, count: 3 }] }, QEMU_PROFILE);
    const config = device.readConfig();
    expect(device.deviceReset()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([{ first: 1, count: 3 }]);
    expect(device.readConfig()).toEqual(config);
    expect(device.deviceStatus).toBe(0);
  });

  test('dev.op.7 dev.op.6: a QEMU system reset unplugs everything and may shrink usable', () => {
    const device = makeDevice({ plugged: [{ first: 1, count: 3 }] }, QEMU_PROFILE);
    device.setRequestedSize(768n * MiB);
    device.setRequestedSize(0n);
    expect(device.systemReset()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([]);
    expect(device.readConfig()).toMatchObject({ plugged_size: 0n, usable_region_size: 0n });
  });

  test('a profile that keeps blocks on system reset keeps them', () => {
    const device = makeDevice({ plugged: [{ first: 1, count: 3 }] }, CLOUD_HYPERVISOR_PROFILE);
    device.systemReset();
    expect(device.pluggedRuns()).toEqual([{ first: 1, count: 3 }]);
  });
});

describe('feature negotiation', () => {
  const UI = featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
  const V1 = featureMask(VIRTIO_F_VERSION_1);
  const handshake = (device: VirtioMemDevice, accepted: bigint) => {
    device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    device.writeDriverFeatures(accepted);
    return device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  };

  test('dev.init.1: QEMU refuses FEATURES_OK when UNPLUGGED_INACCESSIBLE is offered but not accepted', () => {
    const device = makeDevice({ features: V1 | UI }, QEMU_PROFILE);
    const result = handshake(device, V1);
    expect(result.status & VIRTIO_CONFIG_S_FEATURES_OK).toBe(0);
    expect(result.requirements).toEqual(['dev.init.1']);
    expect(result.refusal).toMatch(/UNPLUGGED_INACCESSIBLE/);
  });

  test('should accept FEATURES_OK when the driver accepts what it must', () => {
    const device = makeDevice({ features: V1 | UI }, QEMU_PROFILE);
    const result = handshake(device, V1 | UI);
    expect(result.status & VIRTIO_CONFIG_S_FEATURES_OK).toBe(VIRTIO_CONFIG_S_FEATURES_OK);
    expect(device.negotiatedFeatures).toBe(V1 | UI);
  });

  test('should refuse features that were not offered, and a driver without VERSION_1', () => {
    expect(handshake(makeDevice({ features: V1 }), V1 | UI).refusal).toMatch(/not offered/);
    expect(handshake(makeDevice({ features: V1 }), 0n).refusal).toMatch(/VERSION_1/);
  });

  test('dev.init.1: Firecracker fails at DRIVER_OK instead', () => {
    const device = makeDevice({}, FIRECRACKER_PROFILE);
    expect(handshake(device, V1).refusal).toBeUndefined();
    const result = device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    expect(result.refusal).toMatch(/activation failed/);
    expect(device.needsReset).toBe(true);
  });

  test('writing status 0 resets the device', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 1 }] });
    handshake(device, featureMask(VIRTIO_F_VERSION_1));
    expect(device.writeStatus(0).status).toBe(0);
    expect(device.pluggedRuns()).toEqual([{ first: 0, count: 1 }]);
  });
});

describe('snapshot', () => {
  test('should hand out a copy: mutating a snapshot does not change the device', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    const snapshot = device.snapshot(true);
    (snapshot.config as { plugged_size: bigint }).plugged_size = 0n;
    snapshot.config.padding[0] = 0xff;
    expect(device.readConfig().plugged_size).toBe(2n * BS);
    expect(device.readConfig().padding[0]).toBe(0);
    expect(snapshot.blocksDigest).toBe('0+2');
  });
});

describe('applyObserved', () => {
  test('should keep an oracle in step with an observed UNPLUG ALL and its usable size', () => {
    const device = makeDevice({ plugged: [{ first: 0, count: 2 }] });
    const evaluation = device.evaluate({ readable: [encodeRequest({ type: UNPLUG_ALL })], writableSizes: [10] });
    device.applyObserved(evaluation.outcomes[0], 512n * MiB);
    expect(device.readConfig()).toMatchObject({ plugged_size: 0n, usable_region_size: 512n * MiB });
  });
});

describe('suspend and wake-up (dev.op.8, dev.init.4)', () => {
  const V1 = featureMask(VIRTIO_F_VERSION_1);
  const PS = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);
  const negotiate = (device: VirtioMemDevice, accepted: bigint): void => {
    device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    device.writeDriverFeatures(accepted);
    expect(device.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK).refusal).toBeUndefined();
  };
  const plugged = (profile: DeviceProfile): VirtioMemDevice => {
    const device = makeDevice({ plugged: [{ first: 2, count: 3 }] }, profile);
    expect(device.writeMemory(BASE + 2n * BS + 5n, Uint8Array.of(1, 2, 3)).ok).toBe(true);
    return device;
  };

  test('dev.init.4: the spec profile offers PERSISTENT_SUSPEND by default', () => {
    expect(SPEC_PROFILE.defaultFeatures & PS).toBe(PS);
    expect(makeDevice().offeredFeatures).toBe(V1 | PS);
  });

  test('dev.op.8: with PERSISTENT_SUSPEND negotiated block states and contents survive suspend and wake-up', () => {
    const device = plugged(SPEC_PROFILE);
    negotiate(device, V1 | PS);
    const before = device.snapshot(true);
    expect(device.suspend()).toEqual({ persistent: true, violations: [] });
    expect(device.suspended).toBe(true);
    expect(device.wake()).toEqual([]);
    expect(device.suspended).toBe(false);
    expect(device.snapshot(true)).toEqual(before);
    expect(device.readMemory(BASE + 2n * BS + 5n, 3)).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
    // The virtio status is the driver's business: the wake-up leaves it alone.
    expect(device.negotiatedFeatures).toBe(V1 | PS);
  });

  test('dev.op.8: the negotiation counts even when the driver reset the device before suspending (Linux freeze)', () => {
    const device = makeDevice({ features: V1 | PS, plugged: [{ first: 2, count: 3 }] }, QEMU_PROFILE);
    negotiate(device, V1 | PS);
    device.writeStatus(0);
    expect(device.negotiatedFeatures).toBe(0n);
    expect(device.lastNegotiatedFeatures).toBe(V1 | PS);
    expect(device.suspend().persistent).toBe(true);
    expect(device.wake()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([{ first: 2, count: 3 }]);
    // A system reset forgets the negotiation.
    device.systemReset();
    expect(device.lastNegotiatedFeatures).toBe(0n);
  });

  test('without PERSISTENT_SUSPEND the QEMU 7.2 profile unplugs everything on wake-up, discarding contents', () => {
    const device = plugged(QEMU_PROFILE);
    negotiate(device, V1);
    expect(device.suspend().persistent).toBe(false);
    expect(device.wake()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([]);
    expect(device.readConfig().plugged_size).toBe(0n);
    expect(device.contentBytes).toBe(0);
  });

  test.each([
    ['spec', SPEC_PROFILE],
    ['cloud-hypervisor', CLOUD_HYPERVISOR_PROFILE],
    ['firecracker', FIRECRACKER_PROFILE],
  ] as const)('without PERSISTENT_SUSPEND the %s profile keeps blocks and contents on wake-up', (_name, profile) => {
    const device = plugged(profile);
    expect(device.suspend().persistent).toBe(false);
    expect(device.wake()).toEqual([]);
    expect(device.pluggedRuns()).toEqual([{ first: 2, count: 3 }]);
    expect(device.readMemory(BASE + 2n * BS + 5n, 3)).toEqual({ ok: true, data: Uint8Array.of(1, 2, 3) });
  });

  test('refuses to be suspended twice or woken without a suspend', () => {
    const device = makeDevice();
    expect(() => device.wake()).toThrow(DeviceUsageError);
    device.suspend();
    expect(() => device.suspend()).toThrow(DeviceUsageError);
    device.systemReset();
    expect(device.suspended).toBe(false);
  });

  describe('checkTransition across suspend and wake-up', () => {
    const base = makeDevice({ plugged: [{ first: 2, count: 3 }] });
    const before: DeviceSnapshot = base.snapshot(true);
    const unplugged: DeviceSnapshot = { config: { ...before.config, plugged_size: 0n }, pluggedBlocks: 0, pluggedEnd: 0, blocksDigest: '', contentDigest: 'x' };

    test('dev.op.8: a persistent wake-up that changes block states is a MUST violation', () => {
      const violations = checkTransition(before, unplugged, 'wake', false, { persistentSuspend: true });
      expect(violations).toEqual([expect.objectContaining({ invariant: 'blocks-unchanged-by-persistent-suspend', requirements: ['dev.op.8'], severity: 'must' })]);
      expect(checkTransition(before, unplugged, 'suspend', false, { persistentSuspend: true }).map((v) => v.requirements)).toEqual([['dev.op.8']]);
    });

    test('dev.op.8: without block digests a changed plugged_size is enough', () => {
      const violations = checkTransition({ config: before.config }, { config: unplugged.config }, 'wake', false, { persistentSuspend: true });
      expect(violations.map((v) => v.requirements)).toEqual([['dev.op.8']]);
    });

    test('a wake-up without PERSISTENT_SUSPEND may unplug everything and shrink usable_region_size (judged like a system reset)', () => {
      const shrunk = { ...unplugged, config: { ...unplugged.config, usable_region_size: 0n, requested_size: 0n } };
      expect(checkTransition(before, shrunk, 'wake', false)).toEqual([]);
      expect(checkTransition(before, shrunk, 'wake', false, { persistentSuspend: true }).map((v) => v.invariant)).toEqual(
        expect.arrayContaining(['usable-shrinks-only-on-unplug-all-or-system-reset', 'blocks-unchanged-by-persistent-suspend']),
      );
    });

    test('dev.op.3 dev.init.3: contents of blocks that stay plugged must not change across a wake-up or a device reset', () => {
      const rewritten = { ...before, contentDigest: `${before.contentDigest}-changed` };
      expect(checkTransition(before, rewritten, 'wake', false)).toEqual([expect.objectContaining({ invariant: 'plugged-contents-unchanged', requirements: ['dev.op.3'], severity: 'must' })]);
      expect(checkTransition(before, rewritten, 'device-reset', false)).toEqual([expect.objectContaining({ invariant: 'contents-unchanged-by-device-reset', requirements: ['dev.init.3'] })]);
      expect(checkTransition(before, before, 'wake', false, { persistentSuspend: true })).toEqual([]);
    });
  });

  describe('dev.init.4 checkPersistentSuspendOffer', () => {
    test('dev.init.4: a platform that can suspend with plugged blocks should have PERSISTENT_SUSPEND offered', () => {
      expect(checkPersistentSuspendOffer(V1, true)).toEqual(expect.objectContaining({ invariant: 'persistent-suspend-offered', requirements: ['dev.init.4'], severity: 'should' }));
      expect(checkPersistentSuspendOffer(V1 | PS, true)).toBeNull();
      expect(checkPersistentSuspendOffer(V1, false)).toBeNull();
      expect(checkPersistentSuspendOffer(V1 | PS, false)).toBeNull();
    });

    test.each(Object.entries(DEVICE_PROFILES))('dev.init.4: the %s profile is consistent with its platform', (_name, profile) => {
      expect(checkPersistentSuspendOffer(profile.defaultFeatures, profile.platformCanSuspend)).toBeNull();
    });
  });
});
