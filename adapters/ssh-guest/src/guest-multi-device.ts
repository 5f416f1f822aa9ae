/**
 * Multi-device driver vectors on a live guest (`multi-device`, `node-memory`): the guest's
 * virtio_mem driver manages several virtio-mem devices at once, each on its own NUMA node (the
 * two-node example). The adapter plays the host for each device over QMP (its own
 * `requested-size`), reads each device's configuration through its own PCI_CFG window, and
 * splits QEMU's one trace of `virtio_mem_*` events by address: a request belongs to the device
 * whose region holds its address.
 *
 * A settle asked of any device watches them all until every device has converged and the driver
 * has gone quiet (or stalled); each device's session is handed the requests it received since its
 * own last settle. The memory the driver added per node is what each node's `MemTotal`
 * (/sys/devices/system/node/nodeN/meminfo) gained since the group was opened, when the driver
 * was unloaded and nothing was plugged.
 *
 * Not offered here: blocks plugged at start, scripted answers, resets and suspend (each needs
 * the single-device machinery; such a vector is `unsupported` with the reason).
 */
import {
  DEVICE_TYPE_FEATURES_MASK,
  FEATURE_MASKS,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  formatHex,
} from '../../../spec/src/index';
import {
  AdapterError,
  DriverActivity,
  DriverEvent,
  DriverSession,
  NamedDeviceSetup,
  ResizeOutcome,
  SettleLimits,
  UnsupportedSetupError,
} from '../../core/src/contract';
import { sleep } from '../../core/src/sleep';
import { HostView, QemuMemoryDevice, QmpError } from '../../qemu-platform/src/index';
import { ConfigWindow } from './config-window';
import { windowAt } from './guest-connect';
import { GuestLink } from './guest-link';
import type { SettleTiming } from './guest-observer';
import { TraceFollower, TracedRequest, exchangeOf } from './qemu-trace';

/** The feature bits a set-up is compared on (as for one device). */
const RELEVANT_FEATURES = DEVICE_TYPE_FEATURES_MASK | FEATURE_MASKS.VERSION_1;
/** Bound on one settle, whatever the runner allows. */
const SETTLE_BOUND_MS = 90_000;
/** Pause between two looks at the trace and the devices. */
const POLL_MS = 100;

/** Reads every node's MemTotal in kB, one `node kB` line per node. */
const NODE_MEMTOTAL =
  'for n in /sys/devices/system/node/node[0-9]*; do echo "${n##*node} $(awk \'/MemTotal/ {print $4}\' $n/meminfo)"; done';

/** Parses {@link NODE_MEMTOTAL}'s output: node → bytes. */
export function parseNodeMemTotal(text: string): Map<number, bigint> {
  const nodes = new Map<number, bigint>();
  for (const line of text.split('\n')) {
    const m = /^([0-9]+) ([0-9]+)$/.exec(line.trim());
    if (m) nodes.set(Number(m[1]), BigInt(m[2]!) * 1024n);
  }
  return nodes;
}

/** What each node gained from `before` to `after` (nodes that gained nothing are left out). */
export function nodeGains(
  before: ReadonlyMap<number, bigint>,
  after: ReadonlyMap<number, bigint>,
): Map<number, bigint> {
  const gains = new Map<number, bigint>();
  for (const [node, bytes] of after) {
    const gained = bytes - (before.get(node) ?? 0n);
    if (gained !== 0n) gains.set(node, gained);
  }
  return gains;
}

/** One device of the group: the vector's name for it, its QEMU handle and geometry, its window. */
interface GroupDevice {
  readonly name: string;
  readonly qemu: QemuMemoryDevice;
  readonly geometry: HostView;
  readonly window: ConfigWindow;
  /** Requests traced for this device since its last settle. */
  pending: DriverEvent[];
  /** The configuration as the guest read it when the current settle began. */
  config: Uint8Array;
}

