import { AdapterTimeoutError } from '../../core/src/contract';
import type { QmpClient } from '../../qemu-platform/src/index';
import { haltFirmware } from './qemu-process';
import type { QtestClient } from './qtest';
import { enterS3Commands, suspendAndWake } from './s3-suspend';

/**
 * A q35 machine as far as suspend is concerned: its run state, the PM1a_CNT write that suspends
 * it (only while running, as on QEMU 7.2), `system_wakeup` and the WAKEUP event. Each behaviour
 * can be switched off to see the bounded waits fail.
 */
class FakeMachine {
  status = 'prelaunch';
  readonly commands: string[] = [];
  readonly qtestLines: string[] = [];
  /** Whether writing PM1a_CNT suspends the machine. */
  suspends = true;
  /** Whether `system_wakeup` sends WAKEUP. */
  sendsWakeup = true;
  private readonly events: string[] = [];

  readonly qmp = {
    execute: async (command: string): Promise<unknown> => {
      this.commands.push(command);
      if (command === 'query-status') return { status: this.status };
      if (command === 'cont') this.status = 'running';
      if (command === 'stop') this.status = 'paused';
      if (command === 'system_wakeup') {
        if (this.status !== 'suspended') throw new Error('not suspended');
        this.status = 'running';
        if (this.sendsWakeup) this.events.push('WAKEUP');
      }
      return {};
    },
    nextEvent: async (name: string, timeoutMs: number): Promise<{ event: string }> => {
      const i = this.events.indexOf(name);
      if (i >= 0) return { event: this.events.splice(i, 1)[0]! };
      await new Promise((r) => setTimeout(r, timeoutMs));
      throw new Error(`no ${name} event within ${timeoutMs} ms`);
    },
  } as unknown as QmpClient;

  readonly qtest = {
    batch: async (lines: readonly string[]): Promise<string[]> => {
      this.qtestLines.push(...lines);
      if (this.suspends && this.status === 'running' && lines.includes('outw 0x604 0x2400')) {
        this.status = 'suspended';
        this.events.push('SUSPEND');
      }
      return lines.map(() => 'OK');
    },
  } as unknown as QtestClient;
}

describe('S3 suspend and wake-up', () => {
  test('enables the ICH9 ACPI registers at 0x600 and writes SLP_EN with SLP_TYP 1 to PM1a_CNT', () => {
    expect(enterS3Commands()).toEqual([
      'outl 0xcf8 0x8000f840', // LPC 00:1f.0, PMBASE
      'outl 0xcfc 0x601',
      'outl 0xcf8 0x8000f844', // ACPI_CNTL
      'outb 0xcfc 0x80',
      'outw 0x604 0x2400',
    ]);
  });

  test('a machine not yet running is continued, suspended, woken and paused again', async () => {
    const machine = new FakeMachine();
    await suspendAndWake(machine.qmp, machine.qtest, 200);
    expect(machine.status).toBe('paused');
    const actions = machine.commands.filter((c) => c !== 'query-status');
    expect(actions).toEqual(['cont', 'system_wakeup', 'stop']);
    expect(machine.qtestLines).toEqual(enterS3Commands());
  });

  test('a running machine is not continued again', async () => {
    const machine = new FakeMachine();
    machine.status = 'running';
    await suspendAndWake(machine.qmp, machine.qtest, 200);
    expect(machine.commands).not.toContain('cont');
    expect(machine.status).toBe('paused');
  });

  test('a machine that never reports suspended fails with a timeout naming the state, without waking it', async () => {
    const machine = new FakeMachine();
    machine.suspends = false;
    const started = Date.now();
    await expect(suspendAndWake(machine.qmp, machine.qtest, 60)).rejects.toThrow(
      new AdapterTimeoutError('QEMU did not become suspended within 60 ms (query-status: running)'),
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect(machine.commands).not.toContain('system_wakeup');
  });

  test('a wake-up without the WAKEUP event fails with a timeout', async () => {
    const machine = new FakeMachine();
    machine.sendsWakeup = false;
    const failure = suspendAndWake(machine.qmp, machine.qtest, 60);
    await expect(failure).rejects.toBeInstanceOf(AdapterTimeoutError);
    await expect(failure).rejects.toThrow(/no WAKEUP event within 60 ms/);
  });
});

describe('the halting firmware', () => {
  test('is 64 KiB of HLT, so the reset vector near its end halts the CPU', () => {
    const image = haltFirmware();
    expect(image.length).toBe(64 * 1024);
    expect(image.every((b) => b === 0xf4)).toBe(true);
  });
});
