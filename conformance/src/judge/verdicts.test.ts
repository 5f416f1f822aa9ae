import { VERDICTS } from '../../../spec/src/index';
import { Finding, VERDICT_ORDER, Verdict, combine, vectorVerdict, worse } from './verdicts';

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

describe('vectorVerdict', () => {
  const BAD = 'bad-vector';
  const finding = (verdict: Verdict, step: number, check = 'response'): Finding => ({
    verdict,
    step,
    check,
    message: '',
  });

  test('an error at or after a failed step is its consequence: fail', () => {
    expect(vectorVerdict([finding('fail', 2), finding('error', 3, 'adapter')], BAD)).toBe('fail');
    expect(vectorVerdict([finding('fail', 0), finding('error', 0, 'oracle')], BAD)).toBe('fail');
  });

  test('an error before any failure, or an error in the vector file, stays an error', () => {
    expect(vectorVerdict([finding('error', 1, 'adapter'), finding('fail', 2)], BAD)).toBe('error');
    expect(vectorVerdict([finding('error', 3, 'adapter')], BAD)).toBe('error');
    expect(vectorVerdict([finding('fail', 1), finding('error', 2, BAD)], BAD)).toBe('error');
  });

  test('without an error it is the worst finding', () => {
    expect(vectorVerdict([finding('non-strict', 1), finding('fail', 2)], BAD)).toBe('fail');
    expect(vectorVerdict([finding('timeout', 3), finding('fail', 1)], BAD)).toBe('timeout');
    expect(vectorVerdict([], BAD)).toBe('pass');
  });
});
