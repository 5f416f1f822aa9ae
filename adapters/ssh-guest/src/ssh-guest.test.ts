import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { cpioArchive } from './cpio';
import {
  initScript,
  kernelPackageOf,
  lddLibraries,
  loadOrderProblem,
  moduleDepends,
  modulesDep,
  GUEST_MODULES,
} from './guest-build';
import { guestQemuArguments } from './guest-vm';
import {
  configSnapshotReads,
  leValue,
  parseVirtioCaps,
  parseWindowOutput,
  windowReadScript,
  checkedSysfsDevice,
} from './pci-config';
import { TraceFollower, TraceParser, exchangeOf } from './qemu-trace';
import { classifySshFailure, sshArguments } from './ssh-shell';
import { VectorEpochs } from './vector-epochs';
import { parseIomem } from './guest-driver-control';
import { qemuVirtioMemPciConfig } from '../../virtio/test/qemu-virtio-mem-config';
import { decodeRequest, decodeResponse } from '../../../model/src/codec/codec';

const MiB = 1n << 20n;

const fullConfig = qemuVirtioMemPciConfig;

describe('cpio newc writer', () => {
  it('writes headers the kernel accepts: magic, sizes, 4-byte padding, trailer', () => {
    const archive = cpioArchive([
      { kind: 'dir', path: 'bin', mode: 0o755 },
      { kind: 'file', path: 'bin/x', mode: 0o700, data: Buffer.from('hello') },
      { kind: 'symlink', path: 'bin/y', target: 'x' },
    ]);
    const text = archive.toString('latin1');
    expect(text.startsWith('070701')).toBe(true);
    expect(archive.length % 4).toBe(0);
    expect(text).toContain('TRAILER!!!');
    // The file member: mode 0100700, size 5, name "bin/x\0" (6 bytes).
    const at = text.indexOf('bin/x\0');
    const header = text.slice(at - 110, at);
    expect(header.slice(14, 22)).toBe((0o100700).toString(16).padStart(8, '0'));
    expect(parseInt(header.slice(54, 62), 16)).toBe(5);
    expect(parseInt(header.slice(94, 102), 16)).toBe(6);
    expect(text.slice(at + 6 + ((4 - ((110 + 6) % 4)) % 4), at + 6 + ((4 - ((110 + 6) % 4)) % 4) + 5)).toBe('hello');
    // The symlink stores its target as data.
    const link = text.indexOf('bin/y\0');
    expect(text.slice(link - 110 + 14, link - 110 + 22)).toBe((0o120777).toString(16).padStart(8, '0'));
  });

  it('refuses duplicate and absolute paths', () => {
    expect(() =>
      cpioArchive([
        { kind: 'dir', path: 'a', mode: 0o755 },
        { kind: 'dir', path: 'a', mode: 0o755 },
      ]),
    ).toThrow(/duplicate/);
    expect(() => cpioArchive([{ kind: 'dir', path: '/a', mode: 0o755 }])).toThrow(/relative/);
  });

  it('round-trips through gzip unchanged', () => {
    const archive = cpioArchive([{ kind: 'file', path: 'init', mode: 0o755, data: Buffer.from('#!/bin/sh\n') }]);
    expect(zlib.gunzipSync(zlib.gzipSync(archive)).equals(archive)).toBe(true);
  });
});

describe('guest build helpers', () => {
  it('resolves the kernel package from apt-cache depends output', () => {
    expect(kernelPackageOf('linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n')).toBe(
      'linux-image-6.1.0-56-amd64',
    );
    expect(kernelPackageOf('linux-image-amd64\n')).toBeUndefined();
  });

  it('reads depends= from a module .modinfo and checks the load order', () => {
    const ko = Buffer.from('\0license=GPL\0depends=virtio,virtio_ring\0retpoline=Y\0name=virtio_mem\0', 'latin1');
    expect(moduleDepends(ko)).toEqual(['virtio', 'virtio_ring']);
    expect(moduleDepends(Buffer.from('\0depends=\0name=virtio_ring\0', 'latin1'))).toEqual([]);
    const deps = new Map([
      ['virtio_mem', ['virtio', 'virtio_ring']],
      ['virtio', ['virtio_ring']],
    ]);
    expect(loadOrderProblem(['virtio_ring', 'virtio', 'virtio_mem'], deps)).toBeUndefined();
    expect(loadOrderProblem(['virtio', 'virtio_ring', 'virtio_mem'], deps)).toMatch(
      /virtio needs virtio_ring, which comes later/,
    );
    expect(modulesDep(['virtio_ring', 'virtio', 'virtio_mem'], deps)).toBe(
      'vmemct/virtio_ring.ko:\nvmemct/virtio.ko: vmemct/virtio_ring.ko\nvmemct/virtio_mem.ko: vmemct/virtio.ko vmemct/virtio_ring.ko\n',
    );
  });

  it('lists the libraries ldd names, the loader included', () => {
    const out =
      '\tlinux-vdso.so.1 (0x00007f)\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n';
    expect(lddLibraries(out)).toEqual(['/lib/x86_64-linux-gnu/libz.so.1', '/lib64/ld-linux-x86-64.so.2']);
  });

  it('writes an /init that onlines memory before virtio_mem loads, and loads it last', () => {
    const init = initScript('6.1.0-56-amd64', GUEST_MODULES);
    expect(init.indexOf('online_movable')).toBeLessThan(init.indexOf('insmod'));
    expect(init).toContain(
      'for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net virtio_mem; do',
    );
  });
});

