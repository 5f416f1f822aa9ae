/** vu.vring-setup: a vring set up in shared memory, and its base read back. */
import { FLAG_VERSION, Request, VringStateLayout, decodeStruct } from '../../../../adapters/vhost-user/src/protocol';
import { RING_SIZE, defineCheck, fail, pass, setUpVring, smallRegion, vringState } from './check';

/** vu.vring-setup. */
export const vringSetupCheck = defineCheck({
  id: 'vu.vring-setup',
  title: 'SET_MEM_TABLE, SET_VRING_NUM/BASE/ADDR/KICK/CALL/ENABLE, then GET_VRING_BASE returns the base set',
  async run(ctx) {
    const opened = await ctx.open();
    const { c } = opened;
    const ring = smallRegion(c, 0n);
    await c.setMemTable([ring]);
    const base = 42;
    await setUpVring(opened, ring, base);
    c.send(Request.GET_VRING_BASE, FLAG_VERSION, vringState(0, 0));
    const m = await c.reply(Request.GET_VRING_BASE);
    if (m.payload.length !== VringStateLayout.size)
      return fail(`GET_VRING_BASE: reply of ${m.payload.length} bytes, expected ${VringStateLayout.size}`);
    const state = decodeStruct(VringStateLayout, m.payload);
    if (state.index !== 0 || state.num !== base)
      return fail(
        `GET_VRING_BASE: vring ${state.index} base ${state.num}, expected vring 0 base ${base} (set by SET_VRING_BASE, no work in between)`,
      );
    await c.sync();
    const how = c.acks ? 'each acked' : 'no REPLY_ACK, so not acked';
    return pass(`1 memfd region, vring 0 of ${RING_SIZE} set up (${how}); GET_VRING_BASE returned base ${base}`);
  },
});
