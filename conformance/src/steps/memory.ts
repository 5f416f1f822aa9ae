/**
 * The outcome of a memory access inside the device region, shared by `write_memory` and
 * `read_memory`.
 */
import type { MemoryAccess } from '../../../adapters/core/src/contract';
import { judgeOutcome } from '../judge/checks';
import type { Finding } from '../judge/verdicts';
import type { Checker } from './step-kind';
import { proceed } from './step-kind';

/** What a memory step saw. */
export interface AccessObserved {
  readonly access: MemoryAccess;
}

/** Without a stated `access` expectation a refused access fails. */
export function refusedAccess(access: MemoryAccess, stated: boolean, step: number): Finding[] {
  return !stated && !access.ok
    ? [{ verdict: 'fail', step, check: 'access', message: `memory access refused: ${access.reason}` }]
    : [];
}

/** `access`: whether the access went through. */
export const checkAccess: Checker<'access', AccessObserved> = (stated, o, step) =>
  proceed(
    judgeOutcome(step, 'access', stated, o.access.ok ? 'ok' : 'refused', o.access.ok ? undefined : o.access.reason),
  );
