/**
 * `resize`: the host changes requested_size. On a device it checks how the device publishes the
 * new size; on a driver it is the request the driver must follow (drv.op.8).
 *
 * ```yaml
 * - resize: 64MiB
 *   expect: {resize: applied, notification: sent}
 * ```
 */
import { Expression, formatHex } from '../../../spec/src/index';
import type { Expr } from '../loader/expr';
import { scopeOfConfig } from '../loader/expr';
import { judgeOutcome } from '../judge/checks';
import type { Finding } from '../judge/verdicts';
import { deviceConfig, deviceNotification, driverConfig } from './observation-checks';
import { defineStepKind, proceed, stopWith } from './step-kind';
import { valueOf } from './values';
import { sessionMethod } from './session-method';

/** A `resize` step: the new requested_size. */
export interface ResizeAction {
  readonly kind: 'resize';
  readonly size: Expr;
}

/** The `resize` step kind. */
export const resizeStep = defineStepKind<
  ResizeAction,
  { readonly outcome: 'applied' | 'refused'; readonly reason?: string },
  undefined
>({
  kind: 'resize',
  key: 'resize',
  schema: Expression,
  capability: 'host-resize',
  normalise(raw, site) {
    const size = site.expr(raw as string | number);
    return size && { kind: 'resize', size };
  },
  targets: {
    device: {
      async execute(context, action, step) {
        const size = valueOf(action.size, scopeOfConfig(context.config), 'resize', step.index);
        if (size.kind === 'stop') return size;
        if (!context.session.resize)
          return stopWith({
            verdict: 'unsupported',
            step: step.index,
            check: 'step',
            message: 'the adapter cannot resize',
          });
        const outcome = await context.session.resize(size.value);
        const reason = outcome.kind === 'refused' ? outcome.reason : undefined;
        const findings: Finding[] = [];
        // Without a stated `resize` expectation the host must accept the value.
        if (!step.expect.resize && reason !== undefined)
          findings.push({
            verdict: 'fail',
            step: step.index,
            check: 'resize',
            message: `the host refused requested_size ${formatHex(size.value)}: ${reason}`,
            requirements: ['dev.cfg.1'],
          });
        return proceed({ transition: 'host-resize', observed: { outcome: outcome.kind, reason }, findings });
      },
      expect: {
        resize: (stated, o, step) => proceed(judgeOutcome(step, 'resize', stated, o.outcome, o.reason)),
        config: deviceConfig,
        notification: deviceNotification,
      },
    },
    driver: {
      async execute(context, action, step) {
        const config = await context.readConfig();
        if (config.kind === 'stop') return config;
        const size = valueOf(action.size, scopeOfConfig(config.value), 'step', step.index, 'resize: ');
        if (size.kind === 'stop') return size;
        const resize = sessionMethod(context.session, 'resize', step.index);
        if (resize.kind === 'stop') return resize;
        const outcome = await resize.value(size.value);
        if (outcome.kind === 'refused')
          return stopWith({
            verdict: 'error',
            step: step.index,
            check: 'step',
            message: `the host refused requested_size ${formatHex(size.value)}: ${outcome.reason}`,
          });
        return proceed({ observed: undefined });
      },
      expect: { config: driverConfig },
    },
  },
});
