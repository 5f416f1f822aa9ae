/**
 * A vector's set-up, evaluated: the expressions of `setup:` turned into the device to build.
 */
import type { DeviceSetup } from '../../../adapters/core/src/contract';
import { usableRegionSizeProblem } from '../../../spec/src/index';
import { Expr, ExpressionScope, evaluate } from '../loader/expr';
import type { Vector } from '../loader/types';

/** The evaluated set-up, or why an expression of it cannot be evaluated (`setup.addr: …`). */
export type SetupEvaluation =
  { readonly ok: true; readonly setup: DeviceSetup } | { readonly ok: false; readonly reason: string };

/**
 * Evaluates a vector's set-up expressions (each may use the fields evaluated before it) and checks
 * a stated usable_region_size (a multiple of block_size, at least requested_size rounded up to a
 * block, at most region_size, covering the plugged blocks). A multi-device vector's devices are
 * evaluated one by one, each as `{setup: device.setup}`.
 */
export function evaluateSetup(vector: Pick<Vector, 'setup'>): SetupEvaluation {
  const s = vector.setup;
  let failure: string | undefined;
  const value = (e: Expr, scope: ExpressionScope, what: string): bigint => {
    const r = evaluate(e, scope);
    if (r.ok) return r.value;
    failure ??= `setup.${what}: ${r.reason}`;
    return 0n;
  };
  const block_size = value(s.block_size, {}, 'block_size');
  if (failure) return { ok: false, reason: failure };
  const region_size = value(s.region_size, { block_size }, 'region_size');
  if (failure) return { ok: false, reason: failure };
  const addr = value(s.addr, { block_size, region_size }, 'addr');
  if (failure) return { ok: false, reason: failure };
  const scope = {
    block_size,
    region_size,
    addr,
    blocks: block_size > 0n ? region_size / block_size : 0n,
    region_end: addr + region_size,
  };
  const requested_size = value(s.requested_size, scope, 'requested_size');
  if (failure) return { ok: false, reason: failure };
  const usable_region_size =
    s.usable_region_size && value(s.usable_region_size, { ...scope, requested_size }, 'usable_region_size');
  if (failure) return { ok: false, reason: failure };
  const setup: DeviceSetup = {
    block_size,
    region_size,
    addr,
    requested_size,
    node_id: s.node_id,
    features: s.features,
    plugged: s.plugged,
    ...(usable_region_size === undefined ? {} : { usable_region_size }),
  };
  const usableProblem = usableRegionSizeProblem(setup);
  if (usableProblem) return { ok: false, reason: `setup.usable_region_size: ${usableProblem}` };
  return { ok: true, setup };
}
