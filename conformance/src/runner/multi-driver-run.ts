/**
 * Runs one multi-device driver vector: one driver manages several devices at once, and each
 * device has its own {@link DriverRun} (its own session, configuration, shadow of the blocks and
 * checks), so every request the driver sends to a device is judged against that device alone.
 *
 * A step that addresses a device (`device: vm1`) runs on that device's run; a step that
 * addresses none runs on every device in turn, except a step kind that observes the whole
 * system (`systemWide`, e.g. `node_memory`), which runs once, on the first device's session.
 * Each finding names its device (`device`, and the message starts with `[name]`).
 */
import type { DeviceSetup, DriverSession } from '../../../adapters/core/src/contract';
import type { Step, Vector } from '../loader/types';
import type { Finding } from '../judge/verdicts';
import { stepKindOf } from '../steps/registry';
import { DriverRun } from './driver-run';

/** One device of a multi-device run: its name, session and set-up. */
export interface RunDevice {
  readonly name: string;
  readonly session: DriverSession;
  readonly setup: DeviceSetup;
}

/** A multi-device driver vector's run: one {@link DriverRun} per device, steps routed by `device`. */
export class MultiDriverRun {
  private readonly runs: readonly { readonly name: string; readonly run: DriverRun }[];
  private currentStep = 0;

  constructor(
    readonly vector: Vector,
    devices: readonly RunDevice[],
  ) {
    this.runs = devices.map((d) => ({ name: d.name, run: new DriverRun(vector, d.session, d.setup) }));
  }

  /** The 1-based index of the step being run (0 before the first). */
  get stepIndex(): number {
    return this.currentStep;
  }

  /** What the runs found, each finding naming its device (but those of system-wide steps), in step order. */
  get findings(): Finding[] {
    const named = this.runs.flatMap(({ name, run }) =>
      run.findings.map((f) =>
        this.isSystemWide(f.step) && f.step > 0 ? f : { ...f, device: name, message: `[${name}] ${f.message}` },
      ),
    );
    return named.sort((a, b) => a.step - b.step);
  }

  /** Whether step `index` (1-based) observes the whole system rather than the device it ran on. */
  private isSystemWide(index: number): boolean {
    const step = this.vector.steps[index - 1];
    return step !== undefined && step.device === undefined && stepKindOf(step.action).systemWide === true;
  }

  /** Runs every step, until one stops on any device. */
  async run(): Promise<void> {
    for (const { run } of this.runs) if (!(await run.begin())) return;
    for (const step of this.vector.steps) {
      this.currentStep = step.index;
      for (const { run } of this.targetsOf(step)) if (!(await run.runStep(step))) return;
    }
  }

  /** The device runs a step runs on. */
  private targetsOf(step: Step): readonly { readonly run: DriverRun }[] {
    if (step.device !== undefined) return [this.runs[step.device]!];
    return stepKindOf(step.action).systemWide ? this.runs.slice(0, 1) : this.runs;
  }
}
