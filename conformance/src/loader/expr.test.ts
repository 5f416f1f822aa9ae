import * as fc from 'fast-check';
import {
  EXPRESSION_NAMES,
  Expr,
  ExpressionScope,
  evaluate,
  formatExpression,
  namesIn,
  parseExpression,
  scopeOfConfig,
} from './expr';

const MiB = 1n << 20n;
const GiB = 1n << 30n;

const SCOPE: ExpressionScope = scopeOfConfig({
  block_size: 2n * MiB,
  node_id: 3,
  addr: 4n * GiB,
  region_size: 1n * GiB,
  usable_region_size: 128n * MiB,
  plugged_size: 0n,
  requested_size: 64n * MiB,
});

/** Parses and evaluates; throws when either fails. */
function value(source: string | number | bigint, scope: ExpressionScope = SCOPE): bigint {
  const parsed = parseExpression(source);
  if (!parsed.ok) throw new Error(`parse failed: ${parsed.reason}`);
  const r = evaluate(parsed.expr, scope);
  if (!r.ok) throw new Error(`evaluation failed: ${r.reason}`);
  return r.value;
}

function parseError(source: string | number | bigint): string {
  const parsed = parseExpression(source);
  if (parsed.ok) throw new Error(`'${String(source)}' parsed as ${formatExpression(parsed.expr)}`);
  return parsed.reason;
}

describe('parseExpression / evaluate: arithmetic', () => {
  test.each([
    ['1 + 2 * 3', 7n],
    ['2 * 3 + 1', 7n],
    ['(1 + 2) * 3', 9n],
    ['10 - 4 - 3', 3n], // left associative
    ['100 / 10 / 5', 2n],
    ['2 * (3 + 4) * 5', 70n],
    ['((((7))))', 7n],
    ['7 / 2', 3n], // truncating
    ['-7 / 2', -3n], // truncates toward zero, like bigint division
    ['7 % 3', 1n],
    ['-7 % 3', -1n],
    ['1 + 6 % 4', 3n], // % binds like *
    ['8 - 6 / 2', 5n],
  ])('%s = %s', (src, expected) => {
    expect(value(src)).toBe(expected);
  });

  test.each([
    ['-5', -5n],
    ['--5', 5n],
    ['- - 5', 5n],
    ['-2 * 3', -6n],
    ['2 * -3', -6n],
    ['2 - -1', 3n],
    ['-(1 + 2)', -3n],
    ['-block_size', -2n * MiB],
    ['1 - -(-2)', -1n],
  ])('unary minus: %s = %s', (src, expected) => {
    expect(value(src)).toBe(expected);
  });

  test('unary minus binds tighter than * and the parse tree shows it', () => {
    const parsed = parseExpression('-2 * 3');
    expect(parsed.ok && parsed.expr).toEqual({
      kind: 'binary',
      op: '*',
      left: { kind: 'negate', operand: { kind: 'number', value: 2n } },
      right: { kind: 'number', value: 3n },
    });
  });

  test('* binds tighter than + in the parse tree', () => {
    const parsed = parseExpression('1 + 2 * 3');
    expect(parsed.ok && formatExpression(parsed.expr)).toBe('(1 + (2 * 3))');
  });

  test('whitespace (spaces and tabs) is insignificant', () => {
    expect(value('\t1+2 *\t3 ')).toBe(7n);
    expect(value('addr+block_size')).toBe(4n * GiB + 2n * MiB);
  });
});

