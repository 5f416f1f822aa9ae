/** The results matrix with suite checks (`vmemct vhost-user-check --json`) next to vectors. */
import { buildSite, resultsOfRun } from './site';
import { runChecks } from '../runner/run';
import { checkOutcome } from '../suites/suite';
import type { CheckTarget, SuiteCheck } from '../suites/suite';

describe('results matrix with suite checks', () => {
  test('shows each check as a row after the vectors, with its suite and title and its verdict per column', async () => {
    const checks: SuiteCheck<null>[] = [
      { id: 'vu.reply-ack', title: 'every NEED_REPLY message gets one ack', needs: [], run: async () => checkOutcome('fail', 'vu.reply-ack', 'flags 0xd') },
      { id: 'vu.handshake', title: 'the opening, answered to the letter', needs: [], run: async () => checkOutcome('pass', 'vu.handshake', 'all answered') },
    ];
    const target: CheckTarget<null> = { info: { name: 'vhost-user', implementation: 'qemu-storage-daemon', capabilities: [] }, open: () => ({ kind: 'ready', context: null, close: () => undefined }) };
    const run = await runChecks(target, 'vhost-user', checks, checks);
    const column = resultsOfRun(run, { file: '/x/qsd.json', implementation: 'qemu-storage-daemon', adapter: 'vhost-user', profile: null, expectations: null });
    expect(column.results[0]).toEqual({
      id: 'vu.reply-ack', verdict: 'fail', severity: 'answer', expected: 'pass', status: 'unexpected', kind: 'check', suite: 'vhost-user', title: 'every NEED_REPLY message gets one ack',
      requirements: [], findings: [{ verdict: 'fail', severity: 'answer', step: 0, check: 'vu.reply-ack', message: 'flags 0xd' }],
    });
    const html = buildSite({ vectors: [], vectorFiles: new Map(), results: [column] }).get('results.html')!;
    expect(html).toContain('<th data-col="qemu-storage-daemon">qemu-storage-daemon</th>');
    const handshake = html.indexOf('<code>vu.handshake</code> <span class="muted">(vhost-user check: the opening, answered to the letter)</span>');
    const replyAck = html.indexOf('<code>vu.reply-ack</code> <span class="muted">(vhost-user check: every NEED_REPLY message gets one ack)</span>');
    expect(handshake).toBeGreaterThan(0);
    expect(replyAck).toBeGreaterThan(handshake);
    expect(html).toMatch(/<span class="badge v-fail">fail<\/span> <span class="severity s-answer" title="a wrong answer: [^"]*">answer<\/span> <strong title="expected pass">!<\/strong>/);
  });
});
