/** vu.reconnect: aborted connections do not stop the back-end from serving fresh ones. */
import { performance } from 'node:perf_hooks';
import {
  FLAG_VERSION,
  HEADER_SIZE,
  Request,
  frameMessage,
  u64Payload,
} from '../../../../adapters/vhost-user/src/protocol';
import { isBackendFault } from './connection';
import { defineCheck, fail, pass } from './check';

/** vu.reconnect. */
export const reconnectCheck = defineCheck({
  id: 'vu.reconnect',
  title: 'after a half header, a truncated payload and an empty connection, fresh connections complete the handshake',
  async run(ctx) {
    const half = ctx.connect();
    half.sendRaw(frameMessage(Request.GET_FEATURES, FLAG_VERSION).subarray(0, HEADER_SIZE / 2));
    half.close();
    const truncated = ctx.connect();
    truncated.sendRaw(frameMessage(Request.SET_FEATURES, FLAG_VERSION, u64Payload(0n)).subarray(0, HEADER_SIZE + 3));
    truncated.close();
    ctx.connect().close();
    const timings: string[] = [];
    for (const label of ['first', 'second']) {
      const started = performance.now();
      try {
        const { c } = await ctx.open();
        await c.sync();
        c.close();
      } catch (e) {
        if (!isBackendFault(e)) throw e;
        return fail(`the ${label} fresh connection after the aborted ones failed: ${e.message}`);
      }
      timings.push(`${(performance.now() - started).toFixed(1)} ms`);
    }
    return pass(
      `two fresh connections completed the handshake (${timings.join(', ')}) after a half header, a truncated payload and an empty connection`,
    );
  },
});