/** What the adapter lends a group: the link, the trace and how long to wait. */
export interface GroupParts {
  readonly link: GuestLink;
  readonly trace: TraceFollower;
  /** The guest's virtio-mem PCI functions (sysfs folders). */
  readonly pciDevices: readonly string[];
  readonly timing: SettleTiming;
  /** Bound on draining the devices between vectors. */
  readonly drainTimeoutMs: number;
}

/**
 * Matches each of a vector's devices to one of the guest's by its region's address, checks that
 * its geometry is the set-up's, and refuses what the group cannot build ({@link UnsupportedSetupError}).
 */
export function matchDevices(
  wanted: readonly NamedDeviceSetup[],
  guest: readonly { readonly device: QemuMemoryDevice; readonly view: HostView }[],
): { readonly wanted: NamedDeviceSetup; readonly device: QemuMemoryDevice; readonly view: HostView }[] {
  const listed = guest.map((g) => `${g.device.id} at ${formatHex(g.view.memaddr)} on node ${g.view.node}`).join(', ');
  return wanted.map((w) => {
    const s = w.setup;
    const found = guest.find((g) => g.view.memaddr === s.addr);
    if (!found)
      throw new UnsupportedSetupError(
        `device ${w.name}: the guest has no virtio-mem device at ${formatHex(s.addr)} (has ${listed}); boot one with \`guest up --extra-device NODE\``,
      );
    const d = found.view;
    const differs = (what: string, guestValue: bigint | number, wantedValue: bigint | number): UnsupportedSetupError =>
      new UnsupportedSetupError(
        `device ${w.name}: the guest's ${found.device.id} has ${what} ${typeof guestValue === 'bigint' ? formatHex(guestValue) : guestValue}; the vector needs ${typeof wantedValue === 'bigint' ? formatHex(wantedValue) : wantedValue}`,
      );
    if (s.block_size !== d.blockSize) throw differs('block_size', d.blockSize, s.block_size);
    if (s.region_size !== d.maxSize) throw differs('region_size', d.maxSize, s.region_size);
    if (s.node_id !== d.node) throw differs('node_id', d.node, s.node_id);
    if (s.plugged.length > 0)
      throw new UnsupportedSetupError(`device ${w.name}: blocks plugged at start are not offered with several devices`);
    if (w.options.configPadding)
      throw new UnsupportedSetupError('QEMU does not let the host set the config padding bytes');
    if (s.requested_size > d.maxSize || s.requested_size % d.blockSize !== 0n)
      throw new UnsupportedSetupError(
        `device ${w.name}: QEMU refuses requested_size ${formatHex(s.requested_size)} (not a multiple of block_size inside the region)`,
      );
    return { wanted: w, device: found.device, view: d };
  });
}

/** The devices of one multi-device vector on the guest, run together. */
class GuestDeviceGroup {
  private loaded = false;
  private baseline: ReadonlyMap<number, bigint> = new Map();

  constructor(
    private readonly parts: GroupParts,
    readonly devices: readonly GroupDevice[],
    private readonly epoch: number,
  ) {}

  /** Runs work as part of the vector's epoch (work of an abandoned vector cannot reach the guest). */
  run<T>(work: () => Promise<T>): Promise<T> {
    return this.parts.link.epochs.run(this.epoch, work);
  }

  /** Leaves every device with nothing plugged and the driver unloaded, then notes each node's memory. */
  async prepare(): Promise<void> {
    const { link } = this.parts;
    for (const d of this.devices) await d.qemu.setRequestedSize(0n);
    const loaded = (
      await link.sh('[ -d /sys/module/virtio_mem ] && echo yes || echo no', 'checking the driver')
    ).trim();
    if (loaded === 'no' && (await this.plugged()).some((size) => size > 0n))
      await link.sh('modprobe virtio_mem', 'loading virtio_mem to unplug');
    await this.waitUntil(async () => (await this.plugged()).every((size) => size === 0n), 'every device unplugged');
    await link.sh(
      'for i in $(seq 1 50); do [ -d /sys/module/virtio_mem ] || exit 0; rmmod virtio_mem 2>/dev/null; sleep 0.2; done; exit 1',
      'unloading virtio_mem',
      Math.max(link.timeoutMs, 30_000),
    );
    this.baseline = parseNodeMemTotal(await link.sh(NODE_MEMTOTAL, 'reading the memory of each node'));
    this.parts.trace.skipToEnd();
  }

