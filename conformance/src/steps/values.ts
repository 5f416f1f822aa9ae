/**
 * Expression evaluation inside a step: a value, or a stop with an `error` finding naming what
 * could not be evaluated.
 */
import { Expr, ExpressionScope, evaluate } from '../loader/expr';
import { StepOutcome, proceed, stopWith } from './step-kind';

/** Evaluates `expr` for step `step`; `check` names the field (`resize`, `request.addr`, …). */
export function valueOf(
  expr: Expr,
  scope: ExpressionScope,
  check: string,
  step: number,
  prefix = '',
): StepOutcome<bigint> {
  const r = evaluate(expr, scope);
  return r.ok ? proceed(r.value) : stopWith({ verdict: 'error', step, check, message: `${prefix}${r.reason}` });
}
