import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readResultsInput } from './results-file';

describe('readResultsInput', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-results-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (text: string): string => {
    const file = path.join(dir, 'results.json');
    fs.writeFileSync(file, text);
    return file;
  };

  test('a file that is not JSON is a problem at its line', () => {
    const file = write('{\n  "format": "vmemct-results/1",\n  oops\n}\n');
    const r = readResultsInput(file);
    expect(r).toMatchObject({
      kind: 'problems',
      problems: [{ file, line: 3, reason: expect.stringMatching(/^not valid JSON/) }],
    });
  });

  test('a file that breaks the results schema is a problem at the line of the bad value', () => {
    const file = write('{\n  "format": "vmemct-results/1",\n  "results": [\n    null\n  ]\n}\n');
    const r = readResultsInput(file);
    expect(r.kind).toBe('problems');
    if (r.kind === 'problems') {
      expect(r.problems.length).toBeGreaterThan(0);
      expect(r.problems.every((p) => p.file === file && p.line >= 1)).toBe(true);
    }
  });

  test('a FIFO is refused', () => {
    const fifo = path.join(dir, 'pipe.json');
    execFileSync('mkfifo', [fifo]);
    expect(readResultsInput(fifo)).toMatchObject({
      kind: 'problems',
      problems: [{ reason: 'results file is a FIFO (named pipe), not a regular file' }],
    });
  });
});
