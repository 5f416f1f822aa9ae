/** vu.backend-channel: the back-end takes the back-end channel and keeps its end open. */
import { Request } from '../../../../adapters/vhost-user/src/protocol';
import { sleep } from '../../../../adapters/core/src/sleep';
import { defineCheck, fail, pass } from './check';

/** vu.backend-channel. */
export const backendChannelCheck = defineCheck({
  id: 'vu.backend-channel',
  title: 'SET_BACKEND_REQ_FD acked, and the back-end keeps its end open',
  needs: ['BACKEND_REQ'],
  async run(ctx) {
    const { c } = await ctx.open();
    const channel = c.createBackendChannel();
    try {
      await c.command(Request.SET_BACKEND_REQ_FD, undefined, [channel.theirs]);
    } finally {
      c.closeFd(channel.theirs);
    }
    await c.sync();
    await sleep(50);
    if (channel.ended)
      return fail(
        `the back-end channel ended right after SET_BACKEND_REQ_FD (${channel.ended}): the back-end did not keep its end`,
      );
    const seen = channel.received.length
      ? `; it sent ${channel.received.map((r) => `request ${r}`).join(', ')} on it`
      : '';
    return pass(
      `SET_BACKEND_REQ_FD ${c.acks ? 'acked' : 'taken (no REPLY_ACK)'}; the back-end keeps its end open${seen}`,
    );
  },
});
