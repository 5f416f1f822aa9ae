/**
 * `write_memory`: writes bytes into the device region (plugged memory must take them; unplugged
 * memory may refuse them when UNPLUGGED_INACCESSIBLE is negotiated).
 *
 * ```yaml
 * - write_memory: {addr: addr, data: "01 02"}
 *   expect: {access: ok}
 * ```
 */
import { Expression, HexBytes } from '../../../spec/src/index';
import type { Expr } from '../loader/expr';
import { scopeOfConfig } from '../loader/expr';
import { AccessObserved, checkAccess, refusedAccess } from './memory';
import { defineStepKind, proceed } from './step-kind';
import { valueOf } from './values';
import { sessionMethod } from './session-method';

/** A `write_memory` step. */
export interface WriteMemoryAction {
  readonly kind: 'write-memory';
  readonly addr: Expr;
  readonly data: Uint8Array;
}

/** The `write_memory` step kind. */
export const writeMemoryStep = defineStepKind<WriteMemoryAction, AccessObserved>({
  kind: 'write-memory',
  key: 'write_memory',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['addr', 'data'],
    properties: { addr: Expression, data: HexBytes },
  },
  capability: 'memory-access',
  normalise(raw, site) {
    const w = raw as { addr: string | number; data: string };
    const addr = site.at('addr').expr(w.addr);
    const data = site.at('data').hex(w.data);
    return addr && data && { kind: 'write-memory', addr, data };
  },
  targets: {
    device: {
      async execute(context, action, step) {
        const addr = valueOf(action.addr, scopeOfConfig(context.config), 'write_memory.addr', step.index);
        if (addr.kind === 'stop') return addr;
        const writeMemory = sessionMethod(context.session, 'writeMemory', step.index);
        if (writeMemory.kind === 'stop') return writeMemory;
        const access = await writeMemory.value(addr.value, action.data);
        return proceed({
          transition: 'read',
          observed: { access },
          findings: refusedAccess(access, step.expect.access !== undefined, step.index),
        });
      },
      expect: { access: checkAccess },
    },
  },
});
