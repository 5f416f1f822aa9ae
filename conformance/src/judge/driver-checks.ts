/**
 * The checks a driver run applies to everything a driver does, at the spec's level (MUST → fail,
 * SHOULD → non-strict), as pure functions of the configuration, the runner's shadow of the
 * device's blocks and the driver's event. The shadow is updated separately, with
 * {@link applyDriverRequest}, from what the device answered.
 */
import type { DeviceSetup, DriverEvent, DriverExchange } from '../../../adapters/core/src/contract';
import {
  REQUEST_TYPE_NAMES,
  RESPONSE_CODE_NAMES,
  requestTypeName,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  formatHex,
} from '../../../spec/src/index';
import {
  BlockBitmap,
  VirtioMemConfig,
  VirtioMemRequest,
  decodeConfig,
  decodeRequest,
  decodeResponse,
} from '../../../model/src/index';
import type { Finding } from './verdicts';

/** What the runner knows of the device's blocks and of the driver's progress. */
export interface DriverShadow {
  /** Blocks the device holds as plugged, as the driver's acknowledged requests left them. */
  readonly blocks: BlockBitmap;
  /** Whether memory was plugged when the driver (last) started. */
  pluggedAtStart: boolean;
  /** Whether the driver has sent a request since it (last) started. */
  firstRequestSeen: boolean;
}

/** The shadow of a freshly built device. */
export function newDriverShadow(setup: DeviceSetup): DriverShadow {
  const blocks = new BlockBitmap(Number(setup.region_size / setup.block_size));
  for (const r of setup.plugged) blocks.setRange(r.first, r.count);
  return { blocks, pluggedAtStart: setup.plugged.length > 0, firstRequestSeen: false };
}

/**
 * The blocks a PLUG or UNPLUG addresses, or undefined when the range is unaligned, empty or
 * reaches outside the usable region (the same range rules the model device applies).
 */
export function blocksOfRequest(
  c: VirtioMemConfig,
  r: Pick<VirtioMemRequest, 'addr' | 'nb_blocks'>,
): { readonly first: number; readonly count: number } | undefined {
  const end = r.addr + BigInt(r.nb_blocks) * c.block_size;
  const valid =
    r.addr % c.block_size === 0n && r.nb_blocks > 0 && r.addr >= c.addr && end <= c.addr + c.usable_region_size;
  return valid ? { first: Number((r.addr - c.addr) / c.block_size), count: r.nb_blocks } : undefined;
}

/** The configuration a request was processed under: the one the adapter recorded, else `current`. */
function configOf(exchange: DriverExchange, current: VirtioMemConfig): VirtioMemConfig {
  const recorded = exchange.config ? decodeConfig(exchange.config) : undefined;
  return recorded && recorded.ok ? recorded.value : current;
}

function wellFormed(exchange: DriverExchange): VirtioMemRequest | undefined {
  const decoded = decodeRequest(exchange.request);
  return decoded.ok && requestTypeName(decoded.value.type) !== undefined ? decoded.value : undefined;
}

function acknowledged(exchange: DriverExchange): boolean {
  const response = exchange.response ? decodeResponse(exchange.response) : undefined;
  return response !== undefined && response.ok && response.value.type === VIRTIO_MEM_RESP_ACK;
}

/**
 * Checks one request a driver sent (drv.op.9, drv.init.2) against the shadow as it stood before
 * the request. `current` is the configuration the runner last read.
 */
