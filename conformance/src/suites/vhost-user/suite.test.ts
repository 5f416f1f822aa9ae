/**
 * The pure parts of the vu.* suite: the check table, how a check's faults become verdicts, and the
 * target's needs (no native helper, no sockets; the checks themselves run in
 * adapters/vhost-user/test/transport.vhost-test.ts against real back-ends).
 */
import { VIRTQ_MAX_SIZE } from '../../../../spec/src/index';
import { ProtocolFeature } from '../../../../adapters/vhost-user/src/protocol';
import { RING_LAYOUT, RING_SIZE, SMALL_REGION_SIZE, defineCheck, fail, pass } from './check';
import { BackendGone, VhostUserConnection, isBackendFault } from './connection';
import { VHOST_USER_SUITE, VhostUserBackendUnderTest, vhostUserCheckTarget } from './index';

/** An error as the front-end throws it (by name, as the suite recognises it). */
function frontEndError(name: 'VhostUserProtocolError' | 'VhostUserTimeoutError', message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

describe('VHOST_USER_SUITE', () => {
  test('should have unique vu.* ids and titles, and need only standard protocol features', () => {
    const ids = VHOST_USER_SUITE.checks.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const c of VHOST_USER_SUITE.checks) {
      expect(c.id).toMatch(/^vu\.[a-z]+(-[a-z]+)*$/);
      expect(c.title.length).toBeGreaterThan(10);
      for (const name of c.needs)
        expect(ProtocolFeature[name as keyof typeof ProtocolFeature]).toBeLessThan(ProtocolFeature.VMEMCT_CONTROL);
    }
  });

  test('should run the agreed checks, in this order', () => {
    expect(VHOST_USER_SUITE.checks.map((c) => c.id)).toEqual([
      'vu.handshake',
      'vu.reply-ack',
      'vu.config',
      'vu.vring-setup',
      'vu.mem-table-replace',
      'vu.mem-slots',
      'vu.rem-unknown-region',
      'vu.backend-channel',
      'vu.fd-hygiene',
      'vu.reconnect',
    ]);
  });
});

describe("the checks' vring", () => {
  test('should place its parts at 0, 0x1000 and 0x2000 and fit a small region', () => {
    expect(RING_SIZE).toBeLessThanOrEqual(VIRTQ_MAX_SIZE);
    expect(RING_LAYOUT).toMatchObject({ desc: 0n, avail: 0x1000n, used: 0x2000n });
    expect(RING_LAYOUT.end).toBeLessThanOrEqual(SMALL_REGION_SIZE);
  });
});

describe('defineCheck', () => {
  const context = {
    socketPath: '/tmp/x.sock',
    connect: () => ({}) as VhostUserConnection,
    open: () => Promise.reject(new Error('unused')),
  };

  test("should return the body's judgement as one finding named by the check", async () => {
    const check = defineCheck({
      id: 'vu.example',
      title: 'an example check',
      async run() {
        return pass('all answered');
      },
    });
    expect(await check.run(context)).toEqual({
      verdict: 'pass',
      findings: [{ verdict: 'pass', step: 0, check: 'vu.example', message: 'all answered' }],
    });
    const failing = defineCheck({
      id: 'vu.example',
      title: 'an example check',
      async run() {
        return fail('GET_FEATURES: reply of 4 bytes');
      },
    });
    expect((await failing.run(context)).verdict).toBe('fail');
  });

  test.each([
    [
      'a protocol violation',
      frontEndError('VhostUserProtocolError', 'SET_OWNER ack: reply flags 0xd, expected 0x5 (version 1 + REPLY)'),
    ],
    ['a reply timeout', frontEndError('VhostUserTimeoutError', 'GET_FEATURES: no reply within 2000 ms')],
    ['a back-end that stopped serving', new BackendGone('cannot connect to /tmp/x.sock: the back-end stopped serving')],
  ])('should fail the check on %s, with its message', async (_, error) => {
    const check = defineCheck({
      id: 'vu.example',
      title: 'an example check',
      async run() {
        throw error;
      },
    });
    expect(await check.run(context)).toEqual({
      verdict: 'fail',
      findings: [{ verdict: 'fail', step: 0, check: 'vu.example', message: error.message }],
    });
  });

  test('should let any other error through (the runner reports it as error: our side failed)', async () => {
    const check = defineCheck({
      id: 'vu.example',
      title: 'an example check',
      async run() {
        throw new Error('memfd_create: EMFILE');
      },
    });
    await expect(check.run(context)).rejects.toThrow('EMFILE');
    expect(isBackendFault(new Error('EMFILE'))).toBe(false);
  });
});

describe('vhostUserCheckTarget', () => {
  const backend = (offeredFeatures: bigint, offeredProtocolFeatures: bigint): VhostUserBackendUnderTest => ({
    socketPath: '/tmp/x.sock',
    implementation: 'fake',
    offeredFeatures,
    offeredProtocolFeatures,
    connect: () => {
      throw Object.assign(new Error('connect: Connection refused'), { code: 'ECONNREFUSED' });
    },
  });
  const check = (id: string) => VHOST_USER_SUITE.checks.find((c) => c.id === id)!;

  test('should refuse a check whose protocol features are not offered, naming them and what is offered', () => {
    const target = vhostUserCheckTarget(backend(1n << 30n, 0b1001n));
    expect(target.info.capabilities).toEqual(['MQ', 'REPLY_ACK']);
    expect(target.open(check('vu.config'))).toEqual({
      kind: 'unsupported',
      reason:
        'the back-end does not offer CONFIG (protocol feature 9); it offers protocol features 0x9 (MQ, REPLY_ACK)',
    });
    expect(target.open(check('vu.reply-ack')).kind).toBe('ready');
  });

  test('should say when the back-end offers no protocol features at all', () => {
    const target = vhostUserCheckTarget(backend(0n, 0n));
    expect(target.open(check('vu.mem-slots'))).toEqual({
      kind: 'unsupported',
      reason:
        'the back-end does not offer protocol features at all (virtio feature bit 30 clear), so not CONFIGURE_MEM_SLOTS (protocol feature 15)',
    });
  });

  test('should turn a refused connection into a back-end fault', () => {
    const opened = vhostUserCheckTarget(backend(1n << 30n, 0n)).open(check('vu.reconnect'));
    if (opened.kind !== 'ready') throw new Error('expected ready');
    expect(() => opened.context.connect()).toThrow(BackendGone);
    opened.close();
  });

  test('should let no connection be opened once the runner closed the check (an abandoned body)', () => {
    let connects = 0;
    const reachable = {
      ...backend(1n << 30n, 0n),
      connect: () => {
        connects++;
        return { close: () => undefined } as never;
      },
    };
    const opened = vhostUserCheckTarget(reachable).open(check('vu.reconnect'));
    if (opened.kind !== 'ready') throw new Error('expected ready');
    opened.context.connect();
    opened.close();
    expect(() => opened.context.connect()).toThrow(/the check was closed/);
    expect(connects).toBe(1);
  });
});