describe('numbers and units', () => {
  test.each([
    ['2MiB', 2n * MiB],
    ['2 MiB', 2n * MiB],
    ['2mib', 2n * MiB],
    ['2M', 2n * MiB],
    ['2MB', 2n * MiB], // powers of 1024, as in QEMU
    ['4k', 4096n],
    ['4KiB', 4096n],
    ['1GiB', GiB],
    ['1T', 1n << 40n],
    ['1PiB', 1n << 50n],
    ['512B', 512n],
    ['0x10', 16n],
    ['0X10', 16n],
    ['0xfF', 255n],
    ['0', 0n],
    ['007', 7n],
    ['18446744073709551615', (1n << 64n) - 1n],
    ['0xffffffffffffffff', (1n << 64n) - 1n],
  ])('%s = %s', (src, expected) => {
    expect(value(src)).toBe(expected);
  });

  test('units inside larger expressions', () => {
    expect(value('usable_region_size - 2MiB')).toBe(126n * MiB);
    expect(value('4k*2')).toBe(8192n);
    expect(value('2MiB/4k')).toBe(512n);
    expect(value('(1GiB - 4k) / 0x1000')).toBe(GiB / 4096n - 1n);
  });

  test('YAML numbers and bigints are taken as they are', () => {
    expect(value(42)).toBe(42n);
    expect(value(-3)).toBe(-3n);
    expect(value(Number.MAX_SAFE_INTEGER)).toBe(BigInt(Number.MAX_SAFE_INTEGER));
    expect(value(1n << 63n)).toBe(1n << 63n);
  });

  test('numbers beyond 2^53 given as numbers are refused (they may have lost bits); as strings they are exact', () => {
    expect(parseError(2 ** 53)).toMatch(/not an integer that can be represented exactly; write it as a string/);
    expect(parseError(2 ** 64)).toMatch(/represented exactly/);
    expect(parseError(-(2 ** 53))).toMatch(/represented exactly/);
    expect(parseError(1.5)).toMatch(/represented exactly/);
    expect(value('9007199254740993')).toBe(9007199254740993n);
  });

  test('bad numbers and unknown units are refused', () => {
    expect(parseError('0x')).toMatch(/bad number '0x'/);
    expect(parseError('0xg1')).toMatch(/bad number/);
    expect(parseError('2MiBs')).toMatch(/unknown name 'MiBs'/); // a unit glued to more letters is no unit
    expect(parseError('2x')).toMatch(/unknown name 'x'/);
    expect(parseError('0x10MiB')).toMatch(/unknown name 'MiB'/); // hex takes no unit
  });
});

describe('names', () => {
  test('every name of EXPRESSION_NAMES parses and evaluates from scopeOfConfig', () => {
    for (const name of Object.keys(EXPRESSION_NAMES)) {
      expect(SCOPE[name]).toBeDefined();
      expect(value(name)).toBe(SCOPE[name]);
    }
  });

  test('derived names', () => {
    expect(value('region_end')).toBe(5n * GiB);
    expect(value('usable_end')).toBe(4n * GiB + 128n * MiB);
    expect(value('blocks')).toBe(512n);
    expect(value('usable_blocks')).toBe(64n);
    expect(value('requested_blocks')).toBe(32n);
    expect(value('plugged_blocks')).toBe(0n);
    expect(value('node_id')).toBe(3n);
  });

  test('an unknown name is refused at parse time, naming it and the known names', () => {
    const reason = parseError('addr + bogus');
    expect(reason).toContain("unknown name 'bogus'");
    expect(reason).toContain('block_size');
    expect(parseError('Addr')).toContain("unknown name 'Addr'"); // names are case-sensitive
    expect(parseError('region')).toContain("unknown name 'region'");
    // Object.prototype names ('constructor', '__proto__', 'toString') are not checked here: the
    // tokenizer uses `text in EXPRESSION_NAMES`, which accepts them (a known bug, reported).
  });

  test('a known name without a value in the scope fails at evaluation', () => {
    const parsed = parseExpression('plugged_size + 1');
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const r = evaluate(parsed.expr, { block_size: 1n });
    expect(r).toEqual({ ok: false, reason: "'plugged_size' has no value here" });
  });

  test('namesIn lists the names used, in order', () => {
    const parsed = parseExpression('addr + 2 * (block_size - -usable_end) % addr');
    expect(parsed.ok && namesIn(parsed.expr)).toEqual(['addr', 'block_size', 'usable_end', 'addr']);
  });
});