export function checkDriverRequest(
  current: VirtioMemConfig,
  shadow: DriverShadow,
  exchange: DriverExchange,
  step: number,
): Finding[] {
  const r = wellFormed(exchange);
  if (!r)
    return [
      {
        verdict: 'fail',
        step,
        check: 'driver:request-well-formed',
        message: 'the driver sent a request that is not a valid virtio-mem request',
        requirements: ['drv.op.9'],
      },
    ];
  const c = configOf(exchange, current);
  const typeName = REQUEST_TYPE_NAMES[r.type];
  const findings: Finding[] = [];
  if (
    !shadow.firstRequestSeen &&
    shadow.pluggedAtStart &&
    r.type !== VIRTIO_MEM_REQ_UNPLUG_ALL &&
    typeName !== 'STATE'
  ) {
    findings.push({
      verdict: 'non-strict',
      step,
      check: 'driver:init-unplug-all',
      message: `memory was plugged at start but the driver's first request was ${typeName}, not UNPLUG_ALL or STATE`,
      requirements: ['drv.init.2'],
    });
  }
  if (r.type === VIRTIO_MEM_REQ_UNPLUG_ALL) return findings;
  const blocks = blocksOfRequest(c, r);
  if (!blocks) {
    findings.push({
      verdict: 'non-strict',
      step,
      check: 'driver:request-within-usable',
      message: `${typeName} addr ${formatHex(r.addr)} nb_blocks ${r.nb_blocks} is unaligned, empty or outside the usable region [${formatHex(c.addr)}, ${formatHex(c.addr + c.usable_region_size)})`,
      requirements: ['drv.op.9'],
    });
    return findings;
  }
  const plugged = shadow.blocks.countRange(blocks.first, blocks.count);
  if (r.type === VIRTIO_MEM_REQ_PLUG) {
    if (plugged > 0)
      findings.push({
        verdict: 'non-strict',
        step,
        check: 'driver:plug-state',
        message: `PLUG of ${r.nb_blocks} blocks at ${formatHex(r.addr)} covers ${plugged} plugged blocks`,
        requirements: ['drv.op.9'],
      });
    const after = BigInt(shadow.blocks.count + r.nb_blocks - plugged) * c.block_size;
    if (after > c.requested_size) {
      findings.push({
        verdict: 'non-strict',
        step,
        check: 'driver:plug-beyond-requested',
        message: `PLUG would take plugged_size to ${formatHex(after)}, beyond requested_size ${formatHex(c.requested_size)}`,
        requirements: ['drv.op.9'],
      });
    }
  } else if (r.type === VIRTIO_MEM_REQ_UNPLUG && plugged < r.nb_blocks) {
    findings.push({
      verdict: 'non-strict',
      step,
      check: 'driver:unplug-state',
      message: `UNPLUG of ${r.nb_blocks} blocks at ${formatHex(r.addr)} covers ${r.nb_blocks - plugged} unplugged blocks`,
      requirements: ['drv.op.9'],
    });
  }
  return findings;
}

/** Updates the shadow with a request the driver sent and what the device answered. */
export function applyDriverRequest(current: VirtioMemConfig, shadow: DriverShadow, exchange: DriverExchange): void {
  const r = wellFormed(exchange);
  if (!r) return;
  shadow.firstRequestSeen = true;
  if (!acknowledged(exchange)) return;
  if (r.type === VIRTIO_MEM_REQ_UNPLUG_ALL) {
    shadow.blocks.clearAll();
    return;
  }
  const blocks = blocksOfRequest(configOf(exchange, current), r);
  if (!blocks) return;
  if (r.type === VIRTIO_MEM_REQ_PLUG) shadow.blocks.setRange(blocks.first, blocks.count);
  else if (r.type === VIRTIO_MEM_REQ_UNPLUG) shadow.blocks.clearRange(blocks.first, blocks.count);
}

/** Checks a memory write of the driver: only plugged memory may be written (drv.op.1). */
export function checkDriverWrite(
  c: VirtioMemConfig,
  shadow: DriverShadow,
  ev: Extract<DriverEvent, { kind: 'memory-write' }>,
  step: number,
): Finding[] {
  const start = ev.addr - c.addr;
  const endExclusive = start + BigInt(ev.length);
  const outside = start < 0n || endExclusive > c.region_size;
  const first = outside ? 0 : Number(start / c.block_size);
  const last = outside ? 0 : Number((endExclusive - 1n) / c.block_size);
  if (outside || shadow.blocks.countRange(first, last - first + 1) !== last - first + 1) {
    return [
      {
        verdict: 'fail',
        step,
        check: 'driver:write-unplugged',
        message: `the driver wrote ${ev.length} bytes at ${formatHex(ev.addr)}, which is not plugged memory`,
        requirements: ['drv.op.1'],
      },
    ];
  }
  return [];
}

/** A configuration write of the driver: the driver must not write the configuration (drv.cfg.1). */
export function checkDriverConfigWrite(ev: Extract<DriverEvent, { kind: 'config-write' }>, step: number): Finding[] {
  return [
    {
      verdict: 'fail',
      step,
      check: 'driver:config-write',
      message: `the driver wrote ${ev.length} bytes at config offset ${ev.offset}`,
      requirements: ['drv.cfg.1'],
    },
  ];
}

// ------------------------------------------------------------------ retries (timing-free rules)

/** What the retry rules see of one request of a settle. */
interface RetryView {
  /** Request type name (`PLUG`, …), or undefined for a malformed request. */
  readonly type?: string;
  /** Response type name (`ACK`, `BUSY`, …), or undefined when there was none. */
  readonly response?: string;
  readonly atMs?: number;
  readonly config?: Uint8Array;
}

