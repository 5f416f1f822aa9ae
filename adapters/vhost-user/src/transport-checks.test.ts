/**
 * The pure parts of the transport checks: the check table and the text report (no native helper,
 * no sockets; the checks themselves run in test/transport.vhost-test.ts).
 */
import { ProtocolFeature } from './protocol';
import { CheckResult, TRANSPORT_CHECKS, formatCheckResults } from './transport-checks';

describe('TRANSPORT_CHECKS', () => {
  it('has unique vu.* ids, titles, and needs only standard protocol features', () => {
    const ids = TRANSPORT_CHECKS.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const c of TRANSPORT_CHECKS) {
      expect(c.id).toMatch(/^vu\.[a-z]+(-[a-z]+)*$/);
      expect(c.title.length).toBeGreaterThan(10);
      for (const bit of c.needs ?? []) expect(bit).toBeLessThan(ProtocolFeature.VMEMCT_CONTROL);
    }
  });

  it('covers the agreed checks', () => {
    expect(TRANSPORT_CHECKS.map((c) => c.id)).toEqual(
      expect.arrayContaining(['vu.handshake', 'vu.reply-ack', 'vu.config', 'vu.vring-setup', 'vu.mem-table-replace', 'vu.mem-slots', 'vu.rem-unknown-region', 'vu.backend-channel', 'vu.fd-hygiene', 'vu.reconnect']),
    );
  });
});

describe('formatCheckResults', () => {
  const results: CheckResult[] = [
    { id: 'vu.handshake', title: 't', verdict: 'pass', detail: 'all answered', durationMs: 2.25 },
    { id: 'vu.mem-slots', title: 't', verdict: 'unsupported', detail: 'the back-end does not offer CONFIGURE_MEM_SLOTS (protocol feature 15)', durationMs: 0.5 },
    { id: 'vu.reply-ack', title: 't', verdict: 'fail', detail: 'SET_OWNER ack: reply flags 0xd, expected 0x5', durationMs: 1234.5 },
    { id: 'vu.fd-hygiene', title: 't', verdict: 'error', detail: 'our side failed: EMFILE', durationMs: 3 },
  ];

  it('prints one aligned line per check, then a summary with the counts and the total time', () => {
    const lines = formatCheckResults(results).split('\n');
    expect(lines).toHaveLength(results.length + 2);
    expect(lines[results.length + 1]).toBe('');
    results.forEach((r, i) => {
      expect(lines[i]!.startsWith(r.verdict)).toBe(true);
      expect(lines[i]).toContain(r.id);
      expect(lines[i]!.endsWith(r.detail)).toBe(true);
    });
    // The details start in the same column.
    expect(new Set(results.map((r, i) => lines[i]!.indexOf(r.detail))).size).toBe(1);
    expect(lines[0]).toContain('2.3 ms');
    expect(lines[2]).toContain('1.23 s');
    expect(lines[results.length]).toBe('4 checks: 1 pass, 1 fail, 1 unsupported, 1 error (1.24 s)');
  });

  it('summarises an empty run', () => {
    expect(formatCheckResults([])).toBe('0 checks: 0 pass, 0 fail, 0 unsupported, 0 error (0.0 ms)\n');
  });
});
