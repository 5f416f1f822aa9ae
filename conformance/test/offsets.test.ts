/**
 * No byte offset or size of a virtio-mem structure outside `spec/` and the codec.
 *
 * The config (56 bytes), request (24) and response (10) layouts are declared once, as data, in
 * `spec/src/layouts.ts`; `model/src/codec/` turns them into bytes and back. Code elsewhere that
 * writes `w[8]` or `length >= 10` silently disagrees with the layouts the day a field moves, so
 * this test reads every non-test `.ts` file under spec/, model/, conformance/ and adapters/
 * (outside `spec/` and `model/src/codec/`), blanks its comments, and fails on any line that
 * matches one of the {@link RULES} below.
 *
 * The rules are lexical, so they are a heuristic: each one targets a form that reads or writes a
 * virtio-mem structure by number and is rare elsewhere (the vhost-user protocol's own layouts,
 * string slicing and Map writes do not match; the negative examples below pin that down). When a
 * line matches, use what the rule's `instead` names: the codec's readers (`peekRequestType`,
 * `readResponseType`, `readResponseState`, `withResponseTrailer`, `withFieldBytes`,
 * `RESPONSE_TRAILER_SIZE`), `layoutField(layout, name).offset`/`.size`, a layout's `size`, or
 * `requestTypeName` from spec/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

/** One lexical rule: a pattern for one way of addressing a virtio-mem structure by number. */
interface OffsetRule {
  readonly name: string;
  readonly pattern: RegExp;
  /** What to write instead. */
  readonly instead: string;
  /** Lines the rule must match (the forms it exists for). */
  readonly examples: readonly string[];
  /** Nearby lines it must not match (other byte formats, strings, maps). */
  readonly nonExamples: readonly string[];
}

/** The byte counts of the three structures (config, request, response). */
const STRUCT_SIZES = '(?:56|24|10)';

const RULES: readonly OffsetRule[] = [
  {
    name: 'hand-assembled le16',
    // `x[N] | (y << 8)`, `x[N] | (x[M] << 8)` and `(x[M] << 8) | x[N]`: a 16-bit field read byte by byte.
    pattern:
      /\[\s*\d+\s*\]!?\s*\|\s*\(\s*[\w$.]+(?:\[[^\]]*\])?!?\s*<<\s*8\s*\)|\(\s*[\w$.]+\[\s*\d+\s*\]!?\s*<<\s*8\s*\)\s*\|/,
    instead: 'peekRequestType(readable), readResponseType(written) or readResponseState(written) from the codec',
    examples: [
      'const type = w[0] | (w[1] << 8);',
      'first[0]! | (first[1]! << 8)',
      'first[0] | (second << 8)',
      'BLOCK_STATE_NAMES[w[8] | (w[9] << 8)]',
      '(w[9] << 8) | w[8]',
    ],
    nonExamples: ['return (0x8000_0000 | (bdf << 8) | (offset & 0xfc)) >>> 0;', 'const mask = a | (b << 16);'],
  },
  {
    name: 'structure size as a number',
    // A length or size compared with 56, 24 or 10; such a number as a writable size, buffer size or slice end; `*_SIZE = 10`.
    pattern: new RegExp(
      [
        `\\b(?:length|size|byteLength|[a-z]+(?:Length|Size))\\s*(?:[<>]=?|[!=]==?)\\s*${STRUCT_SIZES}\\b`,
        `\\bwritableSizes\\s*:\\s*\\[[^\\]]*\\b${STRUCT_SIZES}\\b`,
        `\\bnew\\s+Uint8Array\\(\\s*${STRUCT_SIZES}\\s*\\)`,
        `\\b(?:Buffer\\.)?alloc\\(\\s*${STRUCT_SIZES}\\s*\\)`,
        `\\.(?:slice|subarray)\\(\\s*\\d+\\s*,\\s*${STRUCT_SIZES}\\s*\\)`,
        `\\b[A-Z][A-Z0-9_]*_SIZE\\s*=\\s*${STRUCT_SIZES}\\b`,
      ].join('|'),
    ),
    instead: "VirtioMemResponseLayout.size (or the config/request layout's size) from spec/",
    examples: [
      'if (!real.used || real.used.length < 10) return null;',
      'step.used && step.used.length >= 10 ? a : b',
      'writableSizes: [10]',
      'const out = real.used.written.slice(0, 10);',
      'const RESP_SIZE = 10;',
      'new Uint8Array(56)',
    ],
    nonExamples: [
      "if (m.payload.length !== 8) return fail('x');",
      'io.stderr(text.padEnd(80).slice(0, 100));',
      'if (config.length < 256) throw e;',
      'if (args.length < 2) throw e;',
      'const HEADER_SIZE = 12;',
    ],
  },
  {
    name: 'bytes copied at a numbered position',
    // `.subarray(N, M)` and `.set(x.subarray(…), N)`: part of a structure cut out or written by position.
    pattern: /\.subarray\(\s*\d+\s*,\s*\d+\s*\)|\.set\([^;]*\.(?:subarray|slice)\([^)]*\)\s*,\s*\d+\s*\)/,
    instead:
      'withResponseTrailer(response, trailer) or withFieldBytes(layout, bytes, name, value) from the codec, or layoutField(layout, name).offset',
    examples: [
      'out.set(inj.response.trailer.subarray(0, 8), 2);',
      'bytes.set(padding.subarray(0, 6), PADDING_OFFSET);',
    ],
    nonExamples: [
      'counts.set(key, 1);',
      'const rest = payload.subarray(8);',
      "hostKeyLine.split(' ').slice(0, 2).join(' ')",
    ],
  },
  {
    name: 'named offset constant',
    pattern: /\b[A-Z][A-Z0-9_]*OFFSET\s*=\s*\d+/,
    instead: 'layoutField(layout, name).offset from spec/',
    examples: ['const PADDING_OFFSET = 10;'],
    nonExamples: ['const offset = 10;'],
  },
  {
    name: 'enumeration bound as a number',
    // `type > 3`: whether a request type or state is known, decided by its largest value.
    pattern: /\.(?:type|state)\s*(?:>=?|<=?)\s*\d+/,
    instead: 'requestTypeName(type) === undefined (or RESPONSE_CODE_NAMES / BLOCK_STATE_NAMES) from spec/',
    examples: ['if (!decoded.ok || decoded.value.type > 3) {'],
    nonExamples: ['if (r.type === VIRTIO_MEM_REQ_STATE) {'],
  },
  {
    name: 'response trailer size as a number',
    // `trailer` is the vector format's name for the response bytes after `type`.
    pattern: /\btrailer\.length\s*(?:[<>]=?|[!=]==?)\s*\d+/,
    instead: 'RESPONSE_TRAILER_SIZE from the codec',
    examples: ['if (trailer && trailer.length > 8) {'],
    nonExamples: ['if (trailer && trailer.length > RESPONSE_TRAILER_SIZE) {'],
  },
];