function retryView(exchange: DriverExchange): RetryView {
  const request = wellFormed(exchange);
  const response = exchange.response ? decodeResponse(exchange.response) : undefined;
  return {
    type: request ? REQUEST_TYPE_NAMES[request.type] : undefined,
    response: response?.ok ? RESPONSE_CODE_NAMES[response.value.type] : undefined,
    atMs: exchange.atMs,
    config: exchange.config,
  };
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b) return true;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The request a driver sent right after a BUSY answer, and how long it let pass before it. */
export interface BusyFollowUp {
  /** 0-based position of the BUSY-answered request among the settle's requests. */
  readonly index: number;
  /** Type of the request answered BUSY. */
  readonly busyType: string;
  /** Type of the request that came next. */
  readonly nextType: string;
  /** Milliseconds between the two, or undefined when the adapter did not time both. */
  readonly gapMs?: number;
  /**
   * Whether the configuration changed between the two (a configuration change legitimately cuts
   * a backoff short: the driver re-plans at once).
   */
  readonly configChanged: boolean;
}

/**
 * Every BUSY answer of one settle that the driver followed with another request in the same
 * settle, with the time between the two (drv.suite.2). A BUSY whose follow-up comes only in a
 * later settle is not measured: the host acted between the two (a resize, an injection).
 */
export function busyFollowUps(exchanges: readonly DriverExchange[]): BusyFollowUp[] {
  const views = exchanges.map(retryView);
  const out: BusyFollowUp[] = [];
  views.forEach((v, i) => {
    const next = views[i + 1];
    if (v.response !== 'BUSY' || !next) return;
    out.push({
      index: i,
      busyType: v.type ?? 'malformed',
      nextType: next.type ?? 'malformed',
      gapMs: v.atMs !== undefined && next.atMs !== undefined ? next.atMs - v.atMs : undefined,
      configChanged: !sameBytes(v.config, next.config),
    });
  });
  return out;
}

/**
 * How many BUSY answers of one settle the driver retried: each BUSY-answered request that a later
 * request of the same type follows in the same settle (drv.suite.1). A driver may re-plan after
 * BUSY (another address or size), so the type is what must come again, not the same bytes.
 */
export function busyRetries(exchanges: readonly DriverExchange[]): { readonly busy: number; readonly retried: number } {
  const views = exchanges.map(retryView);
  let busy = 0;
  let retried = 0;
  views.forEach((v, i) => {
    if (v.response !== 'BUSY') return;
    busy++;
    if (views.slice(i + 1).some((later) => later.type === v.type)) retried++;
  });
  return { busy, retried };
}

/**
 * How many PLUG requests of one settle came after a NACKed PLUG with the configuration unchanged
 * since the NACK (drv.suite.3): a device that denies a plug says so until its configuration
 * changes, so asking again before then only spins.
 */
export function nackedPlugRepeats(exchanges: readonly DriverExchange[]): number {
  const views = exchanges.map(retryView);
  let nackedUnder: Uint8Array | undefined | null = null;
  let repeats = 0;
  for (const v of views) {
    if (v.type !== 'PLUG') continue;
    if (nackedUnder !== null && sameBytes(nackedUnder, v.config)) repeats++;
    nackedUnder = v.response === 'NACK' ? v.config : null;
  }
  return repeats;
}

/**
 * `retry_delay`: after a BUSY answer the driver lets at least `minMs` pass before its next request
 * (drv.suite.2), unless the configuration changed in between (a change cuts a backoff short).
 * Any backoff a driver may choose (1 s, Linux's 50 s, 100 ms doubling) meets a small bound; only
 * a driver that retries at once does not. Gaps the adapter did not time are `unsupported`.
 */
export function checkRetryDelay(minMs: number, exchanges: readonly DriverExchange[], step: number): Finding[] {
  const judged = busyFollowUps(exchanges).filter((f) => !f.configChanged);
  const short = judged.find((f) => f.gapMs !== undefined && f.gapMs < minMs);
  if (short)
    return [
      {
        verdict: 'fail',
        step,
        check: 'retry_delay',
        message: `the driver sent ${short.nextType} ${short.gapMs} ms after a BUSY answer to ${short.busyType} (request ${short.index + 1} of the settle)`,
        expected: `at least ${minMs} ms`,
        observed: `${short.gapMs} ms`,
        requirements: ['drv.suite.2'],
      },
    ];
  if (judged.some((f) => f.gapMs === undefined))
    return [
      {
        verdict: 'unsupported',
        step,
        check: 'retry_delay',
        message: "the adapter does not time the driver's requests, so the delay after a BUSY answer cannot be judged",
        requirements: ['drv.suite.2'],
      },
    ];
  return [];
}
