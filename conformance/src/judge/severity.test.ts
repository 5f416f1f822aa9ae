import * as path from 'node:path';
import { SEVERITIES, SEVERITY_TIERS, VERDICTS } from '../../../spec/src/index';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { findDeviceProfile } from '../../../model/src/index';
import { DRIVER_MUTANTS } from '../../test/teeth/driver-mutants';
import { loadVectors } from '../loader/load';
import { runVectors, selectVectors } from '../runner/run';
import {
  CHECK_SEVERITY,
  DEFAULT_FAIL_SEVERITY,
  SEVERITY_MEANING,
  SEVERITY_ORDER,
  Severity,
  severityOf,
  withSeverity,
  worstSeverity,
} from './severity';
import type { Finding, Verdict } from './verdicts';

const fail = (check: string, observed?: string): Severity | undefined =>
  severityOf({ verdict: 'fail', check, observed });

const FAILING: readonly Verdict[] = ['fail', 'non-strict', 'error', 'timeout'];

describe('severity tiers', () => {
  test('are declared once, worst first, each with a one-line meaning', () => {
    expect(SEVERITY_ORDER).toEqual(['stopped', 'wedged', 'state', 'answer', 'should', 'harness']);
    expect(SEVERITY_ORDER).toEqual(SEVERITIES);
    for (const t of SEVERITY_TIERS) {
      expect(SEVERITY_MEANING.get(t.name)).toBe(t.meaning);
      expect(t.meaning).not.toContain('\n');
    }
  });

  test('every tier is reachable from a finding', () => {
    const reached = new Set([
      severityOf({ verdict: 'timeout', check: 'timeout' }),
      fail('progress'),
      fail('config.plugged_size'),
      fail('response', 'NACK'),
      severityOf({ verdict: 'non-strict', check: 'notification' }),
      severityOf({ verdict: 'error', check: 'adapter' }),
    ]);
    expect([...reached].sort()).toEqual([...SEVERITIES].sort());
  });

  test('a verdict decides the tier of timeout, error and non-strict findings, whatever the check', () => {
    for (const check of ['response', 'progress', 'config.plugged_size', 'vu.handshake', 'made-up']) {
      expect(severityOf({ verdict: 'timeout', check })).toBe('stopped');
      expect(severityOf({ verdict: 'error', check })).toBe('harness');
      expect(severityOf({ verdict: 'non-strict', check })).toBe('should');
    }
  });

  test('verdicts that are no failure carry no severity', () => {
    for (const verdict of VERDICTS.filter((v) => !FAILING.includes(v)))
      expect(severityOf({ verdict, check: 'response' })).toBeUndefined();
  });

  const CLASSIFIED: readonly [string, Severity, string?][] = [
    // device checks
    ['response', 'answer', 'NACK'],
    ['response', 'stopped', 'no used entry'],
    ['response', 'wedged', 'no used entry, DEVICE_NEEDS_RESET set'],
    ['response', 'answer', 'a used entry of length 0'],
    ['state', 'answer'],
    ['config', 'state'],
    ['config.plugged_size', 'state'],
    ['config.usable_region_size', 'state'],
    ['config_bytes', 'state'],
    ['invariant:fields-aligned', 'state'],
    ['invariant:usable-covers-requested', 'state'],
    ['notification', 'answer'],
    ['needs_reset', 'wedged'],
    ['resize', 'state'],
    ['features_ok', 'answer'],
    ['access', 'state'],
    ['data', 'state'],
    ['suspend', 'answer'],
    ['timeout', 'stopped'],
    // driver checks
    ['settled', 'wedged'],
    ['converged', 'wedged'],
    ['first_request', 'answer'],
    ['requests', 'answer'],
    ['request_types', 'answer'],
    ['accepted_features', 'answer'],
    ['persistent_suspend', 'answer'],
    ['driver:request-well-formed', 'answer'],
    ['driver:init-unplug-all', 'answer'],
    ['driver:request-within-usable', 'answer'],
    ['driver:plug-state', 'answer'],
    ['driver:plug-beyond-requested', 'answer'],
    ['driver:unplug-state', 'answer'],
    ['driver:accept-unplugged-inaccessible', 'answer'],
    ['driver:suspend', 'answer'],
    ['driver:write-unplugged', 'state'],
    ['driver:config-write', 'state'],
    // vhost-user checks
    ['vu.handshake', 'answer'],
    ['vu.reply-ack', 'answer'],
    ['vu.config', 'answer'],
    ['vu.vring-setup', 'answer'],
    ['vu.backend-channel', 'answer'],
    ['vu.fd-hygiene', 'state'],
    ['vu.mem-slots', 'state'],
    ['vu.mem-table-replace', 'state'],
    ['vu.reconnect', 'stopped'],
    ['vu.rem-unknown-region', 'stopped'],
    // checks other parts of the suite name
    ['progress', 'wedged'],
    ['config_generation', 'state'],
    ['used_length', 'answer'],
    ['notification.needs_reset', 'wedged'],
    ['retry_delay', 'answer'],
    ['backoff', 'answer'],
  ];
  // Every row has three cells (a two-argument test would be taken for one with a done callback).
  test.each(CLASSIFIED.map(([check, severity, observed]) => [check, severity, observed ?? '']))(
    'a failing %s finding is %s',
    (check, severity, observed) => {
      expect(fail(check, observed || undefined)).toBe(severity);
    },
  );

  test(`a failing finding of a check no rule names is ${DEFAULT_FAIL_SEVERITY}`, () => {
    expect(CHECK_SEVERITY.some((r) => r.check === 'made-up')).toBe(false);
    expect(fail('made-up')).toBe(DEFAULT_FAIL_SEVERITY);
  });

  test('retry_delay and backoff: a failure is a wrong answer, a SHOULD-level finding is should', () => {
    expect(severityOf({ verdict: 'non-strict', check: 'retry_delay' })).toBe('should');
    expect(severityOf({ verdict: 'non-strict', check: 'backoff' })).toBe('should');
  });

  test('withSeverity sets the derived tier (replacing any other) and leaves passing findings without one', () => {
    const f: Finding = { verdict: 'fail', step: 1, check: 'progress', message: 'm', severity: 'should' };
    expect(withSeverity(f)).toEqual({ ...f, severity: 'wedged' });
    expect(withSeverity({ ...f, verdict: 'acceptable' })).toEqual({ ...f, verdict: 'acceptable', severity: undefined });
    expect('severity' in withSeverity({ ...f, verdict: 'acceptable' })).toBe(false);
  });

  test('the worst severity of findings wins; none without failing findings', () => {
    const at = (severity?: Severity): Finding => ({ verdict: 'fail', step: 0, check: 'x', message: '', severity });
    expect(worstSeverity([at('answer'), at('wedged'), at('state')])).toBe('wedged');
    expect(worstSeverity([at('should'), at('harness')])).toBe('should');
    expect(worstSeverity([at(undefined)])).toBeUndefined();
    expect(worstSeverity([])).toBeUndefined();
  });
});

