/**
 * Where a raw YAML value sits while it is normalised: its file, its path in the document and the
 * list that collects the problems. Step kinds normalise their values through a site, so every
 * problem names file, line and field.
 */
import { FEATURE_MASKS, FeatureName } from '../../../spec/src/index';
import { Expr, constantProblem, parseExpression } from '../loader/expr';
import type { LoadProblem } from '../loader/types';
import type { YamlSource } from '../loader/yaml-source';

/** A path in a YAML document: keys and array indexes. */
export type DocumentPath = readonly (string | number)[];

/** A raw value's place in a file, and where its problems go. */
export class Site {
  constructor(
    readonly source: YamlSource,
    readonly path: DocumentPath,
    private readonly problems: LoadProblem[],
  ) {}

  /** The site of a member of this value. */
  at(...more: DocumentPath): Site {
    return new Site(this.source, [...this.path, ...more], this.problems);
  }

  /** Reports a problem here (or at the key `key` of this value). */
  problem(reason: string, key?: string): undefined {
    this.problems.push(this.source.problem(this.path, reason, key));
    return undefined;
  }

  /** Number of problems reported so far (to tell whether a normalisation added any). */
  get problemCount(): number {
    return this.problems.length;
  }

  /** Parses an expression; a bad one (or one that can never be evaluated, as `1 / 0`) is a problem here. */
  expr(value: string | number): Expr | undefined {
    const parsed = parseExpression(value);
    if (!parsed.ok) return this.problem(parsed.reason);
    const never = constantProblem(parsed.expr);
    return never === undefined ? parsed.expr : this.problem(never);
  }

  /** Parses hex bytes (the schema has checked the form), optionally of an exact length. */
  hex(text: string, exactLength?: number): Uint8Array | undefined {
    const bytes = hexBytes(text);
    if (exactLength !== undefined && bytes.length !== exactLength)
      return this.problem(`must be exactly ${exactLength} bytes (got ${bytes.length})`);
    return bytes;
  }
}

/** Parses `"01 02 ff"` into bytes (the schema has already checked the form). */
export function hexBytes(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, '');
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The feature mask of a list of feature names (the schema has checked the names). */
export function featureSet(names: readonly string[]): bigint {
  return names.reduce((mask, name) => mask | FEATURE_MASKS[name as FeatureName], 0n);
}
