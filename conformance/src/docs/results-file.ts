/**
 * A results file (`vmemct run --json FILE`) for the docs matrix: read and validated by the
 * loader's {@link readResultsInput}, then reduced to what the matrix shows.
 */
import { readResultsInput } from '../loader/results-file';
import type { LoadProblem } from '../loader/types';
import type { ResultsInput } from './site';

/** A results file read for the matrix, or every problem found in it. */
export type ResultsFileRead =
  | { readonly kind: 'results'; readonly results: ResultsInput }
  | { readonly kind: 'problems'; readonly problems: readonly LoadProblem[] };

/** The parts of a results document the matrix shows (the schema has checked their types). */
interface ResultsDocument {
  readonly adapter: { readonly name: string; readonly implementation: string };
  readonly options: { readonly profile?: unknown; readonly strict?: unknown };
  readonly expectations?: string | null;
  readonly results: ResultsInput['results'];
}

/** Reads and checks one results file. */
export function readResultsFile(file: string): ResultsFileRead {
  const read = readResultsInput(file);
  if (read.kind === 'problems') return read;
  const doc = read.value as ResultsDocument;
  return {
    kind: 'results',
    results: {
      file,
      implementation: doc.adapter.implementation,
      adapter: doc.adapter.name,
      profile: typeof doc.options.profile === 'string' ? doc.options.profile : null,
      expectations: typeof doc.expectations === 'string' ? doc.expectations : null,
      strict: doc.options.strict === true,
      results: doc.results,
    },
  };
}
