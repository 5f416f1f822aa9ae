import { PassThrough } from 'node:stream';
import { QtestClient, QtestError, answerBytes, answerValue, checkOk, hex, qtestCommand } from './qtest';

/** A client over two in-memory pipes standing in for QEMU's stdin (`input`) and stdout (`output`). */
function harness(timeoutMs = 1000) {
  const input = new PassThrough();
  const output = new PassThrough();
  const writes: string[] = [];
  input.setEncoding('utf8');
  input.on('data', (chunk: string) => writes.push(chunk));
  const client = new QtestClient(input, output, timeoutMs);
  /** Lets the client see what was written and what QEMU "answered". */
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  return { input, output, writes, client, settle };
}

describe('hex', () => {
  test('formats numbers and bigints as lower-case hexadecimal with a 0x prefix', () => {
    expect(hex(0)).toBe('0x0');
    expect(hex(255)).toBe('0xff');
    expect(hex(0x1_0000_0000n)).toBe('0x100000000');
    expect(hex(0xffff_ffff_ffff_ffffn)).toBe('0xffffffffffffffff');
  });

  test('refuses negative values', () => {
    expect(() => hex(-1)).toThrow(RangeError);
    expect(() => hex(-1n)).toThrow(RangeError);
  });

  test('refuses values above 64 bits', () => {
    expect(() => hex(0x1_0000_0000_0000_0000n)).toThrow(RangeError);
  });
});

describe('qtestCommand', () => {
  test('builds register and port accesses from hexadecimal numbers', () => {
    expect(qtestCommand.readl(0x1000n)).toBe('readl 0x1000');
    expect(qtestCommand.writeq(0x1_0000_0000n, 0xdeadbeefn)).toBe('writeq 0x100000000 0xdeadbeef');
    expect(qtestCommand.outl(0xcf8, 0x8000_0000)).toBe('outl 0xcf8 0x80000000');
    expect(qtestCommand.inw(0xcfc)).toBe('inw 0xcfc');
  });

  test('read refuses a length of 0 and non-integer lengths', () => {
    expect(() => qtestCommand.read(0x1000n, 0)).toThrow(RangeError);
    expect(() => qtestCommand.read(0x1000n, -4)).toThrow(RangeError);
    expect(() => qtestCommand.read(0x1000n, 1.5)).toThrow(RangeError);
    expect(qtestCommand.read(0x1000n, 16)).toBe('read 0x1000 0x10');
  });

  test('memset refuses a length of 0 and keeps only the low byte of the fill value', () => {
    expect(() => qtestCommand.memset(0x1000n, 0, 0)).toThrow(RangeError);
    expect(qtestCommand.memset(0x10n, 4, 0x1ab)).toBe('memset 0x10 0x4 0xab');
  });

  test('write refuses empty data', () => {
    expect(() => qtestCommand.write(0x1000n, new Uint8Array(0))).toThrow(RangeError);
  });

  test('write encodes exactly the bytes of the view it is given, even a subarray', () => {
    const backing = Uint8Array.from([0xaa, 0x01, 0x02, 0xff, 0xbb]);
    expect(qtestCommand.write(0x2000n, backing.subarray(1, 4))).toBe('write 0x2000 0x3 0x0102ff');
  });
});

describe('answer parsing', () => {
  test('answerValue reads the number of an OK answer', () => {
    expect(answerValue('OK 0x1af4')).toBe(0x1af4n);
    expect(answerValue('OK 0xffffffffffffffff')).toBe(0xffff_ffff_ffff_ffffn);
  });

  test('answerValue refuses anything but OK with one hexadecimal number', () => {
    expect(() => answerValue('FAIL 0x1')).toThrow(QtestError);
    expect(() => answerValue('OK')).toThrow(QtestError);
    expect(() => answerValue('OK 0x12 extra')).toThrow(QtestError);
  });

  test('answerBytes returns the bytes of a read answer of the expected length', () => {
    expect(Array.from(answerBytes('OK 0x00ff10', 3))).toEqual([0x00, 0xff, 0x10]);
  });

  test('answerBytes refuses an answer of the wrong length', () => {
    expect(() => answerBytes('OK 0x00ff', 3)).toThrow(QtestError);
    expect(() => answerBytes('OK 0x00ff1020', 3)).toThrow(QtestError);
    expect(() => answerBytes('FAIL', 1)).toThrow(QtestError);
  });

  test('checkOk returns an OK answer and throws on FAIL naming command and answer', () => {
    expect(checkOk('writeb 0x0 0x1', 'OK')).toBe('OK');
    expect(() => checkOk('writeb 0x0 0x1', 'FAIL bad')).toThrow(QtestError);
    expect(() => checkOk('writeb 0x0 0x1', 'FAIL bad')).toThrow(/writeb 0x0 0x1.*FAIL bad/);
  });
});

