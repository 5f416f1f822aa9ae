/**
 * vu.fd-hygiene: the back-end closes every fd it replaces or no longer needs. Counted from
 * /proc/PID/fd of the back-end's process, so it needs the PID (`--backend-pid`).
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { sleep } from '../../../../adapters/core/src/sleep';
import {
  FLAG_VERSION,
  HEADER_SIZE,
  ProtocolFeature,
  Request,
  frameMessage,
  u64Payload,
} from '../../../../adapters/vhost-user/src/protocol';
import { BackendGone } from './connection';
import {
  REGION_STRIDE,
  RING_SIZE,
  defineCheck,
  fail,
  pass,
  setUpVring,
  smallRegion,
  unsupported,
  vringState,
} from './check';

/** Replacements of each fd kind while connected. */
const FD_REPLACEMENTS = 10;
/** Extra connections opened and closed. */
const FD_CHURN_CONNECTIONS = 5;
/** How far the fd count may rise while the replacements are made (lazily created fds). */
const FD_GROWTH_ALLOWED = 2;
/** How long the fd count may take to settle after the connections close. */
const FD_SETTLE_MS = 3000;

/** The fds a process has open, by target (`socket:[…]`, `/memfd:vmemct-check (deleted)`, …). */
function openFdTargets(pid: number): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(`/proc/${pid}/fd`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BackendGone(`the back-end process ${pid} is gone`);
    throw new Error(`cannot read /proc/${pid}/fd: ${(e as Error).message}`);
  }
  const targets: string[] = [];
  for (const name of names) {
    try {
      targets.push(fs.readlinkSync(`/proc/${pid}/fd/${name}`).replace(/\[\d+\]$/, '[…]'));
    } catch {
      /* closed meanwhile */
    }
  }
  return targets;
}

/** What `after` has beyond `before`, counted by target. */
function fdDifference(before: readonly string[], after: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const t of after) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const t of before) counts.set(t, (counts.get(t) ?? 0) - 1);
  const extra = [...counts].filter(([, n]) => n > 0).map(([t, n]) => `${t} ×${n}`);
  return extra.length ? extra.join(', ') : 'no new targets (others were replaced)';
}

/** Waits until the count is at most `limit` (or `ms` pass); the last snapshot. */
async function fdCountWithin(pid: number, limit: number, ms: number): Promise<string[]> {
  const deadline = performance.now() + ms;
  for (;;) {
    const now = openFdTargets(pid);
    if (now.length <= limit || performance.now() >= deadline) return now;
    await sleep(25);
  }
}

/** A count that stays the same over a few readings (earlier connections may still be closing). */
async function settledFdTargets(pid: number): Promise<string[]> {
  const deadline = performance.now() + FD_SETTLE_MS;
  let last = openFdTargets(pid);
  let steady = 0;
  while (steady < 3 && performance.now() < deadline) {
    await sleep(50);
    const now = openFdTargets(pid);
    steady = now.length === last.length ? steady + 1 : 0;
    last = now;
  }
  return last;
}

