/**
 * The guest agent in a live guest (one boot): builds the guest (which compiles and packs the
 * agent), boots it under QEMU (TCG, attached), starts the agent over SSH and uses it as a
 * PciFunctionBus: the real virtio-mem-pci function's configuration space and capability list,
 * its device configuration read from the BAR, the DMA window, the device region through
 * /dev/mem, the round trips per second of a small batch, and the faults (no agent at the path,
 * a guest that resets under the link).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  PCI_CONFIG_SPACE_BYTES,
  VIRTIO_MEM_PCI_DEVICE_ID,
  VIRTIO_PCI_VENDOR_ID,
  VirtioMemConfigLayout,
  layoutField,
} from '../../../spec/src/index';
import { QmpClient } from '../../qemu-platform/src/index';
import { findVirtioPciLayout } from '../../virtio/src/index';
import { AgentBus, AgentError, AgentLink } from '../src/agent-link';
import { buildGuest, findTool } from '../src/guest-build';
import { GuestVm } from '../src/guest-vm';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const OUT = path.join(ROOT, 'test-output', 'guest-agent');
const GUEST_DIR = path.join(ROOT, 'test-output', 'guest', 'image');
const MiB = 1n << 20n;

let vm: GuestVm;
let bus: AgentBus;
const timings: string[] = [];

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  let t = Date.now();
  await buildGuest({ dir: GUEST_DIR, log: (l) => timings.push(`build: ${l}`) });
  timings.push(`build: ${((Date.now() - t) / 1000).toFixed(1)} s in all`);
  t = Date.now();
  vm = await GuestVm.boot({
    dir: GUEST_DIR,
    runDir: path.join(OUT, 'run'),
    detached: false,
    regionSize: 512n * MiB,
  });
  timings.push(`boot to SSH: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  bus = await AgentBus.overSsh(vm.ssh, { setpriv: findTool('setpriv'), timeoutMs: 20_000 });
}, 600_000);

afterAll(async () => {
  await bus?.close();
  await vm?.stop();
  fs.writeFileSync(path.join(OUT, 'timings.txt'), `${timings.join('\n')}\n`);
  // eslint-disable-next-line no-console
  console.log(timings.join('\n'));
});

describe('the guest agent in a live guest', () => {
  it('opens the virtio-mem function: unbinds virtio-pci, maps its memory BAR, sets up a DMA window', async () => {
    const t = Date.now();
    const site = await bus.open();
    timings.push(`open (unbind, map, DMA window): ${Date.now() - t} ms`);
    const found = bus.function!;
    expect(found).toMatchObject({ vendor: VIRTIO_PCI_VENDOR_ID, device: VIRTIO_MEM_PCI_DEVICE_ID, unbound: true });
    expect(site.bdf).toBe(found.bdf);
    const window = bus.dmaWindow();
    expect(window.length).toBe(2n * MiB);
    expect(window.base % (2n * MiB)).toBe(0n);
    // The window is RAM the guest kernel owns, below the device region.
    expect(window.base).toBeGreaterThan(0n);
    expect(window.base + window.length).toBeLessThanOrEqual(1n << 32n);
  });

  it('reads the whole configuration space: IDs and the virtio capability list', async () => {
    const answers = await bus.exchange(
      Array.from({ length: PCI_CONFIG_SPACE_BYTES / 4 }, (_, i) => ({
        kind: 'config-read' as const,
        offset: i * 4,
        width: 4 as const,
      })),
    );
    const config = new Uint8Array(PCI_CONFIG_SPACE_BYTES);
    const view = new DataView(config.buffer);
    answers.forEach((a, i) => view.setUint32(i * 4, Number(a.kind === 'value' ? a.value : -1n), true));
    expect(view.getUint16(0, true)).toBe(VIRTIO_PCI_VENDOR_ID);
    expect(view.getUint16(2, true)).toBe(VIRTIO_MEM_PCI_DEVICE_ID);
    const found = findVirtioPciLayout(config);
    if (!found.ok) throw new Error(found.detail);
    const { deviceCfg, commonCfg } = found.layout;
    const site = await bus.open();
    const bar = await site.barBase(deviceCfg.bar);
    expect(bus.function!.bars[deviceCfg.bar]!.size).toBeGreaterThanOrEqual(BigInt(deviceCfg.offset + deviceCfg.length));

    // The device configuration through the BAR, each field at its natural width.
    const field = (name: 'block_size' | 'addr' | 'region_size' | 'plugged_size' | 'requested_size'): bigint =>
      bar + BigInt(deviceCfg.offset + layoutField(VirtioMemConfigLayout, name).offset);
    const read64 = (addr: bigint) => [
      { kind: 'read' as const, addr, width: 4 as const },
      { kind: 'read' as const, addr: addr + 4n, width: 4 as const },
    ];
    const values = await bus.exchange([
      ...read64(field('block_size')),
      ...read64(field('addr')),
      ...read64(field('region_size')),
      ...read64(field('plugged_size')),
      ...read64(field('requested_size')),
      // num_queues of the common configuration (a 16-bit register at offset 18).
      { kind: 'read', addr: bar + BigInt(commonCfg.offset + 18), width: 2 },
    ]);
    const v = values.map((a) => (a.kind === 'value' ? a.value : -1n));
    const u64 = (i: number): bigint => v[2 * i]! | (v[2 * i + 1]! << 32n);
    const [blockSize, addr, regionSize, plugged, requested] = [0, 1, 2, 3, 4].map(u64);
    expect(blockSize).toBe(2n * MiB);
    expect(regionSize).toBe(512n * MiB);
    expect(addr % blockSize!).toBe(0n);
    expect(addr).toBeGreaterThanOrEqual(1n << 32n);
    expect([plugged, requested]).toEqual([0n, 0n]);
    expect(v[10]).toBe(1n);

    // The device region through /dev/mem: memory the guest does not use as System RAM.
    await bus.setDeviceRegion({ base: addr!, length: regionSize! });
    const [head] = await bus.exchange([{ kind: 'read-bytes', addr: addr!, length: 64 }]);
    expect(head).toEqual({ kind: 'bytes', bytes: new Uint8Array(64) });
    timings.push(`device: block ${blockSize} B, region ${regionSize} B at 0x${addr!.toString(16)}`);
  });

  it('writes and reads the DMA window, refuses addresses outside what it mapped', async () => {
    const window = bus.dmaWindow();
    const pattern = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) & 0xff);
    const answers = await bus.exchange([
      { kind: 'write-bytes', addr: window.base + 0x1000n, bytes: pattern },
      { kind: 'zero-bytes', addr: window.base + 0x1010n, length: 16 },
      { kind: 'write', addr: window.base + 0x1ff000n, width: 8, value: 0x0123456789abcdefn },
      { kind: 'read-bytes', addr: window.base + 0x1000n, length: 4096 },
      { kind: 'read', addr: window.base + 0x1ff004n, width: 4 },
    ]);
    const expected = pattern.slice();
    expected.fill(0, 0x10, 0x20);
    expect(answers[3]).toEqual({ kind: 'bytes', bytes: expected });
    expect(answers[4]).toEqual({ kind: 'value', value: 0x01234567n });
    const outside = (await bus
      .exchange([{ kind: 'read', addr: 0x1000n, width: 4 }])
      .catch((e: unknown) => e)) as AgentError;
    expect(outside).toMatchObject({ kind: 'refused', code: 'refused-access' });
    expect(bus.link.usable).toBe(true);
  });

  it('measures the round trips per second of a small batch (BAR read, ring write, ring read)', async () => {
    const window = bus.dmaWindow();
    const site = await bus.open();
    const bar = await site.barBase(bus.function!.bars.findIndex((b) => b.mapped));
    const batch = [
      { kind: 'write-bytes' as const, addr: window.base, bytes: new Uint8Array(16) },
      { kind: 'write' as const, addr: window.base + 0x100n, width: 2 as const, value: 1n },
      { kind: 'read' as const, addr: bar, width: 4 as const },
      { kind: 'read' as const, addr: window.base + 0x200n, width: 2 as const },
    ];
    let count = 0;
    const started = Date.now();
    while (Date.now() - started < 5000) {
      await bus.exchange(batch);
      count++;
    }
    const perSecond = (count * 1000) / (Date.now() - started);
    timings.push(`round trips: ${perSecond.toFixed(0)}/s (batch of 4 operations, ${count} in 5 s)`);
    expect(perSecond).toBeGreaterThan(5);
  });

  it('says the guest has no agent when there is none at the path', async () => {
    const e = (await AgentLink.overSsh(vm.ssh, { agentPath: '/sbin/no-such-agent', timeoutMs: 20_000 }).catch(
      (x: unknown) => x,
    )) as AgentError;
    expect(e).toBeInstanceOf(AgentError);
    expect(e.kind).toBe('missing-agent');
    expect(e.message).toMatch(/rebuild the guest with `vmemct guest build`/);
  });

  it('fails with a typed error, without hanging, when the guest resets under the link', async () => {
    const qmp = await QmpClient.connect(vm.state.qmpSocket, Date.now() + 5000, 10_000);
    await qmp.execute('system_reset');
    qmp.close();
    const started = Date.now();
    const e = (await bus
      .exchange([{ kind: 'wait-change', addr: bus.dmaWindow().base, width: 2, value: 0n, timeoutUs: 1_000_000 }])
      .then(() => bus.exchange([{ kind: 'read', addr: bus.dmaWindow().base, width: 2 }]))
      .catch((x: unknown) => x)) as AgentError;
    timings.push(`reset noticed after ${Date.now() - started} ms: ${String(e?.message)}`);
    expect(e).toBeInstanceOf(AgentError);
    expect(['guest-gone', 'timeout']).toContain(e.kind);
    expect(Date.now() - started).toBeLessThan(40_000);
    expect(bus.link.usable).toBe(false);
  });
});
