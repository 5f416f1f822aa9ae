/**
 * The Linux driver's life cycle inside the guest, driven over SSH: load it (`modprobe`), find the
 * virtio device it bound, read the features it accepted, and take it down again with nothing
 * plugged, so each vector sees a fresh probe.
 *
 * Between vectors the driver is unloaded with nothing plugged: the host asks for 0, the driver
 * unplugs, `rmmod`. Memory plugged at start (`initial-plugged`) is made by letting the driver
 * plug the first blocks, then offlining them and unloading the driver, which leaves them
 * plugged in the device (scattered runs: {@link GuestDriverControl.plugScattered}); the trace shows exactly which blocks were plugged, so a setup the
 * driver cannot reproduce is `unsupported`, never approximated. Linux cannot load the driver
 * again while memory of an earlier instance is still added; such a guest is rebooted.
 *
 * Every step waits on the state it needs (QMP's plugged size, the memory blocks' sysfs state,
 * /proc/iomem), bounded, never for a fixed time: the guest runs under TCG on machines that may be
 * loaded, so anything it does can take seconds.
 */
import { BlockRange, formatHex } from '../../../spec/src/index';
import { AdapterError, UnsupportedSetupError } from '../../core/src/contract';
import { sleep } from '../../core/src/sleep';
import { HostView } from '../../qemu-platform/src/index';
import type { PlugRedirection } from './gdb-plug-redirect';
import { GuestLink } from './guest-link';
import { GuestObserver } from './guest-observer';
import { PlugPlacement, pluggedStateDifference, scatterSteps } from './scattered-plug';

/** One entry of /proc/iomem. */
export interface IomemEntry {
  readonly start: bigint;
  readonly end: bigint;
  readonly name: string;
}

/** Entries of /proc/iomem (as root, so with real addresses). */
export function parseIomem(text: string): IomemEntry[] {
  const entries: IomemEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([0-9a-f]+)-([0-9a-f]+) : (.*)$/.exec(line);
    if (m) entries.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), name: m[3]!.trim() });
  }
  return entries;
}

/** How long the guest gets to load the driver again after a reboot. */
const RELOAD_AFTER_REBOOT_MS = 60_000;
/** How often the device is given its target again while the driver is expected to reach it. */
const KICK_EVERY_MS = 5000;
/**
 * Attempts at plugging the initial blocks: after one that ends with Linux still holding memory of
 * the region, the guest is rebooted (which unplugs everything) and the blocks are plugged again.
 */
const PREFIX_ATTEMPTS = 2;

/** Loads, unloads, drains and recovers the guest's virtio_mem driver. */
export class GuestDriverControl {
  constructor(
    private readonly link: GuestLink,
    private readonly observer: GuestObserver,
    /** The device's fixed geometry (block size, region), as QMP gave it at set-up. */
    private readonly geometry: HostView,
    /** Bound on draining the device (shrink to 0) and on plugging the initial blocks. */
    private readonly drainTimeoutMs: number,
    /** Drain by a system reset (QEMU unplugs everything) instead of asking the driver to unplug (a large region). */
    private readonly drainByReset = false,
  ) {}

  /** `modprobe virtio_mem`. */
  async load(): Promise<void> {
    await this.link.sh('modprobe virtio_mem', 'loading virtio_mem');
  }

  /** The virtio device virtio_mem is bound to, waiting up to 5 s for the probe. */
  async boundDevice(): Promise<string> {
    const bound = await this.link.sh(
      `for i in $(seq 1 100); do for v in /sys/bus/virtio/drivers/virtio_mem/virtio*; do [ -e "$v" ] && { basename $v; exit 0; }; done; sleep 0.05; done; exit 1`,
      'waiting for virtio_mem to bind',
    );
    const name = bound.trim();
    if (!/^virtio[0-9]+$/.test(name)) throw new AdapterError(`odd virtio device name '${name}'`);
    return name;
  }

  /** The feature bits the driver accepted on virtio device `virtioName` (sysfs, bit 0 first). */
  async acceptedFeatures(virtioName: string): Promise<bigint> {
    const bits = (
      await this.link.sh(`cat /sys/bus/virtio/devices/${virtioName}/features`, 'reading the accepted features')
    ).trim();
    if (!/^[01]+$/.test(bits)) throw new AdapterError(`odd features string '${bits}'`);
    let v = 0n;
    for (let i = 0; i < bits.length && i < 64; i++) if (bits[i] === '1') v |= 1n << BigInt(i);
    return v;
  }

