/**
 * Progress without a terminal: a line every interval on stderr (also while one long case runs),
 * nothing with --quiet, the rewritten line on a terminal; and the whole `vmemct run` and `record`
 * commands printing those lines.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CliIo } from './main';
import { main } from './main';
import {
  PROGRESS_INTERVAL_VARIABLE,
  formatElapsed,
  progressIntervalMs,
  progressLine,
  progressMode,
  startProgress,
} from './progress';

describe('startProgress', () => {
  afterEach(() => jest.useRealTimers());

  test('lines: one per interval with done/total, elapsed and unexpected so far, none after stop', () => {
    jest.useFakeTimers();
    let clock = 0;
    const written: string[] = [];
    const progress = startProgress({
      mode: 'lines',
      label: 'run',
      noun: 'vectors',
      total: 40,
      write: (t) => written.push(t),
      intervalMs: 5000,
      now: () => clock,
    });
    progress.update({ done: 3, total: 40, unexpected: 0 });
    clock = 4999;
    jest.advanceTimersByTime(4999);
    expect(written).toEqual([]);
    clock = 5000;
    jest.advanceTimersByTime(1);
    expect(written).toEqual(['vmemct: run: 3/40 vectors, 5s elapsed, 0 unexpected\n']);
    // A long case: no update, yet the next interval still prints a line (the log shows the run is alive).
    clock = 10_000;
    jest.advanceTimersByTime(5000);
    expect(written[1]).toBe('vmemct: run: 3/40 vectors, 10s elapsed, 0 unexpected\n');
    progress.update({ done: 39, total: 40, unexpected: 2, last: 'vmem.dev.x' });
    clock = 125_000;
    jest.advanceTimersByTime(5000);
    expect(written[2]).toBe('vmemct: run: 39/40 vectors, 2m05s elapsed, 2 unexpected\n');
    progress.stop();
    jest.advanceTimersByTime(60_000);
    expect(written).toHaveLength(3);
  });

  test('terminal: one line rewritten in place (no newline), cleared at the end', () => {
    let clock = 0;
    const written: string[] = [];
    const progress = startProgress({
      mode: 'terminal',
      label: 'run',
      noun: 'vectors',
      total: 2,
      write: (t) => written.push(t),
      intervalMs: 5000,
      now: () => clock,
    });
    clock = 600;
    progress.update({ done: 1, total: 2, unexpected: 0, last: 'vmem.dev.a' });
    clock = 700;
    progress.update({ done: 2, total: 2, unexpected: 0, last: 'vmem.dev.b' });
    progress.stop();
    expect(written).toHaveLength(2);
    expect(written[0]).toMatch(/^\r\[1\/2\] vmem\.dev\.a +$/);
    expect(written[1]).toBe(`\r${' '.repeat(100)}\r`);
    expect(written.join('')).not.toContain('\n');
  });

  test('none prints nothing', () => {
    jest.useFakeTimers();
    const written: string[] = [];
    const progress = startProgress({
      mode: 'none',
      label: 'run',
      noun: 'vectors',
      total: 2,
      write: (t) => written.push(t),
      intervalMs: 10,
    });
    progress.update({ done: 1, total: 2 });
    jest.advanceTimersByTime(1000);
    progress.stop();
    expect(written).toEqual([]);
  });

  test('the mode: --quiet or an io that does not tell gives none; else by the terminal', () => {
    expect(progressMode({ stderrIsTerminal: false }, false)).toBe('lines');
    expect(progressMode({ stderrIsTerminal: true }, false)).toBe('terminal');
    expect(progressMode({ stderrIsTerminal: false }, true)).toBe('none');
    expect(progressMode({}, false)).toBe('none');
  });

  test('a line without an unexpected count (record) leaves it out; elapsed reads as seconds or minutes', () => {
    expect(progressLine('record', 'vectors', { done: 2, total: 5 }, 3_400)).toBe(
      'vmemct: record: 2/5 vectors, 3s elapsed',
    );
    expect(formatElapsed(59_999)).toBe('59s');
    expect(formatElapsed(60_000)).toBe('1m00s');
  });

  test(`${PROGRESS_INTERVAL_VARIABLE} sets the interval in seconds; a bad value is a usage error naming it`, () => {
    expect(progressIntervalMs({})).toBe(5000);
    expect(progressIntervalMs({ [PROGRESS_INTERVAL_VARIABLE]: '2' })).toBe(2000);
    expect(progressIntervalMs({ [PROGRESS_INTERVAL_VARIABLE]: '0.25' })).toBe(250);
    for (const bad of ['0', 'x', '-1', '1e3', '100000'])
      expect(() => progressIntervalMs({ [PROGRESS_INTERVAL_VARIABLE]: bad })).toThrow(
        `${PROGRESS_INTERVAL_VARIABLE} must be a number of seconds from 0.01 to 86400 (got '${bad}')`,
      );
  });
});

describe('vmemct run and record without a terminal', () => {
  const saved = process.env[PROGRESS_INTERVAL_VARIABLE];
  beforeEach(() => {
    // A line every 10 ms: a run of a few dozen vectors prints several.
    process.env[PROGRESS_INTERVAL_VARIABLE] = '0.01';
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[PROGRESS_INTERVAL_VARIABLE];
    else process.env[PROGRESS_INTERVAL_VARIABLE] = saved;
  });

  async function run(stderrIsTerminal: boolean | undefined, ...argv: string[]) {
    let stdout = '';
    let stderr = '';
    const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), stderrIsTerminal };
    const code = await main(argv, io);
    return { code, stdout, stderr };
  }

  const PROGRESS = /^vmemct: run: (\d+)\/(\d+) vectors, \d+s elapsed, (\d+) unexpected$/;

  test('run prints progress lines on stderr, the report on stdout unchanged', async () => {
    const lines = await run(false, 'run', '--target', 'device');
    const quiet = await run(false, 'run', '--target', 'device', '--quiet');
    expect(lines.code).toBe(0);
    const untimed = (text: string): string => text.replace(/; \d+ ms;/, '; N ms;');
    expect(untimed(lines.stdout)).toBe(untimed(quiet.stdout));
    const progress = lines.stderr.split('\n').filter((l) => l !== '');
    expect(progress.length).toBeGreaterThan(0);
    for (const line of progress) expect(line).toMatch(PROGRESS);
    const counts = progress.map((l) => Number(PROGRESS.exec(l)![1]));
    expect([...counts].sort((a, b) => a - b)).toEqual(counts);
    const total = Number(PROGRESS.exec(progress[0])![2]);
    expect(lines.stdout).toContain(`${total} vectors`);
    expect(quiet.stderr).toBe('');
  });

  test('run counts unexpected results as they come (a profile with known deviations, no expectations)', async () => {
    const r = await run(false, 'run', '--target', 'device', '--profile', 'firecracker');
    expect(r.code).toBe(1);
    const last = r.stderr.trim().split('\n').at(-1)!;
    expect(Number(PROGRESS.exec(last)![3])).toBeGreaterThan(0);
  });

  test('on a terminal run keeps the line rewritten in place; with TAP on a terminal, no progress', async () => {
    const r = await run(true, 'run', '--target', 'device');
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(PROGRESS);
    expect(r.stderr.endsWith(`\r${' '.repeat(100)}\r`)).toBe(true);
    expect((await run(true, 'run', '--target', 'device', '--reporter', 'tap')).stderr).toBe('');
  });

  test('record prints progress lines (no unexpected count); --quiet none', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-progress-'));
    try {
      const argv = ['record', '--ops', '3000', '--ops-per-vector', '50', '--out', path.join(dir, 'r.yaml')];
      const lines = await run(false, ...argv);
      expect(lines.code).toBe(0);
      const progress = lines.stderr.split('\n').filter((l) => l !== '');
      expect(progress.length).toBeGreaterThan(0);
      for (const line of progress) expect(line).toMatch(/^vmemct: record: \d+\/60 vectors, \d+s elapsed$/);
      expect((await run(false, ...argv, '--quiet')).stderr).toBe('');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
