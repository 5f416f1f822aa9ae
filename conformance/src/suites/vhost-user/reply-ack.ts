/** vu.reply-ack: with REPLY_ACK, exactly one well-formed ack per NEED_REPLY message. */
import { formatHex } from '../../../../spec/src/index';
import {
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FLAG_VERSION,
  Request,
  U64Layout,
  VRING_NOFD,
  decodeStruct,
  requestName,
  u64Payload,
} from '../../../../adapters/vhost-user/src/protocol';
import { RING_SIZE, defineCheck, fail, ownFeatures, pass, vringState } from './check';

/** vu.reply-ack. */
export const replyAckCheck = defineCheck({
  id: 'vu.reply-ack',
  title: 'with REPLY_ACK every NEED_REPLY message gets exactly one ack (flags 0x5, same code, 8 bytes, 0)',
  needs: ['REPLY_ACK'],
  async run(ctx) {
    const { c, offeredFeatures } = await ctx.open({ own: false });
    let acked = 0;
    const commands: [number, Buffer?, number[]?][] = [
      [Request.SET_OWNER],
      [Request.SET_FEATURES, u64Payload(ownFeatures(offeredFeatures))],
      [Request.SET_VRING_NUM, vringState(0, RING_SIZE)],
      [Request.SET_VRING_BASE, vringState(0, 0)],
      [Request.SET_VRING_CALL, u64Payload(0n), [c.createEventfd()]],
      [Request.SET_VRING_ERR, u64Payload(VRING_NOFD)],
    ];
    for (const [request, payload, fds] of commands) {
      await c.command(request, payload, fds ?? []);
      acked++;
    }
    // Three at once: the acks come back one each, in order.
    const pipelined = [Request.SET_VRING_NUM, Request.SET_VRING_BASE, Request.SET_VRING_NUM];
    for (const request of pipelined)
      c.send(
        request,
        FLAG_VERSION | FLAG_NEED_REPLY,
        vringState(0, request === Request.SET_VRING_BASE ? 0 : RING_SIZE),
      );
    for (const request of pipelined) {
      await c.ack(request, `pipelined ${requestName(request)}`);
      acked++;
    }
    // A GET_* without NEED_REPLY: flags 0x5.
    await c.queryU64(Request.GET_PROTOCOL_FEATURES);
    // A GET_* with NEED_REPLY: "no behavioural change", i.e. one reply, its usual body.
    c.send(Request.GET_FEATURES, FLAG_VERSION | FLAG_NEED_REPLY);
    const answer = await c.receive('GET_FEATURES with NEED_REPLY');
    const replyFlags = FLAG_VERSION | FLAG_REPLY;
    if (
      answer.request !== Request.GET_FEATURES ||
      !(answer.flags & FLAG_REPLY) ||
      (answer.flags & ~(replyFlags | FLAG_NEED_REPLY)) !== 0 ||
      answer.payload.length !== 8
    ) {
      return fail(
        `GET_FEATURES with NEED_REPLY: answered with ${requestName(answer.request)}, flags ${formatHex(answer.flags)}, ${answer.payload.length} bytes`,
      );
    }
    const features = decodeStruct(U64Layout, answer.payload).value;
    if (features !== offeredFeatures)
      return fail(
        `GET_FEATURES with NEED_REPLY: answered ${formatHex(features)}, not the features (${formatHex(offeredFeatures)}); an ack instead of the reply?`,
      );
    // Anything extra (a second ack, an ack after the GET reply) would arrive before this reply.
    await c.sync('GET_FEATURES after the acks (a stray extra reply would come first)');
    const echoed =
      answer.flags & FLAG_NEED_REPLY
        ? `; note: the reply to a GET_* sent with NEED_REPLY echoes the flag (flags ${formatHex(answer.flags)}); QEMU never sends that combination, so it is tolerated`
        : '';
    return pass(
      `${acked} NEED_REPLY messages each acked once (flags 0x5, same code, 8 bytes, 0), 3 of them pipelined; GET_* replies carry flags 0x5; a GET_* with NEED_REPLY is answered once${echoed}`,
    );
  },
});
