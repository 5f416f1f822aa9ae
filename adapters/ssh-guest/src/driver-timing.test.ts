import * as path from 'node:path';
import { loadVectors } from '../../../conformance/src/loader/load';
import { TimingAction, needsGuestTimersFast } from './driver-timing';

const driver = (...actions: TimingAction[]) => ({ target: 'driver', steps: actions.map((action) => ({ action })) });
const start: TimingAction = { kind: 'start' };
const busy = (count: number): TimingAction => ({ kind: 'inject', response: 'BUSY', count });
const settle = (maxRequests?: number): TimingAction =>
  maxRequests === undefined ? { kind: 'settle' } : { kind: 'settle', maxRequests };
const resize: TimingAction = { kind: 'resize' };

describe('needsGuestTimersFast', () => {
  test('a settle that must see a BUSY-answered request retried on the driver timer needs fast timers', () => {
    expect(needsGuestTimersFast(driver(start, busy(5), settle()))).toBe(true);
    expect(needsGuestTimersFast(driver(start, busy(3), resize, settle()))).toBe(true);
    expect(needsGuestTimersFast(driver(start, busy(12), settle(6), settle()))).toBe(true);
  });

  test('a settle bounded to the one BUSY-answered request, then a resize, keeps real-time timers', () => {
    expect(needsGuestTimersFast(driver(start, busy(1), settle(1), resize, settle()))).toBe(false);
    // Two single-request settles consume two answers; nothing is left for the unbounded one.
    expect(needsGuestTimersFast(driver(start, busy(2), settle(1), resize, settle(1), resize, settle()))).toBe(false);
    expect(needsGuestTimersFast(driver(start, busy(2), settle(1), resize, settle()))).toBe(true);
  });

  test('untyped NACK, ERROR and ACK scripts make no back-off (a PLUG may take them); a later inject or a reboot drops what is left', () => {
    for (const response of ['NACK', 'ERROR', 'ACK'])
      expect(needsGuestTimersFast(driver(start, { kind: 'inject', response, count: 9 }, settle()))).toBe(false);
    expect(
      needsGuestTimersFast(driver(start, busy(4), settle(1), { kind: 'inject', response: 'NACK', count: 9 }, settle())),
    ).toBe(false);
    expect(needsGuestTimersFast(driver(start, busy(4), { kind: 'system-reset' }, settle()))).toBe(false);
    expect(needsGuestTimersFast(driver(start, settle(), busy(4)))).toBe(false);
  });

  test('a busy host answers BUSY without end; after the release the driver owes one retry from its timer', () => {
    const hostBusy = (busy: boolean): TimingAction => ({ kind: 'host-busy', busy });
    expect(needsGuestTimersFast(driver(start, hostBusy(true), resize, settle(2)))).toBe(true);
    expect(needsGuestTimersFast(driver(start, hostBusy(true), resize, settle(1), hostBusy(false), settle()))).toBe(
      true,
    );
    expect(needsGuestTimersFast(driver(start, hostBusy(true), resize, settle(1), hostBusy(false), settle(1)))).toBe(
      false,
    );
    expect(needsGuestTimersFast(driver(start, settle(), hostBusy(true)))).toBe(false);
  });

  test('device vectors never do', () => {
    expect(needsGuestTimersFast({ target: 'device', steps: [{ action: busy(3) }, { action: settle() }] })).toBe(false);
  });

  test('in the corpus: the vectors that wait on the back-off (BUSY; NACK or ERROR to UNPLUG ALL), and no other', () => {
    const loaded = loadVectors([path.resolve(__dirname, '../../../conformance/vectors/driver')]);
    expect(loaded.problems).toEqual([]);
    const fast = loaded.vectors.filter((v) => needsGuestTimersFast(v)).map((v) => v.id);
    expect(fast.sort()).toEqual(
      [
        'vmem.drv.init.unplug-all-busy-across-settles',
        'vmem.drv.init.unplug-all-busy-retried',
        'vmem.drv.init.unplug-all-error-retried',
        'vmem.drv.init.unplug-all-nack-retried',
        'vmem.drv.op.busy-beyond-settle-limit',
        'vmem.drv.op.busy-storm-plug',
        'vmem.drv.op.busy-storm-unplug',
        'vmem.drv.op.host-busy-plug-retried',
        // Its last settle waits on two more BUSY answers retried on the timer (it also needs suspend).
        'vmem.drv.op.suspend-refused-during-init-backoff',
        'vmem.drv.op.suspend-refused-during-init-backoff-pxm',
        'vmem.drv.suite.busy-retried-for-every-request-type',
        'vmem.drv.suite.unplug-all-busy-at-init-retried',
      ].sort(),
    );
  });
});

describe('which answers Linux retries on its timer', () => {
  const vector = (inject: Record<string, unknown>) => ({
    target: 'driver',
    steps: [
      { action: { kind: 'start' } },
      { action: { kind: 'inject', count: 1, ...inject } },
      { action: { kind: 'settle' } },
    ],
  });
  test('NACK or ERROR to UNPLUG ALL (left as -ENOMEM) and NACK to UNPLUG back off', () => {
    expect(needsGuestTimersFast(vector({ response: 'NACK', types: ['UNPLUG_ALL'] }))).toBe(true);
    expect(needsGuestTimersFast(vector({ response: 'ERROR', types: ['UNPLUG_ALL'] }))).toBe(true);
    expect(needsGuestTimersFast(vector({ response: 'NACK', types: ['UNPLUG'] }))).toBe(true);
  });
  test('NACK to PLUG (re-sent at once), ERROR to PLUG or UNPLUG (device broken) and untyped NACK do not', () => {
    expect(needsGuestTimersFast(vector({ response: 'NACK', types: ['PLUG'] }))).toBe(false);
    expect(needsGuestTimersFast(vector({ response: 'ERROR', types: ['UNPLUG'] }))).toBe(false);
    expect(needsGuestTimersFast(vector({ response: 'NACK', types: ['PLUG', 'UNPLUG_ALL'] }))).toBe(false);
    expect(needsGuestTimersFast(vector({ response: 'NACK' }))).toBe(false);
  });
});
