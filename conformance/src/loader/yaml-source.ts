/**
 * YAML files with line numbers: parse a file, validate it against a schema, and map any value
 * or JSON pointer back to the line it came from.
 */
import Ajv2020, { ErrorObject, ValidateFunction } from 'ajv/dist/2020';
import { Document, isMap, isSeq, LineCounter, parseDocument, Scalar, visit, YAMLMap } from 'yaml';
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

  /**
   * Parses text; syntax errors and the limits below come back as problems (and `source` is
   * undefined): at most {@link MAX_ALIAS_USES} uses of one anchor, at most
   * {@link MAX_YAML_VALUES} values once aliases are expanded, and no nesting deeper than the
   * parser can follow.
   */
  static parse(file: string, text: string): { source?: YamlSource; problems: LoadProblem[] } {
    const lines = new LineCounter();
    const atLine = (line: number, reason: string): { problems: LoadProblem[] } => ({
      problems: [{ file, line, field: '', reason: `YAML: ${reason}` }],
    });
    let doc: Document;
    try {
      doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    } catch (e) {
      if (e instanceof RangeError) return atLine(1, 'nested too deeply to parse');
      throw e;
    }
    if (doc.errors.length > 0) {
      return {
        problems: doc.errors.map((e) => ({
          file,
          line: lines.linePos(e.pos[0]).line,
          field: '',
          reason: /Maximum call stack/.test(e.message)
            ? 'YAML: nested too deeply to parse'
            : `YAML: ${e.message.split('\n')[0]}`,
        })),
      };
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_USES });
    } catch (e) {
      if (e instanceof RangeError) return atLine(1, 'nested too deeply to parse');
      if (e instanceof ReferenceError && /alias/i.test(e.message))
        return atLine(
          firstAliasLine(doc, lines),
          /Excessive/.test(e.message)
            ? `aliases are used more than the limit allows (at most ${MAX_ALIAS_USES} uses of an anchor, fewer when anchored values themselves contain aliases)`
            : e.message.split('\n')[0],
        );
      throw e;
    }
    if (countValues(value, MAX_YAML_VALUES) > MAX_YAML_VALUES)
      return atLine(
        firstAliasLine(doc, lines),
        `more than ${MAX_YAML_VALUES} values (aliases counted at each use); split the file`,
      );
    return {
      source: new YamlSource(file, value, (path, key) => lineInDocument(doc, lines, path, key)),
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

/**
 * The most uses of one YAML anchor (`*name`) a file may make: 1,000. Files reuse an anchored
 * set-up or step list tens or a few hundred times; the parser's default (100) refused a file with
 * 150 ordinary aliases. Where an anchored value itself holds aliases the uses are weighted by
 * them, so exponential expansion ("billion laughs") is refused after a few levels.
 */
export const MAX_ALIAS_USES = 1_000;

/**
 * The most values (mappings, sequences and scalars, an alias counted at each use) a file may
 * hold: 2,000,000. The largest shipped file has a few thousand; a file of 10,000 vectors of a few
 * steps each stays well below it, while validation and normalisation stay within seconds.
 */
export const MAX_YAML_VALUES = 2_000_000;

/** Number of values in `value`, counting shared (aliased) ones at each use; stops past `limit`. Iterative. */
function countValues(value: unknown, limit: number): number {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && count <= limit) {
    const v = stack.pop();
    count++;
    if (Array.isArray(v)) for (const item of v) stack.push(item);
    else if (v !== null && typeof v === 'object') for (const item of Object.values(v)) stack.push(item);
  }
  return count;
}

/** Line of the first alias in the document (where an alias limit is reported), else 1. */
function firstAliasLine(doc: Document, lines: LineCounter): number {
  let line = 1;
  visit(doc, {
    Alias(_, node) {
      if (node.range) line = lines.linePos(node.range[0]).line;
      return visit.BREAK;
    },
  });
  return line;
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
