import { PassThrough } from 'node:stream';
import { createModelAdapter } from '../../model/src/model-adapter';
import type { DeviceSession, DriverActivity, DriverExchange } from '../../core/src/contract';
import {
  MODEL_DEVICE,
  ReferenceDriver,
  VirtioMemDevice,
  encodeRequest,
  findDeviceProfile,
} from '../../../model/src/index';
import type { DeviceFactory } from '../../../model/src/index';
import { VIRTIO_MEM_REQ_PLUG, VIRTIO_MEM_REQ_STATE, encodeHex, writablePoison } from '../../../spec/src/index';
import { serveHarnessStreams } from './serve';
import { SuiteClient } from '../test/suite-client';
import type { Message } from '../test/suite-client';

const MiB = 1n << 20n;
const BS = 2n * MiB;
const ADDR = 4n << 30n;
/** The set-up as the model adapter takes it, and as the protocol writes it. */
const SETUP = {
  block_size: BS,
  region_size: 64n * BS,
  addr: ADDR,
  requested_size: 8n * BS,
  node_id: 0,
  plugged: [{ first: 2, count: 2 }],
};
const WIRE_SETUP = {
  block_size: '0x200000',
  region_size: '0x8000000',
  addr: '0x100000000',
  requested_size: '0x1000000',
  node_id: 0,
  plugged: [{ first: 2, count: 2 }],
};

const hex = (bytes: Uint8Array): string => encodeHex(bytes);
const u64 = (value: bigint): string => `0x${value.toString(16)}`;

interface Served {
  readonly client: SuiteClient;
  readonly toHarness: PassThrough;
  readonly done: Promise<void>;
  readonly logged: string[];
}

/** The served model on in-memory streams, with the suite's side attached. */
function serve(
  options: { profile?: string; deviceFactory?: DeviceFactory; driverFactory?: () => ReferenceDriver } = {},
): Served {
  const toHarness = new PassThrough();
  const fromHarness = new PassThrough();
  const logged: string[] = [];
  const done = serveHarnessStreams(
    {
      version: '9.9.9',
      profile: options.profile ? findDeviceProfile(options.profile) : undefined,
      deviceFactory: options.deviceFactory,
      driverFactory: options.driverFactory,
      log: (line) => logged.push(line),
    },
    toHarness,
    fromHarness,
  );
  return { client: new SuiteClient(fromHarness, toHarness), toHarness, done, logged };
}

async function opened(options: Parameters<typeof serve>[0] = {}): Promise<Served & { local: DeviceSession }> {
  const served = serve(options);
  await served.client.read();
  expect((await served.client.send('open_device', { setup: WIRE_SETUP })).reply).toEqual({ id: 1, ok: true });
  const profile = options.profile ? findDeviceProfile(options.profile) : undefined;
  const local = await createModelAdapter({ profile, deviceFactory: options.deviceFactory }).openDevice(SETUP);
  return { ...served, local };
}

const plug = (first: number, count: number): Uint8Array =>
  encodeRequest({ type: VIRTIO_MEM_REQ_PLUG, addr: ADDR + BigInt(first) * BS, nb_blocks: count });

describe('serve-harness: hello', () => {
  test('names the protocol, the model and its profile, the package version, every capability for both targets', async () => {
    const { client, toHarness, done } = serve({ profile: 'qemu-7.2' });
    const hello = await client.read();
    const every = expect.arrayContaining(['host-resize', 'device-reset', 'system-reset', 'memory-access', 'suspend']);
    expect(hello).toEqual({
      hello: 'vmemct-harness/1',
      implementation: 'model:qemu-7.2',
      version: '9.9.9',
      targets: { device: every, driver: every },
      timeout_multiplier: 1,
    });
    expect((hello!.targets as { device: string[] }).device).toHaveLength(14);
    toHarness.end();
    await done;
  });
});

