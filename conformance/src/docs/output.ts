/**
 * Writing the site to disk without harming what is there: the output folder must be new, empty
 * or a previous `vmemct docs` output (recognised by {@link SITE_MARKER}, which every write
 * leaves), unless the caller forces it; the root folder and the home folder are refused always.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The file every `vmemct docs` output holds, so a later run knows the folder is its own. */
export const SITE_MARKER = '.vmemct-docs';

const MARKER_TEXT = 'This folder was written by `vmemct docs`, which may write here again.\n';

/** Whether a folder may receive the site. */
export type OutputFolderCheck = { readonly kind: 'writable' } | { readonly kind: 'refused'; readonly reason: string };

/** The site could not be written (the message names the path and the reason). */
export class SiteWriteError extends Error {
  override readonly name = 'SiteWriteError';
}

function realPath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * Whether `dir` may receive the site: it does not exist, is empty, or holds {@link SITE_MARKER};
 * a non-empty folder of someone else's only with `force`. The file system root and the user's
 * home folder are refused even with `force` (a site's 20-odd files there are never intended).
 */
export function checkOutputFolder(dir: string, force: boolean): OutputFolderCheck {
  const real = realPath(dir);
  if (real === path.parse(real).root)
    return { kind: 'refused', reason: `--out ${dir}: the root folder; vmemct docs never writes there, even with --force` };
  if (real === realPath(os.homedir()))
    return { kind: 'refused', reason: `--out ${dir}: your home folder; vmemct docs never writes there, even with --force (give a sub-folder)` };
  let stat: fs.Stats;
  try {
    stat = fs.statSync(real);
  } catch {
    return { kind: 'writable' };
  }
  if (!stat.isDirectory()) return { kind: 'refused', reason: `--out ${dir}: exists and is not a folder` };
  let entries: string[];
  try {
    entries = fs.readdirSync(real);
  } catch (e) {
    return { kind: 'refused', reason: `--out ${dir}: cannot read the folder: ${(e as Error).message}` };
  }
  if (entries.length === 0 || entries.includes(SITE_MARKER) || force) return { kind: 'writable' };
  return {
    kind: 'refused',
    reason: `--out ${dir}: the folder is not empty and is not a previous vmemct docs output (it has no ${SITE_MARKER} file); give a new or empty folder, or --force to write into it anyway`,
  };
}

/**
 * Creates `dir` and its missing parents one level at a time (Node's recursive mkdir can loop
 * forever under /proc); an existing non-directory is an error.
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at)) {
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  if (fs.existsSync(at) && !fs.statSync(at).isDirectory()) throw new SiteWriteError(`${at} exists and is not a folder`);
  for (const d of missing) fs.mkdirSync(d);
}

/**
 * Writes the site into `dir` (created if needed) with its {@link SITE_MARKER}, after
 * {@link checkOutputFolder}; returns the files written. Throws {@link SiteWriteError}.
 */
export function writeSite(dir: string, pages: ReadonlyMap<string, string>, options: { readonly force?: boolean } = {}): string[] {
  const check = checkOutputFolder(dir, options.force === true);
  if (check.kind === 'refused') throw new SiteWriteError(check.reason);
  const written: string[] = [];
  try {
    makeDirectory(dir);
    fs.writeFileSync(path.join(dir, SITE_MARKER), MARKER_TEXT);
    for (const [rel, content] of pages) {
      const target = path.join(dir, rel);
      makeDirectory(path.dirname(target));
      fs.writeFileSync(target, content);
      written.push(target);
    }
  } catch (e) {
    if (e instanceof SiteWriteError) throw e;
    throw new SiteWriteError(`cannot write the site into ${dir}: ${(e as Error).message}`);
  }
  return written;
}
