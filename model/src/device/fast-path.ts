/**
 * The fast path of request handling: what the device does with one request, decided without
 * building the graded outcome set and without allocating. For the inner loop of an explorer
 * (`vmemct fuzz`) and the benchmark, which want the device's answer and state, not the reasons.
 *
 * It reaches the same decision as the full path (`chain.ts`, `requests/`, `choice.ts`) from the
 * same facts: the range check of `requests/range.ts`, the state and budget checks of the PLUG and
 * UNPLUG evaluators, the profile's answer from `profileAnswer` and the busy state from
 * `busyAnswers`, and whether that answer is a member of the conforming set the evaluator would
 * have built (a member applies its effect; an answer outside the set is nonconforming and changes
 * nothing). A seeded property test holds the two paths to the same response bytes,
 * configuration, notifications and state on every profile.
 *
 * It covers the usual chain (the request in one readable buffer, a 10-byte writable buffer) of a
 * device whose configuration fits in exact JavaScript numbers; for anything else — an UNPLUG ALL
 * (its effect depends on usable-size policies and may be steered), a region reaching beyond 2^53
 * bytes — {@link decideFastStep} declines and the device takes the full path.
 */
import {
  ResponseCodeName,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_STATE_MIXED,
  VIRTIO_MEM_STATE_PLUGGED,
  VIRTIO_MEM_STATE_UNPLUGGED,
  VirtioMemRequestLayout,
  VirtioMemResponseLayout,
  RESPONSE_CODE_NAMES,
  layoutField,
} from '../../../spec/src/index';
import type { VirtioMemConfig } from '../codec/codec';
import type { BlockBitmap } from '../blocks/bitmap';
import type { DeviceProfile, PlugCheck, ViolationHandling } from './profiles';
import type { RequestFacts, RequestKind } from './requests/index';
import { BusyView, busyAnswers } from './busy';
import { profileAnswer, profileRefusesLayout } from './choice';

/** The used length of a chain the device returned no used entry for (see {@link VirtioMemDevice.processRequestFast}). */
export const NO_USED_ENTRY = -1;

const REQ_SIZE = VirtioMemRequestLayout.size;
const RESP_SIZE = VirtioMemResponseLayout.size;
const TYPE_AT = layoutField(VirtioMemRequestLayout, 'type').offset;
const ADDR_AT = layoutField(VirtioMemRequestLayout, 'addr').offset;
const NB_BLOCKS_AT = layoutField(VirtioMemRequestLayout, 'nb_blocks').offset;
const RESPONSE_TYPE_AT = layoutField(VirtioMemResponseLayout, 'type').offset;
const RESPONSE_STATE_AT = layoutField(VirtioMemResponseLayout, 'state').offset;
/** nb_blocks is a le16: a request covers at most this many blocks. */
const MAX_NB_BLOCKS = 0xffff;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The configuration fields the fast path reads, as numbers. `fits` is false unless every sum
 * and product the fast path forms (addr + nb_blocks × block_size, plugged + nb_blocks ×
 * block_size) stays an exact integer; the device then takes the full path.
 */
export class FastGeometry {
  fits = false;
  blockSize = 0;
  addr = 0;
  /** addr + usable_region_size. */
  usableEnd = 0;
  requestedSize = 0;

  /** Takes the numbers of a new configuration. */
  update(config: VirtioMemConfig): void {
    const reach = config.block_size * BigInt(MAX_NB_BLOCKS + 1);
    const regionEnd = config.addr + config.region_size;
    const usableEnd = config.addr + config.usable_region_size;
    this.fits =
      config.block_size > 0n &&
      config.addr >= 0n &&
      config.usable_region_size >= 0n &&
      config.requested_size <= MAX_SAFE &&
      regionEnd + reach <= MAX_SAFE &&
      usableEnd + reach <= MAX_SAFE;
    if (!this.fits) return;
    this.blockSize = Number(config.block_size);
    this.addr = Number(config.addr);
    this.usableEnd = Number(usableEnd);
    this.requestedSize = Number(config.requested_size);
  }
}

/** What the device does with a request, as the fast path decided it (one instance, reused). */
export class FastStep {
  /** Set for a chain the device cannot process: how it handles it. Unset: it answers `answer`. */
  handling: ViolationHandling | undefined = undefined;
  answer: ResponseCodeName = 'ACK';
  /** The response's state field (STATE's ACK; 0 otherwise). */
  state = 0;
  /** The blocks the answer plugs or unplugs (`effect` 'none': no change). */
  effect: 'none' | 'plug' | 'unplug' = 'none';
  firstBlock = 0;
  count = 0;
  /** The facts handed to `profileAnswer`, reused. */
  readonly facts: { kind: RequestKind; busyAllowed: boolean; failed: Record<PlugCheck, boolean> } = {
    kind: 'plug',
    busyAllowed: true,
    failed: { range: false, state: false, budget: false },
  };

  private violation(handling: ViolationHandling): true {
    this.handling = handling;
    return true;
  }

  private respond(answer: ResponseCodeName, effect: FastStep['effect'], state = 0): true {
    this.handling = undefined;
    this.answer = answer;
    this.effect = effect;
    this.state = state;
    return true;
  }

