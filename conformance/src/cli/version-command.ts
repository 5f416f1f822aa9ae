/**
 * `vmemct --version` and `vmemct version [--json]`: what a results file or a CI log must name to be
 * reproduced — the package, the vector corpus (its version, size and a digest of its files), the
 * specification it judges by and the harness protocol it speaks.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ALL_REQUIREMENTS, HARNESS_PROTOCOL, REQUIREMENTS } from '../../../spec/src/index';
import { listVectorFiles, loadVectors, readVectorCache } from '../loader/load';
import { OptionSpec, defaultVectorsDir, packageRoot, parseArgs, suiteVersion } from './args';
import { EXIT_OK, UsageError } from './usage-error';
import type { CliIo } from './main';

/**
 * The corpus version: MAJOR grows when a vector id is retired or a vector's meaning changes (a
 * result of the old corpus no longer compares with one of the new), MINOR when vectors are added
 * or reworded without changing what passes. The digest in {@link versionInfo} tells two copies of
 * the same version apart if their files differ.
 */
export const CORPUS_VERSION = '1.0';

/** The VIRTIO specification version and chapter the suite judges by. */
export const SPEC_CHAPTER = { version: '1.4', section: '5.15' } as const;

/** The options of `vmemct version`. */
export const VERSION_OPTIONS: Readonly<Record<string, OptionSpec>> = { json: { kind: 'flag' } };

/** What `vmemct version --json` prints. */
export interface VersionInfo {
  readonly package: string;
  readonly corpus: {
    readonly version: string;
    /** Vectors in the corpus, retired ones included. */
    readonly vectors: number;
    readonly files: number;
    /** First 16 hex digits of SHA-256 over each file's path (relative, `/`-separated) and content, sorted by path. */
    readonly digest: string;
  };
  readonly spec: {
    readonly virtio: string;
    readonly section: string;
    /** The statements of the chapter in the requirement catalogue. */
    readonly requirements: number;
    /** Statements beyond the chapter the suite also judges (virtio core, the suite's own). */
    readonly beyond: number;
  };
  readonly harnessProtocol: string;
}

/** A digest of the files of a corpus folder: independent of where the folder lies and of file order. */
export function corpusDigest(dir: string, files: readonly string[]): string {
  const hash = createHash('sha256');
  const named = files.map((f) => ({ name: path.relative(dir, f).split(path.sep).join('/'), file: f }));
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { name, file } of named) {
    hash.update(`${name}\0`);
    hash.update(fs.readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** The versions of this installation (the corpus read from `vectorsDir`). */
export function versionInfo(vectorsDir = defaultVectorsDir()): VersionInfo {
  const listed = listVectorFiles([vectorsDir]);
  const loaded = loadVectors(
    [vectorsDir],
    readVectorCache(path.join(packageRoot(), 'dist', 'vector-cache.json'), packageRoot()),
  );
  return {
    package: suiteVersion(),
    corpus: {
      version: CORPUS_VERSION,
      vectors: loaded.vectors.length,
      files: listed.files.length,
      digest: corpusDigest(vectorsDir, listed.files),
    },
    spec: {
      virtio: SPEC_CHAPTER.version,
      section: SPEC_CHAPTER.section,
      requirements: REQUIREMENTS.length,
      beyond: ALL_REQUIREMENTS.length - REQUIREMENTS.length,
    },
    harnessProtocol: HARNESS_PROTOCOL,
  };
}

/** The text of `vmemct --version`. */
export function versionText(info: VersionInfo): string {
  return [
    `vmemct ${info.package}`,
    `corpus ${info.corpus.version}: ${info.corpus.vectors} vectors in ${info.corpus.files} files, digest ${info.corpus.digest}`,
    `spec VIRTIO ${info.spec.virtio} §${info.spec.section}: ${info.spec.requirements} requirements (+${info.spec.beyond} beyond the chapter)`,
    `harness protocol ${info.harnessProtocol}`,
  ].join('\n');
}

/** `vmemct version [--json]` (and `vmemct --version`). */
export async function versionCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs('version', args, VERSION_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`version: unexpected argument '${parsed.positional[0]}'`);
  const info = versionInfo();
  io.stdout(parsed.flags.has('json') ? `${JSON.stringify(info, null, 2)}\n` : `${versionText(info)}\n`);
  return EXIT_OK;
}
