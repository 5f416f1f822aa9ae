import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  VIRTIO_MEM_RESP_BUSY,
  VIRTIO_MEM_RESP_NACK,
} from '../../../spec/src/index';
import { VirtioMemConfig, encodeConfig, encodeRequest, encodeResponse } from '../../../model/src/index';
import type { DriverExchange } from '../../../adapters/core/src/contract';
import {
  applyDriverRequest,
  blocksOfRequest,
  busyFollowUps,
  busyRetries,
  checkDriverRequest,
  checkRetryDelay,
  checkDriverWrite,
  nackedPlugRepeats,
  newDriverShadow,
} from './driver-checks';

const MiB = 1n << 20n;
const BLOCK = 2n * MiB;
const ADDR = 4n << 30n;
const CONFIG: VirtioMemConfig = {
  block_size: BLOCK,
  node_id: 0,
  padding: new Uint8Array(6),
  addr: ADDR,
  region_size: 16n * BLOCK,
  usable_region_size: 8n * BLOCK,
  plugged_size: 0n,
  requested_size: 4n * BLOCK,
};
const SETUP = {
  block_size: BLOCK,
  region_size: 16n * BLOCK,
  addr: ADDR,
  requested_size: 4n * BLOCK,
  node_id: 0,
  plugged: [],
};

function exchange(
  type: number,
  block: number,
  nb_blocks: number,
  answer: number | null = VIRTIO_MEM_RESP_ACK,
  config?: Partial<VirtioMemConfig>,
): DriverExchange {
  return {
    request: encodeRequest({ type, addr: ADDR + BigInt(block) * BLOCK, nb_blocks }),
    response: answer === null ? null : encodeResponse({ type: answer }),
    config: config ? encodeConfig({ ...CONFIG, ...config }) : undefined,
  };
}

const checks = (findings: { check: string; verdict: string }[]): string[] =>
  findings.map((f) => `${f.verdict} ${f.check}`);

