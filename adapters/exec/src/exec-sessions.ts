/**
 * The exec adapter's sessions: the contract's calls as harness commands.
 *
 * Device sessions forward every call to a harness that wraps a device. Driver sessions keep the
 * device in the suite (a {@link DriverDevice}: the reference model, `spec` profile) and answer
 * the calls the harness's driver makes while it starts and settles; host actions and scripted
 * answers never reach the harness.
 */
import type {
  Chain,
  Completion,
  DeviceSession,
  DriverActivity,
  DriverEvent,
  DriverSession,
  HandshakeResult,
  MemoryAccess,
  ResizeOutcome,
  SettleLimits,
} from '../../core/src/contract';
import { AdapterError } from '../../core/src/contract';
import { writablePoison } from '../../../spec/src/index';
import type { HarnessAnswer, HarnessCall } from '../../../spec/src/index';
import { DriverDeviceSession } from '../../model/src/driver-device';
import type { DriverDevice } from '../../model/src/driver-device';
import type { HarnessChannel } from './harness-channel';

/**
 * A session that closes quietly: a channel broken or busy is left to the adapter. A violation in
 * the close itself comes after the vector's verdict, so the next vector reports it.
 */
async function closeQuietly(channel: HarnessChannel, op: 'close_device' | 'close_driver'): Promise<void> {
  if (channel.broken !== undefined || channel.busy) return;
  await channel.command(op, {}).catch((error: unknown) => {
    if (channel.broken !== undefined && error instanceof AdapterError) channel.untold ??= error;
  });
}

/** A device in a harness. */
export class ExecDeviceSession implements DeviceSession {
  constructor(private readonly channel: HarnessChannel) {}

  async initialise(accept: (offered: bigint) => bigint): Promise<HandshakeResult> {
    let calls = 0;
    const reply = await this.channel.command('initialise', {}, (call: HarnessCall): HarnessAnswer => {
      if (call.call !== 'accept') throw new Error(`unexpected call ${call.call}`);
      calls++;
      return { answer: 'accept', fields: { features: accept(call.fields.offered) } };
    });
    if (calls !== 1)
      throw new AdapterError(
        `the harness made ${calls} accept calls during initialise; the protocol wants exactly one`,
      );
    return { offered: reply.offered, accepted: reply.accepted, featuresOk: reply.features_ok, status: reply.status };
  }

  async readConfig(): Promise<Uint8Array> {
    return (await this.channel.command('read_config', {})).config;
  }

  async readConfigGeneration(): Promise<number> {
    return (await this.channel.command('read_config_generation', {})).generation;
  }

  async submit(chain: Chain): Promise<Completion> {
    // Each writable buffer carries the poison pattern from its offset in the joined writable space.
    let offset = 0;
    const writable = chain.writableSizes.map((size) => {
      const buffer = writablePoison(size, offset);
      offset += size;
      return buffer;
    });
    const reply = await this.channel.command('submit', { readable: chain.readable, writable });
    if (!reply.used) return { kind: 'no-used-entry' };
    const length = reply.length!;
    const written = reply.written!;
    if (written.length !== Math.min(length, offset))
      throw new AdapterError(
        `the harness reported ${written.length} written bytes for used length ${length} and ${offset} writable bytes (expected ${Math.min(length, offset)})`,
      );
    return { kind: 'used', length, written };
  }

  async notificationCount(): Promise<number> {
    return (await this.channel.command('notification_count', {})).count;
  }

  async readStatus(): Promise<number> {
    return (await this.channel.command('read_status', {})).status;
  }

  async resize(requestedSize: bigint): Promise<ResizeOutcome> {
    const reply = await this.channel.command('resize', { requested_size: requestedSize });
    return reply.applied ? { kind: 'applied' } : { kind: 'refused', reason: reply.reason! };
  }

  async deviceReset(): Promise<void> {
    await this.channel.command('device_reset', {});
  }

  async systemReset(): Promise<void> {
    await this.channel.command('system_reset', {});
  }

  async injectBusy(count: number): Promise<void> {
    await this.channel.command('inject_busy', { count });
  }

  async hostBusy(busy: boolean): Promise<void> {
    await this.channel.command('host_busy', { busy });
  }

  async readMemory(addr: bigint, length: number): Promise<MemoryAccess> {
    const reply = await this.channel.command('read_memory', { addr, length });
    return reply.refused !== undefined ? { ok: false, reason: reply.refused } : { ok: true, data: reply.data! };
  }

  async writeMemory(addr: bigint, data: Uint8Array): Promise<MemoryAccess> {
    const reply = await this.channel.command('write_memory', { addr, data });
    return reply.refused !== undefined ? { ok: false, reason: reply.refused } : { ok: true, data: new Uint8Array(0) };
  }

  async suspendAndWake(): Promise<void> {
    await this.channel.command('suspend', {});
  }

  async close(): Promise<void> {
    await closeQuietly(this.channel, 'close_device');
  }
}

/** A driver in a harness, attached to a device the suite holds. */
export class ExecDriverSession extends DriverDeviceSession implements DriverSession {
  constructor(
    private readonly channel: HarnessChannel,
    device: DriverDevice,
  ) {
    super(device);
  }

  /** Answers a read_config call (the only call allowed while the driver starts). */
  private answerReadConfig(): HarnessAnswer {
    const seen = this.device.readConfigCall();
    return { answer: 'read_config', fields: { config: seen.config, config_changed: seen.configChanged } };
  }

  async start(): Promise<void> {
    const reply = await this.channel.command('start', { offered: this.device.host.offeredFeatures }, (call) => {
      if (call.call !== 'read_config') throw new Error(`unexpected call ${call.call}`);
      return this.answerReadConfig();
    });
    // The device sees the handshake with the features the driver chose.
    await this.device.handshake(() => reply.accepted);
  }

  async settle(limits: SettleLimits): Promise<DriverActivity> {
    const events: DriverEvent[] = [];
    let requests = 0;
    const reply = await this.channel.command(
      'settle',
      {
        max_requests: limits.maxRequests,
        timeout_ms: limits.timeoutMs,
        config_changed: this.device.takeConfigChanged(),
      },
      (call): HarnessAnswer => {
        switch (call.call) {
          case 'read_config':
            return this.answerReadConfig();
          case 'request': {
            // The driver was told the limit; going past it is the harness's fault, and a flood ends here.
            if (++requests > limits.maxRequests)
              throw new Error(`more than max_requests (${limits.maxRequests}) request calls`);
            const r = this.device.requestCall(call.fields.bytes, call.fields.at_ms, events);
            return { answer: 'request', fields: { response: r.response, config_changed: r.configChanged } };
          }
          case 'write_memory': {
            const f = call.fields;
            const r = this.device.writeMemoryCall(f.addr, f.length, f.data, events);
            return { answer: 'write_memory', fields: { ok: r.ok, config_changed: r.configChanged } };
          }
          case 'accept':
            throw new Error('unexpected call accept');
        }
      },
      limits.timeoutMs,
    );
    return { events, settled: reply.settled, stop: reply.stop, waitedMs: reply.waited_ms };
  }

  /** A reboot: the device goes through a system reset, the harness makes a fresh driver, which probes it. */
  async systemReset(): Promise<void> {
    await this.channel.command('reboot', {});
    this.device.reboot();
    await this.start();
  }

  async requestSuspend(): Promise<{ allowed: boolean; detail: string }> {
    return this.channel.command('may_suspend', {});
  }

  async close(): Promise<void> {
    await closeQuietly(this.channel, 'close_driver');
  }
}
