/** vu.mem-slots: memory slots added and removed one by one, up to the back-end's limit, then churned. */
import { performance } from 'node:perf_hooks';
import { Request } from '../../../../adapters/vhost-user/src/protocol';
import type { CheckRegion } from './connection';
import { REGION_STRIDE, defineCheck, fail, pass, smallRegion } from './check';

/** ADD_MEM_REG regions at once, at most. */
const MEM_SLOTS_CAP = 256;
/** Add/remove operations of the churn. */
const MEM_SLOT_CHURN_OPS = 500;

/** A deterministic pseudo-random sequence (the churn must be the same on every run). */
function sequence(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
}

/** vu.mem-slots. */
export const memSlotsCheck = defineCheck({
  id: 'vu.mem-slots',
  title: `GET_MAX_MEM_SLOTS ≥ 8; ADD_MEM_REG up to min(max, ${MEM_SLOTS_CAP}) regions, REM_MEM_REG all, ${MEM_SLOT_CHURN_OPS} add/remove ops`,
  needs: ['CONFIGURE_MEM_SLOTS'],
  async run(ctx) {
    const { c } = await ctx.open();
    const max = await c.queryU64(Request.GET_MAX_MEM_SLOTS);
    if (max < 8n) return fail(`GET_MAX_MEM_SLOTS: ${max}, fewer than the 8 regions SET_MEM_TABLE alone carries`);
    const slots = Number(max < BigInt(MEM_SLOTS_CAP) ? max : BigInt(MEM_SLOTS_CAP));
    const started = performance.now();
    const before = c.sent;
    const add = async (slot: number): Promise<CheckRegion> => {
      const r = smallRegion(c, 0x1_0000_0000n + BigInt(slot) * REGION_STRIDE);
      await c.addRegion(r, `ADD_MEM_REG (slot ${slot})`);
      c.closeRegionFd(r);
      return r;
    };
    const remove = async (slot: number, r: CheckRegion): Promise<void> => {
      await c.removeRegion(r, `REM_MEM_REG (slot ${slot})`);
      c.destroyRegion(r);
    };
    const live = new Map<number, CheckRegion>();
    for (let slot = 0; slot < slots; slot++) live.set(slot, await add(slot));
    if (!c.acks) await c.sync(`GET_FEATURES after ${slots} ADD_MEM_REG`);
    // Odd slots first, then even ones: removals from the middle of the table.
    const order = [...live.keys()].sort((a, b) => (b % 2) - (a % 2) || a - b);
    for (const slot of order) {
      await remove(slot, live.get(slot)!);
      live.delete(slot);
    }
    if (!c.acks) await c.sync(`GET_FEATURES after removing all ${slots} regions`);
    const next = sequence(0x5eed);
    let adds = 0;
    let removes = 0;
    for (let op = 0; op < MEM_SLOT_CHURN_OPS; op++) {
      const free = Array.from({ length: slots }, (_, s) => s).filter((s) => !live.has(s));
      const adding = live.size === 0 || (free.length > 0 && next() % 3 !== 0);
      if (adding) {
        const slot = free[next() % free.length]!;
        live.set(slot, await add(slot));
        adds++;
      } else {
        const used = [...live.keys()];
        const slot = used[next() % used.length]!;
        await remove(slot, live.get(slot)!);
        live.delete(slot);
        removes++;
      }
    }
    for (const [slot, r] of live) await remove(slot, r);
    const remaining = live.size;
    live.clear();
    await c.sync();
    const ms = performance.now() - started;
    const messages = c.sent - before;
    return pass(
      `GET_MAX_MEM_SLOTS ${max}; ${slots} regions added (64 KiB each, distinct GPAs) and removed; churn of ${MEM_SLOT_CHURN_OPS} ops (${adds} adds, ${removes} removes), then ${remaining} removed; ${messages} messages${c.acks ? ' each acked' : ''} in ${ms.toFixed(0)} ms`,
    );
  },
});
