import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExpectationEntry, ExpectationSet, loadExpectations } from './expectations';
import {
  PLACEHOLDER_REASON,
  reviewReason,
  updateExpectations,
  updateSummary,
  verdictBeyondKnownDeviations,
} from './write-expectations';

const corpus = ['a.one', 'a.two', 'b.glob.x', 'b.glob.y', 'c.moved', 'd.fixed', 'e.not-run', 'f.new', 'g.ok'].map(
  (id) => ({ id }),
);

function entry(pattern: string, verdict: ExpectationEntry['verdict'], extra: Partial<ExpectationEntry> = {}) {
  return {
    pattern,
    verdict,
    reason: `because of ${pattern}`,
    maxMatches: pattern.includes('*') ? 20 : 1,
    line: 1,
    ...extra,
  };
}

const previous: ExpectationSet = {
  file: 'x.yaml',
  implementation: 'Impl 1',
  description: 'hand written\n',
  knownDeviations: [{ check: 'config_generation', verdict: 'informational', reason: 'known everywhere', line: 3 }],
  entries: [
    entry('a.one', 'informational', { link: 'https://example.org/a' }),
    entry('b.glob.*', 'acceptable', { maxMatches: 2 }),
    entry('c.moved', 'informational'),
    entry('d.fixed', 'fail'),
    entry('e.not-run', 'unsupported'),
    entry('gone.vector', 'fail'),
  ],
};