  private async plugged(): Promise<bigint[]> {
    const sizes: bigint[] = [];
    for (const d of this.devices) sizes.push((await d.qemu.hostView()).size);
    return sizes;
  }

  private async waitUntil(done: () => Promise<boolean>, what: string): Promise<void> {
    const until = Date.now() + this.parts.drainTimeoutMs;
    while (!(await done())) {
      if (Date.now() > until) throw new AdapterError(`${what}: not reached within ${this.parts.drainTimeoutMs} ms`);
      await sleep(200);
    }
  }

  /** Loads the driver once for all devices and waits until it is bound to each. */
  async start(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    const n = this.devices.length;
    await this.parts.link.sh('modprobe virtio_mem', 'loading virtio_mem');
    await this.parts.link.sh(
      `for i in $(seq 1 200); do [ "$(ls /sys/bus/virtio/drivers/virtio_mem | grep -c ^virtio)" -ge ${n} ] && exit 0; sleep 0.05; done; exit 1`,
      `waiting for virtio_mem to bind ${n} devices`,
    );
  }

  /** The device whose region holds a traced request's address (UNPLUG ALL carries none). */
  private deviceOf(t: TracedRequest): GroupDevice | undefined {
    if (t.type === VIRTIO_MEM_REQ_UNPLUG_ALL) return undefined;
    return this.devices.find((d) => t.addr >= d.geometry.memaddr && t.addr < d.geometry.memaddr + d.geometry.maxSize);
  }

  /** Watches every device until all have converged and the driver is quiet; returns device `index`'s activity. */
  async settle(index: number, limits: SettleLimits): Promise<DriverActivity> {
    const { trace, timing } = this.parts;
    const bound = Math.min(limits.timeoutMs, SETTLE_BOUND_MS);
    const started = Date.now();
    let lastActivity = started;
    let lastSizes = '';
    let requests = 0;
    for (const d of this.devices) d.config = await d.window.readConfig();
    const finish = (settled: boolean, stop: string): DriverActivity => {
      const mine = this.devices[index]!;
      const events = mine.pending;
      mine.pending = [];
      return { events, settled, stop, waitedMs: Date.now() - started };
    };
    for (;;) {
      if (trace.poll() > 0) lastActivity = Date.now();
      for (const t of trace.parser.take()) {
        const device = this.deviceOf(t);
        if (!device)
          return finish(
            false,
            `the trace shows a request no device's region holds (type ${t.type}, addr ${formatHex(t.addr)})`,
          );
        device.pending.push({ kind: 'request', exchange: { ...exchangeOf(t), config: device.config } });
        requests++;
      }
      const views: HostView[] = [];
      for (const d of this.devices) views.push(await d.qemu.hostView());
      const sizes = views.map((v) => `${v.size}/${v.requestedSize}`).join(' ');
      if (sizes !== lastSizes) {
        lastSizes = sizes;
        lastActivity = Date.now();
      }
      const now = Date.now();
      const converged = views.every((v) => v.size === v.requestedSize);
      const state = this.devices.map(
        (d, i) => `${d.name} ${formatHex(views[i]!.size)} of ${formatHex(views[i]!.requestedSize)}`,
      );
      if (requests >= limits.maxRequests) return finish(false, `request limit (${limits.maxRequests}) reached`);
      if (converged && !trace.parser.awaitingResponse && now - lastActivity >= timing.quietMs)
        return finish(true, `converged (${state.join(', ')})`);
      if (!converged && now - lastActivity >= timing.stallMs)
        return finish(true, `quiet for ${timing.stallMs} ms without converging (${state.join(', ')})`);
      if (now - started >= bound) return finish(false, `still busy after ${bound} ms (${state.join(', ')})`);
      await sleep(POLL_MS);
    }
  }