describe('the runner gives every failing finding its severity', () => {
  const corpus = loadVectors([path.join(__dirname, '..', '..', 'vectors')]).vectors;

  function checkSeverities(results: Awaited<ReturnType<typeof runVectors>>['results']): void {
    for (const r of results) {
      for (const f of r.findings)
        expect([f.verdict, f.severity === undefined]).toEqual([f.verdict, !FAILING.includes(f.verdict)]);
      expect(r.severity).toBe(worstSeverity(r.findings));
    }
  }

  test('device vectors: a device that gives no used entry has stopped answering', async () => {
    const profile = findDeviceProfile('firecracker')!;
    const selected = selectVectors(corpus, { target: 'device' });
    const run = await runVectors(createModelAdapter({ profile }), selected, corpus);
    checkSeverities(run.results);
    const split = run.results.find((r) => r.vector.id === 'vmem.dev.malformed.split-request-8-16')!;
    expect(split.verdict).toBe('fail');
    expect(split.severity).toBe('stopped');
    expect(run.results.filter((r) => r.severity === 'state').length).toBeGreaterThan(0);
  });

  test('driver vectors', async () => {
    const mutant = DRIVER_MUTANTS.find((m) => m.name === 'driver writes unplugged memory')!;
    const run = await runVectors(
      createModelAdapter(mutant.adapter),
      selectVectors(corpus, { target: 'driver' }),
      corpus,
    );
    checkSeverities(run.results);
    const written = run.results.flatMap((r) => r.findings).filter((f) => f.check === 'driver:write-unplugged');
    expect(written.length).toBeGreaterThan(0);
    expect(written.every((f) => f.severity === 'state')).toBe(true);
  });
});