describe('serve-harness: the device target answers as the in-process model adapter', () => {
  test('initialise makes one accept call and writes the features the suite answers', async () => {
    const { client, local } = await opened();
    const { reply, calls } = await client.send('initialise', {}, (call) => ({ features: call.offered }));
    const expected = await local.initialise((offered) => offered);
    expect(calls).toEqual([{ call: 'accept', offered: u64(expected.offered) }]);
    expect(reply).toEqual({
      id: 2,
      ok: true,
      offered: u64(expected.offered),
      accepted: u64(expected.accepted),
      features_ok: expected.featuresOk,
      status: expected.status,
    });
    // An unoffered bit: FEATURES_OK does not stick, as on the in-process adapter.
    const refused = await client.send('initialise', {}, () => ({ features: '0x8000000000000000' }));
    const localRefused = await local.initialise(() => 1n << 63n);
    expect(refused.reply).toMatchObject({
      ok: true,
      features_ok: localRefused.featuresOk,
      status: localRefused.status,
    });
    expect(localRefused.featuresOk).toBe(false);
  });

  test('every device op gives the in-process adapter results, byte for byte', async () => {
    const { client, local } = await opened();
    const both = async (op: string, params: Message = {}): Promise<Message> => {
      const { reply } = await client.send(op, params, (call) => ({ features: call.offered }));
      const { id: _id, ...rest } = reply;
      return rest;
    };
    await both('initialise');
    await local.initialise((offered) => offered);
    const config = async () =>
      expect(await both('read_config')).toMatchObject({ config: hex(await local.readConfig()) });
    await config();
    expect(await both('read_config_generation')).toMatchObject({ generation: await local.readConfigGeneration!() });
    expect(await both('read_status')).toMatchObject({ status: await local.readStatus() });
    // A request split over two readable buffers, the response over two writable ones.
    const request = plug(10, 2);
    const chain = { readable: [request.subarray(0, 7), request.subarray(7)], writableSizes: [4, 6] };
    const used = await local.submit(chain);
    if (used.kind !== 'used') throw new Error('no used entry');
    expect(
      await both('submit', {
        readable: chain.readable.map(hex),
        writable: [hex(writablePoison(4)), hex(writablePoison(6, 4))],
      }),
    ).toMatchObject({ ok: true, used: true, length: used.length, written: hex(used.written) });
    await config();
    const state = encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: ADDR, nb_blocks: 64 });
    const stateLocal = await local.submit({ readable: [state], writableSizes: [10] });
    expect(await both('submit', { readable: [hex(state)], writable: [hex(writablePoison(10))] })).toMatchObject({
      used: true,
      written: hex((stateLocal as { written: Uint8Array }).written),
    });
    // Host resize: applied, and refused in the host layer's words.
    expect(await both('resize', { requested_size: u64(16n * BS) })).toEqual({ ok: true, applied: true });
    await local.resize!(16n * BS);
    const odd = await local.resize!(BS + 1n);
    expect(odd.kind).toBe('refused');
    expect(await both('resize', { requested_size: u64(BS + 1n) })).toEqual({
      ok: true,
      applied: false,
      reason: (odd as { reason: string }).reason,
    });
    expect(await both('notification_count')).toMatchObject({ count: await local.notificationCount() });
    await config();
    // Memory: a plugged block reads, an unplugged one is refused as the adapter words it.
    const readOk = await local.readMemory!(ADDR + 2n * BS, 8);
    expect(await both('read_memory', { addr: u64(ADDR + 2n * BS), length: 8 })).toMatchObject({
      data: hex((readOk as { data: Uint8Array }).data),
    });
    expect(await both('write_memory', { addr: u64(ADDR + 2n * BS), data: 'a5a5' })).toEqual({ ok: true });
    await local.writeMemory!(ADDR + 2n * BS, new Uint8Array([0xa5, 0xa5]));
    const far = ADDR + 40n * BS;
    const refusedRead = await local.readMemory!(far, 8);
    const refusedWrite = await local.writeMemory!(far, new Uint8Array(2));
    expect(refusedRead.ok).toBe(false);
    expect(await both('read_memory', { addr: u64(far), length: 8 })).toEqual({
      ok: true,
      refused: (refusedRead as { reason: string }).reason,
    });
    expect(await both('write_memory', { addr: u64(far), data: '0000' })).toEqual({
      ok: true,
      refused: (refusedWrite as { reason: string }).reason,
    });
    expect(await both('read_memory', { addr: u64(ADDR + 2n * BS), length: 2 })).toMatchObject({ data: 'a5a5' });
    // BUSY: injected, and from the host side.
    expect(await both('inject_busy', { count: 1 })).toEqual({ ok: true });
    await local.injectBusy!(1);
    const busyLocal = await local.submit({ readable: [plug(20, 1)], writableSizes: [10] });
    expect(await both('submit', { readable: [hex(plug(20, 1))], writable: [hex(writablePoison(10))] })).toMatchObject({
      written: hex((busyLocal as { written: Uint8Array }).written),
    });
    expect(await both('host_busy', { busy: true })).toEqual({ ok: true });
    await local.hostBusy!(true);
    await both('host_busy', { busy: false });
    await local.hostBusy!(false);
    expect(await both('suspend')).toEqual({ ok: true });
    await local.suspendAndWake!();
    await config();
    expect(await both('device_reset')).toEqual({ ok: true });
    await local.deviceReset!();
    expect(await both('read_status')).toMatchObject({ status: 0 });
    expect(await both('system_reset')).toEqual({ ok: true });
    await local.systemReset!();
    await config();
    expect(await both('close_device')).toEqual({ ok: true });
    expect(await both('read_config')).toEqual({
      ok: false,
      error: 'read_config: no device is open (send open_device first)',
    });
  });

  test('no used entry, and a set-up the model cannot build is unsupported in the model words', async () => {
    const { client, local } = await opened();
    // A chain without a writable buffer gets no used entry.
    expect(await local.submit({ readable: [plug(4, 1)], writableSizes: [] })).toEqual({ kind: 'no-used-entry' });
    expect((await client.send('submit', { readable: [hex(plug(4, 1))], writable: [] })).reply).toEqual({
      id: 2,
      ok: true,
      used: false,
    });
    const outside = { ...WIRE_SETUP, plugged: [{ first: 63, count: 4 }] };
    const { reply } = await client.send('open_device', { setup: outside });
    expect(reply).toMatchObject({ id: 3, ok: false, unsupported: expect.stringMatching(/plugged|region/) });
    await expect(createModelAdapter().openDevice({ ...SETUP, plugged: [{ first: 63, count: 4 }] })).rejects.toThrow(
      reply.unsupported as string,
    );
  });

  test('a refused suspend fails the command with the text the in-process adapter throws', async () => {
    class StuckSuspended extends VirtioMemDevice {
      override get suspended(): boolean {
        return true;
      }
    }
    const factory: DeviceFactory = (params, profile) =>
      Object.setPrototypeOf(MODEL_DEVICE(params, profile), StuckSuspended.prototype) as VirtioMemDevice;
    const { client, local } = await opened({ deviceFactory: factory });
    const thrown = await local.suspendAndWake!().then(
      () => 'no error',
      (e: Error) => e.message,
    );
    expect(thrown).toBe('suspend: the device is already suspended');
    expect((await client.send('suspend')).reply).toEqual({ id: 2, ok: false, error: thrown });
  });
});