describe('driver-checks (drv.op.9, drv.init.2, drv.op.1)', () => {
  test('blocksOfRequest: the blocks of an aligned range inside the usable region, else nothing', () => {
    expect(blocksOfRequest(CONFIG, { addr: ADDR + BLOCK, nb_blocks: 2 })).toEqual({ first: 1, count: 2 });
    expect(blocksOfRequest(CONFIG, { addr: ADDR + 1n, nb_blocks: 1 })).toBeUndefined();
    expect(blocksOfRequest(CONFIG, { addr: ADDR, nb_blocks: 0 })).toBeUndefined();
    expect(blocksOfRequest(CONFIG, { addr: ADDR + 7n * BLOCK, nb_blocks: 2 })).toBeUndefined();
  });

  test.each([
    ['a well-formed PLUG within requested_size', exchange(VIRTIO_MEM_REQ_PLUG, 0, 2), []],
    ['a request of an unknown type', exchange(9, 0, 1), ['fail driver:request-well-formed']],
    ['a truncated request', { request: new Uint8Array(4), response: null }, ['fail driver:request-well-formed']],
    [
      'a PLUG outside the usable region',
      exchange(VIRTIO_MEM_REQ_PLUG, 7, 2),
      ['non-strict driver:request-within-usable'],
    ],
    ['a PLUG beyond requested_size', exchange(VIRTIO_MEM_REQ_PLUG, 0, 5), ['non-strict driver:plug-beyond-requested']],
    ['an UNPLUG of unplugged blocks', exchange(VIRTIO_MEM_REQ_UNPLUG, 0, 1), ['non-strict driver:unplug-state']],
    [
      'a PLUG judged by the configuration the adapter recorded',
      exchange(VIRTIO_MEM_REQ_PLUG, 0, 5, VIRTIO_MEM_RESP_ACK, { requested_size: 8n * BLOCK }),
      [],
    ],
  ] as const)('%s', (_name, ex, expected) => {
    expect(checks(checkDriverRequest(CONFIG, newDriverShadow(SETUP), ex, 3))).toEqual(expected);
  });

  test('with memory plugged at start the first request should be UNPLUG_ALL or STATE (drv.init.2)', () => {
    const shadow = newDriverShadow({ ...SETUP, plugged: [{ first: 0, count: 2 }] });
    expect(checks(checkDriverRequest(CONFIG, shadow, exchange(VIRTIO_MEM_REQ_PLUG, 4, 1), 1))).toEqual([
      'non-strict driver:init-unplug-all',
    ]);
    expect(checks(checkDriverRequest(CONFIG, shadow, exchange(VIRTIO_MEM_REQ_STATE, 0, 2), 1))).toEqual([]);
    applyDriverRequest(CONFIG, shadow, exchange(VIRTIO_MEM_REQ_STATE, 0, 2));
    expect(shadow.firstRequestSeen).toBe(true);
    expect(checks(checkDriverRequest(CONFIG, shadow, exchange(VIRTIO_MEM_REQ_PLUG, 0, 1), 1))).toEqual([
      'non-strict driver:plug-state',
    ]);
  });

  test('the shadow follows acknowledged requests only', () => {
    const shadow = newDriverShadow(SETUP);
    applyDriverRequest(CONFIG, shadow, exchange(VIRTIO_MEM_REQ_PLUG, 0, 2, VIRTIO_MEM_RESP_NACK));
    expect(shadow.blocks.count).toBe(0);
    applyDriverRequest(CONFIG, shadow, exchange(VIRTIO_MEM_REQ_PLUG, 0, 2));
    expect(shadow.blocks.count).toBe(2);
    applyDriverRequest(CONFIG, shadow, exchange(VIRTIO_MEM_REQ_UNPLUG, 1, 1, null));
    expect(shadow.blocks.count).toBe(2);
    applyDriverRequest(CONFIG, shadow, exchange(VIRTIO_MEM_REQ_UNPLUG, 1, 1));
    expect(shadow.blocks.count).toBe(1);
    applyDriverRequest(CONFIG, shadow, exchange(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0));
    expect(shadow.blocks.count).toBe(0);
  });

  test('memory writes touch plugged blocks only (drv.op.1)', () => {
    const shadow = newDriverShadow({ ...SETUP, plugged: [{ first: 0, count: 1 }] });
    expect(checkDriverWrite(CONFIG, shadow, { kind: 'memory-write', addr: ADDR + 16n, length: 64 }, 2)).toEqual([]);
    expect(
      checks(checkDriverWrite(CONFIG, shadow, { kind: 'memory-write', addr: ADDR + BLOCK - 8n, length: 16 }, 2)),
    ).toEqual(['fail driver:write-unplugged']);
    expect(checks(checkDriverWrite(CONFIG, shadow, { kind: 'memory-write', addr: ADDR - 8n, length: 4 }, 2))).toEqual([
      'fail driver:write-unplugged',
    ]);
  });
});

