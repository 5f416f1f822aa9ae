import { VERDICTS } from '../../../spec/src/index';
import { VERDICT_ORDER, combine, worse } from './verdicts';

describe('verdicts', () => {
  test('VERDICT_ORDER should rank every verdict of the results schema exactly once', () => {
    expect([...VERDICT_ORDER].sort()).toEqual([...VERDICTS].sort());
  });

  test('the worse verdict should win, and no findings should pass', () => {
    expect(worse('pass', 'timeout')).toBe('timeout');
    expect(worse('non-strict', 'acceptable')).toBe('non-strict');
    expect(combine([])).toBe('pass');
  });
});
