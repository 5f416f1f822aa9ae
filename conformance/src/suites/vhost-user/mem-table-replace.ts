/** vu.mem-table-replace: whole memory tables replaced, at the 8-region limit and down to one. */
import { REGION_STRIDE, defineCheck, pass, smallRegion } from './check';

/** vu.mem-table-replace. */
export const memTableReplaceCheck = defineCheck({
  id: 'vu.mem-table-replace',
  title: 'SET_MEM_TABLE with 8 regions, replaced by 8 other regions, then by 1',
  async run(ctx) {
    const { c } = await ctx.open();
    const first = Array.from({ length: 8 }, (_, i) => smallRegion(c, BigInt(i) * REGION_STRIDE));
    await c.setMemTable(first, 'SET_MEM_TABLE (8 regions)');
    const second = Array.from({ length: 8 }, (_, i) => smallRegion(c, 0x1000_0000n + BigInt(i) * REGION_STRIDE));
    await c.setMemTable(second, 'SET_MEM_TABLE (8 other regions)');
    for (const r of first) c.destroyRegion(r);
    const third = [smallRegion(c, 0x2000_0000n)];
    await c.setMemTable(third, 'SET_MEM_TABLE (1 region)');
    for (const r of second) c.destroyRegion(r);
    await c.sync();
    return pass(`tables of 8, 8 other and 1 region${c.acks ? ' acked' : ' taken (no REPLY_ACK)'}`);
  },
});
