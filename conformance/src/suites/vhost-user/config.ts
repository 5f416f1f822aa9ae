/** vu.config: a GET_CONFIG read of the first bytes of the device's configuration space. */
import {
  ConfigHeaderLayout,
  FLAG_VERSION,
  Request,
  decodeStruct,
  encodeStruct,
} from '../../../../adapters/vhost-user/src/protocol';
import { defineCheck, fail, pass } from './check';

/** GET_CONFIG reads this many bytes at offset 0 (every device with a config space has that many). */
const CONFIG_PROBE_SIZE = 4;

/** vu.config. */
export const configCheck = defineCheck({
  id: 'vu.config',
  title: `GET_CONFIG of ${CONFIG_PROBE_SIZE} bytes at offset 0 returns ${CONFIG_PROBE_SIZE} bytes`,
  needs: ['CONFIG'],
  async run(ctx) {
    const { c } = await ctx.open();
    const payload = Buffer.alloc(ConfigHeaderLayout.size + CONFIG_PROBE_SIZE);
    encodeStruct(ConfigHeaderLayout, { offset: 0, size: CONFIG_PROBE_SIZE, flags: 0 }, payload);
    c.send(Request.GET_CONFIG, FLAG_VERSION, payload);
    const m = await c.reply(Request.GET_CONFIG);
    if (m.payload.length < ConfigHeaderLayout.size)
      return fail(
        `GET_CONFIG: reply of ${m.payload.length} bytes, shorter than the 12-byte config header (the back-end refused the read)`,
      );
    const h = decodeStruct(ConfigHeaderLayout, m.payload);
    if (h.size === 0)
      return fail(`GET_CONFIG: the back-end refused ${CONFIG_PROBE_SIZE} bytes at offset 0 (size 0 in the reply)`);
    if (
      h.offset !== 0 ||
      h.size !== CONFIG_PROBE_SIZE ||
      m.payload.length !== ConfigHeaderLayout.size + CONFIG_PROBE_SIZE
    ) {
      return fail(
        `GET_CONFIG: asked ${CONFIG_PROBE_SIZE} bytes at offset 0, the reply says ${h.size} bytes at offset ${h.offset} in a ${m.payload.length}-byte payload`,
      );
    }
    await c.sync();
    return pass(
      `GET_CONFIG returned ${CONFIG_PROBE_SIZE} bytes at offset 0: ${m.payload.subarray(ConfigHeaderLayout.size).toString('hex')}`,
    );
  },
});
