/**
 * Vector expressions: small integer arithmetic over configuration fields, such as
 * `addr + 4 * block_size` or `usable_region_size - 2MiB`.
 *
 * Expressions are data, never code: this parser accepts numbers (decimal,
 * `0x…`, with an optional size unit such as `2MiB`), the names in {@link EXPRESSION_NAMES},
 * `+ - * / %`, unary minus and parentheses. Values are bigints; division truncates.
 */
import { parseValue } from '../../../spec/src/index';

/** Names an expression may use, with what they stand for. */
export const EXPRESSION_NAMES: Readonly<Record<string, string>> = {
  block_size: 'config block_size',
  node_id: 'config node_id',
  addr: 'config addr (start of the device region)',
  region_size: 'config region_size',
  usable_region_size: 'config usable_region_size',
  plugged_size: 'config plugged_size',
  requested_size: 'config requested_size',
  region_end: 'addr + region_size',
  usable_end: 'addr + usable_region_size',
  blocks: 'region_size / block_size',
  usable_blocks: 'usable_region_size / block_size',
  plugged_blocks: 'plugged_size / block_size',
  requested_blocks: 'requested_size / block_size',
};

/** A parsed expression. */
export type Expr =
  | { readonly kind: 'number'; readonly value: bigint }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'negate'; readonly operand: Expr }
  | { readonly kind: 'binary'; readonly op: '+' | '-' | '*' | '/' | '%'; readonly left: Expr; readonly right: Expr };

/** Result of parsing. */
export type ParseResult = { readonly ok: true; readonly expr: Expr } | { readonly ok: false; readonly reason: string };

/** Values of the names, for evaluation. */
export type ExpressionScope = Readonly<Record<string, bigint>>;

/** Result of evaluating. */
export type EvalResult =
  { readonly ok: true; readonly value: bigint } | { readonly ok: false; readonly reason: string };

const MAX_LENGTH = 200;

/** Parses an expression given as a YAML number or string. */
export function parseExpression(source: string | number | bigint): ParseResult {
  if (typeof source === 'bigint') return { ok: true, expr: { kind: 'number', value: source } };
  if (typeof source === 'number') {
    if (!Number.isSafeInteger(source))
      return { ok: false, reason: `${source} is not an integer that can be represented exactly; write it as a string` };
    return { ok: true, expr: { kind: 'number', value: BigInt(source) } };
  }
  if (source.length > MAX_LENGTH) return { ok: false, reason: `expression longer than ${MAX_LENGTH} characters` };
  const tokens = tokenize(source);
  if (!tokens.ok) return tokens;
  const parser = new Parser(tokens.tokens);
  try {
    const expr = parser.parseSum();
    if (!parser.atEnd()) return { ok: false, reason: `unexpected '${parser.peek()}' in '${source}'` };
    return { ok: true, expr };
  } catch (e) {
    if (e instanceof ExpressionSyntaxError) return { ok: false, reason: `${e.message} in '${source}'` };
    throw e;
  }
}

/** The largest magnitude any value or intermediate result may have: 2^64 - 1 (config fields are at most 64 bits). */
export const MAX_EXPRESSION_MAGNITUDE = (1n << 64n) - 1n;

/**
 * Evaluates a parsed expression. A division by zero or a value (intermediate results included)
 * beyond 64 bits is an error, not a silently wrapped or huge number.
 */
export function evaluate(expr: Expr, scope: ExpressionScope): EvalResult {
  const r = evaluateUnchecked(expr, scope);
  if (r.ok && (r.value > MAX_EXPRESSION_MAGNITUDE || r.value < -MAX_EXPRESSION_MAGNITUDE))
    return { ok: false, reason: `${formatExpression(expr)} overflows 64 bits` };
  return r;
}

function evaluateUnchecked(expr: Expr, scope: ExpressionScope): EvalResult {
  switch (expr.kind) {
    case 'number':
      return { ok: true, value: expr.value };
    case 'name': {
      const value = Object.prototype.hasOwnProperty.call(scope, expr.name) ? scope[expr.name] : undefined;
      return value === undefined ? { ok: false, reason: `'${expr.name}' has no value here` } : { ok: true, value };
    }
    case 'negate': {
      const v = evaluate(expr.operand, scope);
      return v.ok ? { ok: true, value: -v.value } : v;
    }
    case 'binary': {
      const l = evaluate(expr.left, scope);
      if (!l.ok) return l;
      const r = evaluate(expr.right, scope);
      if (!r.ok) return r;
      switch (expr.op) {
        case '+':
          return { ok: true, value: l.value + r.value };
        case '-':
          return { ok: true, value: l.value - r.value };
        case '*':
          return { ok: true, value: l.value * r.value };
        case '/':
        case '%':
          if (r.value === 0n) return { ok: false, reason: `division by zero in ${formatExpression(expr)}` };
          return { ok: true, value: expr.op === '/' ? l.value / r.value : l.value % r.value };
      }
    }
  }
}

/**
 * Why an expression can never be evaluated, judged from its parts that use no names (a division
 * by a constant zero, a constant beyond 64 bits), or undefined when no such part fails.
 */
export function constantProblem(expr: Expr): string | undefined {
  if (expr.kind === 'negate') return constantProblem(expr.operand);
  if (expr.kind === 'binary') {
    const inner = constantProblem(expr.left) ?? constantProblem(expr.right);
    if (inner) return inner;
  }
  if (namesIn(expr).length > 0) {
    // A named value cannot rescue a division by a constant zero.
    if (expr.kind === 'binary' && (expr.op === '/' || expr.op === '%') && namesIn(expr.right).length === 0) {
      const divisor = evaluate(expr.right, {});
      if (divisor.ok && divisor.value === 0n) return `division by zero in ${formatExpression(expr)}`;
    }
    return undefined;
  }
  const r = evaluate(expr, {});
  return r.ok ? undefined : r.reason;
}

