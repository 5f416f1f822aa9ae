import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { QemuMemoryDevice } from './memory-device';
import { QmpClient, QmpError, encodeMessage } from './qmp';

describe('encodeMessage', () => {
  test('writes bigints as bare JSON integers, even above 2^53', () => {
    const text = encodeMessage({
      execute: 'qom-set',
      arguments: { path: 'vm0', property: 'requested-size', value: 18446744073709551615n },
    });
    expect(text).toBe(
      '{"execute":"qom-set","arguments":{"path":"vm0","property":"requested-size","value":18446744073709551615}}',
    );
  });

  test('keeps small bigints, zero and negative bigints exact', () => {
    expect(encodeMessage({ a: 0n, b: 9007199254740993n, c: -5n, d: [1n, 2n] })).toBe(
      '{"a":0,"b":9007199254740993,"c":-5,"d":[1,2]}',
    );
  });

  test('leaves strings that contain the text "bigint:" untouched', () => {
    const message = {
      execute: 'human-monitor-command',
      arguments: { 'command-line': 'bigint:123', other: '"bigint:7"' },
    };
    const text = encodeMessage(message);
    expect(JSON.parse(text)).toEqual(message);
  });

  test('encodes ordinary values as JSON.stringify does', () => {
    const message = { execute: 'query-status', id: 'vmemct-1', arguments: { n: 5, flag: true, list: ['x'] } };
    expect(encodeMessage(message)).toBe(JSON.stringify(message));
  });
});

// ------------------------------------------------------------------------------------------------
// QmpClient against a fake QMP server on a unix socket

type Message = Record<string, unknown> & { execute?: string; id?: unknown };

/** Decides what the fake server does with one command; the default answers `{"return": {}}`. */
type Handler = (message: Message, connection: FakeConnection) => void;

interface FakeConnection {
  send(object: unknown): void;
  sendRaw(text: string): void;
  destroy(): void;
}

interface FakeServer {
  readonly socketPath: string;
  /** Raw lines the server received, in order. */
  readonly lines: string[];
  handler: Handler;
  listen(): Promise<void>;
}

const GREETING = { QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: '' }, capabilities: ['oob'] } };

let tempDirs: string[] = [];
let servers: net.Server[] = [];
let serverSockets: net.Socket[] = [];
let clients: QmpClient[] = [];

function answer(message: Message, value: unknown): Record<string, unknown> {
  return { return: value, id: message.id };
}

function fakeServer(): FakeServer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-qmp-test-'));
  tempDirs.push(dir);
  const lines: string[] = [];
  const server = net.createServer((socket) => {
    serverSockets.push(socket);
    socket.setEncoding('utf8');
    const connection: FakeConnection = {
      send: (object) => socket.write(`${JSON.stringify(object)}\n`),
      sendRaw: (text) => socket.write(text),
      destroy: () => socket.destroy(),
    };
    connection.send(GREETING);
    let buffered = '';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        lines.push(line);
        const message = JSON.parse(line) as Message;
        if (message.execute === 'qmp_capabilities') connection.send(answer(message, {}));
        else fake.handler(message, connection);
      }
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  const fake: FakeServer = {
    socketPath: path.join(dir, 'qmp.sock'),
    lines,
    handler: (message, connection) => connection.send(answer(message, {})),
    listen: () => new Promise<void>((resolve) => server.listen(fake.socketPath, resolve)),
  };
  return fake;
}

async function connect(server: FakeServer, timeoutMs = 1000): Promise<QmpClient> {
  const client = await QmpClient.connect(server.socketPath, Date.now() + 2000, timeoutMs);
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const c of clients) c.close();
  for (const s of serverSockets) s.destroy();
  await Promise.all(
    servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))),
  );
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs = [];
  servers = [];
  serverSockets = [];
  clients = [];
});