describe('QtestClient', () => {
  test('sends a batch in one write, newline-separated, and resolves with the answers in order', async () => {
    const { input, output, writes, client, settle } = harness();
    const write = jest.spyOn(input, 'write');
    const answers = client.batch(['readb 0x0', 'readw 0x2', 'writel 0x4 0x1']);
    expect(write).toHaveBeenCalledTimes(1);
    await settle();
    expect(writes).toEqual(['readb 0x0\nreadw 0x2\nwritel 0x4 0x1\n']);
    output.write('OK 0x1\nOK 0x2\nOK\n');
    await expect(answers).resolves.toEqual(['OK 0x1', 'OK 0x2', 'OK']);
  });

  test('an empty batch resolves at once without writing', async () => {
    const { input, client } = harness();
    const write = jest.spyOn(input, 'write');
    await expect(client.batch([])).resolves.toEqual([]);
    expect(write).not.toHaveBeenCalled();
  });

  test('skips interrupt lines between answers and counts them', async () => {
    const { output, client } = harness();
    const answers = client.batch(['readb 0x0', 'readb 0x1']);
    output.write('IRQ raise 21\nOK 0x5\nIRQ lower 21\nIRQ raise 21\nOK 0x6\n');
    await expect(answers).resolves.toEqual(['OK 0x5', 'OK 0x6']);
    expect(client.irqLines).toBe(3);
  });

  test('reassembles answers split across chunks', async () => {
    const { output, client, settle } = harness();
    const answers = client.batch(['readl 0x0', 'readl 0x4']);
    output.write('OK 0x1');
    await settle();
    output.write('2\nOK');
    await settle();
    output.write(' 0x34\n');
    await expect(answers).resolves.toEqual(['OK 0x12', 'OK 0x34']);
  });

  test('does not resolve a batch before all of its answers arrived', async () => {
    const { output, client, settle } = harness();
    let resolved = false;
    const answers = client.batch(['readb 0x0', 'readb 0x1']).then((a) => {
      resolved = true;
      return a;
    });
    output.write('OK 0x1\n');
    await settle();
    expect(resolved).toBe(false);
    output.write('OK 0x2\n');
    await expect(answers).resolves.toEqual(['OK 0x1', 'OK 0x2']);
  });

  test('two batches in flight get their own answers, in order', async () => {
    const { output, writes, client, settle } = harness();
    const first = client.batch(['readb 0x0', 'readb 0x1']);
    const second = client.batch(['readb 0x2']);
    await settle();
    expect(writes.join('')).toBe('readb 0x0\nreadb 0x1\nreadb 0x2\n');
    output.write('OK 0xa\nOK 0xb\nOK 0xc\n');
    await expect(first).resolves.toEqual(['OK 0xa', 'OK 0xb']);
    await expect(second).resolves.toEqual(['OK 0xc']);
  });

  test('the end of the output rejects pending batches, and later batches reject at once', async () => {
    const { input, output, client } = harness();
    const pending = client.batch(['readb 0x0']);
    output.end();
    await expect(pending).rejects.toThrow(QtestError);
    await expect(pending).rejects.toThrow('qtest channel closed');
    expect(client.failed).toBeInstanceOf(QtestError);

    const write = jest.spyOn(input, 'write');
    await expect(client.batch(['readb 0x1'])).rejects.toThrow('qtest channel closed');
    expect(write).not.toHaveBeenCalled();
  });

  test('an error on the output rejects pending batches with its message', async () => {
    const { output, client } = harness();
    const pending = client.batch(['readb 0x0']);
    output.destroy(new Error('broken pipe'));
    await expect(pending).rejects.toThrow(/qtest channel: broken pipe/);
  });

  test('a batch that gets no answer in time rejects and ends the client', async () => {
    const { client } = harness(50);
    const started = Date.now();
    const pending = client.batch(['readb 0x0', 'readb 0x1', 'readb 0x2']);
    await expect(pending).rejects.toThrow(QtestError);
    await expect(pending).rejects.toThrow(/did not answer within 50 ms \(readb 0x0 and 2 more\)/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
    await expect(client.batch(['readb 0x3'])).rejects.toThrow(/did not answer within 50 ms/);
  });

  test('a timely answer is not rejected by the batch timeout afterwards', async () => {
    const { output, client } = harness(50);
    const pending = client.batch(['readb 0x0']);
    output.write('OK 0x1\n');
    await expect(pending).resolves.toEqual(['OK 0x1']);
    await new Promise((r) => setTimeout(r, 80));
    expect(client.failed).toBeUndefined();
  });

  test('command returns an OK answer', async () => {
    const { output, client } = harness();
    const answer = client.command('readw 0x10');
    output.write('OK 0xbeef\n');
    await expect(answer).resolves.toBe('OK 0xbeef');
  });

  test('command rejects on a FAIL answer', async () => {
    const { output, client } = harness();
    const answer = client.command('frobnicate 0x0');
    output.write("FAIL Unknown command 'frobnicate'\n");
    await expect(answer).rejects.toThrow(QtestError);
    await expect(answer).rejects.toThrow(/frobnicate 0x0.*FAIL Unknown command/);
  });

  test('fail rejects everything pending with the first error and keeps it', async () => {
    const { client } = harness();
    const a = client.batch(['readb 0x0']);
    const b = client.batch(['readb 0x1']);
    const first = new Error('QEMU exited');
    client.fail(first);
    client.fail(new Error('second'));
    await expect(a).rejects.toBe(first);
    await expect(b).rejects.toBe(first);
    expect(client.failed).toBe(first);
  });
});
