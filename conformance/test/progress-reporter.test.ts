/**
 * The slow suites' Jest reporter: file and test lines and a heartbeat naming the test still
 * running, only without a terminal; and the QEMU and live-guest configurations use it.
 */
import * as path from 'node:path';

interface Reporter {
  onRunStart(): void;
  onTestFileStart(test: { path: string }): void;
  onTestCaseStart(test: { path: string }, info: { fullName: string }): void;
  onTestCaseResult(test: { path: string }, result: { fullName: string; status: string; duration?: number }): void;
  onTestFileResult(test: { path: string }): void;
  onRunComplete(): void;
}

type ReporterClass = new (
  globalConfig: { rootDir: string },
  options: { write?: (t: string) => void; now?: () => number; always?: boolean; intervalSeconds?: number },
) => Reporter;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ProgressReporter = require('./progress-reporter') as ReporterClass;

const ROOT = path.resolve(__dirname, '..', '..');

describe('the progress reporter of the slow suites', () => {
  const saved = process.env.VMEMCT_PROGRESS_INTERVAL;
  beforeEach(() => {
    delete process.env.VMEMCT_PROGRESS_INTERVAL;
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
    if (saved !== undefined) process.env.VMEMCT_PROGRESS_INTERVAL = saved;
  });

  test('prints file starts, each result, and every interval the test still running', () => {
    let clock = 1_000_000;
    const lines: string[] = [];
    const r = new ProgressReporter(
      { rootDir: ROOT },
      { write: (t) => lines.push(t), now: () => clock, always: true, intervalSeconds: 15 },
    );
    const file = { path: path.join(ROOT, 'adapters', 'ssh-guest', 'test', 'guest.guest-test.ts') };
    r.onRunStart();
    r.onTestFileStart(file);
    r.onTestCaseStart(file, { fullName: 'the driver passes the corpus' });
    clock += 15_000;
    jest.advanceTimersByTime(15_000);
    clock += 15_000;
    jest.advanceTimersByTime(15_000);
    clock += 62_000;
    r.onTestCaseResult(file, { fullName: 'the driver passes the corpus', status: 'passed', duration: 92_000 });
    clock += 1_000;
    r.onTestCaseResult(file, { fullName: 'a fault', status: 'failed', duration: 1_000 });
    r.onTestFileResult(file);
    r.onRunComplete();
    jest.advanceTimersByTime(60_000);
    expect(lines).toEqual([
      '[jest 0s] adapters/ssh-guest/test/guest.guest-test.ts: started\n',
      '[jest 15s] still running: the driver passes the corpus (15s)\n',
      '[jest 30s] still running: the driver passes the corpus (30s)\n',
      '[jest 1m32s] passed: the driver passes the corpus (92.0 s); 1 done, 0 failed\n',
      '[jest 1m33s] failed: a fault (1.0 s); 2 done, 1 failed\n',
      '[jest 1m33s] adapters/ssh-guest/test/guest.guest-test.ts: finished\n',
    ]);
  });

  test('between tests (a beforeAll building the guest) the heartbeat names the file', () => {
    let clock = 0;
    const lines: string[] = [];
    const r = new ProgressReporter(
      { rootDir: ROOT },
      { write: (t) => lines.push(t), now: () => clock, always: true, intervalSeconds: 10 },
    );
    const file = { path: path.join(ROOT, 'x.qemu-test.ts') };
    r.onRunStart();
    r.onTestFileStart(file);
    clock = 10_000;
    jest.advanceTimersByTime(10_000);
    r.onRunComplete();
    expect(lines[1]).toBe('[jest 10s] still running: x.qemu-test.ts, outside a test (10s)\n');
  });

  test('VMEMCT_PROGRESS_INTERVAL sets the heartbeat', () => {
    process.env.VMEMCT_PROGRESS_INTERVAL = '2';
    const lines: string[] = [];
    const r = new ProgressReporter({ rootDir: ROOT }, { write: (t) => lines.push(t), always: true });
    r.onRunStart();
    r.onTestFileStart({ path: path.join(ROOT, 'a.ts') });
    jest.advanceTimersByTime(6_000);
    r.onRunComplete();
    expect(lines.filter((l) => l.includes('still running'))).toHaveLength(3);
  });

  test.each(['jest.qemu.config.js', 'jest.guest.config.js'])('%s keeps the default reporter and adds it', (config) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const loaded = require(path.join(ROOT, config)) as { reporters: unknown[] };
    expect(loaded.reporters).toEqual(['default', '<rootDir>/conformance/test/progress-reporter.js']);
  });
});
