import { PassThrough } from 'node:stream';
import { QtestClient } from './qtest';
import { QtestPciBus } from './qtest-bus';

/**
 * A bus over a scripted QEMU: every line the bus writes is recorded, and `answer` decides the
 * reply to each line.
 */
function scripted(answer: (line: string) => string) {
  const input = new PassThrough();
  const output = new PassThrough();
  const lines: string[] = [];
  input.setEncoding('utf8');
  let pending = '';
  input.on('data', (chunk: string) => {
    const parts = (pending + chunk).split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      output.write(`${answer(line)}\n`);
    }
  });
  return { bus: new QtestPciBus(new QtestClient(input, output, 1000)), lines };
}

/** Device 3 of bus 0 is virtio-mem (1af4:1058); every other slot is empty. */
function virtioMemAtSlot3(line: string): string {
  if (line === 'inl 0xcfc') return 'OK 0xffffffff';
  return 'OK';
}

describe('the qtest PCI bus', () => {
  test('finds the virtio-mem function on bus 0 in one batch of configuration reads', async () => {
    let address = 0;
    const { bus, lines } = scripted((line) => {
      const m = /^outl 0xcf8 (0x[0-9a-f]+)$/.exec(line);
      if (m) address = Number(m[1]);
      if (line === 'inl 0xcfc') return ((address >> 11) & 31) === 3 ? 'OK 0x10581af4' : 'OK 0xffffffff';
      return 'OK';
    });
    const site = await bus.open();
    expect(site.bdf).toBe(3 << 3);
    expect(lines).toHaveLength(64);
    expect(lines[6]).toBe('outl 0xcf8 0x80001800');
  });

  test('turns each operation into its qtest lines and each answer into its value, in order', async () => {
    const { bus, lines } = scripted((line) => {
      if (line.startsWith('outl 0xcf8')) return 'OK';
      if (line === 'inl 0xcfc') return 'OK 0x10581af4';
      if (line === 'inw 0xcfe') return 'OK 0x1058';
      if (line.startsWith('readq')) return 'OK 0x1122334455667788';
      if (line.startsWith('read ')) return 'OK 0xa1b2';
      return 'OK';
    });
    await bus.open();
    lines.length = 0;
    const answers = await bus.exchange([
      { kind: 'config-read', offset: 2, width: 2 },
      { kind: 'config-write', offset: 4, width: 2, value: 0x6 },
      { kind: 'read', addr: 0xc000_0000n, width: 8 },
      { kind: 'write', addr: 0xc000_0014n, width: 1, value: 0x1n },
      { kind: 'read-bytes', addr: 0x0100_0000n, length: 2 },
      { kind: 'write-bytes', addr: 0x0100_0000n, bytes: new Uint8Array([0xde, 0xad]) },
      { kind: 'zero-bytes', addr: 0x0100_0000n, length: 0x10 },
      { kind: 'read-bytes', addr: 0x0100_0000n, length: 0 },
    ]);
    expect(lines).toEqual([
      'outl 0xcf8 0x80000000',
      'inw 0xcfe',
      'outl 0xcf8 0x80000004',
      'outw 0xcfc 0x6',
      'readq 0xc0000000',
      'writeb 0xc0000014 0x1',
      'read 0x1000000 0x2',
      'write 0x1000000 0x2 0xdead',
      'memset 0x1000000 0x10 0x0',
    ]);
    expect(answers).toEqual([
      { kind: 'value', value: 0x1058n },
      { kind: 'done' },
      { kind: 'value', value: 0x1122334455667788n },
      { kind: 'done' },
      { kind: 'bytes', bytes: new Uint8Array([0xa1, 0xb2]) },
      { kind: 'done' },
      { kind: 'done' },
      { kind: 'bytes', bytes: new Uint8Array(0) },
    ]);
  });

  test('refuses configuration accesses before the function was found, and a failed write', async () => {
    const { bus } = scripted((line) => (line.startsWith('write') ? 'FAIL' : virtioMemAtSlot3(line)));
    await expect(bus.exchange([{ kind: 'config-read', offset: 0, width: 4 }])).rejects.toThrow(
      /before the function was found/,
    );
    await expect(bus.exchange([{ kind: 'write', addr: 0x1000n, width: 4, value: 1n }])).rejects.toThrow(/FAIL/);
    await expect(bus.open()).rejects.toThrow(/no virtio-mem PCI function/);
  });

  test('places the DMA window in low RAM, 2 MiB long', () => {
    const { bus } = scripted(() => 'OK');
    expect(bus.dmaWindow()).toEqual({ base: 0x0100_0000n, length: 0x20_0000n });
  });
});