describe('syntax errors', () => {
  test.each([
    ['addr & 1', "unexpected character '&'"],
    ['1.5', "unexpected character '.'"],
    ['addr; 1', "unexpected character ';'"],
    ['$addr', "unexpected character '$'"],
    ['1 ** 2', "unexpected '*'"],
    ['1 +', 'expression ends too early'],
    ['(1 + 2', "missing ')'"],
    ['1 + 2)', "unexpected ')'"],
    ['()', "unexpected ')'"],
    ['1 2', "unexpected '2'"],
    ['addr block_size', "unexpected 'block_size'"],
    ['*3', "unexpected '*'"],
    ['', 'empty expression'],
    ['   ', 'empty expression'],
  ])('%j → %s', (src, reason) => {
    expect(parseError(src)).toContain(reason);
  });

  test('the 200-character limit', () => {
    const exactly200 = `${'1 + '.repeat(49)}1`.padEnd(200, ' ');
    expect(exactly200.length).toBe(200);
    expect(value(exactly200)).toBe(50n);
    expect(parseError(`${exactly200} `)).toBe('expression longer than 200 characters');
    expect(parseError('1'.repeat(201))).toMatch(/longer than 200/);
  });
});

describe('evaluation errors', () => {
  test.each(['block_size / 0', 'block_size % 0', '1 / (2 - 2)', 'addr / plugged_size', '5 % plugged_blocks'])(
    '%s: division by zero is an evaluation error, not a parse error',
    (src) => {
      const parsed = parseExpression(src);
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) return;
      const r = evaluate(parsed.expr, SCOPE);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.reason).toMatch(/^division by zero in /);
    },
  );

  test('an error deep inside propagates', () => {
    const parsed = parseExpression('-(1 + 2 * (3 / 0))');
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(evaluate(parsed.expr, SCOPE).ok).toBe(false);
  });
});

describe('formatExpression', () => {
  test('numbers below 1024 print in decimal, others in hex; binaries are fully parenthesised', () => {
    const parsed = parseExpression('addr + 2MiB * -3 - 1023');
    expect(parsed.ok && formatExpression(parsed.expr)).toBe('((addr + (0x200000 * -3)) - 1023)');
  });

  test('round trips: format → parse gives the same tree', () => {
    for (const src of ['-(addr + 1)', '--block_size', '1 - -2', '(blocks) % 7', '0x10000000000000000 / 3']) {
      const first = parseExpression(src);
      expect(first.ok).toBe(true);
      if (!first.ok) continue;
      const again = parseExpression(formatExpression(first.expr));
      expect(again).toEqual({ ok: true, expr: first.expr });
    }
  });

  const NAMES = Object.keys(EXPRESSION_NAMES);
  const OPS = ['+', '-', '*', '/', '%'] as const;
  const { tree } = fc.letrec<{ tree: Expr }>((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.record({
        kind: fc.constant('number' as const),
        value: fc.oneof(fc.bigInt(0n, 2000n), fc.bigInt(0n, (1n << 64n) - 1n)),
      }),
      fc.record({ kind: fc.constant('name' as const), name: fc.constantFrom(...NAMES) }),
      fc.record({ kind: fc.constant('negate' as const), operand: tie('tree') }),
      fc.record({
        kind: fc.constant('binary' as const),
        op: fc.constantFrom(...OPS),
        left: tie('tree'),
        right: tie('tree'),
      }),
    ),
  }));
  const scopeArb = fc.record(
    Object.fromEntries(
      NAMES.map((n) => [n, fc.oneof(fc.constant(0n), fc.bigInt(0n, 1n << 40n), fc.bigInt(0n, (1n << 64n) - 1n))]),
    ),
  );

  test('property: random expression trees → format → parse → evaluate equal', () => {
    fc.assert(
      fc.property(tree, scopeArb, (expr, scope) => {
        const text = formatExpression(expr);
        fc.pre(text.length <= 200);
        const parsed = parseExpression(text);
        if (!parsed.ok) throw new Error(`'${text}' did not parse: ${parsed.reason}`);
        expect(parsed.expr).toEqual(expr);
        expect(formatExpression(parsed.expr)).toBe(text);
        expect(evaluate(parsed.expr, scope)).toEqual(evaluate(expr, scope));
      }),
      { numRuns: 500 },
    );
  });
});
