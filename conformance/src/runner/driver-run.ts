/**
 * Runs one driver vector against a {@link DriverSession}: scripts the host side (resizes,
 * injected answers, suspend requests) and checks the driver's request stream.
 *
 * Always checked, at the spec's level (MUST → fail, SHOULD → non-strict):
 * - every request is well formed, aligned, inside the usable region and consistent with the
 *   block states the device holds (drv.op.9);
 * - no PLUG takes plugged_size beyond requested_size (drv.op.9);
 * - with memory plugged at start, the first request is UNPLUG ALL or STATE (drv.init.2);
 * - memory writes touch plugged blocks only (drv.op.1); no config writes (drv.cfg.1);
 * - UNPLUGGED_INACCESSIBLE is accepted when offered (drv.init.1);
 * - without PERSISTENT_SUSPEND, no suspend with plugged memory (drv.op.11).
 * What a vector states explicitly (`converged: true`, …) fails when not met.
 */
import type { DeviceSetup, DriverEvent, DriverSession } from '../../../adapters/core/src/contract';
import {
  REQUEST_TYPE_NAMES,
  VIRTIO_MEM_F_PERSISTENT_SUSPEND,
  VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  featureMask,
} from '../../../spec/src/index';
import { BlockBitmap, VirtioMemConfig, decodeConfig, decodeRequest, decodeResponse } from '../../../model/src/index';
import { evaluate, scopeOfConfig } from '../vectors/expr';
import type { Step, Vector } from '../vectors/types';
import { ExpectationChecker, StepAborted, hex } from './checks';
import type { Finding } from './verdicts';

