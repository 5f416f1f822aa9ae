import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyKnownDeviations, loadExpectations } from './expectations';

describe('known deviations in an expectation file', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-known-')), 'e.yaml');
  fs.writeFileSync(
    file,
    [
      'format: vmemct-expectations/1',
      'implementation: X',
      'known_deviations:',
      '  - check: config_generation',
      '    verdict: informational',
      '    reason: the generation only changes with a notification',
      'entries: []',
      '',
    ].join('\n'),
  );

  test('load with their line, and regrade only findings of their check', () => {
    const { set, problems } = loadExpectations(file);
    expect(problems).toEqual([]);
    expect(set!.knownDeviations).toMatchObject([{ check: 'config_generation', verdict: 'informational', line: 4 }]);
    const findings = [
      { verdict: 'fail' as const, step: 1, check: 'config_generation', message: 'm' },
      { verdict: 'fail' as const, step: 2, check: 'response', message: 'r' },
    ];
    const out = applyKnownDeviations(set, findings);
    expect(out[0]).toMatchObject({ verdict: 'informational', check: 'config_generation' });
    expect(out[0]!.message).toContain('known deviation');
    expect(out[1]).toBe(findings[1]);
  });

  test('leave the findings alone when nothing applies', () => {
    const { set } = loadExpectations(file);
    const findings = [{ verdict: 'fail' as const, step: 1, check: 'response', message: 'r' }];
    expect(applyKnownDeviations(set, findings)).toBe(findings);
    expect(applyKnownDeviations(undefined, findings)).toBe(findings);
  });

  test('grade only failing findings: an error of the same check stays an error', () => {
    const { set } = loadExpectations(file);
    const findings = [{ verdict: 'error' as const, step: 1, check: 'config_generation', message: 'unreadable' }];
    expect(applyKnownDeviations(set, findings)).toEqual(findings);
  });

  test('refuse a known deviation graded pass (it would hide the finding), naming file, line and field', () => {
    const bad = path.join(path.dirname(file), 'pass.yaml');
    fs.writeFileSync(
      bad,
      [
        'format: vmemct-expectations/1',
        'implementation: X',
        'known_deviations:',
        '  - check: response',
        '    verdict: pass',
        '    reason: every answer is fine by us',
        'entries: []',
        '',
      ].join('\n'),
    );
    const { set, problems } = loadExpectations(bad);
    expect(set).toBeUndefined();
    expect(problems).toEqual([expect.objectContaining({ file: bad, line: 5, field: 'known_deviations[0].verdict' })]);
  });
});