  /** Sets the facts of a request for `profileAnswer`. */
  private judge(kind: RequestKind, range: boolean, state: boolean, budget: boolean): RequestFacts {
    const facts = this.facts;
    facts.kind = kind;
    facts.busyAllowed = kind !== 'state';
    facts.failed.range = range;
    facts.failed.state = state;
    facts.failed.budget = budget;
    return facts;
  }

  /**
   * Decides what the device does with `request` (the whole readable part of a usual chain).
   * Returns false, deciding nothing, when the fast path does not cover the request or the
   * device; the caller then takes the full path. Changes nothing.
   */
  decide(
    request: Uint8Array,
    geometry: FastGeometry,
    blocks: Pick<BlockBitmap, 'anySet' | 'allSet' | 'fill' | 'count'>,
    profile: DeviceProfile,
    busy: BusyView,
    needsReset: boolean,
  ): boolean {
    if (!geometry.fits) return false;
    // The order of evaluateChain: NEEDS_RESET, a short request, an unknown type, the layout, the request.
    if (needsReset) return this.violation('no-used-entry');
    if (request.length < REQ_SIZE) return this.violation(profile.malformedChain);
    const type = le16(request, TYPE_AT);
    if (type > VIRTIO_MEM_REQ_STATE) return this.violation(profile.unknownType);
    if (type === VIRTIO_MEM_REQ_UNPLUG_ALL) return false;
    if (profileRefusesLayout(profile, request.length)) return this.violation(profile.malformedChain);

    // The range check of requests/range.ts (dev.plug.3, dev.unplug.3, dev.state.3).
    const bs = geometry.blockSize;
    const nb = le16(request, NB_BLOCKS_AT);
    // Exact below 2^53; an addr at or above 2^53 may round, but stays at or above 2^53, beyond usableEnd.
    const addr = le32(request, ADDR_AT + 4) * 2 ** 32 + le32(request, ADDR_AT);
    const rangeValid = addr % bs === 0 && nb !== 0 && addr >= geometry.addr && addr + nb * bs <= geometry.usableEnd;
    const first = rangeValid ? (addr - geometry.addr) / bs : 0;

    if (type === VIRTIO_MEM_REQ_STATE) {
      const answer = profileAnswer(profile, this.judge('state', !rangeValid, false, false), false);
      // The set: ERROR for an invalid range (dev.state.3), else the ACK with the state (dev.state.4–7).
      if (!rangeValid || answer !== 'ACK') return this.respond(answer, 'none');
      const fill = blocks.fill(first, nb);
      const state =
        fill === 'all'
          ? VIRTIO_MEM_STATE_PLUGGED
          : fill === 'none'
            ? VIRTIO_MEM_STATE_UNPLUGGED
            : VIRTIO_MEM_STATE_MIXED;
      return this.respond('ACK', 'none', state);
    }

    const busyNow = busyAnswers(busy, profile, type === VIRTIO_MEM_REQ_PLUG ? 'plug' : 'unplug', blocks.count === 0);
    if (type === VIRTIO_MEM_REQ_UNPLUG) {
      const stateFails = rangeValid && !blocks.allSet(first, nb);
      const answer = profileAnswer(profile, this.judge('unplug', !rangeValid, stateFails, false), busyNow);
      // The set: ERROR and BUSY when a check fails (dev.unplug.3, dev.unplug.4), else ACK and BUSY.
      const acked = answer === 'ACK' && rangeValid && !stateFails;
      return this.setBlocks(this.respond(answer, acked ? 'unplug' : 'none'), first, nb);
    }

    // PLUG (type VIRTIO_MEM_REQ_PLUG): the budget is judged whatever the range.
    const stateFails = rangeValid && blocks.anySet(first, nb);
    const overBudget = blocks.count * bs + nb * bs > geometry.requestedSize;
    const answer = profileAnswer(profile, this.judge('plug', !rangeValid, stateFails, overBudget), busyNow);
    // The set (requests/plug.ts): an ACK only when range and state pass; NACK with the state failing only when over budget too.
    const acked = answer === 'ACK' && rangeValid && !stateFails;
    return this.setBlocks(this.respond(answer, acked ? 'plug' : 'none'), first, nb);
  }

  private setBlocks(decided: true, firstBlock: number, count: number): true {
    this.firstBlock = firstBlock;
    this.count = count;
    return decided;
  }
}

/** Writes a 10-byte response (`type`, zero padding, `state`) at the start of `out`. */
export function writeFastResponse(out: Uint8Array, answer: ResponseCodeName, state: number): number {
  out.fill(0, 0, RESP_SIZE);
  const type = RESPONSE_CODE_NAMES.indexOf(answer);
  out[RESPONSE_TYPE_AT] = type & 0xff;
  out[RESPONSE_TYPE_AT + 1] = type >>> 8;
  out[RESPONSE_STATE_AT] = state & 0xff;
  out[RESPONSE_STATE_AT + 1] = state >>> 8;
  return RESP_SIZE;
}

function le16(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8);
}

function le32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}