/** The suite's side of a driver session: a model device answering the harness's calls. */
function suiteDevice() {
  const device = new VirtioMemDevice({ ...SETUP, plugged: [] });
  let seen = device.notificationCount;
  const changed = (): boolean => {
    const c = device.notificationCount !== seen;
    seen = device.notificationCount;
    return c;
  };
  const requests: { bytes: string; at_ms: unknown }[] = [];
  let busy = 0;
  const answer = (call: Message): Message => {
    switch (call.call) {
      case 'read_config':
        return { config: hex(device.readConfigBytes()), config_changed: changed() };
      case 'request': {
        requests.push({ bytes: call.bytes as string, at_ms: call.at_ms });
        const bytes = Uint8Array.from(Buffer.from(call.bytes as string, 'hex'));
        if (busy > 0) {
          busy--;
          return { response: '02000000000000000000', config_changed: changed() };
        }
        const step = device.processRequest(bytes);
        return { response: step.used ? hex(step.used.written.subarray(0, 10)) : null, config_changed: changed() };
      }
      case 'write_memory': {
        const r = device.writeMemory(BigInt(call.addr as string), new Uint8Array(call.length as number));
        return { ok: r.ok, config_changed: changed() };
      }
    }
    throw new Error(`unexpected call ${String(call.call)}`);
  };
  return { device, answer, requests, busyNext: (n: number) => (busy = n), changed };
}