describe('guest QEMU arguments', () => {
  const files = {
    qmpSocket: '/r/qmp.sock',
    controlSocket: '/r/control.sock',
    traceLog: '/r/trace.log',
    consoleLog: '/r/console.log',
  };
  const manifest = { kernel: '/g/vmlinuz', initrd: '/g/initrd.gz' };
  it('builds the device, the forwarded port on 127.0.0.1 and the trace', () => {
    const args = guestQemuArguments(manifest, files, 40022, {
      blockSize: 2n * MiB,
      regionSize: 1024n * MiB,
      requestedSize: 64n * MiB,
      unpluggedInaccessible: true,
    });
    const text = args.join(' ');
    expect(text).toContain(
      '-device virtio-mem-pci,id=vm0,memdev=vmemct-mem0,block-size=2M,requested-size=64M,unplugged-inaccessible=on',
    );
    expect(text).toContain('hostfwd=tcp:127.0.0.1:40022-:22');
    expect(text).toContain('-D /r/trace.log -trace enable=virtio_mem_* -msg timestamp=on');
    expect(text).toContain('-m 1024M,maxmem=3072M');
  });
  it('places the device at an address and on a NUMA node, with device memory reaching its end', () => {
    const text = guestQemuArguments(manifest, files, 40022, {
      blockSize: 2n * MiB,
      regionSize: 1024n * MiB,
      addr: 8n * 1024n * MiB,
      node: 2,
    }).join(' ');
    expect(text).toContain('-numa node,nodeid=0,memdev=vmemct-ram0 -numa node,nodeid=1 -numa node,nodeid=2');
    expect(text).toContain('block-size=2M,requested-size=0M,memaddr=8589934592,node=2');
    // 1 GiB boot memory + device memory from 4 GiB to the region's end at 9 GiB + 1 GiB spare.
    expect(text).toContain('-m 1024M,maxmem=7168M');
    expect(() => guestQemuArguments(manifest, files, 40022, { addr: 3n * 1024n * MiB })).toThrow(/at or above 4 GiB/);
  });
  it('icount: guest time from the instruction counter, on one vCPU', () => {
    const plain = guestQemuArguments(manifest, files, 40022, {}).join(' ');
    expect(plain).toContain('-smp 2');
    expect(plain).not.toContain('-icount');
    const fast = guestQemuArguments(manifest, files, 40022, { icount: true }).join(' ');
    expect(fast).toContain('-smp 1');
    expect(fast).not.toContain('-smp 2');
    expect(fast).toContain('-icount shift=auto,sleep=off');
  });
  it('refuses values QEMU would refuse, before starting it', () => {
    expect(() => guestQemuArguments(manifest, files, 40022, { blockSize: 3n * MiB })).toThrow(
      /--block-size .* power of two/,
    );
    expect(() => guestQemuArguments(manifest, files, 40022, { requestedSize: 3n * MiB })).toThrow(
      /multiple of the block size/,
    );
    expect(() => guestQemuArguments(manifest, files, 40022, { regionSize: 0n })).toThrow(
      /--region-size 0 must be a positive multiple/,
    );
    expect(guestQemuArguments(manifest, files, 40022, { withoutVirtioMem: true }).join(' ')).not.toContain(
      'virtio-mem-pci',
    );
  });
});

