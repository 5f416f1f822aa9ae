import { SuspendBounds, SuspendPorts, attemptSuspend, sleptInS3, virtioMemMessages } from './guest-suspend';
import { guestQemuArguments } from './guest-vm';
import type { ShellResult } from './ssh-shell';

const MiB = 1n << 20n;
const FAST: SuspendBounds = { enterMs: 2000, resumeMs: 2000, pollMs: 1 };

/** A guest and its QEMU, scripted: what the suspend write does and what the kernel log then says. */
function fakeGuest(script: {
  memSleep?: string;
  /** `sleep`: the guest suspends until woken; `fail`: the write fails at once. */
  write: 'sleep' | 'fail' | 'return' | 'hang';
  log?: string;
  plugged?: [bigint, bigint];
}) {
  const calls: string[] = [];
  let state = 'running';
  let wake: (() => void) | undefined;
  let mark = '';
  let pluggedReads = 0;
  const ok = (output = ''): ShellResult => ({ status: 0, output });
  const ports: SuspendPorts = {
    async run(command) {
      calls.push(command);
      if (command.includes('/sys/power/mem_sleep')) {
        const memSleep = script.memSleep ?? 's2idle [deep]';
        if (!/\bdeep\b/.test(memSleep)) return { status: 1, output: `${memSleep}\n` };
        mark = /echo (vmemct-suspend-[0-9]+) > \/dev\/kmsg/.exec(command)![1]!;
        return ok();
      }
      if (command === 'echo mem > /sys/power/state') {
        if (script.write === 'fail') return { status: 1, output: 'sh: write error: Operation not permitted\n' };
        if (script.write === 'return') return ok();
        if (script.write === 'hang') return new Promise<ShellResult>(() => undefined);
        state = 'suspended';
        await new Promise<void>((resolve) => (wake = resolve));
        return ok();
      }
      if (command.startsWith('dmesg')) {
        expect(command).toContain(mark);
        return ok(script.log ?? '');
      }
      throw new Error(`unexpected command ${command}`);
    },
    async runState() {
      calls.push('query-status');
      return state;
    },
    async wakeUp() {
      calls.push('system_wakeup');
      if (state !== 'suspended') throw new Error('woken while running');
      state = 'running';
      wake!();
    },
    async plugged() {
      return (script.plugged ?? [0n, 0n])[pluggedReads++ === 0 ? 0 : 1]!;
    },
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
  return { ports, calls };
}

const REFUSED_6_1 = [
  '[   18.192105] PM: suspend entry (deep)',
  '[   18.227708] virtio_mem virtio1: save/restore not supported.',
  '[   18.227887] virtio-pci 0000:00:02.0: PM: pci_pm_suspend(): virtio_pci_freeze+0x0/0x50 [virtio_pci] returns -1',
  '[   18.228553] PM: Some devices failed to suspend, or early wake event detected',
].join('\n');

/** Linux 6.12 with nothing plugged: S3 entered, and left again within a poll of QEMU's state. */
const WOKE_ON_ITS_OWN_6_12 = [
  '[   27.748312] PM: suspend entry (deep)',
  '[   27.813978] ACPI: PM: Preparing to enter system sleep state S3',
  '[   27.863777] ACPI: PM: Low-level resume complete',
  '[   27.914810] ACPI: PM: Waking up from system sleep state S3',
  '[   27.952896] PM: suspend exit',
].join('\n');

describe('attemptSuspend (drv.op.11 against a live guest)', () => {
  it('reports the freeze the virtio_mem driver refused, in its own words', async () => {
    const { ports, calls } = fakeGuest({ write: 'fail', log: REFUSED_6_1 });
    const r = await attemptSuspend(ports, FAST);
    expect(r).toEqual({
      kind: 'refused',
      detail: 'virtio_mem refused the freeze: "save/restore not supported." (sh: write error: Operation not permitted)',
    });
    expect(calls).not.toContain('system_wakeup');
  });

  it('wakes a guest that suspended with system_wakeup and reports it allowed, with the plugged sizes around it', async () => {
    const { ports, calls } = fakeGuest({ write: 'sleep', plugged: [64n * MiB, 64n * MiB] });
    const r = await attemptSuspend(ports, FAST);
    expect(r).toMatchObject({
      kind: 'allowed',
      detail: expect.stringMatching(/suspended to RAM .*system_wakeup.* 64MiB plugged before, 64MiB after/),
    });
    expect(calls.indexOf('system_wakeup')).toBeGreaterThan(calls.lastIndexOf('query-status'));
  });

  it('does not take a failure virtio_mem said nothing about for a refusal', async () => {
    const log = [
      '[ 1.0] PM: suspend entry (deep)',
      '[ 1.1] e1000 0000:00:03.0: PM: dpm_run_callback(): pci_pm_suspend+0x0/0x170 returns -16',
    ].join('\n');
    const r = await attemptSuspend(fakeGuest({ write: 'fail', log }).ports, FAST);
    expect(r).toEqual({
      kind: 'failed',
      message: expect.stringMatching(/without a word from virtio_mem: e1000 .* returns -16/),
    });
  });

  it('is unsupported, naming S3, when the guest has no deep sleep', async () => {
    const { ports, calls } = fakeGuest({ memSleep: '[s2idle]', write: 'sleep' });
    const r = await attemptSuspend(ports, FAST);
    expect(r).toEqual({ kind: 'unsupported', reason: expect.stringMatching(/no 'deep'.*'\[s2idle\]'.*ACPI S3/) });
    expect(calls).not.toContain('echo mem > /sys/power/state');
  });

  it('is bounded: a guest that neither suspends nor answers fails within the bound', async () => {
    const started = Date.now();
    const r = await attemptSuspend(fakeGuest({ write: 'hang' }).ports, { ...FAST, enterMs: 100 });
    expect(r).toEqual({ kind: 'failed', message: 'the guest neither suspended nor failed the suspend within 100 ms' });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('does not call a write that returned without QEMU seeing the machine suspended an allowed suspend', async () => {
    const r = await attemptSuspend(fakeGuest({ write: 'return' }).ports, FAST);
    expect(r).toMatchObject({
      kind: 'failed',
      message: expect.stringMatching(/without QEMU ever reporting the machine suspended/),
    });
  });

  it('reports a guest that slept in S3 and woke before QEMU was seen suspended as allowed, by its kernel log', async () => {
    const r = await attemptSuspend(
      fakeGuest({ write: 'return', log: WOKE_ON_ITS_OWN_6_12, plugged: [0n, 0n] }).ports,
      FAST,
    );
    expect(r).toEqual({
      kind: 'allowed',
      detail:
        'the guest suspended to RAM (ACPI S3) and woke 101 ms later, before QEMU was seen suspended (its kernel log shows S3 entered and left); the device held 0 plugged before, 0 after',
    });
    expect(sleptInS3(REFUSED_6_1)).toBeUndefined();
    expect(sleptInS3(WOKE_ON_ITS_OWN_6_12.split('\n').slice(0, 2).join('\n'))).toBeUndefined();
  });

  it("keeps only virtio_mem's lines of a kernel log", () => {
    expect(virtioMemMessages(REFUSED_6_1)).toEqual(['save/restore not supported.']);
    expect(
      virtioMemMessages('[ 2.0] virtio_mem virtio3: suspending with plugged memory is not supported\n[ 2.1] other'),
    ).toEqual(['suspending with plugged memory is not supported']);
  });
});

describe('the guest QEMU for suspend', () => {
  const files = { qmpSocket: '/r/q', controlSocket: '/r/c', traceLog: '/r/t', consoleLog: '/r/l' };
  const manifest = { kernel: '/g/vmlinuz', initrd: '/g/initrd.gz' };
  it('enables S3 on q35 only when asked, and always states unplugged-inaccessible (10.0 defaults it on)', () => {
    const plain = guestQemuArguments(manifest, files, 40022, {}).join(' ');
    expect(plain).not.toContain('ICH9-LPC.disable_s3');
    expect(plain).toContain('requested-size=0M,unplugged-inaccessible=off');
    const s3 = guestQemuArguments(manifest, files, 40022, { suspendToRam: true }).join(' ');
    expect(s3).toContain('-global ICH9-LPC.disable_s3=0');
  });
});