const exchanges = (activity: DriverActivity) =>
  activity.events
    .filter((e): e is { kind: 'request'; exchange: DriverExchange } => e.kind === 'request')
    .map((e) => ({ bytes: hex(e.exchange.request), at_ms: e.exchange.atMs }));

describe('serve-harness: the driver target runs the reference driver as the in-process model adapter does', () => {
  const localSetup = { ...SETUP, plugged: [] };

  test('start, settles (with a resize between them), may_suspend, reboot', async () => {
    const { client } = serve();
    await client.read();
    const suite = suiteDevice();
    expect((await client.send('open_driver', { setup: { ...WIRE_SETUP, plugged: [] } })).reply).toEqual({
      id: 1,
      ok: true,
    });
    const local = await createModelAdapter().openDriver!(localSetup, {});
    await local.start();
    const offered = suite.device.offeredFeatures;
    const start = await client.send('start', { offered: u64(offered) });
    expect(start.reply).toEqual({ id: 2, ok: true, accepted: u64(await local.acceptedFeatures()) });
    suite.device.writeDriverFeatures(BigInt(start.reply.accepted as string));
    for (const status of [1, 3, 11, 15]) suite.device.writeStatus(status);

    const limits = { max_requests: 100, timeout_ms: 3_600_000 };
    const first = await client.send('settle', { ...limits, config_changed: false }, suite.answer);
    const localFirst = await local.settle({ maxRequests: 100, timeoutMs: 3_600_000 });
    expect(first.reply).toEqual({
      id: 3,
      ok: true,
      settled: localFirst.settled,
      stop: localFirst.stop,
      waited_ms: localFirst.waitedMs,
    });
    expect(suite.requests).toEqual(exchanges(localFirst));
    expect(first.calls.filter((c) => c.call === 'write_memory').length).toBe(
      localFirst.events.filter((e) => e.kind === 'memory-write').length,
    );
    expect(suite.device.readConfig().plugged_size).toBe(8n * BS);

    // A host resize between settles: the suite announces it with config_changed.
    suite.device.setRequestedSize(12n * BS);
    await local.resize!(12n * BS);
    suite.requests.length = 0;
    const second = await client.send('settle', { ...limits, config_changed: suite.changed() }, suite.answer);
    const localSecond = await local.settle({ maxRequests: 100, timeoutMs: 3_600_000 });
    expect(second.reply).toMatchObject({ settled: true, stop: localSecond.stop, waited_ms: localSecond.waitedMs });
    expect(suite.requests).toEqual(exchanges(localSecond));
    expect(suite.device.readConfig().plugged_size).toBe(12n * BS);

    expect((await client.send('may_suspend')).reply).toEqual({
      id: 5,
      ok: true,
      ...renamed(await local.requestSuspend!()),
    });
    // A reboot: a fresh driver, which reads the configuration first after its start.
    expect((await client.send('reboot')).reply).toEqual({ id: 6, ok: true });
    await client.send('start', { offered: u64(offered) });
    const third = await client.send('settle', { ...limits, config_changed: false }, suite.answer);
    expect(third.calls[0]).toEqual({ call: 'read_config' });
    expect((await client.send('close_driver')).reply).toEqual({ id: 9, ok: true });
    expect((await client.send('settle', { ...limits, config_changed: false })).reply).toMatchObject({
      ok: false,
      error: 'settle: no driver is open (send open_driver first)',
    });
  });

  test('request times are the virtual clock: backoffs only, across settles; a cut settle moves it by its limit', async () => {
    const { client } = serve({ driverFactory: () => new ReferenceDriver({ initialBackoffMs: 1000 }) });
    await client.read();
    const suite = suiteDevice();
    await client.send('open_driver', { setup: WIRE_SETUP });
    const start = await client.send('start', { offered: u64(suite.device.offeredFeatures) });
    suite.device.writeDriverFeatures(BigInt(start.reply.accepted as string));
    for (const status of [1, 3, 11, 15]) suite.device.writeStatus(status);
    suite.busyNext(1);
    const cut = await client.send(
      'settle',
      { max_requests: 100, timeout_ms: 400, config_changed: false },
      suite.answer,
    );
    expect(cut.reply).toMatchObject({ settled: false, stop: 'still backing off after 1000 ms (limit 400 ms)' });
    const rest = await client.send(
      'settle',
      { max_requests: 100, timeout_ms: 60_000, config_changed: false },
      suite.answer,
    );
    expect(rest.reply).toMatchObject({ settled: true });
    expect(suite.requests.map((r) => r.at_ms).slice(0, 2)).toEqual([0, 1400]);
  });
});

