/**
 * A Jest reporter for the slow suites (QEMU, live guest): when stderr is not a terminal (a CI log),
 * a line when a test file starts, a line per finished test with its time, and every interval a
 * line naming the test still running and for how long, so a log never stays silent for minutes.
 * On a terminal it prints nothing (Jest's own display shows what runs). The interval is
 * VMEMCT_PROGRESS_INTERVAL seconds (default 15); the options `write`, `now` and `always` are for tests.
 */
const path = require('node:path');

/** Seconds as `42s` or `3m05s`. */
function elapsed(ms) {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

class ProgressReporter {
  constructor(globalConfig, options = {}) {
    this.rootDir = (globalConfig && globalConfig.rootDir) || process.cwd();
    const seconds = Number(process.env.VMEMCT_PROGRESS_INTERVAL || options.intervalSeconds || 15);
    this.intervalMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 15_000;
    this.write = options.write || ((text) => process.stderr.write(text));
    this.now = options.now || Date.now;
    this.enabled = options.always === true || process.stderr.isTTY !== true;
    this.done = 0;
    this.failed = 0;
  }

  line(text) {
    if (this.enabled) this.write(`[jest ${elapsed(this.now() - this.started)}] ${text}\n`);
  }

  onRunStart() {
    this.started = this.now();
    if (!this.enabled) return;
    this.timer = setInterval(() => this.heartbeat(), this.intervalMs);
    this.timer.unref();
  }

  onTestFileStart(test) {
    this.file = path.relative(this.rootDir, test.path);
    this.fileStarted = this.now();
    this.line(`${this.file}: started`);
  }

  onTestCaseStart(_test, info) {
    this.current = info.fullName;
    this.caseStarted = this.now();
  }

  onTestCaseResult(_test, result) {
    this.done++;
    if (result.status === 'failed') this.failed++;
    const time = typeof result.duration === 'number' ? ` (${(result.duration / 1000).toFixed(1)} s)` : '';
    this.line(`${result.status}: ${result.fullName}${time}; ${this.done} done, ${this.failed} failed`);
    this.current = undefined;
  }

  onTestFileResult(test) {
    this.line(`${path.relative(this.rootDir, test.path)}: finished`);
    this.file = undefined;
  }

  heartbeat() {
    if (this.current !== undefined)
      this.line(`still running: ${this.current} (${elapsed(this.now() - this.caseStarted)})`);
    else if (this.file !== undefined)
      this.line(`still running: ${this.file}, outside a test (${elapsed(this.now() - this.fileStarted)})`);
  }

  onRunComplete() {
    if (this.timer) clearInterval(this.timer);
  }

  getLastError() {
    return undefined;
  }
}

module.exports = ProgressReporter;