/** vu.fd-hygiene. */
export const fdHygieneCheck = defineCheck({
  id: 'vu.fd-hygiene',
  title: `the back-end's fd count does not grow: ${FD_REPLACEMENTS} replacements of each fd while connected, ${FD_CHURN_CONNECTIONS + 2} connections opened and closed`,
  async run(ctx) {
    const pid = ctx.backendPid;
    if (pid === undefined) return unsupported("needs the back-end's PID (--backend-pid) to read /proc/PID/fd");
    const before = await settledFdTargets(pid);
    const opened = await ctx.open({
      protocol: [
        ProtocolFeature.MQ,
        ProtocolFeature.REPLY_ACK,
        ProtocolFeature.CONFIGURE_MEM_SLOTS,
        ProtocolFeature.BACKEND_REQ,
      ],
    });
    const { c } = opened;
    const slots = c.has(ProtocolFeature.CONFIGURE_MEM_SLOTS);
    const ring = smallRegion(c, 0n);
    let extra = smallRegion(c, REGION_STRIDE);
    await c.setMemTable([ring, extra]);
    let fds = await setUpVring(opened, ring, 0);
    let err = c.createEventfd();
    await c.command(Request.SET_VRING_ERR, u64Payload(0n), [err]);
    const withBackendChannel = c.has(ProtocolFeature.BACKEND_REQ);
    let side = withBackendChannel ? c.createBackendChannel() : undefined;
    if (side) {
      await c.command(Request.SET_BACKEND_REQ_FD, undefined, [side.theirs]);
      c.closeFd(side.theirs);
    }
    await c.sync();
    const connected = openFdTargets(pid);
    for (let round = 1; round <= FD_REPLACEMENTS; round++) {
      const replacement = smallRegion(c, BigInt(round + 1) * REGION_STRIDE);
      await c.setMemTable([ring, replacement], `SET_MEM_TABLE (replacement ${round})`);
      c.destroyRegion(extra);
      extra = replacement;
      const kick = c.createEventfd();
      const call = c.createEventfd();
      const nextErr = c.createEventfd();
      await c.command(Request.SET_VRING_KICK, u64Payload(0n), [kick], `SET_VRING_KICK (replacement ${round})`);
      await c.command(Request.SET_VRING_CALL, u64Payload(0n), [call], `SET_VRING_CALL (replacement ${round})`);
      await c.command(Request.SET_VRING_ERR, u64Payload(0n), [nextErr], `SET_VRING_ERR (replacement ${round})`);
      c.closeEventfd(fds.kick);
      c.closeEventfd(fds.call);
      c.closeEventfd(err);
      fds = { kick, call };
      err = nextErr;
      if (side) {
        const replacementSide = c.createBackendChannel();
        await c.command(
          Request.SET_BACKEND_REQ_FD,
          undefined,
          [replacementSide.theirs],
          `SET_BACKEND_REQ_FD (replacement ${round})`,
        );
        c.closeFd(replacementSide.theirs);
        c.closeBackendChannel(side);
        side = replacementSide;
      }
      if (slots) {
        const slot = smallRegion(c, 0x1_0000_0000n + BigInt(round) * REGION_STRIDE);
        await c.addRegion(slot, `ADD_MEM_REG (round ${round})`);
        await c.removeRegion(slot, `REM_MEM_REG (round ${round})`);
        c.destroyRegion(slot);
      }
    }
    await c.sync();
    const kinds = [
      'memory table',
      'kick',
      'call',
      'err',
      ...(side ? ['back-end channel'] : []),
      ...(slots ? ['ADD/REM_MEM_REG'] : []),
    ];
    const during = await fdCountWithin(pid, connected.length + FD_GROWTH_ALLOWED, 1000);
    if (during.length > connected.length + FD_GROWTH_ALLOWED) {
      return fail(
        `while connected, the fd count went from ${connected.length} to ${during.length} over ${FD_REPLACEMENTS} replacements of each of: ${kinds.join(', ')} (replaced fds are not closed); new: ${fdDifference(connected, during)}`,
      );
    }
    c.close();
    // More sessions: complete ones, and one that hangs up mid-message.
    for (let i = 0; i < FD_CHURN_CONNECTIONS; i++) {
      const s = await ctx.open();
      const r = smallRegion(s.c, 0n);
      await s.c.setMemTable([r]);
      await setUpVring(s, r, 0);
      await s.c.sync();
      s.c.close();
    }
    const cut = await ctx.open();
    const r = smallRegion(cut.c, 0n);
    await cut.c.setMemTable([r]);
    await cut.c.sync();
    cut.c.sendRaw(
      frameMessage(Request.SET_VRING_NUM, FLAG_VERSION, vringState(0, RING_SIZE)).subarray(0, HEADER_SIZE + 2),
    );
    cut.c.close();
    const after = await fdCountWithin(pid, before.length, FD_SETTLE_MS);
    if (after.length > before.length) {
      return fail(
        `the fd count went from ${before.length} to ${after.length} after ${FD_CHURN_CONNECTIONS + 2} connections closed (memory regions, vring fds${withBackendChannel ? ', back-end channels' : ''}); still open: ${fdDifference(before, after)}`,
      );
    }
    return pass(
      `fds ${before.length} before, ${connected.length} → ${during.length} across ${FD_REPLACEMENTS} replacements of ${kinds.join(', ')}, ${after.length} after ${FD_CHURN_CONNECTIONS + 2} connections closed`,
    );
  },
});
