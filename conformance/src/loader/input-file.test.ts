import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { firstInvalidUtf8, MAX_INPUT_FILE_BYTES, readInputFile } from './input-file';

describe('readInputFile', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-input-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads a regular UTF-8 file, keeping a byte-order mark', () => {
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, '\uFEFFformat: x\nnote: ünïcödé ✓ 🎉\n');
    expect(readInputFile(file, 'vector file')).toEqual({ kind: 'text', text: '\uFEFFformat: x\nnote: ünïcödé ✓ 🎉\n' });
  });

  it('refuses a FIFO without blocking', () => {
    const fifo = path.join(dir, 'p.yaml');
    execFileSync('mkfifo', [fifo]);
    const r = readInputFile(fifo, 'vector file');
    expect(r).toEqual({
      kind: 'problem',
      problem: { file: fifo, line: 0, field: '', reason: 'vector file is a FIFO (named pipe), not a regular file' },
    });
  });

  it('refuses devices and folders', () => {
    expect(readInputFile('/dev/zero', 'vector file')).toMatchObject({
      problem: { reason: 'vector file is a character device, not a regular file' },
    });
    expect(readInputFile(dir, 'results file')).toMatchObject({
      problem: { reason: 'results file is a folder, not a regular file' },
    });
  });

  it('names a missing file', () => {
    expect(readInputFile(path.join(dir, 'nope'), 'expectation file')).toMatchObject({
      problem: { line: 0, reason: 'cannot read expectation file: no such file' },
    });
  });

  it('refuses a file over the size limit', () => {
    const file = path.join(dir, 'big.yaml');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, MAX_INPUT_FILE_BYTES + 1);
    expect(readInputFile(file, 'vector file')).toMatchObject({
      problem: { reason: 'vector file is larger than the limit of 16 MiB' },
    });
  });

  it('refuses bytes that are not UTF-8, naming the line', () => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, Buffer.concat([Buffer.from('a: 1\nb: 2\nc: "'), Buffer.from([0xff, 0x22, 0x0a])]));
    expect(readInputFile(file, 'vector file')).toMatchObject({
      problem: { line: 3, reason: 'vector file is not valid UTF-8 (byte 0xff at offset 14)' },
    });
  });
});

describe('firstInvalidUtf8', () => {
  it.each([
    [[0x61, 0xc3, 0xa9], undefined],
    [[0xe2, 0x9c, 0x93], undefined],
    [[0xf0, 0x9f, 0x8e, 0x89], undefined],
    [[0xc0, 0xaf], 0], // overlong
    [[0xe0, 0x80, 0xaf], 0], // overlong
    [[0xed, 0xa0, 0x80], 0], // surrogate
    [[0xf4, 0x90, 0x80, 0x80], 0], // above U+10FFFF
    [[0x61, 0xe2, 0x9c], 1], // truncated
    [[0x80], 0], // lone continuation
    [[0xfe], 0],
  ])('%j → %p', (bytes, expected) => {
    expect(firstInvalidUtf8(Uint8Array.from(bytes))).toBe(expected);
  });

  it('agrees with a strict decoder on random bytes', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (let trial = 0; trial < 2000; trial++) {
      const bytes = Uint8Array.from({ length: 1 + (trial % 7) }, () => Math.floor(Math.random() * 256));
      let valid = true;
      try {
        decoder.decode(bytes);
      } catch {
        valid = false;
      }
      expect(firstInvalidUtf8(bytes) === undefined).toBe(valid);
    }
  });
});
