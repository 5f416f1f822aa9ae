/**
 * One driver managing several devices at once (`multi-device`): the model adapter's answer to a
 * multi-device driver vector. Each device has its own {@link ModelDriverSession} (its device of
 * the `spec` profile and its driver state, as Linux keeps one `virtio_mem` instance per device);
 * the group runs them together. A settle asked of any device lets every device's driver run
 * until it is quiet, and hands each device the activity it had since its own last settle, so
 * no request is lost or judged against the wrong device. A reboot, a suspend and the node memory
 * are the whole system's.
 */
import type {
  DriverActivity,
  DriverEvent,
  DriverSession,
  ResizeOutcome,
  ResponseInjection,
  SettleLimits,
} from '../../core/src/contract';
import type { ModelDriverSession } from './model-adapter';

/** Adds one device's share to a per-node total (a share of 0 bytes leaves the map as it is). */
export function addNodeMemory(
  total: Map<number, bigint>,
  share: { readonly node: number; readonly bytes: bigint },
): Map<number, bigint> {
  if (share.bytes > 0n) total.set(share.node, (total.get(share.node) ?? 0n) + share.bytes);
  return total;
}

/** What one device's driver did in the group's settles since the device's own last settle. */
interface Pending {
  events: DriverEvent[];
  last?: Omit<DriverActivity, 'events'>;
}

/** The devices of one multi-device driver session, run together. */
class ModelDriverGroup {
  private readonly pending: Pending[];

  constructor(readonly members: readonly ModelDriverSession[]) {
    this.pending = members.map(() => ({ events: [] }));
  }

  /** Lets every device's driver run until it is quiet; returns device `index`'s activity since its last settle. */
  async settle(index: number, limits: SettleLimits): Promise<DriverActivity> {
    for (const [i, member] of this.members.entries()) {
      const { events, ...rest } = await member.settle(limits);
      this.pending[i]!.events.push(...events);
      this.pending[i]!.last = rest;
    }
    const mine = this.pending[index]!;
    this.pending[index] = { events: [] };
    return { events: mine.events, ...mine.last! };
  }

  /** A reboot of the machine: every device is reset and probed again. */
  async systemReset(): Promise<void> {
    for (const member of this.members) await member.systemReset();
    for (const [i] of this.members.entries()) this.pending[i] = { events: [] };
  }

  /** The guest suspends only when every device's driver allows it (drv.op.11, per device). */
  async requestSuspend(): Promise<{ allowed: boolean; detail: string }> {
    const answers = await Promise.all(this.members.map((m) => m.requestSuspend()));
    const refused = answers.findIndex((a) => !a.allowed);
    return refused < 0
      ? { allowed: true, detail: answers.map((a) => a.detail).join('; ') }
      : { allowed: false, detail: `device ${refused}: ${answers[refused]!.detail}` };
  }

  /** The memory every device's driver added, per node. */
  nodeMemory(): ReadonlyMap<number, bigint> {
    return this.members.reduce((total, m) => addNodeMemory(total, m.memoryShare()), new Map<number, bigint>());
  }
}

/** One device's session in a group: its own device, the group's driver run. */
class GroupMemberSession implements DriverSession {
  constructor(
    private readonly group: ModelDriverGroup,
    private readonly index: number,
  ) {}

  private get own(): ModelDriverSession {
    return this.group.members[this.index]!;
  }

  start(): Promise<void> {
    return this.own.start();
  }

  settle(limits: SettleLimits): Promise<DriverActivity> {
    return this.group.settle(this.index, limits);
  }

  readConfig(): Promise<Uint8Array> {
    return this.own.readConfig();
  }

  acceptedFeatures(): Promise<bigint> {
    return this.own.acceptedFeatures();
  }

  offeredFeatures(): Promise<bigint> {
    return this.own.offeredFeatures();
  }

  resize(requestedSize: bigint): Promise<ResizeOutcome> {
    return this.own.resize(requestedSize);
  }

  injectResponses(injection: ResponseInjection): Promise<void> {
    return this.own.injectResponses(injection);
  }

  systemReset(): Promise<void> {
    return this.group.systemReset();
  }

  requestSuspend(): Promise<{ allowed: boolean; detail: string }> {
    return this.group.requestSuspend();
  }

  async nodeMemory(): Promise<ReadonlyMap<number, bigint>> {
    return this.group.nodeMemory();
  }

  async close(): Promise<void> {
    /* nothing held */
  }
}

/** Runs `members` (one session per device) as one driver managing them all; one session per device, in order. */
export function openDriverGroup(members: readonly ModelDriverSession[]): readonly DriverSession[] {
  const group = new ModelDriverGroup(members);
  return members.map((_, i) => new GroupMemberSession(group, i));
}
