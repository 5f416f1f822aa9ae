/**
 * `vmemct run --retries N`: the whole command against a target that fails a vector once and then
 * passes it (the always-BUSY mutant for the first device opened, the reference model after it).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Adapter } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { PROGRESS_DEVICE_MUTANTS } from '../../test/teeth/device-mutants-progress';
import type { CliIo } from './main';
import { main } from './main';
import { runCommand } from './run-commands';

const FLAKY = 'vmem.dev.plug.ack-first-block';

/** The first device opened is the always-BUSY mutant; every later one the reference model. */
function failsFirst(): Adapter {
  const good = createModelAdapter();
  const busy = createModelAdapter(PROGRESS_DEVICE_MUTANTS[0]!.adapter);
  let opened = 0;
  return { ...good, openDevice: (setup) => (opened++ === 0 ? busy : good).openDevice(setup) };
}

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t) };
  const code = await runCommand(['--filter', FLAKY, ...args], io, () => Promise.resolve(failsFirst()));
  return { code, out, err };
}

describe('vmemct run --retries', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-retries-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a vector that fails then passes is reported flaky by every report, and the run exits 1', async () => {
    const json = path.join(dir, 'results.json');
    const junit = path.join(dir, 'junit.xml');
    const r = await run('--retries', '2', '--json', json, '--junit', junit);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`✗ ${FLAKY} — flaky [wedged]`);
    expect(r.out).toMatch(/vmemct: 1 vector: 1 flaky; 1 unexpected; \d+ ms; exit 1\n$/);
    const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as {
      options: { retries: number };
      results: { verdict: string; attempts: { verdict: string }[] }[];
    };
    expect(doc.options.retries).toBe(2);
    expect(doc.results[0]!.verdict).toBe('flaky');
    expect(doc.results[0]!.attempts.map((a) => a.verdict)).toEqual(['fail', 'pass']);
    expect(fs.readFileSync(junit, 'utf8')).toMatch(/<failure message="flaky: progress: [^"]*" type="wedged">/);
    const tap = await run('--retries', '1', '--reporter', 'tap');
    expect(tap.out).toContain(`not ok 1 - ${FLAKY} (flaky)\n`);
  });

  test('without --retries the same target fails the vector (exit 1, verdict fail)', async () => {
    const r = await run();
    expect(r.code).toBe(1);
    expect(r.out).toContain(`✗ ${FLAKY} — fail [wedged]`);
    expect(r.out).not.toContain('attempts:');
  });

  test.each(['11', '-1', 'two', '1.5'])('--retries %s is a usage error (exit 3)', async (value) => {
    let err = '';
    const code = await main(['run', `--retries=${value}`], { stdout: () => undefined, stderr: (t) => (err += t) });
    expect(code).toBe(3);
    expect(err).toContain(`--retries must be an integer from 0 to 10 (got '${value}')`);
  });
});
