/** vu.handshake: the opening every front-end runs, answered to the letter. */
import { formatHex } from '../../../../spec/src/index';
import { PROTOCOL_FEATURES_BIT, ProtocolFeature, Request } from '../../../../adapters/vhost-user/src/protocol';
import { defineCheck, describeBits, fail, pass, unsupported } from './check';

/** vu.handshake. */
export const handshakeCheck = defineCheck({
  id: 'vu.handshake',
  title: 'GET_FEATURES (bit 30), GET/SET_PROTOCOL_FEATURES, SET_OWNER, GET_QUEUE_NUM, SET_FEATURES',
  async run(ctx) {
    const { c, offeredFeatures, offeredProtocolFeatures } = await ctx.open({
      protocol: [ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK],
    });
    if (!(offeredFeatures & PROTOCOL_FEATURES_BIT)) {
      return unsupported(
        `GET_FEATURES ${formatHex(offeredFeatures)} lacks VHOST_USER_F_PROTOCOL_FEATURES (virtio feature bit 30): the back-end does not speak protocol features`,
      );
    }
    const parts = [
      `features ${formatHex(offeredFeatures)}`,
      `protocol features ${describeBits(offeredProtocolFeatures)}`,
    ];
    if (c.has(ProtocolFeature.MQ)) {
      const queues = await c.queryU64(Request.GET_QUEUE_NUM);
      if (queues < 1n) return fail(`GET_QUEUE_NUM: ${queues} queues (a device has at least one)`);
      parts.push(`GET_QUEUE_NUM ${queues}`);
    } else {
      parts.push('MQ not offered: GET_QUEUE_NUM skipped');
    }
    await c.sync();
    parts.push(
      c.acks
        ? 'SET_OWNER and SET_FEATURES (bit 30) acked'
        : 'REPLY_ACK not offered: SET_OWNER and SET_FEATURES (bit 30) taken without acks',
    );
    return pass(parts.join('; '));
  },
});
