import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import type { DeviceSession } from '../../../adapters/core/src/contract';
import { VirtioMemDevice, findDeviceProfile } from '../../../model/src/index';
import { loadVectorText } from '../loader/load';
import type { Vector } from '../loader/types';
import { evaluateSetup } from './setup';
import { runDeviceVector, startsWithoutDriver } from './device-run';

const vectorOf = (steps: string[], setup = ''): Vector => {
  const text = [
    'format: vmemct-vectors/1',
    'vectors:',
    '  - id: vmem.dev.test.observation',
    '    title: what the runner observes in every vector',
    '    requirements: [dev.virtio.6]',
    '    target: device',
    `    setup: {block_size: 2MiB, region_size: 1GiB, addr: 4GiB, requested_size: 64MiB${setup}}`,
    '    steps:',
    ...steps.map((s) => `      - ${s}`),
    '',
  ].join('\n');
  const loaded = loadVectorText('t.yaml', text);
  expect(loaded.problems).toEqual([]);
  return loaded.vectors[0]!;
};

/** Runs `steps` on the model (optionally with a broken device and a wrapped session). */
async function run(
  steps: string[],
  options: {
    device?: new (...a: ConstructorParameters<typeof VirtioMemDevice>) => VirtioMemDevice;
    wrap?: (s: DeviceSession) => DeviceSession;
    configGeneration?: boolean;
    profile?: string;
    setup?: string;
  } = {},
) {
  const vector = vectorOf(steps, options.setup);
  const evaluated = evaluateSetup(vector);
  if (!evaluated.ok) throw new Error(evaluated.reason);
  const Device = options.device;
  const profile = options.profile ? findDeviceProfile(options.profile) : undefined;
  const adapter = createModelAdapter({
    ...(Device ? { deviceFactory: (p, prof) => new Device(p, prof) } : {}),
    ...(profile ? { profile } : {}),
  });
  const opened = await adapter.openDevice(evaluated.setup);
  const session = options.wrap ? options.wrap(opened) : opened;
  return runDeviceVector(vector, session, evaluated.setup, { configGeneration: options.configGeneration });
}

/** A session whose methods are the original's, some replaced. */
function overriding(session: DeviceSession, methods: Partial<DeviceSession>): DeviceSession {
  return Object.assign(Object.create(session) as DeviceSession, methods);
}

class FrozenGeneration extends VirtioMemDevice {
  override get configGeneration(): number {
    return 7;
  }
}

const PLUG = 'request: {type: PLUG, addr: addr, nb_blocks: 1}';

describe('config_generation with every configuration read (dev.virtio.6)', () => {
  test('a change under an unchanged generation is a fail finding, reported once', async () => {
    const findings = await run([PLUG, PLUG.replace('addr: addr', 'addr: addr + block_size')], {
      device: FrozenGeneration,
    });
    expect(findings.filter((f) => f.check === 'config_generation')).toMatchObject([
      { verdict: 'fail', step: 1, requirements: ['dev.virtio.6'] },
    ]);
  });

  test('the model bumps it with every change: no finding', async () => {
    expect(await run([PLUG, 'resize: 128MiB', 'request: {type: UNPLUG_ALL}', 'system_reset: true'])).toEqual([]);
  });

  test('opportunistic: an adapter without the capability is not judged', async () => {
    expect(await run([PLUG], { device: FrozenGeneration, configGeneration: false })).toEqual([]);
  });
});

describe('DEVICE_NEEDS_RESET needs a notification (dev.virtio.1)', () => {
  const malformed = 'request: {type: 9, addr: addr, nb_blocks: 1}';
  test('the model notifies', async () => {
    const findings = await run([malformed]);
    expect(findings.filter((f) => f.check === 'notification.needs_reset')).toEqual([]);
  });

  test('a device whose notifications do not arrive fails', async () => {
    const findings = await run([malformed], { wrap: (s) => overriding(s, { notificationCount: async () => 0 }) });
    expect(findings.filter((f) => f.check === 'notification.needs_reset')).toMatchObject([
      { verdict: 'fail', step: 1, requirements: ['dev.virtio.1'] },
    ]);
  });
});

describe('DEVICE_NEEDS_RESET set during the handshake (dev.virtio.1)', () => {
  // The firecracker profile fails at DRIVER_OK when UNPLUGGED_INACCESSIBLE is offered but not accepted (dev.init.1).
  const failing = {
    profile: 'firecracker',
    setup: ', features: [VERSION_1, UNPLUGGED_INACCESSIBLE], accept: [VERSION_1]',
  };

  test('is announced by the model', async () => {
    const findings = await run(['read_config: true'], failing);
    expect(findings.filter((f) => f.check === 'notification.needs_reset')).toEqual([]);
  });

  test('without a notification it fails at set-up (step 0)', async () => {
    const findings = await run(['read_config: true'], {
      ...failing,
      wrap: (s) => overriding(s, { notificationCount: async () => 0 }),
    });
    expect(findings.filter((f) => f.check === 'notification.needs_reset')).toMatchObject([
      { verdict: 'fail', step: 0, requirements: ['dev.virtio.1'] },
    ]);
  });
});

describe('FEATURES_OK refused during set-up', () => {
  test('is a features_ok finding (SHOULD level for a valid subset), not a harness error', async () => {
    const findings = await run([PLUG], {
      wrap: (s) =>
        overriding(s, {
          initialise: async (accept) => {
            const init = await s.initialise(accept);
            return { ...init, featuresOk: false };
          },
        }),
    });
    expect(findings).toMatchObject([{ verdict: 'non-strict', check: 'features_ok', requirements: ['dev.virtio.2'] }]);
  });
});

describe('device_reset without re-initialisation', () => {
  test('leaves status 0 and no finding; the vector goes on to its initialise step', async () => {
    let status = -1;
    const findings = await run(
      [
        PLUG,
        'device_reset: {reinitialise: false}',
        'read_config: true',
        'initialise: {accept: offered}',
        'request: {type: STATE, addr: addr, nb_blocks: 1}',
      ],
      {
        wrap: (s) =>
          overriding(s, {
            deviceReset: async () => {
              await s.deviceReset!();
              status = await s.readStatus();
            },
          }),
      },
    );
    expect(status).toBe(0);
    expect(findings).toEqual([]);
  });

  test('a device that reads DRIVER_OK again right after the reset fails dev.virtio.4', async () => {
    const findings = await run([PLUG, 'device_reset: true'], {
      wrap: (s) =>
        overriding(s, {
          deviceReset: async () => {
            await s.deviceReset!();
            await s.initialise((offered) => offered);
          },
        }),
    });
    expect(findings).toMatchObject([{ verdict: 'fail', check: 'device_reset.status', requirements: ['dev.virtio.4'] }]);
  });

  test('the runner starts the driver itself unless an initialise step comes before any such reset', () => {
    const steps = (list: string[]) => vectorOf(list).steps;
    expect(startsWithoutDriver(steps(['initialise: {accept: offered}']))).toBe(true);
    expect(startsWithoutDriver(steps(['device_reset: {reinitialise: false}', 'initialise: {accept: offered}']))).toBe(
      false,
    );
    expect(startsWithoutDriver(steps(['device_reset: true', 'initialise: {accept: offered}']))).toBe(true);
    expect(startsWithoutDriver(steps(['read_config: true']))).toBe(false);
  });
});
