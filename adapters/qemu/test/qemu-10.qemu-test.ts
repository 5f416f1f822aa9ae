/**
 * QEMU 10.0 beside the installed 7.2: fetched from Debian's backports suite by `vmemct qemu
 * fetch`, started with its own firmware and modules, and judged with its own expectation file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createQemuAdapter } from '../src/qemu-adapter';
import { runVectors } from '../../../conformance/src/runner/run';
import { loadExpectations } from '../../../conformance/src/runner/expectations';
import { fetchQemu, readFetchedQemu } from '../../qemu-platform/src/index';
import { ROOT, SMALL_DEVICE, alive, deviceVectors, locateQemu10 } from './qemu-test-support';

const QEMU10 = locateQemu10();
const TREE = path.dirname(path.dirname(path.dirname(QEMU10.path)));

test('the fetched binary is QEMU 10.0.2 and runs with its own data folders and modules', async () => {
  expect(QEMU10.version).toBe('10.0.2');
  expect(QEMU10.launch.dataDirs).toEqual([path.join(TREE, 'usr/share/qemu'), path.join(TREE, 'usr/share/seabios')]);
  expect(QEMU10.launch.environment).toEqual({ QEMU_MODULE_DIR: path.join(TREE, 'usr/lib/x86_64-linux-gnu/qemu') });
  const started: number[] = [];
  const adapter = createQemuAdapter({ located: QEMU10, onStart: (pid) => started.push(pid!) });
  expect(adapter.info.implementation).toBe('QEMU 10.0.2');
  expect(adapter.info.location).toBe(QEMU10.path);
  const session = await adapter.openDevice(SMALL_DEVICE);
  // The running QEMU (setpriv execs it under the same pid) got the -L folders first and the module folder.
  const argv = fs.readFileSync(`/proc/${started[0]}/cmdline`, 'utf8').split('\0');
  const binaryAt = argv.indexOf(QEMU10.path);
  expect(argv.slice(binaryAt + 1, binaryAt + 5)).toEqual([
    '-L',
    path.join(TREE, 'usr/share/qemu'),
    '-L',
    path.join(TREE, 'usr/share/seabios'),
  ]);
  const environ = fs.readFileSync(`/proc/${started[0]}/environ`, 'utf8').split('\0');
  expect(environ).toContain(`QEMU_MODULE_DIR=${path.join(TREE, 'usr/lib/x86_64-linux-gnu/qemu')}`);
  await session.close();
  await adapter.dispose();
  expect(started.filter(alive)).toEqual([]);
});

test('every device vector runs against QEMU 10.0 with the results its expectation file states', async () => {
  const vectors = deviceVectors();
  const loaded = loadExpectations(path.join(ROOT, 'conformance', 'expectations', 'qemu-10.0.yaml'));
  expect(loaded.problems).toEqual([]);
  expect(loaded.set!.implementation).toBe('QEMU 10.0');
  const started: number[] = [];
  const adapter = createQemuAdapter({ located: QEMU10, onStart: (pid) => started.push(pid!) });
  const run = await runVectors(adapter, vectors, vectors, { expectations: loaded.set });
  await adapter.dispose();
  const unexpected = run.results
    .filter((r) => r.unexpected)
    .map((r) => `${r.vector.id}: ${r.verdict} (expected ${r.expected})`);
  expect(unexpected).toEqual([]);
  expect(run.stale).toEqual([]);
  expect(run.exitCode).toBe(0);
  expect(run.results.filter((r) => r.verdict === 'pass').length).toBeGreaterThan(90);
  expect(started.filter(alive)).toEqual([]);
});

test("a fresh fetch downloads from the machine's Debian mirrors without touching its apt state", async () => {
  const watched = ['/etc/apt', '/var/lib/apt/lists', '/var/cache/apt'];
  const state = (): string[] =>
    watched.flatMap((dir) => {
      try {
        return fs
          .readdirSync(dir, { recursive: true, withFileTypes: true })
          .map((e) => path.join(e.parentPath, e.name))
          .map((f) => `${f} ${fs.lstatSync(f).mtimeMs} ${fs.lstatSync(f).size}`);
      } catch {
        return [];
      }
    });
  const before = state();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-fetch-real-'));
  try {
    const cache = path.join(dir, 'qemu-10.0');
    const outcome = await fetchQemu({ series: '10.0', dir: cache });
    if (!outcome.ok) throw new Error(`${outcome.reason} (${outcome.fix})`);
    expect(outcome.reused).toBe(false);
    expect(outcome.fetched.qemuVersion).toBe('10.0.2');
    expect(outcome.fetched.suite).toMatch(/-backports$/);
    expect(readFetchedQemu(cache, '10.0')?.binary).toBe(path.join(cache, 'root/usr/bin/qemu-system-x86_64'));
    expect(fs.readdirSync(dir)).toEqual(['qemu-10.0']);
    expect(state()).toEqual(before);
    const again = await fetchQemu({ series: '10.0', dir: cache });
    expect(again.ok && again.reused).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
