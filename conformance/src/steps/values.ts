/**
 * Expression evaluation inside a step: a value, or a stop with an `error` finding naming what
 * could not be evaluated. That finding blames the vector, not the target: its check is
 * {@link BAD_VECTOR_CHECK}, and a run with such a result exits 3 (bad input) rather than 2.
 */
import { Expr, ExpressionScope, evaluate } from '../loader/expr';
import { StepOutcome, proceed, stopWith } from './step-kind';

/** The check of a finding that blames the vector itself (an expression that cannot be evaluated on the values the target reported). */
export const BAD_VECTOR_CHECK = 'bad-vector';

/** Evaluates `expr` for step `step`; `check` names the field (`resize`, `request.addr`, …). */
export function valueOf(
  expr: Expr,
  scope: ExpressionScope,
  check: string,
  step: number,
  prefix = '',
): StepOutcome<bigint> {
  const r = evaluate(expr, scope);
  return r.ok
    ? proceed(r.value)
    : stopWith({
        verdict: 'error',
        step,
        check: BAD_VECTOR_CHECK,
        message: `${prefix || `${check}: `}${r.reason} (the vector is at fault, not the target)`,
      });
}
