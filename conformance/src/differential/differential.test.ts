import * as path from 'node:path';
import type { DeviceSetup } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import {
  DescriptorChain,
  DeviceParams,
  DeviceProfile,
  ProcessResult,
  QEMU_PROFILE,
  SPEC_PROFILE,
  VirtioMemDevice,
  encodeRequest,
} from '../../../model/src/index';
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
} from '../../../spec/src/index';
import { runVectors } from '../runner/run';
import { loadVectors } from '../loader/load';
import {
  Mismatch,
  Operation,
  Recorded,
  RecordingAdapter,
  compareSessions,
  compareTranscripts,
  formatMismatch,
  generateOperations,
  seededRandom,
} from './differential';

const MiB = 1n << 20n;
const GiB = 1n << 30n;

/** 512 blocks of 2 MiB at 4 GiB, 64 MiB requested (the set-up the QEMU differential test uses). */
const SMALL_DEVICE: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 1n * GiB,
  addr: 4n * GiB,
  requested_size: 64n * MiB,
  node_id: 0,
  plugged: [],
};

/** The request type: the little-endian u16 at the start of the request. */
function requestType(op: Operation): number | undefined {
  return op.kind === 'request' ? op.bytes[0]! | (op.bytes[1]! << 8) : undefined;
}

/** An operation as text with all of its content (comparing 10 000 operations as objects is slow). */
function text(op: Operation): string {
  if (op.kind === 'request') return `request ${op.label} ${Buffer.from(op.bytes).toString('hex')}`;
  return op.kind === 'resize' ? `resize ${op.size}` : 'reset';
}

describe('seededRandom', () => {
  test('gives the same sequence for the same seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const left = Array.from({ length: 100 }, () => a());
    const right = Array.from({ length: 100 }, () => b());
    expect(left).toEqual(right);
  });

  test('gives different sequences for different seeds', () => {
    const a = seededRandom(1);
    const b = seededRandom(2);
    const left = Array.from({ length: 20 }, () => a());
    const right = Array.from({ length: 20 }, () => b());
    expect(left).not.toEqual(right);
  });

  test('stays in [0, 1) and spreads over the interval', () => {
    const random = seededRandom(7);
    const values = Array.from({ length: 10_000 }, () => random());
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(values.some((v) => v < 0.01)).toBe(true);
    expect(values.some((v) => v > 0.99)).toBe(true);
    expect(new Set(values).size).toBeGreaterThan(9_990);
  });
});

describe('generateOperations', () => {
  const ops = generateOperations(1, 10_000, SMALL_DEVICE);

  test('returns exactly the number of operations asked for', () => {
    expect(ops).toHaveLength(10_000);
    expect(generateOperations(3, 1, SMALL_DEVICE)).toHaveLength(1);
    expect(generateOperations(3, 0, SMALL_DEVICE)).toHaveLength(0);
  });

  test('is the same for the same seed', () => {
    expect(generateOperations(1, 10_000, SMALL_DEVICE).map(text)).toEqual(ops.map(text));
  });

  test('differs for another seed', () => {
    const other = generateOperations(2, 10_000, SMALL_DEVICE).map(text);
    expect(other).toHaveLength(10_000);
    expect(other.filter((t, i) => t !== text(ops[i]!)).length).toBeGreaterThan(5_000);
  });

  test('contains every request type, unknown types, resizes and resets', () => {
    const types = new Set(ops.map(requestType).filter((t) => t !== undefined));
    expect(types).toContain(VIRTIO_MEM_REQ_PLUG);
    expect(types).toContain(VIRTIO_MEM_REQ_UNPLUG);
    expect(types).toContain(VIRTIO_MEM_REQ_UNPLUG_ALL);
    expect(types).toContain(VIRTIO_MEM_REQ_STATE);
    expect([...types].some((t) => t! >= 4)).toBe(true);
    expect(ops.some((op) => op.kind === 'resize')).toBe(true);
    expect(ops.some((op) => op.kind === 'reset')).toBe(true);
  });

  test('every request is 24 bytes', () => {
    const lengths = new Set(ops.flatMap((op) => (op.kind === 'request' ? [op.bytes.length] : [])));
    expect([...lengths]).toEqual([24]);
  });

  test('follows every unknown-type request with a device reset', () => {
    let unknown = 0;
    ops.forEach((op, i) => {
      const type = requestType(op);
      if (type === undefined || type < 4) return;
      unknown++;
      if (i + 1 < ops.length) expect(ops[i + 1]).toEqual({ kind: 'reset' });
    });
    expect(unknown).toBeGreaterThan(0);
  });

  test('resizes to block multiples within the region, and also to refused values', () => {
    const sizes = ops.flatMap((op) => (op.kind === 'resize' ? [op.size] : []));
    const valid = (s: bigint) => s % SMALL_DEVICE.block_size === 0n && s <= SMALL_DEVICE.region_size;
    expect(sizes.some(valid)).toBe(true);
    expect(sizes.some((s) => s % SMALL_DEVICE.block_size !== 0n)).toBe(true);
    expect(sizes.some((s) => s > SMALL_DEVICE.region_size)).toBe(true);
  });

  test('labels requests by type and address', () => {
    const plug = ops.find((op) => requestType(op) === VIRTIO_MEM_REQ_PLUG);
    expect(plug?.kind === 'request' && plug.label).toMatch(/^PLUG 0x[0-9a-f]+ \d+$/);
  });
});

