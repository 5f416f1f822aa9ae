/**
 * Reading a results file (`vmemct run --json FILE`) for the docs matrix: a regular file within
 * the input size limit, strict UTF-8, valid JSON, and valid against the project's own results
 * schema (spec/'s `ResultsSchema`). Every problem names the file, the line and the field.
 */
import { ResultsSchema } from '../../../spec/src/index';
import { readInputFile } from '../loader/input-file';
import type { LoadProblem } from '../loader/types';
import { YamlSource, validateSource, validatorFor } from '../loader/yaml-source';
import type { ResultsInput } from './site';

/** A results file read for the matrix, or every problem found in it. */
export type ResultsFileRead =
  | { readonly kind: 'results'; readonly results: ResultsInput }
  | { readonly kind: 'problems'; readonly problems: readonly LoadProblem[] };

const WHAT = 'results file';

/** The parts of a results document the matrix shows (the schema has checked their types). */
interface ResultsDocument {
  readonly adapter: { readonly name: string; readonly implementation: string };
  readonly options: { readonly profile?: unknown; readonly strict?: unknown };
  readonly expectations?: string | null;
  readonly results: ResultsInput['results'];
}

/** Reads and checks one results file. */
export function readResultsFile(file: string): ResultsFileRead {
  const read = readInputFile(file, WHAT);
  if (read.kind === 'problem') return { kind: 'problems', problems: [read.problem] };
  let value: unknown;
  try {
    value = JSON.parse(read.text);
  } catch (e) {
    return { kind: 'problems', problems: [syntaxProblem(file, read.text, (e as Error).message)] };
  }
  if (!validatorFor(ResultsSchema.$id)(value)) {
    // Only now pay for a parse that knows lines (JSON is YAML, so the YAML parser gives them).
    const { source, problems } = YamlSource.parse(file, read.text);
    if (!source) return { kind: 'problems', problems };
    const notResults = 'not a vmemct results file (format vmemct-results/1, from vmemct run --json)';
    return {
      kind: 'problems',
      problems: validateSource(source, ResultsSchema.$id).map((p) =>
        p.field === '' ? { ...p, reason: `${notResults}: ${p.reason}` } : p,
      ),
    };
  }
  const doc = value as ResultsDocument;
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

/** A JSON syntax error at its line (V8 reports a character position, or line and column). */
function syntaxProblem(file: string, text: string, message: string): LoadProblem {
  const lineColumn = /line (\d+) column \d+/.exec(message);
  const position = /position (\d+)/.exec(message);
  const line = lineColumn
    ? Number(lineColumn[1])
    : position
      ? text.slice(0, Number(position[1])).split('\n').length
      : text.split('\n').length;
  return { file, line, field: '', reason: `not valid JSON: ${message.replace(/ in JSON at .*$/, '')}` };
}
