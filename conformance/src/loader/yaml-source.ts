/**
 * YAML files with line numbers: parse a file, validate it against a schema, and map any value
 * or JSON pointer back to the line it came from.
 */
import Ajv2020, { ErrorObject, ValidateFunction } from 'ajv/dist/2020';
import { Document, isMap, isSeq, LineCounter, parseDocument, Scalar, YAMLMap } from 'yaml';
import { ALL_SCHEMAS } from '../../../spec/src/index';
import { VECTOR_SCHEMAS } from '../steps/schema';
import type { LoadProblem } from './types';

/** A parsed YAML file that can answer "which line is this path on?". */
export class YamlSource {
  private constructor(
    readonly file: string,
    readonly value: unknown,
    private readonly locate: (path: readonly (string | number)[], key?: string) => number,
  ) {}

  /** Parses text; syntax errors come back as problems (and `source` is undefined). */
  static parse(file: string, text: string): { source?: YamlSource; problems: LoadProblem[] } {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      return {
        problems: doc.errors.map((e) => ({
          file,
          line: lines.linePos(e.pos[0]).line,
          field: '',
          reason: `YAML: ${e.message.split('\n')[0]}`,
        })),
      };
    }
    return {
      source: new YamlSource(file, doc.toJS({ maxAliasCount: 100 }), (path, key) =>
        lineInDocument(doc, lines, path, key),
      ),
      problems: [],
    };
  }

  /**
   * A source rebuilt from a cache entry: the parsed value and the lines of known paths
   * (`vectors/3/steps/1` → 42). Paths not in the table fall back to their nearest known parent.
   */
  static fromCache(file: string, value: unknown, lines: Readonly<Record<string, number>>): YamlSource {
    return new YamlSource(file, value, (path) => {
      for (let depth = path.length; depth > 0; depth--) {
        const line = lines[path.slice(0, depth).join('/')];
        if (line !== undefined) return line;
      }
      return 1;
    });
  }

  /** Line of the node at `path` (array indexes as numbers); for a missing key, the line of its parent. */
  lineOf(path: readonly (string | number)[], key?: string): number {
    return this.locate(path, key);
  }

  /** A problem at `path`. */
  problem(path: readonly (string | number)[], reason: string, key?: string): LoadProblem {
    return {
      file: this.file,
      line: this.lineOf(path, key),
      field: formatPath(key === undefined ? path : [...path, key]),
      reason,
    };
  }
}

function lineInDocument(doc: Document, lines: LineCounter, path: readonly (string | number)[], key?: string): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (node && typeof node === 'object' && 'range' in node && Array.isArray((node as Scalar).range)) {
      if (key !== undefined && depth === path.length && isMap(node)) {
        const pair = (node as YAMLMap).items.find((p) => (p.key as Scalar | null)?.value === key);
        const keyRange = (pair?.key as Scalar | undefined)?.range;
        if (keyRange) return lines.linePos(keyRange[0]).line;
      }
      return lines.linePos((node as Scalar).range![0]).line;
    }
    if (node && isSeq(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return 1;
}

/** `vectors[3].steps[2].expect` from a path. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

let ajv: Ajv2020 | undefined;

/** The validator of one of the project's schemas (spec/'s and the assembled vector schemas), by `$id`. */
export function validatorFor(id: string): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    for (const schema of [...ALL_SCHEMAS, ...VECTOR_SCHEMAS]) ajv.addSchema(schema);
  }
  const validate = ajv.getSchema(id);
  if (!validate) throw new Error(`no schema ${id}`);
  return validate;
}

/** Validates a parsed file; each schema error becomes a problem with its line. */
export function validateSource(source: YamlSource, schemaId: string): LoadProblem[] {
  const validate = validatorFor(schemaId);
  if (validate(source.value)) return [];
  return simplifyErrors(validate.errors ?? []).map((e) => {
    const path = e.instancePath
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((p) => (/^[0-9]+$/.test(p) ? Number(p) : p));
    if (e.keyword === 'additionalProperties') {
      const extra = String((e.params as { additionalProperty: string }).additionalProperty);
      return source.problem(path, `unknown field '${extra}'`, extra);
    }
    if (e.keyword === 'required') {
      return source.problem(
        path,
        `missing required field '${(e.params as { missingProperty: string }).missingProperty}'`,
      );
    }
    return source.problem(path, describeError(e));
  });
}

/** One error per location: for `oneOf`, the most telling branch error is kept. */
function simplifyErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  const out: ErrorObject[] = [];
  for (const e of errors) {
    const key = e.instancePath;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out;
}

function describeError(e: ErrorObject): string {
  switch (e.keyword) {
    case 'enum':
      return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    case 'pattern':
      return `does not match the expected form ${(e.params as { pattern: string }).pattern}`;
    case 'oneOf':
      return 'is not any of the accepted forms (see the vector format in the README)';
    default:
      return e.message ?? e.keyword;
  }
}