const UI = featureMask(VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
const PS = featureMask(VIRTIO_MEM_F_PERSISTENT_SUSPEND);

/** Default limits of a `settle` step. */
export const DEFAULT_SETTLE = { maxRequests: 100_000, timeoutMs: 3_600_000 };

/** Runs a driver vector; returns its findings. */
export async function runDriverVector(vector: Vector, session: DriverSession, setup: DeviceSetup): Promise<Finding[]> {
  const findings: Finding[] = [];
  const check = new ExpectationChecker(findings);
  const reported = new Set<string>();
  const once = (f: Finding): void => {
    if (reported.has(f.check)) return;
    reported.add(f.check);
    findings.push(f);
  };
  const blocksTotal = Number(setup.region_size / setup.block_size);
  const shadow = new BlockBitmap(blocksTotal);
  for (const r of setup.plugged) shadow.setRange(r.first, r.count);
  let pluggedAtStart = setup.plugged.length > 0;
  let firstRequestSeen = false;
  let config = await readConfig(session);
  let negotiated = 0n;

  const judgeRequest = (step: number, ev: Extract<DriverEvent, { kind: 'request' }>): void => {
    const cfg = ev.exchange.config ? decodeConfig(ev.exchange.config) : undefined;
    const c = cfg && cfg.ok ? cfg.value : config;
    const decoded = decodeRequest(ev.exchange.request);
    if (!decoded.ok || decoded.value.type > 3) {
      once({ verdict: 'fail', step, check: 'driver:request-well-formed', message: 'the driver sent a request that is not a valid virtio-mem request', requirements: ['drv.op.9'] });
      return;
    }
    const r = decoded.value;
    const typeName = REQUEST_TYPE_NAMES[r.type];
    if (!firstRequestSeen) {
      firstRequestSeen = true;
      if (pluggedAtStart && r.type !== VIRTIO_MEM_REQ_UNPLUG_ALL && typeName !== 'STATE') {
        once({ verdict: 'non-strict', step, check: 'driver:init-unplug-all', message: `memory was plugged at start but the driver's first request was ${typeName}, not UNPLUG_ALL or STATE`, requirements: ['drv.init.2'] });
      }
    }
    const response = ev.exchange.response ? decodeResponse(ev.exchange.response) : undefined;
    const acked = response !== undefined && response.ok && response.value.type === VIRTIO_MEM_RESP_ACK;
    if (r.type === VIRTIO_MEM_REQ_UNPLUG_ALL) {
      if (acked) shadow.clearAll();
      return;
    }
    const end = r.addr + BigInt(r.nb_blocks) * c.block_size;
    const valid = r.addr % c.block_size === 0n && r.nb_blocks > 0 && r.addr >= c.addr && end <= c.addr + c.usable_region_size;
    if (!valid) {
      once({
        verdict: 'non-strict',
        step,
        check: 'driver:request-within-usable',
        message: `${typeName} addr ${hex(r.addr)} nb_blocks ${r.nb_blocks} is unaligned, empty or outside the usable region [${hex(c.addr)}, ${hex(c.addr + c.usable_region_size)})`,
        requirements: ['drv.op.9'],
      });
      return;
    }
    const first = Number((r.addr - c.addr) / c.block_size);
    const plugged = shadow.countRange(first, r.nb_blocks);
    if (r.type === VIRTIO_MEM_REQ_PLUG) {
      if (plugged > 0) once({ verdict: 'non-strict', step, check: 'driver:plug-state', message: `PLUG of ${r.nb_blocks} blocks at ${hex(r.addr)} covers ${plugged} plugged blocks`, requirements: ['drv.op.9'] });
      const after = BigInt(shadow.count + r.nb_blocks - plugged) * c.block_size;
      if (after > c.requested_size) {
        once({ verdict: 'non-strict', step, check: 'driver:plug-beyond-requested', message: `PLUG would take plugged_size to ${hex(after)}, beyond requested_size ${hex(c.requested_size)}`, requirements: ['drv.op.9'] });
      }
      if (acked) shadow.setRange(first, r.nb_blocks);
    } else if (r.type === VIRTIO_MEM_REQ_UNPLUG) {
      if (plugged < r.nb_blocks) once({ verdict: 'non-strict', step, check: 'driver:unplug-state', message: `UNPLUG of ${r.nb_blocks} blocks at ${hex(r.addr)} covers ${r.nb_blocks - plugged} unplugged blocks`, requirements: ['drv.op.9'] });
      if (acked) shadow.clearRange(first, r.nb_blocks);
    }
  };

  for (const step of vector.steps) {
    const a = step.action;
    const e = step.expect;
    const configBefore = config;
    try {
      switch (a.kind) {
        case 'start': {
          await session.start();
          negotiated = await session.acceptedFeatures();
          const offered = await session.offeredFeatures();
          if ((offered & UI) !== 0n && (negotiated & UI) === 0n) {
            once({ verdict: 'non-strict', step: step.index, check: 'driver:accept-unplugged-inaccessible', message: 'the device offered UNPLUGGED_INACCESSIBLE and the driver did not accept it', requirements: ['drv.init.1'] });
          }
          if (e.acceptedFeatures) {
            const missing = e.acceptedFeatures.includes & ~negotiated;
            const extra = e.acceptedFeatures.excludes & negotiated;
            if (missing || extra) findings.push({ verdict: 'fail', step: step.index, check: 'accepted_features', message: 'accepted features differ', expected: `includes ${hex(e.acceptedFeatures.includes)}, excludes ${hex(e.acceptedFeatures.excludes)}`, observed: hex(negotiated) });
          }
          break;
        }
        case 'resize': {
          config = await readConfig(session);
          const size = evaluate(a.size, scopeOfConfig(config));
          if (!size.ok) throw new StepAborted(`resize: ${size.reason}`);
          const outcome = await session.resize!(size.value);
          if (outcome.kind === 'refused') throw new StepAborted(`the host refused requested_size ${hex(size.value)}: ${outcome.reason}`);
          break;
        }
        case 'inject':
          await session.injectResponses!({ response: a.response, count: a.count, types: a.types, trailer: a.trailer });
          break;
        case 'system-reset':
          await session.systemReset!();
          firstRequestSeen = false;
          config = await readConfig(session);
          // A reboot starts the driver over; blocks are known again only when the device unplugged them all.
          if (config.plugged_size === 0n) shadow.clearAll();
          pluggedAtStart = config.plugged_size > 0n;
          break;
        case 'suspend': {
          const verdict = await session.requestSuspend!();
          const observed = verdict.allowed ? 'allowed' : 'refused';
          if (e.suspend) check.set(step.index, 'suspend', e.suspend, observed, verdict.detail);
          if (verdict.allowed && (negotiated & PS) === 0n && config.plugged_size > 0n) {
            findings.push({ verdict: 'fail', step: step.index, check: 'driver:suspend', message: 'the driver let the guest suspend with memory plugged although PERSISTENT_SUSPEND was not negotiated', requirements: ['drv.op.11'] });
          }
          break;
        }
        case 'settle': {
          const activity = await session.settle({ maxRequests: a.maxRequests ?? DEFAULT_SETTLE.maxRequests, timeoutMs: a.timeoutMs ?? DEFAULT_SETTLE.timeoutMs });
          const requests: string[] = [];
          for (const ev of activity.events) {
            if (ev.kind === 'request') {
              const d = decodeRequest(ev.exchange.request);
              requests.push(d.ok ? REQUEST_TYPE_NAMES[d.value.type] ?? `type-${d.value.type}` : 'malformed');
              judgeRequest(step.index, ev);
            } else if (ev.kind === 'memory-write') {
              judgeWrite(step, ev, shadow, config, once);
            } else {
              once({ verdict: 'fail', step: step.index, check: 'driver:config-write', message: `the driver wrote ${ev.length} bytes at config offset ${ev.offset}`, requirements: ['drv.cfg.1'] });
            }
          }
          config = await readConfig(session);
          judgeSettle(step, e, activity.settled, activity.stop, requests, config, findings);
          break;
        }
        case 'read-config':
          config = await readConfig(session);
          break;
        default:
          throw new StepAborted(`'${a.kind}' is not a driver step`);
      }
      if (e.config) {
        const after = await readConfig(session);
        check.config(step.index, e.config, configBefore, after);
        config = after;
      }
    } catch (err) {
      if (err instanceof StepAborted) {
        findings.push({ verdict: err.verdict, step: step.index, check: err.check, message: err.message });
        return findings;
      }
      throw err;
    }
  }
  return findings;
}

function judgeWrite(step: Step, ev: Extract<DriverEvent, { kind: 'memory-write' }>, shadow: BlockBitmap, c: VirtioMemConfig, once: (f: Finding) => void): void {
  const start = ev.addr - c.addr;
  const endExclusive = start + BigInt(ev.length);
  const outside = start < 0n || endExclusive > c.region_size;
  const first = outside ? 0 : Number(start / c.block_size);
  const last = outside ? 0 : Number((endExclusive - 1n) / c.block_size);
  if (outside || shadow.countRange(first, last - first + 1) !== last - first + 1) {
    once({ verdict: 'fail', step: step.index, check: 'driver:write-unplugged', message: `the driver wrote ${ev.length} bytes at ${hex(ev.addr)}, which is not plugged memory`, requirements: ['drv.op.1'] });
  }
}

function judgeSettle(step: Step, e: Step['expect'], settled: boolean, stop: string, requests: readonly string[], config: VirtioMemConfig, findings: Finding[]): void {
  const fail = (check: string, message: string, expected?: string, observed?: string, requirements?: string[]): void => {
    findings.push({ verdict: 'fail', step: step.index, check, message, expected, observed, requirements });
  };
  if (e.settled !== undefined && e.settled !== settled) fail('settled', `the driver ${settled ? 'went quiet' : 'did not go quiet'} (${stop})`, String(e.settled), String(settled));
  if (e.converged !== undefined) {
    const converged = config.plugged_size === config.requested_size;
    if (converged !== e.converged) fail('converged', `plugged_size ${hex(config.plugged_size)}, requested_size ${hex(config.requested_size)} (${stop})`, e.converged ? 'plugged_size = requested_size' : 'plugged_size ≠ requested_size', hex(config.plugged_size), ['drv.op.8']);
  }
  if (e.firstRequest) {
    const first = requests[0] ?? 'none';
    if (!e.firstRequest.includes(first)) fail('first_request', 'unexpected first request', e.firstRequest.join(' | '), first);
  }
  if (e.requests) {
    const n = requests.length;
    if ((e.requests.min !== undefined && n < e.requests.min) || (e.requests.max !== undefined && n > e.requests.max)) {
      fail('requests', `the driver sent ${n} requests`, `${e.requests.min ?? 0}..${e.requests.max ?? '∞'}`, String(n));
    }
  }
  if (e.requestTypes) {
    const seen = new Set(requests);
    const missing = e.requestTypes.includes.filter((t) => !seen.has(t));
    const extra = e.requestTypes.excludes.filter((t) => seen.has(t));
    if (missing.length || extra.length) fail('request_types', `request types seen: ${[...seen].join(', ') || 'none'}`, `includes ${e.requestTypes.includes.join(', ') || '-'}; excludes ${e.requestTypes.excludes.join(', ') || '-'}`, [...seen].join(', '));
  }
}

async function readConfig(session: DriverSession): Promise<VirtioMemConfig> {
  const decoded = decodeConfig(await session.readConfig());
  if (!decoded.ok) throw new StepAborted('configuration space unreadable');
  return decoded.value;
}
