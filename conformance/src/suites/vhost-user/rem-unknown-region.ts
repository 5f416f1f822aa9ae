/**
 * vu.rem-unknown-region: a REM_MEM_REG of a region that was never added.
 *
 * What passes: the request is the front-end's error (the spec identifies the region by the one
 * added), so the back-end may refuse it either way the protocol offers, with a nonzero ack or by
 * ending the session (libvhost-user's `vu_panic`, which acks 0 first and then drops the
 * connection; the message says so), or ignore it and ack 0. It fails when the back-end removes a
 * region it should have kept, gives a malformed reply, neither answers nor hangs up, or stops
 * serving new connections.
 */
import {
  FLAG_NEED_REPLY,
  FLAG_VERSION,
  Request,
  U64Layout,
  decodeStruct,
  singleRegionPayload,
} from '../../../../adapters/vhost-user/src/protocol';
import { isBackendFault } from './connection';
import { REGION_STRIDE, defineCheck, fail, pass, smallRegion } from './check';

/** vu.rem-unknown-region. */
export const remUnknownRegionCheck = defineCheck({
  id: 'vu.rem-unknown-region',
  title: 'REM_MEM_REG of a region never added is refused or harmless, and the back-end keeps serving',
  needs: ['CONFIGURE_MEM_SLOTS'],
  async run(ctx) {
    const { c } = await ctx.open();
    const known = smallRegion(c, 0x1_0000_0000n);
    await c.addRegion(known, 'ADD_MEM_REG (the known region)');
    c.closeRegionFd(known);
    const unknown = smallRegion(c, 0x1_0000_0000n + 16n * REGION_STRIDE);
    let ack: bigint | undefined;
    /** What the back-end did with the unknown region, for the message. */
    let outcome: string;
    /** The same, shortly, for a failure message. */
    let handled: string;
    const acked = (): string => (ack !== undefined ? ` (ack ${ack})` : '');
    try {
      c.send(Request.REM_MEM_REG, FLAG_VERSION | (c.acks ? FLAG_NEED_REPLY : 0), singleRegionPayload(unknown));
      if (c.acks) {
        const m = await c.reply(Request.REM_MEM_REG, 'REM_MEM_REG (unknown region)');
        if (m.payload.length !== 8)
          return fail(`REM_MEM_REG (unknown region): the ack has ${m.payload.length} bytes, expected 8`);
        ack = decodeStruct(U64Layout, m.payload).value;
      }
      await c.sync('GET_FEATURES after the unknown REM_MEM_REG');
      // Still connected: the known region must still be there to remove.
      try {
        await c.removeRegion(known, 'REM_MEM_REG (the known region, after the unknown one)');
        await c.sync();
      } catch (e) {
        if (!isBackendFault(e)) throw e;
        return fail(
          `after REM_MEM_REG of an unknown region${acked()}, the region that was added could not be removed: ${e.message}`,
        );
      }
      handled =
        ack !== undefined && ack !== 0n ? `refused (ack ${ack})` : `ignored${ack !== undefined ? ' (ack 0)' : ''}`;
      outcome = `${handled}; the connection kept working and the added region was still there`;
    } catch (e) {
      if (!isBackendFault(e) || !c.ended) throw e;
      handled = `ended the connection${acked()}`;
      outcome = ack === 0n ? 'ended the connection after acknowledging it with 0 (the ack claimed success)' : handled;
    }
    c.close();
    try {
      const fresh = await ctx.open();
      await fresh.c.sync();
      fresh.c.close();
    } catch (e) {
      if (!isBackendFault(e)) throw e;
      return fail(
        `the back-end ${handled} a REM_MEM_REG of an unknown region, and then the back-end no longer served a fresh connection: ${e.message}`,
      );
    }
    return pass(`REM_MEM_REG of a region never added: ${outcome}; a fresh connection was served afterwards`);
  },
});