  /** Leaves the driver unloaded and the device with nothing plugged. */
  async drain(): Promise<void> {
    // A guest reset by the previous vector may still be booting (its session's close resumes it
    // without waiting): its driver probes at boot, so the guest must answer before it is looked at.
    await this.link.resume();
    const bound =
      (
        await this.link.sh(
          'ls /sys/bus/virtio/drivers/virtio_mem 2>/dev/null | grep -c ^virtio || true',
          'checking the driver',
        )
      ).trim() !== '0';
    if (!bound && (await this.regionClaimed())) {
      // An earlier driver instance left memory added; Linux cannot load the driver again until a reboot.
      await this.recover('memory of an earlier driver instance is still added');
      return;
    }
    const loaded = await this.driverLoaded();
    const d = await this.link.hostView();
    if (!loaded && d.size === 0n) return;
    if (this.drainByReset && d.size > 0n) {
      await this.recover('the device is drained by a system reset');
      return;
    }
    // A driver still plugging toward the last target (one probed at boot plugs after SSH answers)
    // may show plugged_size 0 before its PLUG lands: asked for 0 then, it would pass for drained
    // and add memory while rmmod runs. Once it holds its target, plugged_size only falls to 0 by
    // unplugging.
    if (loaded && d.size < d.requestedSize) await this.reach(d.requestedSize, this.drainTimeoutMs);
    await this.link.setRequestedSize(0n);
    if (!loaded) await this.load();
    await this.waitPlugged(0n, this.drainTimeoutMs);
    await this.unload();
  }

