import type { DriverExchange, Target } from '../../../adapters/core/src/contract';
import { VirtioMemConfig, VirtioMemRequest, encodeRequest, encodeResponse } from '../../../model/src/index';
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  VIRTIO_MEM_RESP_BUSY,
  VIRTIO_MEM_RESP_NACK,
} from '../../../spec/src/index';
import { loadVectorText } from '../loader/load';
import { formatProblem } from '../loader/types';
import type { Step } from '../loader/types';
import { EXPECTATION_VALUES, ExpectKey, ExpectValue } from './expectations';
import { STEP_KINDS, expectationKeysOf, stepKindsFor } from './registry';
import { StepSchema } from './schema';
import { Checker, DeviceObservation, DriverObservation, proceed } from './step-kind';

const MiB = 1n << 20n;

function config(change: Partial<VirtioMemConfig> = {}): VirtioMemConfig {
  return {
    block_size: 2n * MiB,
    node_id: 0,
    padding: new Uint8Array(6),
    addr: 4n << 30n,
    region_size: 1n << 30n,
    usable_region_size: 1n << 30n,
    plugged_size: 0n,
    requested_size: 0n,
    ...change,
  };
}

/**
 * For every expectation key, a stated value that {@link OBSERVED} contradicts. Typed as a full
 * record, so a new expectation key does not compile until it has a case here.
 */
const CONTRADICTED: { readonly [K in ExpectKey]: ExpectValue<K> } = {
  response: new Map([['NACK', 'pass']]),
  state: new Map([['PLUGGED', 'pass']]),
  config: new Map([['plugged_size', { kind: 'equals', expr: { kind: 'number', value: 12345n }, text: '12345' }]]),
  config_bytes: new Uint8Array(56).fill(0xff),
  notification: new Map([['sent', 'pass']]),
  needs_reset: true,
  resize: new Map([['refused', 'pass']]),
  features_ok: new Map([['refused', 'pass']]),
  access: new Map([['refused', 'pass']]),
  data: new Uint8Array([1, 2]),
  converged: true,
  settled: true,
  first_request: ['PLUG'],
  requests: { max: 0 },
  retry_delay: { minMs: 10 },
  busy_retries: { min: 1 },
  nack_repeats: { max: 0 },
  request_types: { includes: ['STATE'], excludes: [] },
  suspend: new Map([['refused', 'pass']]),
  accepted_features: { includes: 1n, excludes: 0n },
  persistent_suspend: new Map([['accepted', 'pass']]),
};

/** One observation of each target that contradicts every value of {@link CONTRADICTED}. */
const OBSERVED: {
  readonly device: DeviceObservation & Record<string, unknown>;
  readonly driver: DriverObservation & Record<string, unknown>;
} = {
  device: {
    before: config(),
    after: config({ plugged_size: 2n * MiB }),
    notified: false,
    readStatus: async () => 0,
    readRawConfig: async () => new Uint8Array(56),
    // request
    label: 'ACK',
    state: 'UNPLUGGED',
    text: 'ACK(UNPLUGGED)',
    evaluated: false,
    // resize, initialise, memory access
    outcome: 'applied',
    featuresOk: true,
    access: { ok: true, data: new Uint8Array([9, 9]) },
  },
  driver: {
    before: config(),
    configAfter: async () => proceed(config({ plugged_size: 2n * MiB })),
    // start, suspend, settle
    negotiated: 0n,
    allowed: true,
    detail: 'allowed',
    settled: false,
    stop: 'limit',
    requests: ['UNPLUG'],
    // An UNPLUG ALL answered BUSY and never retried, a STATE sent at once after it, then a NACKed PLUG asked again.
    exchanges: [
      exchange({ type: VIRTIO_MEM_REQ_UNPLUG_ALL }, VIRTIO_MEM_RESP_BUSY, 0),
      exchange({ type: VIRTIO_MEM_REQ_STATE, addr: 4n << 30n, nb_blocks: 1 }, VIRTIO_MEM_RESP_ACK, 0),
      exchange({ type: VIRTIO_MEM_REQ_PLUG, addr: 4n << 30n, nb_blocks: 1 }, VIRTIO_MEM_RESP_NACK, 0),
      exchange({ type: VIRTIO_MEM_REQ_PLUG, addr: 4n << 30n, nb_blocks: 1 }, VIRTIO_MEM_RESP_NACK, 0),
    ],
    config: config({ requested_size: 2n * MiB }),
  },
};

function exchange(request: Partial<VirtioMemRequest>, response: number, atMs: number): DriverExchange {
  return { request: encodeRequest(request), response: encodeResponse({ type: response }), atMs };
}

const HANDLED = STEP_KINDS.flatMap((kind) =>
  (['device', 'driver'] as const)
    .filter((t) => kind.targets[t])
    .flatMap((target) => expectationKeysOf(kind, target).map((key) => [kind.key, target, key] as const)),
);

