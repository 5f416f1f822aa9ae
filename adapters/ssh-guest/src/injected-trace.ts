/**
 * QEMU's trace as the driver saw it when answers were injected through the gdbstub: a request
 * the injector rewrote reaches QEMU as `STATE addr nb_blocks=0` and is answered ERROR, so the
 * trace shows that instead of the driver's request. Each such entry is put back as the request
 * the driver sent, answered with what the driver was given. The Linux driver never sends a STATE
 * request itself, and no driver sends an empty one, so these entries are the injector's alone;
 * they are matched to its records in order.
 */
import { VIRTIO_MEM_REQ_STATE, VIRTIO_MEM_RESP_ERROR } from '../../../spec/src/index';
import type { InterceptedRequest } from './gdb-injection';
import type { TracedRequest } from './qemu-trace';

/** The trace with the injector's rewritten requests put back, or why the two do not agree. */
export type ReconciledTrace =
  { readonly ok: true; readonly requests: readonly TracedRequest[] } | { readonly ok: false; readonly reason: string };

function isRewrite(t: TracedRequest): boolean {
  return t.type === VIRTIO_MEM_REQ_STATE && t.nbBlocks === 0;
}

/**
 * Puts back, in `traced`, the requests the injector rewrote (`intercepted`, in the order the
 * driver sent them; records of requests it let through are skipped). Fails when the trace and
 * the records do not pair up (a rewrite QEMU did not answer ERROR, at another address, or a
 * count that differs): then the run cannot say what the driver saw.
 */
export function reconcileTrace(
  traced: readonly TracedRequest[],
  intercepted: readonly InterceptedRequest[],
): ReconciledTrace {
  const rewrites = intercepted.filter((r) => r.rewritten);
  const out: TracedRequest[] = [];
  let next = 0;
  for (const t of traced) {
    if (!isRewrite(t)) {
      out.push(t);
      continue;
    }
    const r = rewrites[next++];
    if (!r)
      return {
        ok: false,
        reason: `the trace shows more empty STATE requests than the injector rewrote (${rewrites.length})`,
      };
    if (t.addr !== r.addr || t.responseType !== VIRTIO_MEM_RESP_ERROR)
      return {
        ok: false,
        reason: `rewritten request ${next} does not match the trace (addr 0x${t.addr.toString(16)} answered ${t.responseType}, expected 0x${r.addr.toString(16)} answered ERROR)`,
      };
    out.push({
      type: r.type,
      addr: r.addr,
      nbBlocks: r.nbBlocks,
      responseType: r.delivered,
      state: null,
      ...(t.atMs !== undefined ? { atMs: t.atMs } : {}),
    });
  }
  if (next !== rewrites.length)
    return { ok: false, reason: `the injector rewrote ${rewrites.length} requests; the trace shows ${next}` };
  return { ok: true, requests: out };
}