/** A model device that corrupts the response to every UNPLUG request (flips the response type's low byte). */
class CorruptUnplugDevice extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    const first = chain.readable[0];
    const isUnplug =
      first !== undefined && first.length >= 2 && (first[0]! | (first[1]! << 8)) === VIRTIO_MEM_REQ_UNPLUG;
    if (!isUnplug || !result.used) return result;
    const written = Uint8Array.from(result.used.written);
    written[0]! ^= 0xff;
    return { ...result, used: { length: result.used.length, written } };
  }
}

describe('compareSessions', () => {
  const ops = generateOperations(7, 2000, SMALL_DEVICE);

  test('two sessions of the same model profile agree on every operation', async () => {
    const adapter = createModelAdapter({ profile: QEMU_PROFILE });
    const mismatch = await compareSessions(
      await adapter.openDevice(SMALL_DEVICE),
      await adapter.openDevice(SMALL_DEVICE),
      ops,
    );
    expect(mismatch).toBeUndefined();
  });

  test('a broken device differs first at the first operation it answers wrongly', async () => {
    const good = createModelAdapter({ profile: QEMU_PROFILE });
    const broken = createModelAdapter({
      profile: QEMU_PROFILE,
      deviceFactory: (params: DeviceParams, profile: DeviceProfile) => new CorruptUnplugDevice(params, profile),
    });
    const firstUnplug = ops.findIndex((op) => requestType(op) === VIRTIO_MEM_REQ_UNPLUG);
    expect(firstUnplug).toBeGreaterThan(0);

    const mismatch = await compareSessions(
      await good.openDevice(SMALL_DEVICE),
      await broken.openDevice(SMALL_DEVICE),
      ops,
    );
    expect(mismatch).toBeDefined();
    const m = mismatch!;
    expect(m.index).toBe(firstUnplug);
    expect(m.operation).toMatch(/^request UNPLUG /);
    expect(m.left.outcome).not.toBe(m.right.outcome);
    expect(m.left.config).toBe(m.right.config);

    const text = formatMismatch(m, 'a', 'b', 7);
    expect(text).toContain('seed 7');
    expect(text).toContain(`the first ${m.index + 1} operations`);
    expect(text).toContain(`after operation ${m.index}`);
    expect(text).toMatch(/outcome: a used 10 \[[0-9a-f]+\] \/ b used 10 \[[0-9a-f]+\]/);
    expect(text).not.toMatch(/config:/);
  });

  test('devices that offer different features differ at the initial handshake', async () => {
    const qemu = createModelAdapter({ profile: QEMU_PROFILE });
    const spec = createModelAdapter({ profile: SPEC_PROFILE });
    const m = await compareSessions(await qemu.openDevice(SMALL_DEVICE), await spec.openDevice(SMALL_DEVICE), ops);
    expect(m).toBeDefined();
    expect(m!.index).toBe(-1);
    expect(m!.operation).toBe('initial handshake');
  });

  test('profiles with the same features but different usable regions differ at the first operation', async () => {
    const withFeatures: DeviceSetup = { ...SMALL_DEVICE, features: (1n << 32n) | 1n };
    const qemu = createModelAdapter({ profile: QEMU_PROFILE });
    const spec = createModelAdapter({ profile: SPEC_PROFILE });
    const m = await compareSessions(await qemu.openDevice(withFeatures), await spec.openDevice(withFeatures), ops);
    expect(m).toBeDefined();
    expect(m!.index).toBe(0);
    expect(m!.left.config).not.toBe(m!.right.config);
  });
});

describe('formatMismatch', () => {
  const mismatch: Mismatch = {
    index: 4,
    operation: 'resize to 0x0',
    left: { outcome: 'resize applied', config: 'aa', status: 15, notified: true },
    right: { outcome: 'resize applied', config: 'aa', status: 15, notified: false },
  };

  test('lists only the observations that differ', () => {
    expect(formatMismatch(mismatch, 'qemu', 'model')).toBe(
      'qemu and model differ after operation 4 (resize to 0x0)\n  notified: qemu true / model false',
    );
  });

  test('names the seed and the failing prefix when a seed is given', () => {
    expect(formatMismatch(mismatch, 'qemu', 'model', 9).split('\n')[0]).toBe(
      'qemu and model differ after operation 4 (resize to 0x0); seed 9, shortest failing prefix: the first 5 operations',
    );
  });
});

