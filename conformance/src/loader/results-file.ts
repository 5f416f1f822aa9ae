/**
 * Reading a `vmemct run --json` results file given back to vmemct (as `vmemct docs --results`):
 * through {@link readInputFile} (regular file, size limit, UTF-8), parsed as JSON and validated
 * against spec/'s results schema. Every problem names the file and line, for exit 3.
 */
import type { LoadProblem } from './types';
import { readInputFile } from './input-file';
import { YamlSource, validateSource, validatorFor } from './yaml-source';

/** The `$id` of the results schema (spec/src/vector-schemas.ts). */
export const RESULTS_SCHEMA_ID = 'https://vmemct.dev/schemas/results.json';

/** A results file read and validated, or the problems that make it unusable. */
export type ResultsFileRead =
  | { readonly kind: 'results'; readonly value: unknown }
  | { readonly kind: 'problems'; readonly problems: readonly LoadProblem[] };

/** Reads and validates a results file; problems name the file and line. */
export function readResultsInput(file: string): ResultsFileRead {
  const read = readInputFile(file, 'results file');
  if (read.kind === 'problem') return { kind: 'problems', problems: [read.problem] };
  let value: unknown;
  try {
    value = JSON.parse(read.text);
  } catch (e) {
    const message = (e as Error).message;
    const position = /at position ([0-9]+)/.exec(message);
    const lineCol = /\(line ([0-9]+) column [0-9]+\)/.exec(message);
    const line = lineCol
      ? Number(lineCol[1])
      : position
        ? read.text.slice(0, Number(position[1])).split('\n').length
        : 1;
    return { kind: 'problems', problems: [{ file, line, field: '', reason: `not JSON: ${message}` }] };
  }
  // The fast check; only a file that fails it is parsed again to find the lines of its errors.
  if (validatorFor(RESULTS_SCHEMA_ID)(value)) return { kind: 'results', value };
  const located = YamlSource.parse(file, read.text);
  if (located.source) {
    const problems = validateSource(located.source, RESULTS_SCHEMA_ID);
    if (problems.length > 0) return { kind: 'problems', problems };
  }
  return {
    kind: 'problems',
    problems: (validatorFor(RESULTS_SCHEMA_ID).errors ?? []).map((e) => ({
      file,
      line: 0,
      field: e.instancePath,
      reason: e.message ?? e.keyword,
    })),
  };
}
