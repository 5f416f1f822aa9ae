/**
 * `read_memory`: reads bytes from the device region and compares them.
 *
 * ```yaml
 * - read_memory: {addr: addr, length: 2}
 *   expect: {access: ok, data: "01 02"}
 * ```
 */
import { Expression } from '../../../spec/src/index';
import type { Expr } from '../loader/expr';
import { scopeOfConfig } from '../loader/expr';
import { judgeBytes } from '../judge/checks';
import { AccessObserved, checkAccess, refusedAccess } from './memory';
import { defineStepKind, proceed } from './step-kind';
import { valueOf } from './values';
import { sessionMethod } from './session-method';

/** A `read_memory` step. */
export interface ReadMemoryAction {
  readonly kind: 'read-memory';
  readonly addr: Expr;
  readonly length: number;
}

/** The `read_memory` step kind. */
export const readMemoryStep = defineStepKind<ReadMemoryAction, AccessObserved>({
  kind: 'read-memory',
  key: 'read_memory',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['addr', 'length'],
    properties: { addr: Expression, length: { type: 'integer', minimum: 1, maximum: 65536 } },
  },
  capability: 'memory-access',
  normalise(raw, site) {
    const r = raw as { addr: string | number; length: number };
    const addr = site.at('addr').expr(r.addr);
    return addr && { kind: 'read-memory', addr, length: r.length };
  },
  targets: {
    device: {
      async execute(context, action, step) {
        const addr = valueOf(action.addr, scopeOfConfig(context.config), 'read_memory.addr', step.index);
        if (addr.kind === 'stop') return addr;
        const readMemory = sessionMethod(context.session, 'readMemory', step.index);
        if (readMemory.kind === 'stop') return readMemory;
        const access = await readMemory.value(addr.value, action.length);
        return proceed({
          transition: 'read',
          observed: { access },
          findings: refusedAccess(access, step.expect.access !== undefined, step.index),
        });
      },
      expect: {
        access: checkAccess,
        // Bytes are compared only when the read went through (a refused read is the `access` check's).
        data: (stated, o, step) => proceed(o.access.ok ? judgeBytes(step, 'data', stated, o.access.data) : []),
      },
    },
  },
});
