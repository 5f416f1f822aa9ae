/**
 * A writer for the `newc` cpio format (the one the Linux kernel unpacks as an initramfs).
 * Written here rather than piped through cpio(1) so the archive is deterministic (fixed owner,
 * mtime 0, inode numbers in order) and the build needs one tool fewer.
 */

/** One archive member. Paths are relative (`bin/busybox`), without a leading `/`. */
export type CpioEntry =
  | { readonly kind: 'dir'; readonly path: string; readonly mode: number }
  | { readonly kind: 'file'; readonly path: string; readonly mode: number; readonly data: Uint8Array }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function padTo4(length: number): number {
  return (4 - (length % 4)) % 4;
}

function member(ino: number, mode: number, data: Uint8Array, name: string): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  // Fields: ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check.
  const fields = [
    ino,
    mode,
    0,
    0,
    (mode & S_IFDIR) === S_IFDIR ? 2 : 1,
    0,
    data.length,
    0,
    0,
    0,
    0,
    nameBytes.length,
    0,
  ];
  const header = Buffer.from(MAGIC + fields.map(hex8).join(''), 'ascii');
  return [
    header,
    nameBytes,
    Buffer.alloc(padTo4(header.length + nameBytes.length)),
    Buffer.from(data),
    Buffer.alloc(padTo4(data.length)),
  ];
}

/**
 * The archive of `entries`, in the order given (parents must come before their children), with
 * the trailer. Duplicate paths are an error.
 */
export function cpioArchive(entries: readonly CpioEntry[]): Buffer {
  const seen = new Set<string>();
  const parts: Buffer[] = [];
  let ino = 1;
  for (const entry of entries) {
    if (entry.path.startsWith('/') || entry.path.length === 0)
      throw new Error(`cpio: path must be relative: '${entry.path}'`);
    if (seen.has(entry.path)) throw new Error(`cpio: duplicate path '${entry.path}'`);
    seen.add(entry.path);
    if (entry.kind === 'dir')
      parts.push(...member(ino++, S_IFDIR | (entry.mode & 0o7777), new Uint8Array(0), entry.path));
    else if (entry.kind === 'file')
      parts.push(...member(ino++, S_IFREG | (entry.mode & 0o7777), entry.data, entry.path));
    else parts.push(...member(ino++, S_IFLNK | 0o777, Buffer.from(entry.target, 'utf8'), entry.path));
  }
  parts.push(...member(0, 0, new Uint8Array(0), TRAILER));
  return Buffer.concat(parts);
}
