import { AdapterError } from '../../core/src/contract';
import type { DeviceSetup } from '../../core/src/contract';
import type { VirtioPciDriver } from '../../virtio/src/index';
import { VirtioDeviceSession } from './device-session';
import type { DeviceHandle } from './device-session';
import type { HostControl } from './host-control';

const SETUP: DeviceSetup = {
  block_size: 1n << 20n,
  region_size: 16n << 20n,
  addr: 1n << 32n,
  requested_size: 0n,
  node_id: 0,
  plugged: [],
};

/** A driver double that counts ISR polls and re-probes. */
function handleWith(host: HostControl): DeviceHandle & { probes: number; isrPolls: number } {
  const driver = {
    configInterrupts: 3,
    pollIsr: async () => void handle.isrPolls++,
    readStatus: async () => 0,
  } as unknown as VirtioPciDriver;
  const handle = {
    driver,
    host,
    spoiled: false,
    probes: 0,
    isrPolls: 0,
    probe: async () => {
      handle.probes++;
      return { ...driver, configInterrupts: 0 } as unknown as VirtioPciDriver;
    },
  };
  return handle;
}

function sessionOn(handle: DeviceHandle): VirtioDeviceSession {
  return new VirtioDeviceSession(handle, SETUP, {
    adapterName: 'test',
    maxAccessBytes: 1 << 20,
    failure: async (what, e) => new AdapterError(`${what}: ${e.message}`),
    release: async () => undefined,
  });
}

describe('the shared device session', () => {
  test('has a host action only when its host control has it', () => {
    const session = sessionOn(handleWith({ name: 'none' }));
    expect(session.resize).toBeUndefined();
    expect(session.systemReset).toBeUndefined();
    expect(session.hostBusy).toBeUndefined();
    expect(session.suspendAndWake).toBeUndefined();
  });

  test('a system reset goes to the host, then the function is enumerated again, keeping the interrupt count', async () => {
    const resets: string[] = [];
    const handle = handleWith({ name: 'h', systemReset: async () => void resets.push('reset') });
    await sessionOn(handle).systemReset!();
    expect(resets).toEqual(['reset']);
    expect(handle.probes).toBe(1);
    expect(handle.driver.configInterrupts).toBe(3);
  });

  test('an applied resize polls the ISR; a refused one does not', async () => {
    let answer: 'applied' | 'refused' = 'applied';
    const handle = handleWith({
      name: 'h',
      resize: async () => (answer === 'applied' ? { kind: 'applied' } : { kind: 'refused', reason: 'no' }),
    });
    const session = sessionOn(handle);
    await expect(session.resize!(2n << 20n)).resolves.toEqual({ kind: 'applied' });
    answer = 'refused';
    await expect(session.resize!(3n)).resolves.toEqual({ kind: 'refused', reason: 'no' });
    expect(handle.isrPolls).toBe(1);
  });

  test('a failing host action spoils the device and becomes the adapter error', async () => {
    const handle = handleWith({
      name: 'h',
      hostBusy: async () => {
        throw new Error('hook exited with 1');
      },
    });
    await expect(sessionOn(handle).hostBusy!(true)).rejects.toThrow('host busy (h): hook exited with 1');
    expect(handle.spoiled).toBe(true);
  });

  test('a session closed busy releases the device', async () => {
    const calls: boolean[] = [];
    const handle = handleWith({ name: 'h', hostBusy: async (busy) => void calls.push(busy) });
    const session = sessionOn(handle);
    await session.hostBusy!(true);
    await session.close();
    expect(calls).toEqual([true, false]);
    expect(handle.spoiled).toBe(false);
  });
});