  /** What each node gained since the group was opened. */
  async nodeMemory(): Promise<ReadonlyMap<number, bigint>> {
    const now = parseNodeMemTotal(await this.parts.link.sh(NODE_MEMTOTAL, 'reading the memory of each node'));
    return nodeGains(this.baseline, now);
  }
}

/** One device's session of a group. */
class GuestGroupSession implements DriverSession {
  constructor(
    private readonly group: GuestDeviceGroup,
    private readonly index: number,
    private readonly link: GuestLink,
    private readonly onClose: () => void,
  ) {}

  private get device(): GroupDevice {
    return this.group.devices[this.index]!;
  }

  start(): Promise<void> {
    return this.group.run(() => this.group.start());
  }

  settle(limits: SettleLimits): Promise<DriverActivity> {
    return this.group.run(() => this.group.settle(this.index, limits));
  }

  readConfig(): Promise<Uint8Array> {
    return this.group.run(() => this.device.window.readConfig());
  }

  acceptedFeatures(): Promise<bigint> {
    return this.group.run(async () => {
      const bits = (
        await this.link.sh(`cat ${this.device.window.pciDevice}/virtio[0-9]*/features`, 'reading the accepted features')
      ).trim();
      if (!/^[01]+$/.test(bits)) throw new AdapterError(`odd features string '${bits}'`);
      let v = 0n;
      for (let i = 0; i < bits.length && i < 64; i++) if (bits[i] === '1') v |= 1n << BigInt(i);
      return v;
    });
  }

  offeredFeatures(): Promise<bigint> {
    return this.group.run(() => this.device.window.offeredFeatures());
  }

  resize(size: bigint): Promise<ResizeOutcome> {
    return this.group.run(async () => {
      try {
        await this.device.qemu.setRequestedSize(size);
        return { kind: 'applied' };
      } catch (e) {
        if (e instanceof QmpError && !/did not answer|connection/.test(e.message))
          return { kind: 'refused', reason: e.message };
        throw e;
      }
    });
  }

  nodeMemory(): Promise<ReadonlyMap<number, bigint>> {
    return this.group.run(() => this.group.nodeMemory());
  }

  async close(): Promise<void> {
    this.onClose();
  }
}

/**
 * Opens a multi-device driver session on the guest: matches the vector's devices to the
 * guest's, leaves them drained with the driver unloaded, gives each its requested_size, and
 * returns one session per device. `onClose` is told when the sessions end.
 */
export async function openGuestDeviceGroup(
  parts: GroupParts,
  wanted: readonly NamedDeviceSetup[],
  onClose: () => void,
): Promise<readonly DriverSession[]> {
  const { link } = parts;
  const epoch = link.epochs.next();
  return link.epochs.run(epoch, async () => {
    const matched = matchDevices(wanted, await link.memoryDevices());
    const devices: GroupDevice[] = [];
    for (const m of matched) {
      const window = await windowAt(link, parts.pciDevices, m.view.memaddr);
      const offered = await window.offeredFeatures();
      const features = m.wanted.setup.features;
      if (features !== undefined && (features & RELEVANT_FEATURES) !== (offered & RELEVANT_FEATURES))
        throw new UnsupportedSetupError(
          `device ${m.wanted.name}: the guest's ${m.device.id} offers features ${formatHex(offered & RELEVANT_FEATURES)}; the vector needs exactly ${formatHex(features & RELEVANT_FEATURES)}`,
        );
      devices.push({
        name: m.wanted.name,
        qemu: m.device,
        geometry: m.view,
        window,
        pending: [],
        config: new Uint8Array(0),
      });
    }
    const group = new GuestDeviceGroup(parts, devices, epoch);
    await group.prepare();
    for (const [i, d] of devices.entries()) await d.qemu.setRequestedSize(matched[i]!.wanted.setup.requested_size);
    let open = devices.length;
    const closed = (): void => {
      if (--open === 0) onClose();
    };
    return devices.map((_, i) => new GuestGroupSession(group, i, link, closed));
  });
}
