/**
 * Regenerates the repository's `docs/` site (`npm run docs`): the shipped corpus, with the
 * results of the model's four profiles (each with its expectation file, where it has one) as
 * the matrix. Everything here is deterministic, so CI regenerates the site and fails on any
 * difference from what is committed. A page that refers to anything outside the site (other
 * than the public sources it cites) stops it before anything is written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { DEVICE_PROFILES } from '../../../model/src/index';
import { loadVectors } from '../loader/load';
import { loadExpectations } from '../runner/expectations';
import { runVectors } from '../runner/run';
import { ResultsInput, buildSite, resultsOfRun } from '../docs/site';
import { SITE_MARKER, checkOutputFolder, writeSite } from '../docs/output';
import { outsideReferences } from '../docs/site-references';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..', '..', '..');
  const out = path.join(root, 'docs');
  const loaded = loadVectors([path.join(root, 'conformance', 'vectors')]);
  if (loaded.problems.length > 0) throw new Error(`the corpus has problems; run vmemct lint`);
  // Paths as the repository names them, so the pages do not depend on where it is checked out.
  const vectors = loaded.vectors.map((v) => ({
    ...v,
    source: { ...v.source, file: path.relative(root, v.source.file) },
  }));
  const vectorFiles = new Map(
    [...new Set(vectors.map((v) => v.source.file))].map(
      (f) => [f, fs.readFileSync(path.join(root, f), 'utf8')] as const,
    ),
  );
  const results: ResultsInput[] = [];
  for (const profile of Object.values(DEVICE_PROFILES)) {
    const expectationsFile = path.join('conformance', 'expectations', `model-${profile.name}.yaml`);
    const expectations = fs.existsSync(path.join(root, expectationsFile))
      ? loadExpectations(path.join(root, expectationsFile)).set
      : undefined;
    const run = await runVectors(createModelAdapter({ profile }), loaded.vectors, loaded.vectors, { expectations });
    results.push(
      resultsOfRun(run, {
        file: `vmemct run --profile ${profile.name}`,
        implementation: `model:${profile.name}`,
        adapter: 'model',
        profile: profile.name,
        expectations: expectations ? expectationsFile : null,
      }),
    );
  }
  // docs/ is replaced whole (no stale pages), but only if it is a previous output (its marker).
  const check = checkOutputFolder(out, false);
  if (check.kind === 'refused')
    throw new Error(
      `${out} is not a previous docs output (no ${SITE_MARKER} file); restore it from git or remove ${out}`,
    );
  const pages = buildSite({ vectors, vectorFiles, results });
  // The published site refers to nothing outside itself but the public sources it cites.
  const outside = outsideReferences(pages);
  if (outside.length > 0)
    throw new Error(
      `the site refers to things outside it:\n${outside.map((r) => `  ${r.page}:${r.line}: ${r.kind} ${r.text}`).join('\n')}`,
    );
  fs.rmSync(out, { recursive: true, force: true });
  const written = writeSite(out, pages);
  console.log(`docs: ${written.length} files written to ${path.relative(process.cwd(), out) || out}`);
}

main().catch((e: unknown) => {
  console.error(`docs: ${(e as Error).message}`);
  process.exitCode = 1;
});
