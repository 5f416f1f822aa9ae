/**
 * `node_memory`: checks how much memory the driver has added to the system from its virtio-mem
 * devices on each NUMA node (a live guest's view: what each node gained). With
 * VIRTIO_MEM_F_ACPI_PXM negotiated a device's `node_id` says where its memory belongs (§5.15.3);
 * the two-node example states that each device's memory lands on its own node. The statement is
 * the vector's own: a node that holds other than the stated amount fails the vector.
 *
 * ```yaml
 * - node_memory: {0: 256MiB, 1: 384MiB}
 * ```
 *
 * The step observes the whole system, not one device: in a multi-device vector it runs once.
 */
import { Expression, formatHex } from '../../../spec/src/index';
import type { Expr } from '../loader/expr';
import { scopeOfConfig } from '../loader/expr';
import type { Finding } from '../judge/verdicts';
import { sessionMethod } from './session-method';
import { defineStepKind, proceed } from './step-kind';
import { valueOf } from './values';

/** A `node_memory` step: node id → the memory the vector states the driver added there. */
export interface NodeMemoryAction {
  readonly kind: 'node-memory';
  readonly nodes: ReadonlyMap<number, Expr>;
}

/** The `node_memory` step kind. */
export const nodeMemoryStep = defineStepKind<NodeMemoryAction, never, undefined>({
  kind: 'node-memory',
  key: 'node_memory',
  schema: {
    type: 'object',
    minProperties: 1,
    additionalProperties: false,
    patternProperties: { '^(0|[1-9][0-9]{0,4})$': Expression },
  },
  capability: 'node-memory',
  systemWide: true,
  normalise(raw, site) {
    const nodes = new Map<number, Expr>();
    for (const [node, value] of Object.entries(raw as Record<string, string | number>)) {
      const expr = site.at(node).expr(value);
      if (expr) nodes.set(Number(node), expr);
    }
    return nodes.size === Object.keys(raw as object).length ? { kind: 'node-memory', nodes } : undefined;
  },
  targets: {
    driver: {
      async execute(context, action, step) {
        const read = sessionMethod(context.session, 'nodeMemory', step.index);
        if (read.kind === 'stop') return read;
        const seen = await read.value();
        const findings: Finding[] = [];
        for (const [node, expr] of action.nodes) {
          const stated = valueOf(expr, scopeOfConfig(context.config), `node_memory.${node}`, step.index);
          if (stated.kind === 'stop') return stated;
          const observed = seen.get(node) ?? 0n;
          if (observed !== stated.value)
            findings.push({
              verdict: 'fail',
              step: step.index,
              check: `node-memory.${node}`,
              message: `node ${node} holds ${formatHex(observed)} bytes of the driver's memory; the vector states ${formatHex(stated.value)}`,
              expected: formatHex(stated.value),
              observed: formatHex(observed),
            });
        }
        return proceed({ observed: undefined, findings });
      },
      expect: {},
    },
  },
});
