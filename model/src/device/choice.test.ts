import {
  CLOUD_HYPERVISOR_PROFILE,
  DEVICE_PROFILES,
  DeviceProfile,
  FIRECRACKER_PROFILE,
  QEMU_PROFILE,
  SPEC_PROFILE,
  encodeRequest,
} from '../index';
import { profileAnswer } from './choice';
import type { RequestFacts, RequestKind } from './requests/index';
import { BASE, BS, choiceConforms, makeDevice } from './test/device-fixture';

function facts(kind: RequestKind, failing: readonly ('range' | 'state' | 'budget')[] = []): RequestFacts {
  return {
    kind,
    failed: { range: failing.includes('range'), state: failing.includes('state'), budget: failing.includes('budget') },
    busyAllowed: kind !== 'state',
  };
}

describe('profileAnswer: the profile orders the failed checks, it never re-checks the request', () => {
  test.each([
    ['spec', 'ERROR', SPEC_PROFILE],
    ['qemu', 'ERROR', QEMU_PROFILE],
    ['cloud-hypervisor (budget first)', 'NACK', CLOUD_HYPERVISOR_PROFILE],
    ['firecracker (over budget is ERROR)', 'ERROR', FIRECRACKER_PROFILE],
  ] as const)(
    'dev.plug.3: a PLUG with a bad range that is also over budget — %s answers %s',
    (_name, expected, profile) => {
      expect(profileAnswer(profile, facts('plug', ['range', 'budget']), false)).toBe(expected);
    },
  );

  test('dev.plug.4: a PLUG of plugged blocks that is also over budget — spec answers ERROR, QEMU (budget before state) NACK', () => {
    expect(profileAnswer(SPEC_PROFILE, facts('plug', ['state', 'budget']), false)).toBe('ERROR');
    expect(profileAnswer(QEMU_PROFILE, facts('plug', ['state', 'budget']), false)).toBe('NACK');
  });

  test('a profile that accepts over-budget plugs skips the budget check', () => {
    const accepting: DeviceProfile = { ...SPEC_PROFILE, name: 'accepting', overBudget: 'accept' };
    expect(profileAnswer(accepting, facts('plug', ['budget']), false)).toBe('ACK');
    expect(profileAnswer(accepting, facts('plug', ['budget', 'state']), false)).toBe('ERROR');
  });

  test('UNPLUG and STATE are checked range first, then state, whatever the PLUG order', () => {
    expect(profileAnswer(CLOUD_HYPERVISOR_PROFILE, facts('unplug', ['state']), false)).toBe('ERROR');
    expect(profileAnswer(CLOUD_HYPERVISOR_PROFILE, facts('state', ['range']), false)).toBe('ERROR');
  });

  test('an injected BUSY answers a request that passes every check, except STATE', () => {
    for (const kind of ['plug', 'unplug', 'unplug-all'] as const)
      expect(profileAnswer(SPEC_PROFILE, facts(kind), true)).toBe('BUSY');
    expect(profileAnswer(SPEC_PROFILE, facts('state'), true)).toBe('ACK');
    expect(profileAnswer(SPEC_PROFILE, facts('plug', ['range']), true)).toBe('ERROR');
    expect(profileAnswer(SPEC_PROFILE, facts('plug'), false)).toBe('ACK');
  });
});

describe('the choice comes from the conforming set', () => {
  // Blocks 0..3 and 8 plugged; requested 6 blocks, usable 12 blocks: every check can fail.
  const requests = [0, 1, 2, 3].flatMap((type) =>
    [-1, 0, 2, 4, 7, 11, 12].flatMap((block) => [0, 1, 2, 5].map((nb_blocks) => ({ type, block, nb_blocks }))),
  );

  test.each(Object.entries(DEVICE_PROFILES))(
    'the %s profile answers with a member of the set, or marks its choice nonconforming',
    (_name, profile) => {
      for (const r of requests) {
        const device = makeDevice(
          {
            requested_size: 6n * BS,
            usable_region_size: 12n * BS,
            plugged: [
              { first: 0, count: 4 },
              { first: 8, count: 1 },
            ],
          },
          profile,
        );
        const evaluation = device.evaluate({
          readable: [encodeRequest({ type: r.type, addr: BASE + BigInt(r.block) * BS, nb_blocks: r.nb_blocks })],
          writableSizes: [10],
        });
        expect(choiceConforms(evaluation)).toBe(evaluation.chosen.class !== 'nonconforming');
      }
    },
  );

  test.each([
    ['spec', SPEC_PROFILE],
    ['qemu', QEMU_PROFILE],
  ] as const)('the %s profile always answers within the set', (_name, profile) => {
    for (const r of requests) {
      for (const busy of [0, 1]) {
        const device = makeDevice(
          {
            requested_size: 6n * BS,
            usable_region_size: 12n * BS,
            plugged: [
              { first: 0, count: 4 },
              { first: 8, count: 1 },
            ],
          },
          profile,
        );
        device.injectBusy(busy);
        const evaluation = device.evaluate({
          readable: [encodeRequest({ type: r.type, addr: BASE + BigInt(r.block) * BS, nb_blocks: r.nb_blocks })],
          writableSizes: [10],
        });
        expect(choiceConforms(evaluation)).toBe(true);
      }
    }
  });
});
