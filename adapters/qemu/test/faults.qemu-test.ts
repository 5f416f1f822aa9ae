/**
 * Misbehaving QEMU and a killed runner: a crash or a hang mid-vector costs that vector an
 * `error`/`timeout` verdict and the next vector gets a fresh QEMU; a missing QEMU exits 2; no QEMU
 * outlives the runner, even one killed with SIGKILL.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Adapter, DeviceSession } from '../../core/src/contract';
import { createQemuAdapter } from '../src/qemu-adapter';
import { runVectors } from '../../../conformance/src/runner/run';
import { loadExpectations } from '../../../conformance/src/runner/expectations';
import type { Vector } from '../../../conformance/src/loader/types';
import { QEMU, ROOT, SMALL_DEVICE, alive, childrenNamed, deviceVectors, waitFor } from './qemu-test-support';

const CLI = path.join(ROOT, 'conformance', 'bin', 'vmemct.js');

function vector(id: string): Vector {
  const found = deviceVectors().find((v) => v.id === id);
  if (!found) throw new Error(`no vector ${id}`);
  return found;
}

/** Wraps the QEMU adapter so `sabotage(pid)` runs before the first request of the first vector. */
function sabotaged(sabotage: (pid: number) => void, commandTimeoutMs = 5000): { adapter: Adapter; started: number[] } {
  const started: number[] = [];
  const inner = createQemuAdapter({ located: QEMU, commandTimeoutMs, onStart: (pid) => started.push(pid!) });
  let armed = true;
  const adapter: Adapter = {
    info: inner.info,
    dispose: () => inner.dispose(),
    async openDevice(setup) {
      const session = await inner.openDevice(setup);
      const submit: DeviceSession['submit'] = async (chain) => {
        if (armed) {
          armed = false;
          sabotage(started[started.length - 1]!);
        }
        return session.submit(chain);
      };
      // Every other member is the session's own, called on the session itself.
      return new Proxy(session, {
        get: (target, property) => {
          if (property === 'submit') return submit;
          const member = Reflect.get(target, property) as unknown;
          return typeof member === 'function' ? (member as (...args: unknown[]) => unknown).bind(target) : member;
        },
      });
    },
  };
  return { adapter, started };
}

/** QEMU 7.2's expectation file: its known deviations (config_generation) grade the vectors below too. */
const EXPECTATIONS = loadExpectations(path.join(ROOT, 'conformance', 'expectations', 'qemu-7.2.yaml')).set!;

const PLUG = 'vmem.dev.plug.ack-first-block';
const STATE = 'vmem.dev.plug.ack-run-of-blocks';

test('QEMU dying mid-vector gives that vector error with its stderr, and the next vector a fresh QEMU', async () => {
  const { adapter, started } = sabotaged((pid) => process.kill(pid, 'SIGKILL'));
  const vectors = [vector(PLUG), vector(STATE)];
  const run = await runVectors(adapter, vectors, vectors, { expectations: EXPECTATIONS });
  await adapter.dispose();
  expect(run.results[0]!.verdict).toBe('error');
  expect(run.results[1]!.unexpected).toBe(false);
  expect(run.results[0]!.findings[0]!.message).toMatch(/QEMU killed by SIGKILL/);
  expect(run.results[0]!.diagnostics).toMatch(
    /^QEMU pid [0-9]+: killed by SIGKILL\ncommand: \S*qemu-system-x86_64 .*virtio-mem-pci/,
  );
  expect(run.exitCode).toBe(2);
  expect(started).toHaveLength(2);
  expect(started.filter(alive)).toEqual([]);
});

test('QEMU hanging mid-vector gives that vector timeout; it is killed and the next vector passes', async () => {
  const { adapter, started } = sabotaged((pid) => process.kill(pid, 'SIGSTOP'), 60_000);
  const vectors = [vector(PLUG), vector(STATE)];
  const run = await runVectors(adapter, vectors, vectors, { timeoutMs: 1500, expectations: EXPECTATIONS });
  expect(run.results[0]!.verdict).toBe('timeout');
  expect(run.results[1]!.unexpected).toBe(false);
  expect(alive(started[0]!)).toBe(false);
  await adapter.dispose();
  expect(started.filter(alive)).toEqual([]);
});

test('a missing QEMU exits 2 with the package to install', () => {
  const r = spawnSync(
    process.execPath,
    [CLI, 'run', '--adapter', 'qemu', '--qemu', '/nonexistent/qemu-system-x86_64'],
    { encoding: 'utf8' },
  );
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/qemu-system-x86/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
});

test('no QEMU survives a runner killed with SIGKILL', async () => {
  const runner = spawn(process.execPath, [CLI, 'run', '--adapter', 'qemu', '--target', 'device', '--quiet'], {
    stdio: 'ignore',
  });
  let qemus: number[] = [];
  const found = await waitFor(() => (qemus = childrenNamed(runner.pid!, 'qemu-system', '-qtest')).length > 0, 20_000);
  expect(found).toBe(true);
  runner.kill('SIGKILL');
  const gone = await waitFor(() => qemus.every((pid) => !alive(pid)), 5000);
  expect(qemus.filter(alive)).toEqual([]);
  expect(gone).toBe(true);

  // The killed runner could not remove its temporary directory; the next QEMU start does.
  const leftovers = (): string[] =>
    fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith(`vmemct-qemu-${runner.pid}-`));
  expect(leftovers().length).toBeGreaterThan(0);
  const adapter = createQemuAdapter({ located: QEMU });
  await (await adapter.openDevice(SMALL_DEVICE)).close();
  await adapter.dispose();
  expect(leftovers()).toEqual([]);
});

test('an interrupted runner (SIGTERM) ends its QEMU before exiting', async () => {
  const runner = spawn(process.execPath, [CLI, 'run', '--adapter', 'qemu', '--target', 'device', '--quiet'], {
    stdio: 'ignore',
  });
  let qemus: number[] = [];
  expect(await waitFor(() => (qemus = childrenNamed(runner.pid!, 'qemu-system', '-qtest')).length > 0, 20_000)).toBe(
    true,
  );
  const exited = new Promise<number | null>((resolve) => runner.once('exit', (code) => resolve(code)));
  runner.kill('SIGTERM');
  expect(await exited).toBe(143);
  expect(qemus.filter(alive)).toEqual([]);
});