describe('compareTranscripts', () => {
  const a: Recorded[] = [
    { call: 'initialise', result: 'ok' },
    { call: 'submit 00', result: 'used 10 [00]' },
    { call: 'readConfig', result: 'ab' },
  ];

  test('returns undefined for equal transcripts', () => {
    expect(
      compareTranscripts(
        a,
        a.map((r) => ({ ...r })),
      ),
    ).toBeUndefined();
    expect(compareTranscripts([], [])).toBeUndefined();
  });

  test('finds the first entry whose result differs', () => {
    const b = [a[0]!, { call: 'submit 00', result: 'used 10 [01]' }, { call: 'readConfig', result: 'cd' }];
    expect(compareTranscripts(a, b)).toEqual({ index: 1, left: a[1], right: b[1] });
  });

  test('finds the first entry whose call differs', () => {
    const b = [a[0]!, a[1]!, { call: 'readStatus', result: 'ab' }];
    expect(compareTranscripts(a, b)).toEqual({ index: 2, left: a[2], right: b[2] });
  });

  test('reports the end of the shorter transcript when one is a prefix of the other', () => {
    expect(compareTranscripts(a, a.slice(0, 2))).toEqual({ index: 2, left: a[2], right: undefined });
    expect(compareTranscripts([], a)).toEqual({ index: 0, left: undefined, right: a[0] });
  });
});

describe('RecordingAdapter', () => {
  const file = path.resolve(__dirname, '..', '..', 'vectors', 'device', 'plug.yaml');
  const loaded = loadVectors([file]);
  const vector = loaded.vectors.find((v) => v.id === 'vmem.dev.plug.ack-first-block')!;

  test('the plug vectors load without problems', () => {
    expect(loaded.problems).toEqual([]);
    expect(vector).toBeDefined();
  });

  test('records the calls of a vector run: the opening with its set-up, then the handshake', async () => {
    const recorder = new RecordingAdapter(createModelAdapter({ profile: QEMU_PROFILE }));
    recorder.beginVector(vector.id);
    const run = await runVectors(recorder, [vector], loaded.vectors);
    expect(run.results[0]!.verdict).toBe('pass');

    const transcript = recorder.transcripts.get(vector.id)!;
    expect(transcript).toBeDefined();
    expect(transcript[0]!.call).toMatch(/^openDevice \{"block_size":"0x[0-9a-f]+",/);
    expect(transcript[0]!.result).toBe('opened');
    expect(transcript[1]!.call).toBe('initialise');
    expect(transcript[1]!.result).toMatch(/features_ok true/);

    const submits = transcript.filter((r) => r.call.startsWith('submit '));
    expect(submits.length).toBeGreaterThanOrEqual(2);
    const plug = Buffer.from(encodeRequest({ type: VIRTIO_MEM_REQ_PLUG, addr: 4n * GiB, nb_blocks: 1 })).toString(
      'hex',
    );
    expect(submits[0]!.call.startsWith(`submit ${plug}`)).toBe(true);
    // An ACK (type 0) in a 10-byte response.
    expect(submits[0]!.result).toBe('used 10 [00000000000000000000]');
  });

  test('keeps one transcript per vector', async () => {
    const second = loaded.vectors.find((v) => v.id === 'vmem.dev.plug.ack-run-of-blocks')!;
    const recorder = new RecordingAdapter(createModelAdapter({ profile: QEMU_PROFILE }));
    recorder.beginVector(vector.id);
    await runVectors(recorder, [vector], loaded.vectors);
    recorder.beginVector(second.id);
    await runVectors(recorder, [second], loaded.vectors);
    const first = recorder.transcripts.get(vector.id)!;
    const other = recorder.transcripts.get(second.id)!;
    expect(first.filter((r) => r.call.startsWith('submit '))).toHaveLength(2);
    expect(other.filter((r) => r.call.startsWith('submit '))).toHaveLength(4);
    expect(compareTranscripts(first, other)).toBeDefined();
  });

  test('two recordings of the same implementation give equal transcripts', async () => {
    const left = new RecordingAdapter(createModelAdapter({ profile: QEMU_PROFILE }));
    const right = new RecordingAdapter(createModelAdapter({ profile: QEMU_PROFILE }));
    left.beginVector(vector.id);
    right.beginVector(vector.id);
    await runVectors(left, [vector], loaded.vectors);
    await runVectors(right, [vector], loaded.vectors);
    expect(compareTranscripts(left.transcripts.get(vector.id)!, right.transcripts.get(vector.id)!)).toBeUndefined();
  });
});
