/**
 * Reading an input file someone else wrote (vector, expectation and results files): regular
 * files only, at most {@link MAX_INPUT_FILE_BYTES}, strict UTF-8. Anything else is a
 * {@link LoadProblem} naming the file (and, for bad bytes, the line), which the CLI reports with
 * exit 3 — never a hang on a FIFO, an endless read of `/dev/zero` or silently replaced bytes.
 */
import * as fs from 'node:fs';
import type { LoadProblem } from './types';

/**
 * The largest input file read: 16 MiB. The shipped corpus's largest file is a few tens of KiB and
 * a results file of every vector with full transcripts a few MiB; 16 MiB leaves ample room while
 * keeping a parse (YAML or JSON, several times the text in memory) far from exhausting memory.
 */
export const MAX_INPUT_FILE_BYTES = 16 * 1024 * 1024;

/** The text of an input file, or why it cannot be read. */
export type InputFileResult =
  { readonly kind: 'text'; readonly text: string } | { readonly kind: 'problem'; readonly problem: LoadProblem };

/** The kind of a non-regular file, for messages. */
function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

function problem(file: string, reason: string, line = 0): InputFileResult {
  return { kind: 'problem', problem: { file, line, field: '', reason } };
}

/**
 * Reads `file` as UTF-8 text. `what` names the file's role in messages ("vector file",
 * "expectation file", "results file"). The file is opened without blocking (a FIFO's open would
 * wait for a writer) and checked on the open descriptor, so a file swapped underneath is still
 * judged by what is actually read. A byte-order mark is kept, as `fs.readFileSync(…, 'utf8')` does.
 */
export function readInputFile(file: string, what: string): InputFileResult {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    return problem(file, `cannot read ${what}: ${describeError(e)}`);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) return problem(file, `${what} is ${kindOf(stat)}, not a regular file`);
    if (stat.size > MAX_INPUT_FILE_BYTES) return tooLarge(file, what);
    // Read to the end, but never past the limit (the file may grow while we read).
    const buffer = Buffer.alloc(Math.min(MAX_INPUT_FILE_BYTES + 1, stat.size + 1));
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length > MAX_INPUT_FILE_BYTES) return tooLarge(file, what);
        break;
      }
      const n = fs.readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > MAX_INPUT_FILE_BYTES) return tooLarge(file, what);
    const bytes = buffer.subarray(0, length);
    const bad = firstInvalidUtf8(bytes);
    if (bad !== undefined)
      return problem(
        file,
        `${what} is not valid UTF-8 (byte 0x${bytes[bad].toString(16).padStart(2, '0')} at offset ${bad})`,
        lineAt(bytes, bad),
      );
    return { kind: 'text', text: bytes.toString('utf8') };
  } catch (e) {
    return problem(file, `cannot read ${what}: ${describeError(e)}`);
  } finally {
    fs.closeSync(fd);
  }
}

function tooLarge(file: string, what: string): InputFileResult {
  return problem(file, `${what} is larger than the limit of ${MAX_INPUT_FILE_BYTES / (1024 * 1024)} MiB`);
}

function describeError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a folder';
  if (code === 'ELOOP') return 'too many levels of symbolic links';
  return (e as Error).message;
}

/** 1-based line of byte `offset`. */
function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/**
 * Offset of the first byte that does not belong to well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or undefined if all is well. Linear time.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number | undefined {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let max = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) ((need = 1), (min = 0x80));
    else if (b === 0xe0) ((need = 2), (min = 0xa0));
    else if (b >= 0xe1 && b <= 0xec) ((need = 2), (min = 0x80));
    else if (b === 0xed) ((need = 2), (min = 0x80), (max = 0x9f));
    else if (b >= 0xee && b <= 0xef) ((need = 2), (min = 0x80));
    else if (b === 0xf0) ((need = 3), (min = 0x90));
    else if (b >= 0xf1 && b <= 0xf3) ((need = 3), (min = 0x80));
    else if (b === 0xf4) ((need = 3), (min = 0x80), (max = 0x8f));
    else return i;
    // The second byte has the lead byte's narrower range; the rest are plain continuation bytes.
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      const lo = k === 1 ? min : 0x80;
      const hi = k === 1 ? max : 0xbf;
      if (c < lo || c > hi) return i;
    }
    i += need + 1;
  }
  return undefined;
}