describe('updateExpectations', () => {
  test('a first write lists every result that is not a plain pass, with the placeholder, sorted by id', () => {
    const update = updateExpectations({
      implementation: 'Impl 1.2',
      results: [
        { id: 'g.ok', verdict: 'pass' },
        { id: 'f.new', verdict: 'fail' },
        { id: 'a.two', verdict: 'non-strict' },
      ],
      corpus,
    });
    expect(update.entries).toEqual([
      { id: 'a.two', verdict: 'non-strict', reason: PLACEHOLDER_REASON },
      { id: 'f.new', verdict: 'fail', reason: PLACEHOLDER_REASON },
    ]);
    expect(update.added).toEqual(['a.two', 'f.new']);
    expect(update.text).toContain('implementation: Impl 1.2\n');
    expect(update.text).not.toContain('known_deviations');
  });

  test('an update keeps matching entries, marks moved verdicts, adds new ones and drops stale ones', () => {
    const update = updateExpectations({
      implementation: 'Impl 1.2 (build 7)',
      previous,
      results: [
        { id: 'a.one', verdict: 'informational' },
        { id: 'b.glob.x', verdict: 'acceptable' },
        { id: 'b.glob.y', verdict: 'acceptable' },
        { id: 'c.moved', verdict: 'fail' },
        { id: 'd.fixed', verdict: 'pass' },
        { id: 'f.new', verdict: 'timeout' },
        { id: 'g.ok', verdict: 'pass' },
      ],
      corpus,
    });
    expect(update.entries).toEqual([
      { id: 'a.one', verdict: 'informational', reason: 'because of a.one', link: 'https://example.org/a' },
      { id: 'b.glob.*', verdict: 'acceptable', reason: 'because of b.glob.*', maxMatches: 2 },
      { id: 'c.moved', verdict: 'fail', reason: 'TODO: review, was informational: because of c.moved' },
      // Did not run: its entry stays as it was.
      { id: 'e.not-run', verdict: 'unsupported', reason: 'because of e.not-run' },
      { id: 'f.new', verdict: 'timeout', reason: PLACEHOLDER_REASON },
    ]);
    expect(update.added).toEqual(['f.new']);
    expect(update.changed).toEqual([{ id: 'c.moved', from: 'informational', to: 'fail' }]);
    expect(update.removed).toEqual(['d.fixed', 'gone.vector']);
    expect(update.kept).toBe(3);
    // The previous name is kept (the adapter's starts with it), and so are description and known deviations.
    expect(update.text).toContain('implementation: Impl 1\n');
    expect(update.text).toContain('hand written');
    expect(update.text).toContain('check: config_generation');
    const summary = updateSummary('x.yaml', update);
    expect(summary).toContain('x.yaml: 5 entries; 1 added, 1 changed, 2 removed, 3 kept');
    expect(summary).toContain('  ~ c.moved: informational -> fail');
    expect(summary).toContain('  - gone.vector');
    expect(summary).toContain('harness error or timeout (f.new)');
  });

  test('a glob that no longer says one thing of every vector is split into entries per vector', () => {
    const update = updateExpectations({
      implementation: 'Impl 1',
      previous: { ...previous, entries: [entry('b.glob.*', 'acceptable')] },
      results: [
        { id: 'b.glob.x', verdict: 'pass' },
        { id: 'b.glob.y', verdict: 'informational' },
      ],
      corpus,
    });
    expect(update.entries).toEqual([
      { id: 'b.glob.y', verdict: 'informational', reason: 'TODO: review, was acceptable: because of b.glob.*' },
    ]);
    expect(update.removed).toEqual(['b.glob.*']);
  });

  test('a case the adapter could not run keeps an entry describing a deviation; a pass pin moves', () => {
    const update = updateExpectations({
      implementation: 'Impl 1',
      previous: { ...previous, entries: [entry('d.fixed', 'fail'), entry('g.ok', 'pass')] },
      results: [
        { id: 'd.fixed', verdict: 'unsupported' },
        { id: 'g.ok', verdict: 'unsupported' },
      ],
      corpus,
    });
    expect(update.entries).toEqual([
      { id: 'd.fixed', verdict: 'fail', reason: 'because of d.fixed' },
      { id: 'g.ok', verdict: 'unsupported', reason: 'TODO: review, was pass: because of g.ok' },
    ]);
    expect(update.removed).toEqual([]);
  });

  test('a reason marked for review twice carries one mark, naming the latest verdict', () => {
    expect(reviewReason('fail', reviewReason('informational', 'the cause'))).toBe('TODO: review, was fail: the cause');
  });

  test('the written file loads as an expectation file and writing it again changes nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-write-exp-'));
    try {
      const results = [
        { id: 'a.one', verdict: 'informational' as const },
        { id: 'c.moved', verdict: 'fail' as const },
        { id: 'f.new', verdict: 'non-strict' as const },
      ];
      const first = updateExpectations({ implementation: 'Impl 1', previous, results, corpus });
      const file = path.join(dir, 'e.yaml');
      fs.writeFileSync(file, first.text);
      const loaded = loadExpectations(file);
      expect(loaded.problems).toEqual([]);
      expect(loaded.set!.entries.map((e) => [e.pattern, e.verdict])).toEqual(
        first.entries.map((e) => [e.id, e.verdict]),
      );
      expect(loaded.set!.knownDeviations!.map((d) => d.check)).toEqual(['config_generation']);
      const second = updateExpectations({ implementation: 'Impl 1', previous: loaded.set, results, corpus });
      expect(second.text).toBe(first.text);
      expect([second.added, second.changed, second.removed]).toEqual([[], [], []]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a vector whose only deviations are known deviations needs no entry; the known deviations of the run are written', () => {
    const known = previous.knownDeviations!;
    expect(
      verdictBeyondKnownDeviations('informational', [{ check: 'config_generation', verdict: 'informational' }], known),
    ).toBe('pass');
    expect(
      verdictBeyondKnownDeviations(
        'informational',
        [
          { check: 'config_generation', verdict: 'informational' },
          { check: 'response', verdict: 'informational' },
        ],
        known,
      ),
    ).toBe('informational');
    // A failing finding of the check (a graded one would be informational) is not covered.
    expect(verdictBeyondKnownDeviations('fail', [{ check: 'config_generation', verdict: 'fail' }], known)).toBe('fail');
    const fresh = updateExpectations({
      implementation: 'Impl 1',
      knownDeviations: known,
      results: [{ id: 'f.new', verdict: 'fail' }],
      corpus,
    });
    expect(fresh.text).toContain('known_deviations:\n  - check: config_generation\n    verdict: informational\n');
  });
});