describe('retry rules (drv.suite.1, drv.suite.2, drv.suite.3)', () => {
  const at = (e: DriverExchange, atMs?: number): DriverExchange => ({ ...e, atMs });
  const BUSY = VIRTIO_MEM_RESP_BUSY;

  test('busyFollowUps: the gap from each BUSY answer to the next request, and whether the config changed between', () => {
    const stream = [
      at(exchange(VIRTIO_MEM_REQ_PLUG, 0, 4, BUSY, {}), 100),
      at(exchange(VIRTIO_MEM_REQ_PLUG, 0, 4, BUSY, {}), 1100),
      at(exchange(VIRTIO_MEM_REQ_PLUG, 0, 2, BUSY, {}), 1100),
      at(exchange(VIRTIO_MEM_REQ_PLUG, 0, 2, VIRTIO_MEM_RESP_ACK, { requested_size: 2n * BLOCK }), 1100),
    ];
    expect(busyFollowUps(stream)).toEqual([
      { index: 0, busyType: 'PLUG', nextType: 'PLUG', gapMs: 1000, configChanged: false },
      { index: 1, busyType: 'PLUG', nextType: 'PLUG', gapMs: 0, configChanged: false },
      { index: 2, busyType: 'PLUG', nextType: 'PLUG', gapMs: 0, configChanged: true },
    ]);
  });

  test('busyFollowUps: untimed requests give no gap; a BUSY that ends the settle has no follow-up', () => {
    const stream = [exchange(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0, BUSY), exchange(VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0, BUSY)];
    expect(busyFollowUps(stream)).toEqual([
      { index: 0, busyType: 'UNPLUG_ALL', nextType: 'UNPLUG_ALL', gapMs: undefined, configChanged: false },
    ]);
  });

  test('checkRetryDelay: a retry sooner than the bound fails (drv.suite.2); one after a config change is exempt; untimed is unsupported', () => {
    const busyThenRetry = (gapMs: number | undefined, configChange = false): DriverExchange[] => [
      at(exchange(VIRTIO_MEM_REQ_PLUG, 0, 4, BUSY, {}), gapMs === undefined ? undefined : 500),
      at(
        exchange(VIRTIO_MEM_REQ_PLUG, 0, 4, VIRTIO_MEM_RESP_ACK, configChange ? { requested_size: 6n * BLOCK } : {}),
        gapMs === undefined ? undefined : 500 + gapMs,
      ),
    ];
    expect(checkRetryDelay(10, busyThenRetry(50), 3)).toEqual([]);
    expect(checkRetryDelay(10, busyThenRetry(10), 3)).toEqual([]);
    const short = checkRetryDelay(10, busyThenRetry(0), 3);
    expect(short).toMatchObject([{ verdict: 'fail', step: 3, check: 'retry_delay', requirements: ['drv.suite.2'] }]);
    expect(short[0]!.message).toMatch(/PLUG 0 ms after a BUSY answer to PLUG/);
    expect(checkRetryDelay(10, busyThenRetry(0, true), 3)).toEqual([]);
    expect(checkRetryDelay(10, busyThenRetry(undefined), 3)).toMatchObject([
      { verdict: 'unsupported', check: 'retry_delay' },
    ]);
    expect(checkRetryDelay(10, [exchange(VIRTIO_MEM_REQ_PLUG, 0, 4)], 3)).toEqual([]);
  });

  test('busyRetries: a BUSY counts as retried when a later request of the same type follows in the settle', () => {
    expect(
      busyRetries([
        exchange(VIRTIO_MEM_REQ_PLUG, 0, 4, BUSY),
        exchange(VIRTIO_MEM_REQ_STATE, 0, 4),
        exchange(VIRTIO_MEM_REQ_PLUG, 0, 2),
        exchange(VIRTIO_MEM_REQ_UNPLUG, 0, 2, BUSY),
      ]),
    ).toEqual({ busy: 2, retried: 1 });
    expect(busyRetries([exchange(VIRTIO_MEM_REQ_PLUG, 0, 4)])).toEqual({ busy: 0, retried: 0 });
  });

  test('nackedPlugRepeats: PLUGs after a NACKed PLUG count until the configuration changes or a PLUG succeeds', () => {
    const NACK = VIRTIO_MEM_RESP_NACK;
    const ACK = VIRTIO_MEM_RESP_ACK;
    expect(
      nackedPlugRepeats([
        exchange(VIRTIO_MEM_REQ_PLUG, 0, 4, NACK, {}),
        exchange(VIRTIO_MEM_REQ_STATE, 0, 4, ACK, {}),
        exchange(VIRTIO_MEM_REQ_PLUG, 0, 4, NACK, {}),
        exchange(VIRTIO_MEM_REQ_PLUG, 0, 2, NACK, {}),
      ]),
    ).toBe(2);
    expect(
      nackedPlugRepeats([
        exchange(VIRTIO_MEM_REQ_PLUG, 0, 4, NACK, {}),
        exchange(VIRTIO_MEM_REQ_PLUG, 0, 4, ACK, { requested_size: 8n * BLOCK }),
        exchange(VIRTIO_MEM_REQ_PLUG, 4, 4, ACK, { requested_size: 8n * BLOCK }),
      ]),
    ).toBe(0);
  });
});