/** Where numbers may address virtio-mem structures: the layouts themselves and the codec. */
const HOMES = ['spec/', 'model/src/codec/'];

/** One line that matched a rule. */
interface Finding {
  readonly file: string;
  readonly line: number;
  readonly rule: OffsetRule;
  readonly text: string;
}

const ROOT = path.resolve(__dirname, '..', '..');
const SCANNED_ROOTS = ['spec', 'model', 'conformance', 'adapters'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist']);

function isTestFile(file: string): boolean {
  return file.endsWith('.test.ts') || file.endsWith('-test.ts') || file.split('/').slice(0, -1).includes('test');
}

/** Every non-test `.ts` file under the scanned roots, repo-relative with `/`. */
function sourceFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(rel);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !isTestFile(rel)) {
        found.push(rel);
      }
    }
  };
  for (const root of SCANNED_ROOTS) walk(root);
  return found.sort();
}

/** The source with every comment replaced by spaces, so line numbers stay and comments never match. */
function blankComments(file: string, source: string): string {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out = source.split('');
  const blank = (ranges: readonly ts.CommentRange[] | undefined): void => {
    for (const range of ranges ?? []) for (let i = range.pos; i < range.end; i++) if (out[i] !== '\n') out[i] = ' ';
  };
  // Every token is a child of some node, so the comments around tokens are all found.
  const visit = (node: ts.Node): void => {
    blank(ts.getLeadingCommentRanges(source, node.getFullStart()));
    blank(ts.getTrailingCommentRanges(source, node.getEnd()));
    for (const child of node.getChildren(sf)) visit(child);
  };
  visit(sf);
  return out.join('');
}

/** The lines of one source that match a rule. */
function findOffsets(file: string, source: string): Finding[] {
  const findings: Finding[] = [];
  blankComments(file, source)
    .split('\n')
    .forEach((text, i) => {
      for (const rule of RULES)
        if (rule.pattern.test(text)) findings.push({ file, line: i + 1, rule, text: text.trim() });
    });
  return findings;
}

const FINDINGS: readonly Finding[] = sourceFiles()
  .filter((file) => !HOMES.some((home) => file.startsWith(home)))
  .flatMap((file) => findOffsets(file, fs.readFileSync(path.join(ROOT, file), 'utf8')));

describe('virtio-mem offsets stay in spec/ and the codec', () => {
  test('no file outside spec/ and model/src/codec/ addresses a virtio-mem structure by number', () => {
    const report = FINDINGS.map((f) => `${f.file}:${f.line}: ${f.rule.name}: ${f.text}\n    use ${f.rule.instead}`);
    expect(report).toEqual([]);
  });

  test('the rules should match their examples and none of the nearby forms', () => {
    for (const rule of RULES) {
      expect(rule.examples.filter((line) => !rule.pattern.test(line))).toEqual([]);
      for (const other of RULES) expect(other.nonExamples.filter((line) => rule.pattern.test(line))).toEqual([]);
    }
  });

  test('comments should never match', () => {
    const source = '// w[0] | (w[1] << 8)\n/* length >= 10 */ const a = 1;\nconst b = w[0] | (w[1] << 8); // ok\n';
    expect(findOffsets('x.ts', source).map((f) => [f.line, f.rule.name])).toEqual([[3, 'hand-assembled le16']]);
  });
});