function renamed(verdict: { allowed: boolean; detail: string }): Message {
  return { allowed: verdict.allowed, detail: verdict.detail };
}

describe('serve-harness: malformed input from the suite never ends the session', () => {
  test('bad lines, unknown ops, wrong fields and commands without a session are answered ok:false with the reason', async () => {
    const { client, toHarness, done, logged } = serve();
    await client.read();
    client.writeLine('nonsense');
    expect(await client.read()).toEqual({ id: null, ok: false, error: expect.stringMatching(/^malformed JSON/) });
    client.writeLine('[1,2]');
    expect(await client.read()).toEqual({ id: null, ok: false, error: expect.stringMatching(/JSON object/) });
    client.writeLine('');
    client.writeLine('{"id":5,"op":"fly"}');
    expect(await client.read()).toEqual({ id: 5, ok: false, error: expect.stringMatching(/'fly'.*not a command/) });
    client.writeLine('{"id":6,"op":"resize","requested_size":12}');
    expect(await client.read()).toEqual({ id: 6, ok: false, error: expect.stringMatching(/requested_size/) });
    client.writeLine('{"id":7,"op":"open_device","setup":{"block_size":"0x200000"}}');
    expect(await client.read()).toEqual({ id: 7, ok: false, error: expect.stringMatching(/region_size/) });
    client.writeLine('{"id":8,"answer":"accept","features":"0x0"}');
    expect(await client.read()).toEqual({ id: 8, ok: false, error: expect.stringMatching(/expected a command/) });
    client.writeLine('{"id":9,"op":"read_status"}');
    expect(await client.read()).toEqual({ id: 9, ok: false, error: expect.stringMatching(/no device is open/) });
    expect(logged.length).toBeGreaterThanOrEqual(6);
    toHarness.end();
    await done;
  });

  test('a malformed answer to a call fails that command; the session goes on', async () => {
    const { client } = serve();
    await client.read();
    await client.send('open_device', { setup: WIRE_SETUP });
    const bad = await client.send('initialise', {}, () => ({ features: 7 }));
    expect(bad.reply).toEqual({
      id: 2,
      ok: false,
      error: expect.stringMatching(/^initialise: answer to accept: field 'features'/),
    });
    const good = await client.send('initialise', {}, (call) => ({ features: call.offered }));
    expect(good.reply).toMatchObject({ ok: true, features_ok: true });
  });

  test('the end of the input ends the session, also while a call waits for its answer; shutdown is answered', async () => {
    const a = serve();
    await a.client.read();
    expect((await a.client.send('shutdown')).reply).toEqual({ id: 1, ok: true });
    a.toHarness.end();
    await a.done;
    const b = serve();
    await b.client.read();
    await b.client.send('open_device', { setup: WIRE_SETUP });
    b.client.writeLine('{"id":2,"op":"initialise"}');
    expect(await b.client.read()).toMatchObject({ call: 'accept' });
    b.toHarness.end();
    await b.done;
  });
});