  /**
   * `initial-plugged`: the driver plugs the first `count` blocks, then is unloaded leaving them
   * plugged. When Linux keeps memory of the region after that, the guest is rebooted (the device
   * unplugs everything on a system reset) and the blocks are plugged again, once.
   */
  async plugPrefix(count: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const held = await this.tryPlugPrefix(count);
      if (held === undefined) return;
      const why = `Linux kept memory of the device region after offlining it and rmmod (${held})`;
      if (attempt >= PREFIX_ATTEMPTS) throw new AdapterError(`${why}, ${attempt} times`);
      await this.recover(why);
    }
  }

  /**
   * One attempt of {@link plugPrefix}: undefined when the device holds the first `count` blocks
   * with the driver unloaded, else what Linux still holds of the region (it needs a reboot).
   */
  private async tryPlugPrefix(count: number): Promise<string | undefined> {
    const size = BigInt(count) * this.geometry.blockSize;
    this.observer.skipTrace();
    await this.link.setRequestedSize(size);
    await this.load();
    await this.waitPlugged(size, this.drainTimeoutMs);
    const blocks = this.observer.acknowledgedBlocks();
    if (blocks.count !== count || blocks.countRange(0, count) !== count) {
      await this.drain();
      throw new UnsupportedSetupError(
        `the guest's driver plugged other blocks than the first ${count}; this setup cannot be reproduced`,
      );
    }
    await this.waitAdded(size, this.drainTimeoutMs);
    // Offline the device's memory blocks so that unloading the driver removes them from Linux
    // while the device keeps them plugged.
    await this.offlineRegion();
    // Unloading removes the offline memory from Linux; the device keeps the blocks plugged.
    await this.link.sh('rmmod virtio_mem', 'unloading virtio_mem');
    if (await this.regionClaimed()) return await this.regionHeld();
    const after = await this.link.hostView();
    if (after.size !== size)
      throw new AdapterError(
        `after unloading the driver the device holds ${formatHex(after.size)} plugged, not ${formatHex(size)}`,
      );
    return undefined;
  }

  /**
   * `initial-plugged` in scattered runs: a driver instance loaded with auto-onlining off plugs
   * run after run while `redirection` rewrites each of its PLUGs onto the vector's blocks (see
   * scattered-plug.ts); its memory is never onlined, so the guest never uses blocks the device
   * does not hold. The blocks QEMU acknowledged (its trace) and its plugged size are checked
   * against the vector's before and after the instance is unloaded: any difference is an
   * {@link AdapterError} naming it, never a vector run on another state.
   */
  async plugScattered(ranges: readonly BlockRange[], redirection: PlugRedirection): Promise<void> {
    const steps = scatterSteps(ranges);
    const total = BigInt(steps[steps.length - 1]?.totalBlocks ?? 0) * this.geometry.blockSize;
    const policyFile = '/sys/devices/system/memory/auto_online_blocks';
    const policy = (await this.link.sh(`cat ${policyFile}`, 'reading the memory onlining policy')).trim();
    if (!/^[a-z_]+$/.test(policy)) throw new AdapterError(`odd memory onlining policy '${policy}'`);
    await this.link.sh(`echo offline > ${policyFile}`, 'turning memory onlining off');
    let loaded = false;
    try {
      this.observer.skipTrace();
      await this.link.setRequestedSize(0n);
      await this.load();
      loaded = true;
      const placement = new PlugPlacement(this.geometry);
      await redirection.attach(placement);
      let failure: string | undefined;
      try {
        for (const step of steps) {
          placement.begin(step);
          const size = BigInt(step.totalBlocks) * this.geometry.blockSize;
          await this.link.setRequestedSize(size);
          await this.waitPlugged(size, this.drainTimeoutMs);
        }
      } finally {
        failure = (await redirection.detach()).failure;
      }
      if (failure) throw new AdapterError(`plugging the scattered blocks: ${failure}`);
      const difference = pluggedStateDifference(ranges, this.observer.acknowledgedBlocks());
      if (difference) throw new AdapterError(`QEMU's trace after the set-up plug: ${difference}`);
      await this.offlineRegion();
      await this.link.sh('rmmod virtio_mem', 'unloading virtio_mem');
      loaded = false;
      if (await this.regionClaimed())
        throw new AdapterError(`Linux kept memory of the device region after rmmod (${await this.regionHeld()})`);
      const after = await this.link.hostView();
      if (after.size !== total)
        throw new AdapterError(
          `after unloading the driver the device holds ${formatHex(after.size)} plugged, not ${formatHex(total)}`,
        );
    } catch (e) {
      // The set-up instance's view is not the device's: a reboot (which unplugs everything) clears both.
      if (loaded) await this.recover('the scattered set-up failed').catch(() => undefined);
      throw e;
    } finally {
      await this.link.sh(`echo ${policy} > ${policyFile}`, 'restoring the memory onlining policy');
    }
  }

  /**
   * Offlines every memory block of the device region Linux has, and waits until each of them
   * reads offline (a block added or onlined after the first pass is offlined too).
   */
  private async offlineRegion(): Promise<void> {
    const ids = await this.memoryBlocksOf(this.geometry.maxSize);
    const deadline = Date.now() + this.drainTimeoutMs;
    for (;;) {
      const states = await this.link.sh(
        `for n in ${ids.join(' ')}; do f=/sys/devices/system/memory/memory$n/state; if [ -e $f ] && [ "$(cat $f)" != offline ]; then echo offline > $f || exit 1; fi; done; ` +
          `for n in ${ids.join(' ')}; do f=/sys/devices/system/memory/memory$n/state; [ -e $f ] && echo "$n $(cat $f)"; done; true`,
        'offlining the plugged memory',
      );
      const notOffline = states
        .trim()
        .split('\n')
        .filter((line) => line && !line.endsWith(' offline'));
      if (notOffline.length === 0) return;
      if (Date.now() > deadline)
        throw new AdapterError(
          `memory blocks of the device region did not stay offline within ${this.drainTimeoutMs} ms: ${notOffline.map((l) => `memory${l}`).join(', ')}`,
        );
      await sleep(100);
    }
  }

  /** What Linux still holds of the device region: its /proc/iomem lines and the memory blocks' states. */
  private async regionHeld(): Promise<string> {
    const region = (await this.iomem()).filter(
      (e) => e.start >= this.geometry.memaddr && e.end < this.geometry.memaddr + this.geometry.maxSize,
    );
    const ids = await this.memoryBlocksOf(this.geometry.maxSize);
    const states = (
      await this.link.sh(
        `for n in ${ids.join(' ')}; do f=/sys/devices/system/memory/memory$n/state; [ -e $f ] && echo "memory$n $(cat $f)"; done; true`,
        'reading the state of the memory blocks',
      )
    )
      .trim()
      .split('\n')
      .filter(Boolean);
    const ranges = region.map((e) => `${formatHex(e.start)}-${formatHex(e.end)} ${e.name}`);
    return `iomem: ${ranges.join('; ') || 'none'}; memory blocks: ${states.join(', ') || 'none'}`;
  }

  private async driverLoaded(): Promise<boolean> {
    return (
      (
        await this.link.sh('if [ -d /sys/module/virtio_mem ]; then echo yes; else echo no; fi', 'checking the driver')
      ).trim() === 'yes'
    );
  }

  /** Waits until the device holds `size` bytes plugged (see {@link reach}); an {@link AdapterError} when it does not in time. */
  private async waitPlugged(size: bigint, timeoutMs: number): Promise<void> {
    const d = await this.reach(size, timeoutMs);
    if (d.size !== size)
      throw new AdapterError(
        `the driver did not bring plugged_size to ${formatHex(size)} within ${timeoutMs} ms (it holds ${formatHex(d.size)})`,
      );
  }

  /**
   * Waits until the device holds `size` bytes plugged or `timeoutMs` pass, re-sending the target
   * now and then (it wakes a driver in its retry backoff); the device as last read.
   */
  private async reach(size: bigint, timeoutMs: number): Promise<HostView> {
    const deadline = Date.now() + timeoutMs;
    let lastKick = Date.now();
    for (;;) {
      const d = await this.link.hostView();
      if (d.size === size || Date.now() > deadline) return d;
      if (Date.now() - lastKick > KICK_EVERY_MS) {
        lastKick = Date.now();
        await this.link.setRequestedSize(d.requestedSize);
      }
      await sleep(100);
    }
  }

  /**
   * Waits until Linux has added the memory of the region's first `size` bytes, and onlined it
   * when the guest onlines hot-plugged memory itself. The driver plugs a memory block's blocks
   * before it adds that memory block to Linux, so plugged_size reaches its target while the
   * memory is still being added: offlining then misses the block (not there yet, or not yet
   * online), and after rmmod the memory stays added.
   */
  private async waitAdded(size: bigint, timeoutMs: number): Promise<void> {
    const policy = (
      await this.link.sh('cat /sys/devices/system/memory/auto_online_blocks', 'reading the memory onlining policy')
    ).trim();
    const settled = policy === 'offline' ? 'offline' : 'online';
    const ids = await this.memoryBlocksOf(size);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = (
        await this.link.sh(
          `for n in ${ids.join(' ')}; do f=/sys/devices/system/memory/memory$n/state; if [ -e $f ]; then cat $f; else echo absent; fi; done`,
          'reading the state of the plugged memory',
        )
      )
        .trim()
        .split(/\s+/);
      if (states.every((state) => state === settled)) return;
      if (Date.now() > deadline)
        throw new AdapterError(
          `Linux did not add the ${formatHex(size)} the driver plugged within ${timeoutMs} ms: memory blocks ${ids.join(', ')} are ${states.join(', ')}, not ${settled}`,
        );
      await sleep(100);
    }
  }

  /** The guest's /proc/iomem entries (start, end, name), indented ones included. */
  private async iomem(): Promise<IomemEntry[]> {
    return parseIomem(await this.link.sh('cat /proc/iomem', 'reading /proc/iomem'));
  }

  /** Whether Linux still has memory of the device region added (the driver's resource is there). */
  private async regionClaimed(): Promise<boolean> {
    return (await this.iomem()).some((e) => e.start === this.geometry.memaddr && /^virtio[0-9]+$/.test(e.name));
  }

  /**
   * Unloads the driver. Linux refuses to load virtio_mem again while memory of an earlier
   * instance is still added ("reloading the driver is not supported"), so the driver is unloaded
   * only once no memory of the region is added, and the unload is checked.
   */
  private async unload(recoverIfStuck = true): Promise<void> {
    const why = 'the device region stayed claimed after rmmod';
    const deadline = Date.now() + this.drainTimeoutMs;
    while ((await this.iomem()).some((e) => e.name === 'System RAM (virtio_mem)')) {
      if (Date.now() > deadline)
        throw new AdapterError(
          'the guest still has virtio_mem memory added after the device emptied; the driver cannot be unloaded cleanly',
        );
      await sleep(100);
    }
    await this.link.sh('rmmod virtio_mem', 'unloading virtio_mem');
    if (!(await this.regionClaimed())) return;
    if (!recoverIfStuck) throw new AdapterError(`${why}, and again after a reboot`);
    await this.recover(why);
  }

  /**
   * Brings a guest whose driver cannot be reloaded back by rebooting it (the device unplugs
   * everything on a system reset). The guest's init loads the driver at boot, so the host asks for
   * 0 first: that driver then has nothing to plug while the adapter takes it down again.
   */
  private async recover(why: string): Promise<void> {
    await this.link.setRequestedSize(0n);
    await this.link.resetMachine(false);
    const deadline = Date.now() + RELOAD_AFTER_REBOOT_MS;
    while (!(await this.driverLoaded())) {
      if (Date.now() > deadline) throw new AdapterError(`${why}; after a reboot virtio_mem was not loaded again`);
      await sleep(250);
    }
    await this.link.setRequestedSize(0n);
    await this.waitPlugged(0n, this.drainTimeoutMs);
    await this.unload(false);
  }

  /** Memory-block numbers (guest sysfs) that cover the first `length` bytes of the device region. */
  private async memoryBlocksOf(length: bigint): Promise<number[]> {
    const text = (
      await this.link.sh('cat /sys/devices/system/memory/block_size_bytes', 'reading the memory block size')
    ).trim();
    const blockBytes = BigInt(`0x${text}`);
    if (blockBytes <= 0n) throw new AdapterError(`odd memory block size '${text}'`);
    const first = this.geometry.memaddr / blockBytes;
    const last = (this.geometry.memaddr + length - 1n) / blockBytes;
    const ids: number[] = [];
    for (let i = first; i <= last; i++) ids.push(Number(i));
    return ids;
  }
}
