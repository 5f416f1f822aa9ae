/**
 * GuestDriverControl against a simulated guest: the shell commands it sends are answered by a
 * small model of Linux's memory blocks and the virtio_mem module, QMP by a model of QEMU's device.
 */
import { AdapterError } from '../../core/src/contract';
import { BlockBitmap } from '../../../model/src/blocks/bitmap';
import { HostView } from '../../qemu-platform/src/index';
import { GuestDriverControl } from './guest-driver-control';
import type { GuestLink } from './guest-link';
import type { GuestObserver } from './guest-observer';

const MiB = 1n << 20n;
const MEMADDR = 4n << 30n;
const MEMORY_BLOCK = 128n * MiB;
const GEOMETRY: HostView = {
  size: 0n,
  requestedSize: 0n,
  blockSize: 2n * MiB,
  maxSize: 1n << 30n,
  memaddr: MEMADDR,
  node: 0,
};
const FIRST_ID = Number(MEMADDR / MEMORY_BLOCK);

/** What the simulated guest does differently from a well-behaved one. */
interface Quirks {
  /** rmmod leaves the region's memory added this many times (Linux keeping memory for a reason of its own). */
  rmmodKeepsMemory?: number;
  /** On the first offlining pass the driver adds (and onlines) the next memory block too. */
  lateBlock?: boolean;
}

/** QEMU's device and Linux's view of it, with a log of what the adapter did. */
class SimulatedGuest {
  plugged = 0n;
  requested = 0n;
  loaded = true;
  /** Memory blocks of the region Linux has added, by id. */
  readonly blocks = new Map<number, 'online' | 'offline'>();
  /** The driver's resource for the region is in /proc/iomem. */
  claimed = true;
  readonly log: string[] = [];
  private offlinePasses = 0;

  constructor(private readonly quirks: Quirks = {}) {}

  readonly link = {
    sh: async (command: string): Promise<string> => this.sh(command),
    hostView: async (): Promise<HostView> => ({ ...GEOMETRY, size: this.plugged, requestedSize: this.requested }),
    setRequestedSize: async (size: bigint): Promise<void> => {
      this.log.push(`requested ${size / MiB} MiB`);
      this.requested = size;
      if (this.loaded) this.converge();
    },
    resetMachine: async (): Promise<void> => {
      this.log.push('system_reset');
      this.plugged = 0n;
      this.blocks.clear();
      // The guest's init loads the driver at boot; it goes for whatever is requested.
      this.loaded = true;
      this.claimed = true;
      this.converge();
    },
    resume: async (): Promise<void> => undefined,
  };

  readonly observer = {
    skipTrace: (): void => undefined,
    acknowledgedBlocks: (): BlockBitmap => {
      const blocks = new BlockBitmap(Number(GEOMETRY.maxSize / GEOMETRY.blockSize));
      blocks.setRange(0, Number(this.plugged / GEOMETRY.blockSize));
      return blocks;
    },
  };

  control(): GuestDriverControl {
    return new GuestDriverControl(
      this.link as unknown as GuestLink,
      this.observer as unknown as GuestObserver,
      GEOMETRY,
      2000,
    );
  }

  /** The driver brings plugged_size to requested_size, adding and onlining memory it plugs, removing what it empties. */
  private converge(): void {
    this.plugged = this.requested;
    if (this.plugged > 0n) this.blocks.set(FIRST_ID, 'online');
    else this.blocks.clear();
  }

  private iomem(): string {
    const lines = ['00000000-0009ffff : System RAM'];
    if (this.claimed) lines.push(`${MEMADDR.toString(16)}-${(MEMADDR + GEOMETRY.maxSize - 1n).toString(16)} : virtio1`);
    for (const id of [...this.blocks.keys()].sort()) {
      const start = BigInt(id) * MEMORY_BLOCK;
      lines.push(`  ${start.toString(16)}-${(start + MEMORY_BLOCK - 1n).toString(16)} : System RAM (virtio_mem)`);
    }
    return `${lines.join('\n')}\n`;
  }

  private states(): string {
    return [...this.blocks]
      .sort(([a], [b]) => a - b)
      .map(([id, state]) => `${id} ${state}\n`)
      .join('');
  }