describe('PCI_CFG window', () => {
  it("finds the virtio capabilities of QEMU's device", () => {
    const layout = parseVirtioCaps(fullConfig());
    expect(layout.pciCfg.position).toBe(0x84);
    expect(layout.deviceCfg).toMatchObject({ bar: 4, offset: 0x2000, length: 0x1000 });
    expect(layout.commonCfg).toMatchObject({ bar: 4, offset: 0 });
  });

  it('builds window accesses from computed numbers only', () => {
    const layout = parseVirtioCaps(fullConfig());
    const reads = configSnapshotReads(layout, 56);
    expect(reads).toHaveLength(16);
    expect(reads[0]).toEqual({ bar: 4, offset: 0x15, length: 1 });
    expect(reads[1]).toEqual({ bar: 4, offset: 0x2000, length: 4 });
    const script = windowReadScript('/sys/bus/pci/devices/0000:00:01.0', layout.pciCfg, reads);
    // bar at cap+4 (0x88), length at cap+12 (0x90 = dword 36), offset at cap+8 (dword 35), data at cap+16 (dword 37).
    expect(script).toContain("printf '\\004' | dd of=/sys/bus/pci/devices/0000:00:01.0/config bs=1 seek=136 count=1");
    expect(script).toContain('bs=4 seek=36 count=1');
    expect(script).toContain(
      "printf '\\000\\040\\000\\000' | dd of=/sys/bus/pci/devices/0000:00:01.0/config bs=4 seek=35",
    );
    expect(script).toContain('skip=37 count=1');
    expect(() => windowReadScript('/sys/bus/pci/devices/x; rm -rf /', layout.pciCfg, reads)).toThrow(
      /not a PCI device folder/,
    );
    expect(() => checkedSysfsDevice('/sys/bus/pci/devices/0000:00:01.0')).not.toThrow();
  });

  it('parses window output into values, checking the count', () => {
    const reads = [
      { bar: 4, offset: 0x15, length: 1 as const },
      { bar: 4, offset: 0x2000, length: 4 as const },
    ];
    const values = parseWindowOutput(' 07 00 00 00\n 00 00 20 00\n', reads);
    expect(values[0]).toEqual(Uint8Array.from([7]));
    expect(leValue(values[1]!)).toBe(0x200000n);
    expect(() => parseWindowOutput(' 07 00 00 00\n', reads)).toThrow(/expected 2/);
  });

  it('rejects a config space without the capabilities', () => {
    expect(() => parseVirtioCaps(new Uint8Array(64))).toThrow(/256/);
    const noCaps = fullConfig();
    noCaps[6] = 0;
    expect(() => parseVirtioCaps(noCaps)).toThrow(/no capability list/);
  });
});

describe('QEMU trace events', () => {
  it('pairs each request with its response', () => {
    const p = new TraceParser();
    for (const line of [
      'virtio_mem_resized_usable_region old_size=0x0new_size=0x14000000',
      'virtio_mem_plug_request addr=0x100000000 nb_blocks=32',
      'virtio_mem_send_response type=0',
      'virtio_mem_state_request addr=0x100000000 nb_blocks=2',
      'virtio_mem_state_response state=2',
      'virtio_mem_send_response type=0',
      'virtio_mem_unplug_all_request ',
      'virtio_mem_unplugged_all ',
      'virtio_mem_send_response type=0',
      'unrelated line',
    ]) {
      p.feed(line);
    }
    const done = p.take();
    expect(done).toEqual([
      { type: 0, addr: 0x100000000n, nbBlocks: 32, responseType: 0, state: null },
      { type: 3, addr: 0x100000000n, nbBlocks: 2, responseType: 0, state: 2 },
      { type: 2, addr: 0n, nbBlocks: 0, responseType: 0, state: null },
    ]);
    expect(p.usableRegionSize).toBe(0x14000000n);
    const ex = exchangeOf(done[1]!);
    const req = decodeRequest(ex.request);
    const resp = decodeResponse(ex.response!);
    expect(req.ok && req.value).toMatchObject({ type: 3, addr: 0x100000000n, nb_blocks: 2 });
    expect(resp.ok && resp.value).toMatchObject({ type: 0, state: 2 });
  });

  it('reads the wall time of each request from the -msg timestamp=on prefix, and leaves untimed lines untimed', () => {
    const p = new TraceParser();
    for (const line of [
      '4242@1700000000.250000:virtio_mem_plug_request addr=0x100000000 nb_blocks=1',
      '4242@1700000000.250100:virtio_mem_send_response type=2',
      '4242@1700000001.251500:virtio_mem_plug_request addr=0x100000000 nb_blocks=1',
      '4242@1700000001.251600:virtio_mem_send_response type=0',
      'virtio_mem_unplug_request addr=0x100000000 nb_blocks=1',
      'virtio_mem_send_response type=0',
    ]) {
      p.feed(line);
    }
    const [busy, retry, untimed] = p.take().map(exchangeOf);
    expect(busy!.atMs).toBe(1_700_000_000_250);
    expect(retry!.atMs! - busy!.atMs!).toBeCloseTo(1001.5, 6);
    expect(untimed).not.toHaveProperty('atMs');
    expect(decodeResponse(busy!.response!).ok && decodeResponse(busy!.response!)).toMatchObject({ value: { type: 2 } });
  });

  it('closes a request that got no response when the next one starts', () => {
    const p = new TraceParser();
    p.feed('virtio_mem_unplug_request addr=0x100200000 nb_blocks=1');
    expect(p.awaitingResponse).toBe(true);
    p.feed('virtio_mem_plug_request addr=0x100000000 nb_blocks=1');
    expect(p.take()).toEqual([{ type: 1, addr: 0x100200000n, nbBlocks: 1, responseType: null, state: null }]);
    expect(exchangeOf({ type: 1, addr: 0n, nbBlocks: 1, responseType: null, state: null }).response).toBeNull();
  });

  it('follows a growing file, ignoring what was there before and half-written lines', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-trace-')), 'trace.log');
    fs.writeFileSync(file, 'virtio_mem_plug_request addr=0x100000000 nb_blocks=1\nvirtio_mem_send_response type=0\n');
    const f = new TraceFollower(file);
    expect(f.parser.take()).toEqual([]);
    fs.appendFileSync(file, 'virtio_mem_unplug_request addr=0x100000000 nb_blocks=1\nvirtio_mem_send_re');
    f.poll();
    expect(f.parser.take()).toEqual([]);
    fs.appendFileSync(file, 'sponse type=1\n');
    f.poll();
    expect(f.parser.take()).toEqual([{ type: 1, addr: 0x100000000n, nbBlocks: 1, responseType: 1, state: null }]);
    fs.rmSync(path.dirname(file), { recursive: true });
  });
});