describe('QmpClient', () => {
  test('connect waits for the greeting and negotiates capabilities first', async () => {
    const server = fakeServer();
    await server.listen();
    await connect(server);
    expect(server.lines).toHaveLength(1);
    expect(JSON.parse(server.lines[0]!)).toEqual({ execute: 'qmp_capabilities', id: expect.any(String) });
  });

  test('connect retries until the socket appears', async () => {
    const server = fakeServer();
    const later = new Promise<void>((resolve) => setTimeout(() => void server.listen().then(resolve), 150));
    const client = connect(server);
    await later;
    await expect(client).resolves.toBeInstanceOf(QmpClient);
  });

  test('connect gives up with a QmpError after the deadline', async () => {
    const server = fakeServer();
    const attempt = QmpClient.connect(server.socketPath, Date.now() + 100, 1000);
    await expect(attempt).rejects.toThrow(QmpError);
    await expect(attempt).rejects.toThrow(/cannot connect to QMP at .*qmp\.sock/);
  });

  test('execute resolves with the return value of the answer', async () => {
    const server = fakeServer();
    server.handler = (m, c) => {
      if (m.execute === 'query-status') c.send(answer(m, { running: false, status: 'prelaunch' }));
    };
    await server.listen();
    const client = await connect(server);
    await expect(client.execute('query-status')).resolves.toEqual({ running: false, status: 'prelaunch' });
  });

  test('execute sends arguments, with bigints as bare integers, and a fresh id per command', async () => {
    const server = fakeServer();
    await server.listen();
    const client = await connect(server);
    await client.execute('qom-set', { path: 'vm0', property: 'requested-size', value: 18446744073709551615n });
    await client.execute('system_reset');
    const sent = server.lines.slice(1);
    expect(sent[0]).toContain('"value":18446744073709551615');
    expect(sent[0]).toContain('"arguments":{"path":"vm0","property":"requested-size"');
    expect(JSON.parse(sent[1]!)).toEqual({ execute: 'system_reset', id: expect.any(String) });
    const ids = server.lines.map((l) => (JSON.parse(l) as Message).id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('answers are matched to commands by id, not by order', async () => {
    const server = fakeServer();
    const held: { m: Message; c: FakeConnection }[] = [];
    server.handler = (m, c) => {
      held.push({ m, c });
      if (held.length === 2) {
        c.send(answer(held[1]!.m, 'second'));
        c.send(answer(held[0]!.m, 'first'));
      }
    };
    await server.listen();
    const client = await connect(server);
    const [a, b] = await Promise.all([client.execute('one'), client.execute('two')]);
    expect(a).toBe('first');
    expect(b).toBe('second');
  });

  test('an error answer rejects with a QmpError carrying the class and the description', async () => {
    const server = fakeServer();
    server.handler = (m, c) =>
      c.send({
        error: { class: 'GenericError', desc: "Property 'requested-size' must be a multiple of 2097152" },
        id: m.id,
      });
    await server.listen();
    const client = await connect(server);
    const failed = client.execute('qom-set', { path: 'vm0', property: 'requested-size', value: 4096n });
    await expect(failed).rejects.toBeInstanceOf(QmpError);
    await expect(failed).rejects.toMatchObject({
      qmpClass: 'GenericError',
      message: "Property 'requested-size' must be a multiple of 2097152",
    });
  });

  test('a command without an answer rejects after the timeout', async () => {
    const server = fakeServer();
    server.handler = () => undefined;
    await server.listen();
    const client = await connect(server, 100);
    await expect(client.execute('stuck')).rejects.toThrow(/QMP 'stuck' did not answer within 100 ms/);
  });

  test('nextEvent returns an event that arrived before the call', async () => {
    const server = fakeServer();
    server.handler = (m, c) => {
      c.send({
        event: 'RESET',
        data: { guest: false, reason: 'host-qmp-system-reset' },
        timestamp: { seconds: 1, microseconds: 2 },
      });
      c.send(answer(m, {}));
    };
    await server.listen();
    const client = await connect(server);
    await client.execute('system_reset');
    await expect(client.nextEvent('RESET', 100)).resolves.toEqual({
      event: 'RESET',
      data: { guest: false, reason: 'host-qmp-system-reset' },
    });
  });

  test('nextEvent waits for an event that arrives after the call', async () => {
    const server = fakeServer();
    server.handler = (m, c) => {
      c.send(answer(m, {}));
      setTimeout(() => c.send({ event: 'RESET', data: { guest: true } }), 30);
    };
    await server.listen();
    const client = await connect(server);
    const event = client.nextEvent('RESET', 1000);
    await client.execute('system_reset');
    await expect(event).resolves.toEqual({ event: 'RESET', data: { guest: true } });
  });

  test('nextEvent takes only events of the requested name, each once', async () => {
    const server = fakeServer();
    server.handler = (m, c) => {
      c.send({ event: 'POWERDOWN' });
      c.send({ event: 'RESET', data: { n: 1 } });
      c.send(answer(m, {}));
    };
    await server.listen();
    const client = await connect(server);
    await client.execute('trigger');
    await expect(client.nextEvent('RESET', 100)).resolves.toEqual({ event: 'RESET', data: { n: 1 } });
    await expect(client.nextEvent('POWERDOWN', 100)).resolves.toEqual({ event: 'POWERDOWN', data: {} });
    await expect(client.nextEvent('RESET', 50)).rejects.toThrow(/no RESET event within 50 ms/);
  });

  test('clearEvents drops events already received', async () => {
    const server = fakeServer();
    server.handler = (m, c) => {
      c.send({ event: 'RESET' });
      c.send(answer(m, {}));
    };
    await server.listen();
    const client = await connect(server);
    await client.execute('system_reset');
    client.clearEvents();
    await expect(client.nextEvent('RESET', 50)).rejects.toThrow(QmpError);
  });

  test('reassembles messages split across chunks and ignores lines that are not JSON', async () => {
    const server = fakeServer();
    server.handler = (m, c) => {
      const text = `not json\n${JSON.stringify(answer(m, { value: 42 }))}\n`;
      c.sendRaw(text.slice(0, 15));
      setTimeout(() => c.sendRaw(text.slice(15)), 20);
    };
    await server.listen();
    const client = await connect(server);
    await expect(client.execute('query')).resolves.toEqual({ value: 42 });
  });

  test('pending commands reject when the server closes the connection, and later ones at once', async () => {
    const server = fakeServer();
    server.handler = (_m, c) => c.destroy();
    await server.listen();
    // A 10 s command timeout: rejecting well before it shows the close, not the timeout, ended the wait.
    const client = await connect(server, 10_000);
    const started = Date.now();
    await expect(client.execute('quit')).rejects.toThrow(/QMP connection closed/);
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(client.execute('query-status')).rejects.toThrow(QmpError);
  });

  test('close rejects pending commands', async () => {
    const server = fakeServer();
    server.handler = () => undefined;
    await server.listen();
    const client = await connect(server);
    const pending = client.execute('stuck');
    client.close();
    await expect(pending).rejects.toThrow(/QMP connection closed/);
  });
});

describe('QemuMemoryDevice', () => {
  const MiB = 1 << 20;
  const entry = (id: string | undefined, size = 0): Record<string, unknown> => ({
    type: 'virtio-mem',
    data: {
      id,
      memaddr: 4 * 1024 * MiB,
      size,
      'max-size': 1024 * MiB,
      'block-size': 2 * MiB,
      'requested-size': 64 * MiB,
      node: 0,
    },
  });
  const dimm = { type: 'dimm', data: { id: 'd0', size: 128 * MiB } };

  /** A fake QMP whose `query-memory-devices` lists `devices`; other commands answer `{}`. */
  async function withDevices(devices: unknown[]): Promise<{ client: QmpClient; server: FakeServer }> {
    const server = fakeServer();
    server.handler = (m, c) => c.send(answer(m, m.execute === 'query-memory-devices' ? devices : {}));
    await server.listen();
    return { client: await connect(server, 200), server };
  }

  test('finds the first virtio-mem device, or the one with the id asked for, with its host view', async () => {
    const { client } = await withDevices([dimm, entry('vm0'), entry('vm1', 8 * MiB)]);
    const first = await QemuMemoryDevice.find(client);
    expect(first.kind === 'found' && first.device.id).toBe('vm0');
    const second = await QemuMemoryDevice.find(client, 'vm1');
    expect(second).toMatchObject({
      kind: 'found',
      view: {
        size: 8n << 20n,
        requestedSize: 64n << 20n,
        blockSize: 2n << 20n,
        maxSize: 1n << 30n,
        memaddr: 4n << 30n,
        node: 0,
      },
    });
  });

  test('says why a device is missing: none at all, no such id, or no id to resize it by', async () => {
    expect(await QemuMemoryDevice.find((await withDevices([dimm])).client)).toEqual({
      kind: 'missing',
      reason: expect.stringMatching(/lists none\); add -device virtio-mem-pci/),
    });
    expect(await QemuMemoryDevice.find((await withDevices([entry('vm0')])).client, 'vm9')).toEqual({
      kind: 'missing',
      reason: "QEMU has no virtio-mem device with id 'vm9' (has: vm0)",
    });
    expect(await QemuMemoryDevice.find((await withDevices([entry(undefined)])).client)).toEqual({
      kind: 'missing',
      reason: expect.stringMatching(/has no id/),
    });
  });

  test('reads its host view by id, and refuses an entry without an integer size', async () => {
    const { client } = await withDevices([
      entry('vm0', 2 * MiB),
      { type: 'virtio-mem', data: { id: 'odd', size: 'big' } },
    ]);
    expect((await new QemuMemoryDevice(client, 'vm0').hostView()).size).toBe(2n << 20n);
    await expect(new QemuMemoryDevice(client, 'odd').hostView()).rejects.toThrow(
      "query-memory-devices gave no integer 'size' for 'odd'",
    );
    await expect(new QemuMemoryDevice(client, 'gone').hostView()).rejects.toThrow(
      "query-memory-devices lists no virtio-mem device 'gone'",
    );
  });

  test('sets requested-size with qom-set on its id, all 64 bits exact', async () => {
    const { client, server } = await withDevices([]);
    await new QemuMemoryDevice(client, 'vm0').setRequestedSize(0xffff_ffff_ffe0_0000n);
    expect(server.lines.pop()).toMatch(
      /^\{"execute":"qom-set","arguments":\{"path":"vm0","property":"requested-size","value":18446744073707454464\},"id":"[^"]+"\}$/,
    );
  });

  test('a system reset waits for the RESET event, and reports a missing one as an outcome', async () => {
    const server = fakeServer();
    let sendEvent = true;
    server.handler = (m, c) => {
      c.send(answer(m, {}));
      if (m.execute === 'system_reset' && sendEvent) c.send({ event: 'RESET', data: { guest: false } });
    };
    await server.listen();
    const device = new QemuMemoryDevice(await connect(server, 100), 'vm0');
    expect(await device.systemReset()).toEqual({ kind: 'reset', event: { event: 'RESET', data: { guest: false } } });
    sendEvent = false;
    expect(await device.systemReset()).toEqual({
      kind: 'no-reset-event',
      error: expect.objectContaining({ message: 'no RESET event within 100 ms' }),
    });
  });
});