/** Names an expression refers to. */
export function namesIn(expr: Expr): string[] {
  switch (expr.kind) {
    case 'number':
      return [];
    case 'name':
      return [expr.name];
    case 'negate':
      return namesIn(expr.operand);
    case 'binary':
      return [...namesIn(expr.left), ...namesIn(expr.right)];
  }
}

/** Writes an expression back as text (fully parenthesised binary operations). */
export function formatExpression(expr: Expr): string {
  switch (expr.kind) {
    case 'number':
      return expr.value < 1024n ? expr.value.toString() : `0x${expr.value.toString(16)}`;
    case 'name':
      return expr.name;
    case 'negate':
      return `-${formatExpression(expr.operand)}`;
    case 'binary':
      return `(${formatExpression(expr.left)} ${expr.op} ${formatExpression(expr.right)})`;
  }
}

/** The scope of a configuration: its fields and the derived names. */
export function scopeOfConfig(config: {
  block_size: bigint;
  node_id: number;
  addr: bigint;
  region_size: bigint;
  usable_region_size: bigint;
  plugged_size: bigint;
  requested_size: bigint;
}): ExpressionScope {
  const bs = config.block_size === 0n ? 1n : config.block_size;
  return {
    block_size: config.block_size,
    node_id: BigInt(config.node_id),
    addr: config.addr,
    region_size: config.region_size,
    usable_region_size: config.usable_region_size,
    plugged_size: config.plugged_size,
    requested_size: config.requested_size,
    region_end: config.addr + config.region_size,
    usable_end: config.addr + config.usable_region_size,
    blocks: config.region_size / bs,
    usable_blocks: config.usable_region_size / bs,
    plugged_blocks: config.plugged_size / bs,
    requested_blocks: config.requested_size / bs,
  };
}

// ---------------------------------------------------------------- internals

class ExpressionSyntaxError extends Error {}

type Token =
  | { readonly kind: 'number'; readonly value: bigint; readonly text: string }
  | { readonly kind: 'name' | 'op'; readonly text: string };

function tokenize(source: string): { ok: true; tokens: Token[] } | { ok: false; reason: string } {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i];
    if (ch === ' ' || ch === '\t') {
      i++;
    } else if ('+-*/%()'.includes(ch)) {
      tokens.push({ kind: 'op', text: ch });
      i++;
    } else if (/[0-9]/.test(ch)) {
      const m = /^(?:0x[0-9a-fA-F]*|[0-9]+(?:\s*(?:[kmgtp]i?b?|b)(?![A-Za-z0-9_]))?)/i.exec(source.slice(i));
      const text = m ? m[0] : ch;
      const parsed = parseValue(text.replace(/\s+/g, ''));
      if (!parsed.ok) return { ok: false, reason: `bad number '${text}': ${parsed.reason}` };
      tokens.push({ kind: 'number', value: parsed.value, text });
      i += text.length;
    } else if (/[A-Za-z_]/.test(ch)) {
      const text = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i))![0];
      if (!Object.prototype.hasOwnProperty.call(EXPRESSION_NAMES, text)) {
        return {
          ok: false,
          reason: `unknown name '${text}' in '${source}' (known: ${Object.keys(EXPRESSION_NAMES).join(', ')})`,
        };
      }
      tokens.push({ kind: 'name', text });
      i += text.length;
    } else {
      return { ok: false, reason: `unexpected character '${ch}' in '${source}'` };
    }
  }
  if (tokens.length === 0) return { ok: false, reason: 'empty expression' };
  return { ok: true, tokens };
}

class Parser {
  private pos = 0;
  constructor(private readonly tokens: readonly Token[]) {}

  atEnd(): boolean {
    return this.pos >= this.tokens.length;
  }

  peek(): string {
    return this.tokens[this.pos]?.text ?? 'end';
  }

  parseSum(): Expr {
    let left = this.parseProduct();
    while (this.peek() === '+' || this.peek() === '-') {
      const op = this.tokens[this.pos++].text as '+' | '-';
      left = { kind: 'binary', op, left, right: this.parseProduct() };
    }
    return left;
  }

  private parseProduct(): Expr {
    let left = this.parseUnary();
    while (this.peek() === '*' || this.peek() === '/' || this.peek() === '%') {
      const op = this.tokens[this.pos++].text as '*' | '/' | '%';
      left = { kind: 'binary', op, left, right: this.parseUnary() };
    }
    return left;
  }

  private parseUnary(): Expr {
    if (this.peek() === '-') {
      this.pos++;
      return { kind: 'negate', operand: this.parseUnary() };
    }
    return this.parseAtom();
  }

  private parseAtom(): Expr {
    const token = this.tokens[this.pos];
    if (!token) throw new ExpressionSyntaxError('expression ends too early');
    this.pos++;
    if (token.kind === 'number') return { kind: 'number', value: token.value };
    if (token.kind === 'name') return { kind: 'name', name: token.text };
    if (token.text === '(') {
      const inner = this.parseSum();
      if (this.peek() !== ')') throw new ExpressionSyntaxError("missing ')'");
      this.pos++;
      return inner;
    }
    throw new ExpressionSyntaxError(`unexpected '${token.text}'`);
  }
}
