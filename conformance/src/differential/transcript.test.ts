import * as path from 'node:path';
import type { DeviceSetup, DriverEvent } from '../../../adapters/core/src/contract';
import { UnsupportedSetupError } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { loadVectors } from '../loader/load';
import { runVectors } from '../runner/run';
import { RecordingAdapter, compareTranscripts, describeDriverEvent } from './transcript';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
const SETUP: DeviceSetup = {
  block_size: 2n * MiB,
  region_size: 1n * GiB,
  addr: 4n * GiB,
  requested_size: 0n,
  node_id: 0,
  plugged: [],
};

describe('describeDriverEvent', () => {
  test('a request with every byte and its time; unknown parts say so', () => {
    const request: DriverEvent = {
      kind: 'request',
      exchange: {
        request: Uint8Array.of(0, 0, 1),
        response: Uint8Array.of(2),
        config: Uint8Array.of(0xab),
        atMs: 50,
      },
    };
    expect(describeDriverEvent(request)).toBe('request [000001] response [02] config [ab] at 50 ms');
    const bare: DriverEvent = { kind: 'request', exchange: { request: Uint8Array.of(1), response: null } };
    expect(describeDriverEvent(bare)).toBe('request [01] response none config unknown at unknown');
  });

  test('memory and configuration writes', () => {
    expect(describeDriverEvent({ kind: 'memory-write', addr: 4n * GiB, length: 4096 })).toBe(
      'memory-write 0x100000000 length 4096',
    );
    expect(describeDriverEvent({ kind: 'config-write', offset: 40, length: 8 })).toBe(
      'config-write offset 40 length 8',
    );
  });
});

describe('RecordingAdapter: driver sessions', () => {
  test('records every call and result in order; a settle is followed by its events', async () => {
    const recorder = new RecordingAdapter(createModelAdapter());
    recorder.beginVector('v');
    const session = await recorder.openDriver!(
      { ...SETUP, requested_size: 4n * MiB },
      { configPadding: Uint8Array.of(1, 2) },
    );
    await session.start();
    await session.settle({ maxRequests: 100, timeoutMs: 60_000 });
    await session.readConfig();
    await session.acceptedFeatures();
    await session.offeredFeatures();
    await session.resize!(0n);
    await session.injectResponses!({ response: 'ACK', count: 2, types: ['UNPLUG'], trailer: Uint8Array.of(7) });
    await session.requestSuspend!();
    await session.systemReset!();
    await session.close();
    const t = recorder.transcripts.get('v')!;
    expect(t.map((r) => r.call)).toEqual([
      expect.stringMatching(/^openDriver \{"block_size":"0x200000",.*"requested_size":"0x400000".* padding \[0102\]$/),
      'start',
      'settle max 100 requests, 60000 ms',
      '  event 0',
      '  event 1',
      'readConfig',
      'acceptedFeatures',
      'offeredFeatures',
      'resize 0x0',
      'injectResponses ACK ×2 types UNPLUG trailer [07]',
      'requestSuspend',
      'systemReset',
    ]);
    expect(t[0]!.result).toBe('opened');
    expect(t[2]!.result).toMatch(/^settled true stop "idle: .*" waited \d+ ms, 2 events$/);
    // One PLUG of the two blocks at 4 GiB answered ACK at virtual time 0, then the driver touches the new memory (one page).
    expect(t[3]!.result).toMatch(
      /^request \[000000000000000000000000010000000200000000000000\] response \[00000000000000000000\] config \[[0-9a-f]{112}\] at 0 ms$/,
    );
    expect(t[4]!.result).toBe('memory-write 0x100000000 length 4096');
    // Accepted: VERSION_1 among them, nothing the device did not offer.
    const [accepted, offered] = [BigInt(t[6]!.result), BigInt(t[7]!.result)];
    expect(accepted & (1n << 32n)).toBe(1n << 32n);
    expect(accepted & ~offered).toBe(0n);
    expect(t[5]!.result).toMatch(/^[0-9a-f]{112}$/);
    expect(t[8]!.result).toBe('applied');
    expect(t[10]!.result).toMatch(/^allowed (true|false): /);
  });

  test('a driver vector run through the recorder: its transcript holds the requests, and two runs agree', async () => {
    const file = path.resolve(__dirname, '..', '..', 'vectors', 'driver', 'converge.yaml');
    const loaded = loadVectors([file]);
    const vector = loaded.vectors.find((v) => v.id === 'vmem.drv.op.grow-to-requested')!;
    const [a, b] = [new RecordingAdapter(createModelAdapter()), new RecordingAdapter(createModelAdapter())];
    for (const r of [a, b]) {
      r.beginVector(vector.id);
      expect((await runVectors(r, [vector], loaded.vectors)).results[0]!.verdict).toBe('pass');
    }
    const t = a.transcripts.get(vector.id)!;
    expect(t.filter((r) => r.call.startsWith('settle '))).toHaveLength(2);
    expect(t.some((r) => r.call === '  event 0' && r.result.startsWith('request [0000'))).toBe(true);
    expect(compareTranscripts(t, b.transcripts.get(vector.id)!)).toBeUndefined();
  });

  test('an adapter without driver sessions gives a recorder without them', () => {
    const model = createModelAdapter();
    const deviceOnly = { info: model.info, openDevice: model.openDevice, dispose: model.dispose };
    expect(new RecordingAdapter(deviceOnly).openDriver).toBeUndefined();
    expect(new RecordingAdapter(model).openDriver).toBeDefined();
  });
});

describe('RecordingAdapter: device sessions', () => {
  test('records config_generation reads, and leaves out what `omit` names (the session then lacks it)', async () => {
    const full = new RecordingAdapter(createModelAdapter());
    full.beginVector('v');
    const session = await full.openDevice(SETUP);
    expect(await session.readConfigGeneration!()).toBe(0);
    expect(full.transcripts.get('v')![1]).toEqual({ call: 'readConfigGeneration', result: '0' });

    const without = new RecordingAdapter(createModelAdapter(), { omit: ['readConfigGeneration', 'resize'] });
    without.beginVector('w');
    const other = await without.openDevice(SETUP);
    expect(other.readConfigGeneration).toBeUndefined();
    expect(other.resize).toBeUndefined();
    expect(other.deviceReset).toBeDefined();
  });

  test('a refused set-up is recorded as the opening that threw; a thrown call is recorded by its error', async () => {
    const recorder = new RecordingAdapter(createModelAdapter());
    recorder.beginVector('v');
    await expect(recorder.openDevice({ ...SETUP, block_size: 0n })).rejects.toBeInstanceOf(UnsupportedSetupError);
    expect(recorder.transcripts.get('v')).toEqual([
      { call: expect.stringMatching(/^openDevice \{"block_size":"0x0",/), result: 'threw UnsupportedSetupError' },
    ]);
    // Suspend refused: the platform of the spec profile cannot suspend without the feature negotiated.
    const session = await recorder.openDevice(SETUP);
    const refused = await session.suspendAndWake!().then(
      () => false,
      () => true,
    );
    expect(recorder.transcripts.get('v')!.at(-1)).toEqual({
      call: 'suspendAndWake',
      result: refused ? 'threw AdapterError' : '',
    });
  });
});