  private sh(command: string): string {
    if (command.startsWith('ls /sys/bus/virtio/drivers/virtio_mem')) return this.loaded ? '1\n' : '0\n';
    if (command.includes('/sys/module/virtio_mem')) return this.loaded ? 'yes\n' : 'no\n';
    if (command === 'cat /proc/iomem') return this.iomem();
    if (command === 'cat /sys/devices/system/memory/auto_online_blocks') return 'online_movable\n';
    if (command === 'cat /sys/devices/system/memory/block_size_bytes') return `${MEMORY_BLOCK.toString(16)}\n`;
    if (command === 'modprobe virtio_mem') {
      this.log.push('modprobe');
      this.loaded = true;
      this.claimed = true;
      this.converge();
      return '';
    }
    if (command === 'rmmod virtio_mem') {
      this.log.push('rmmod');
      this.loaded = false;
      const keep = this.blocks.size > 0 && (this.quirks.rmmodKeepsMemory ?? 0) > 0;
      if (keep) this.quirks.rmmodKeepsMemory! -= 1;
      // Linux removes the offline memory of the region; online memory stays added, and so does the resource.
      if (!keep) for (const [id, state] of this.blocks) if (state === 'offline') this.blocks.delete(id);
      this.claimed = this.blocks.size > 0;
      return '';
    }
    if (command.includes('echo offline >')) {
      this.offlinePasses++;
      for (const id of this.blocks.keys()) this.blocks.set(id, 'offline');
      if (this.quirks.lateBlock && this.offlinePasses === 1) this.blocks.set(FIRST_ID + 1, 'online');
      return this.states();
    }
    if (command.includes('/state')) {
      // The waits read the state of the blocks they name; absent ones read 'absent'.
      if (command.includes('echo "memory$n')) return this.states().trim().replace(/^/gm, 'memory');
      const ids = /for n in ([0-9 ]+);/.exec(command)![1]!.trim().split(' ').map(Number);
      return ids.map((id) => this.blocks.get(id) ?? 'absent').join('\n');
    }
    throw new Error(`the simulated guest does not know: ${command}`);
  }
}

describe('GuestDriverControl.plugPrefix (initial-plugged)', () => {
  test('leaves the first blocks plugged with the driver unloaded and nothing of the region in Linux', async () => {
    const guest = new SimulatedGuest();
    await guest.control().drain();
    await guest.control().plugPrefix(4);
    expect({ plugged: guest.plugged, loaded: guest.loaded, claimed: guest.claimed, blocks: guest.blocks.size }).toEqual(
      { plugged: 8n * MiB, loaded: false, claimed: false, blocks: 0 },
    );
    expect(guest.log).not.toContain('system_reset');
  });

  test('a memory block added while the first offlining pass runs is offlined too before rmmod', async () => {
    const guest = new SimulatedGuest({ lateBlock: true });
    await guest.control().drain();
    await guest.control().plugPrefix(4);
    expect(guest.log).not.toContain('system_reset');
    expect({ plugged: guest.plugged, claimed: guest.claimed }).toEqual({ plugged: 8n * MiB, claimed: false });
  });

  test('when Linux keeps memory after rmmod, the guest is rebooted with 0 requested first and the blocks are plugged again', async () => {
    const guest = new SimulatedGuest({ rmmodKeepsMemory: 1 });
    await guest.control().drain();
    guest.log.length = 0;
    await guest.control().plugPrefix(4);
    const reset = guest.log.indexOf('system_reset');
    expect(reset).toBeGreaterThan(0);
    // Asked for 0 before the reset: the driver the guest loads at boot has nothing to plug.
    expect(guest.log[reset - 1]).toBe('requested 0 MiB');
    // After the reboot the prefix is made again: the device holds it, nothing of it is in Linux.
    expect(guest.log.slice(reset)).toContain('modprobe');
    expect({ plugged: guest.plugged, loaded: guest.loaded, claimed: guest.claimed }).toEqual({
      plugged: 8n * MiB,
      loaded: false,
      claimed: false,
    });
  });

  test('memory kept after rmmod on both attempts is an adapter error naming what Linux holds', async () => {
    const guest = new SimulatedGuest({ rmmodKeepsMemory: 2 });
    await guest.control().drain();
    const failure = guest.control().plugPrefix(4);
    await expect(failure).rejects.toBeInstanceOf(AdapterError);
    await expect(failure).rejects.toThrow(
      /Linux kept memory of the device region after offlining it and rmmod \(iomem: 0x100000000-0x13fffffff virtio1; 0x100000000-0x107ffffff System RAM \(virtio_mem\); memory blocks: memory32 offline\), 2 times/,
    );
  });
});