describe('the step-kind registry', () => {
  test('step kinds have unique action kinds and YAML keys; every kind runs on at least one target', () => {
    expect(new Set(STEP_KINDS.map((k) => k.kind)).size).toBe(STEP_KINDS.length);
    expect(new Set(STEP_KINDS.map((k) => k.key)).size).toBe(STEP_KINDS.length);
    for (const kind of STEP_KINDS) expect(Object.keys(kind.targets).length).toBeGreaterThan(0);
  });

  test('the step schema admits exactly the step kinds and the expectation keys some kind reads', () => {
    const properties = Object.keys(StepSchema.properties);
    expect(properties).toEqual([...STEP_KINDS.map((k) => k.key), 'expect', 'note', 'device']);
    const read = new Set(HANDLED.map(([, , key]) => key));
    expect(new Set(Object.keys(StepSchema.properties.expect.properties))).toEqual(read);
    expect(Object.keys(EXPECTATION_VALUES).sort()).toEqual([...read].sort());
  });

  test.each(HANDLED)(
    'every admitted key is read: %s on a %s target, a stated %s the observation contradicts gives a finding',
    async (key, target, expectKey) => {
      const kind = STEP_KINDS.find((k) => k.key === key)!;
      const handler = kind.targets[target as Target]!;
      const checker = (handler.expect as Record<string, Checker<ExpectKey, unknown>>)[expectKey];
      const checked = await checker(CONTRADICTED[expectKey] as never, OBSERVED[target as Target], 7);
      expect(checked.kind).toBe('continue');
      if (checked.kind === 'continue') {
        expect(checked.value.length).toBeGreaterThan(0);
        expect(checked.value.every((f) => f.step === 7 && f.verdict !== 'pass')).toBe(true);
      }
    },
  );

  test('device and driver targets: which kinds each may use', () => {
    const device = stepKindsFor('device').map((k) => k.key);
    const driver = stepKindsFor('driver').map((k) => k.key);
    expect(device).toEqual(
      expect.arrayContaining([
        'request',
        'resize',
        'device_reset',
        'system_reset',
        'read_config',
        'initialise',
        'inject_busy',
        'write_memory',
        'read_memory',
        'suspend',
      ]),
    );
    expect(driver).toEqual(
      expect.arrayContaining(['resize', 'system_reset', 'read_config', 'suspend', 'start', 'settle', 'inject']),
    );
    expect(driver).not.toContain('request');
    expect(device).not.toContain('settle');
  });
});

describe('expectations nothing reads are load errors (issue 14)', () => {
  const PROBES = [
    'format: vmemct-vectors/1',
    'vectors:',
    '  - {id: vmem.dev.probe.a, title: impossible suspend expectation, requirements: [dev.op.8], target: device,',
    '     steps: [{suspend: true, expect: {suspend: refused}}]}',
    '  - {id: vmem.drv.probe.b, title: impossible read_config expectation, requirements: [drv.op.8], target: driver,',
    '     steps: [{start: true}, {read_config: true, expect: {notification: sent, needs_reset: true}}]}',
    '  - {id: vmem.drv.probe.c, title: impossible resize expectation, requirements: [drv.op.8], target: driver,',
    '     steps: [{start: true}, {resize: 64MiB, expect: {resize: refused, notification: none}}]}',
    '',
  ].join('\n');

  test('each silent expectation is refused with file, line and the key', () => {
    const r = loadVectorText('probe.yaml', PROBES);
    expect(r.vectors).toEqual([]);
    expect(r.problems.map(formatProblem)).toEqual([
      "probe.yaml:4: vectors[0].steps[0].expect.suspend: 'suspend' cannot be expected of a 'suspend' step (allowed: config, notification)",
      "probe.yaml:6: vectors[1].steps[1].expect.notification: 'notification' cannot be expected of a 'read_config' step (allowed: config)",
      "probe.yaml:6: vectors[1].steps[1].expect.needs_reset: 'needs_reset' cannot be expected of a 'read_config' step (allowed: config)",
      "probe.yaml:8: vectors[2].steps[1].expect.resize: 'resize' cannot be expected of a 'resize' step (allowed: config)",
      "probe.yaml:8: vectors[2].steps[1].expect.notification: 'notification' cannot be expected of a 'resize' step (allowed: config)",
    ]);
  });

  test('the same keys on the target whose handler reads them load', () => {
    const r = loadVectorText(
      'fine.yaml',
      [
        'format: vmemct-vectors/1',
        'vectors:',
        '  - {id: vmem.drv.probe.d, title: a driver refuses to suspend, requirements: [drv.op.11], target: driver,',
        '     steps: [{start: true}, {suspend: true, expect: {suspend: refused}}]}',
        '  - {id: vmem.dev.probe.e, title: a device publishes a resize, requirements: [dev.op.8], target: device,',
        '     steps: [{resize: 64MiB, expect: {resize: applied, notification: sent}}, {read_config: true, expect: {notification: none, needs_reset: false}}]}',
        '',
      ].join('\n'),
    );
    expect(r.problems).toEqual([]);
    expect(r.vectors.map((v) => v.steps.map((s: Step) => Object.keys(s.expect)))).toEqual([
      [[], ['suspend']],
      [
        ['resize', 'notification'],
        ['notification', 'needsReset'],
      ],
    ]);
  });
});
