/**
 * Reading a `vmemct run --json` results file given back to vmemct (as `vmemct docs --results`):
 * through {@link readInputFile} (regular file, size limit, UTF-8), parsed as JSON and validated
 * against spec/'s results schema. Every problem names the file and line, for exit 3.
 */
import { RESULTS_FORMATS, ResultsSchema } from '../../../spec/src/index';
import type { LoadProblem } from './types';
import { readInputFile } from './input-file';
import { YamlSource, validateSource, validatorFor } from './yaml-source';

/** A results file read and validated, or the problems that make it unusable. */
export type ResultsFileRead =
  | { readonly kind: 'results'; readonly value: unknown }
  | { readonly kind: 'problems'; readonly problems: readonly LoadProblem[] };

const NOT_RESULTS = `not a vmemct results file (format ${RESULTS_FORMATS.join(' or ')}, from vmemct run --json)`;

/** Reads and validates a results file; problems name the file and line. */
export function readResultsInput(file: string): ResultsFileRead {
  const read = readInputFile(file, 'results file');
  if (read.kind === 'problem') return { kind: 'problems', problems: [read.problem] };
  let value: unknown;
  try {
    value = JSON.parse(read.text);
  } catch (e) {
    return { kind: 'problems', problems: [syntaxProblem(file, read.text, (e as Error).message)] };
  }
  // The fast check; only a file that fails it is parsed again to find the lines of its errors
  // (JSON is YAML, so the YAML parser gives them).
  if (validatorFor(ResultsSchema.$id)(value)) return { kind: 'results', value };
  const located = YamlSource.parse(file, read.text);
  if (!located.source) return { kind: 'problems', problems: located.problems };
  return {
    kind: 'problems',
    problems: validateSource(located.source, ResultsSchema.$id).map((p) =>
      p.field === '' ? { ...p, reason: `${NOT_RESULTS}: ${p.reason}` } : p,
    ),
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
