/**
 * `--write-expectations FILE` of `vmemct run`: the file as it was (loaded and checked before the
 * run, so a bad one is exit 3 before anything runs), and writing it back after the run.
 */
import * as fs from 'node:fs';
import type { Vector } from '../loader/types';
import { ExpectationSet, expectationProblems, loadExpectations } from '../runner/expectations';
import type { VectorResult } from '../runner/run';
import { updateExpectations, updateSummary, verdictBeyondKnownDeviations } from '../runner/write-expectations';
import type { ParsedArgs } from './args';
import type { CliIo } from './main';
import { VectorFileError, writeOutput } from './run-commands';

/** Where to write, and the file as it was (absent when it does not exist yet). */
export interface WriteTarget {
  readonly file: string;
  readonly previous?: ExpectationSet;
}

/** `--write-expectations FILE`: an existing file must be a usable expectation file for the corpus (else exit 3). */
export function writeExpectationsOption(
  command: string,
  parsed: ParsedArgs,
  corpus: readonly Vector[],
): WriteTarget | undefined {
  const file = parsed.values.get('write-expectations');
  if (file === undefined) return undefined;
  if (!fs.existsSync(file)) return { file };
  const loaded = loadExpectations(file);
  if (!loaded.set) throw new VectorFileError(command, loaded.problems);
  const problems = expectationProblems(loaded.set, corpus);
  if (problems.length > 0) throw new VectorFileError(command, problems);
  return { file, previous: loaded.set };
}

/**
 * Writes the updated file and prints (stderr) what was added, changed and removed. `judging`: the
 * expectations the run was judged with; their known deviations are written into the file.
 */
export function writeExpectations(
  command: string,
  target: WriteTarget,
  judging: ExpectationSet | undefined,
  implementation: string,
  results: readonly VectorResult[],
  corpus: readonly Vector[],
  io: CliIo,
): void {
  const known = judging?.knownDeviations ?? [];
  const update = updateExpectations({
    implementation,
    previous: target.previous,
    knownDeviations: known,
    results: results.map((r) => ({
      id: r.vector.id,
      verdict: verdictBeyondKnownDeviations(r.verdict, r.findings, known),
    })),
    corpus,
  });
  writeOutput(command, 'write-expectations', target.file, update.text);
  io.stderr(`vmemct: wrote ${updateSummary(target.file, update)}`);
}