describe('SSH', () => {
  const target = { host: '127.0.0.1', port: 2222, user: 'root', key: '/k', knownHosts: '/kh' };
  it('verifies host keys and never asks for a password', () => {
    const args = sshArguments(target);
    expect(args).toEqual(
      expect.arrayContaining([
        'BatchMode=yes',
        'StrictHostKeyChecking=yes',
        'UserKnownHostsFile=/kh',
        '-i',
        '/k',
        '-p',
        '2222',
      ]),
    );
    expect(args[args.length - 1]).toBe('root@127.0.0.1');
    expect(() => sshArguments({ ...target, user: 'root;rm' })).toThrow(/user/);
    expect(() => sshArguments({ ...target, host: '-oProxyCommand=x y' })).toThrow(/host/);
  });
  it('says which of reachability, key or host key failed', () => {
    expect(classifySshFailure('ssh: connect to host 127.0.0.1 port 2222: Connection refused', target).kind).toBe(
      'unreachable',
    );
    expect(classifySshFailure('root@127.0.0.1: Permission denied (publickey).', target).kind).toBe('auth');
    expect(classifySshFailure('Host key verification failed.', target).kind).toBe('host-key');
    expect(classifySshFailure('Host key verification failed.', target).message).toMatch(/--ssh-known-hosts/);
    // A stopped guest: the keepalives go unanswered and ssh gives up (reported at LogLevel INFO).
    expect(classifySshFailure('Timeout, server 127.0.0.1 not responding.', target).kind).toBe('timeout');
    expect(sshArguments(target)).toContain('LogLevel=INFO');
  });
});

describe('/proc/iomem', () => {
  it('reads nested entries with 64-bit addresses', () => {
    const entries = parseIomem('100000000-13fffffff : virtio1\n  100000000-107ffffff : System RAM (virtio_mem)\n');
    expect(entries).toEqual([
      { start: 0x100000000n, end: 0x13fffffffn, name: 'virtio1' },
      { start: 0x100000000n, end: 0x107ffffffn, name: 'System RAM (virtio_mem)' },
    ]);
  });
});

describe('VectorEpochs', () => {
  test('lets the current vector and work outside any vector through, and fails the next command of an abandoned vector', async () => {
    const epochs = new VectorEpochs();
    const first = epochs.next();
    let resume: () => void = () => undefined;
    const abandoned = epochs.run(first, async () => {
      await new Promise<void>((r) => (resume = r));
      epochs.check();
    });
    const second = epochs.next();
    await expect(epochs.run(second, async () => epochs.check())).resolves.toBeUndefined();
    expect(() => epochs.check()).not.toThrow();
    resume();
    await expect(abandoned).rejects.toThrow('abandoned: a later vector has taken over the guest');
    expect(epochs.current).toBe(second);
  });
});
