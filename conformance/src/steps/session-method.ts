/**
 * The optional session methods a step kind calls (reset, resize, memory access, …). A vector that
 * needs a capability the adapter does not declare is `unsupported` before it starts; this guard
 * covers an adapter that declares the capability but whose session lacks the method, so the step
 * ends `unsupported` with the method named instead of a TypeError reported as `error`.
 */
import { StepOutcome, proceed, stopWith } from '../judge/verdicts';

/** Keys of `S` whose values are optional functions. */
type OptionalMethodOf<S> = {
  [K in keyof S]-?: undefined extends S[K]
    ? NonNullable<S[K]> extends (...args: never[]) => unknown
      ? K
      : never
    : never;
}[keyof S];

/** `session[method]`, bound to the session, or a stop (`unsupported`) naming the missing method. */
export function sessionMethod<S extends object, K extends OptionalMethodOf<S>>(
  session: S,
  method: K,
  step: number,
): StepOutcome<NonNullable<S[K]>> {
  const value = session[method];
  if (typeof value !== 'function')
    return stopWith({
      verdict: 'unsupported',
      step,
      check: 'step',
      message: `the adapter's session has no ${String(method)}() (it declares the capability this step needs)`,
    });
  return proceed(value.bind(session) as NonNullable<S[K]>);
}
