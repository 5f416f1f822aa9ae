/**
 * The layering check: what may import what (ARCHITECTURE.md, "What may import what").
 *
 * LAYERS below is the written-down form of that table; this test reads every `.ts` file under
 * spec/, model/, conformance/ and adapters/, extracts every module specifier (import, import
 * type, side-effect import, export-from, import = require, require(), import(), import types) and
 * checks it against the first row whose `files` pattern matches the importing file.
 */
import * as fs from 'node:fs';
import { isBuiltin } from 'node:module';
import * as path from 'node:path';
import * as ts from 'typescript';

/** One row of the layering table. */
interface Layer {
  /** Repo-relative folder (ending in `/`) or file the row covers; `<name>` matches one path segment. */
  readonly files: string;
  /** What it may import of ours: folders (ending in `/`) or modules (no extension); `*` = anything. `<name>` is the matched segment. */
  readonly mayImport: readonly string[];
  /** Folders or modules excluded from `mayImport` (checked first). */
  readonly mustNot?: readonly string[];
  /** Whether Node built-in modules (`fs`, `node:path`, …) may be imported. */
  readonly nodeBuiltins: boolean;
  /** Whether npm packages may be imported. */
  readonly npmPackages: boolean;
  /** Whether the source must be free of clocks, randomness, timers and `process`. */
  readonly pure: boolean;
  /** Why, for the failure message. */
  readonly why: string;
}

/** Device and driver meet only through bytes, so neither may reach the other, not even through the barrels. */
const OTHER_SIDE_OF_THE_MODEL = ['model/src/index', 'model/src/loop'];

/**
 * What may import what — the table in ARCHITECTURE.md. The first matching row wins, so specific rows come first.
 * Test files (`*.test.ts`, anything under a `test/` folder) are exempt.
 */
const LAYERS: readonly Layer[] = [
  // spec/: the protocol as data; nothing of ours, no Node, no packages, no clocks.
  {
    files: 'spec/',
    mayImport: ['spec/'],
    nodeBuiltins: false,
    npmPackages: false,
    pure: true,
    why: 'spec/ imports nothing outside spec/',
  },
  // model/: device and reference driver, pure and deterministic; they meet only through bytes.
  {
    files: 'model/src/device/',
    mayImport: ['spec/', 'model/'],
    mustNot: ['model/src/driver/', ...OTHER_SIDE_OF_THE_MODEL],
    nodeBuiltins: false,
    npmPackages: false,
    pure: true,
    why: 'the model device must not import the model driver (they meet only through bytes)',
  },
  {
    files: 'model/src/driver/',
    mayImport: ['spec/', 'model/'],
    mustNot: ['model/src/device/', ...OTHER_SIDE_OF_THE_MODEL],
    nodeBuiltins: false,
    npmPackages: false,
    pure: true,
    why: 'the model driver must not import the model device (they meet only through bytes)',
  },
  // blocks and codec are shared by device and driver, so they must not lead to either.
  {
    files: 'model/src/blocks/',
    mayImport: ['spec/', 'model/src/blocks/', 'model/src/codec/'],
    nodeBuiltins: false,
    npmPackages: false,
    pure: true,
    why: 'model/src/blocks is shared by device and driver and imports neither',
  },
  {
    files: 'model/src/codec/',
    mayImport: ['spec/', 'model/src/blocks/', 'model/src/codec/'],
    nodeBuiltins: false,
    npmPackages: false,
    pure: true,
    why: 'model/src/codec is shared by device and driver and imports neither',
  },
  // model/src/host: one model device driven from the host side; both ways of serving the model (the model adapter, the vhost-user back-end) go through it.
  {
    files: 'model/src/host/',
    mayImport: ['spec/', 'model/'],
    mustNot: ['model/src/driver/', ...OTHER_SIDE_OF_THE_MODEL],
    nodeBuiltins: false,
    npmPackages: false,
    pure: true,
    why: 'the model host is pure and serves the device side only: it must not import the model driver',
  },
  // The benchmark (`npm run bench`) measures the model: it needs clocks and os, but stays off adapters.
  {
    files: 'model/bench/',
    mayImport: ['spec/', 'model/'],
    nodeBuiltins: true,
    npmPackages: false,
    pure: false,
    why: 'the model benchmark uses only spec/, model/ and Node',
  },
  {
    files: 'model/',
    mayImport: ['spec/', 'model/'],
    nodeBuiltins: false,
    npmPackages: false,
    pure: true,
    why: 'model/ imports only spec/ and model/, and no Node or packages',
  },
  // adapters/virtio: the virtio layer (split queue both sides, handshake, PCI capability walk) over small ports; pure code any adapter may share.
  {
    files: 'adapters/virtio/',
    mayImport: ['spec/', 'adapters/virtio/'],
    nodeBuiltins: false,
    npmPackages: false,
    pure: true,
    why: 'the virtio layer imports only spec/ and itself, with no Node I/O, packages, clocks or timers (the ports bring the I/O)',
  },
  // adapters/core: the adapter contract.
  {
    files: 'adapters/core/',
    mayImport: ['spec/', 'adapters/core/'],
    nodeBuiltins: false,
    npmPackages: false,
    pure: false,
    why: 'the adapter contract imports only spec/',
  },
  // adapters/model: the in-process reference model; its handshake is the virtio layer's, over the model host's registers.
  {
    files: 'adapters/model/',
    mayImport: ['adapters/core/', 'adapters/model/', 'adapters/virtio/', 'spec/', 'model/'],
    nodeBuiltins: false,
    npmPackages: false,
    pure: false,
    why: 'the model adapter imports only the contract, the virtio layer, spec/ and model/',
  },
  // The QEMU platform: what the qemu and ssh-guest adapters share about driving a QEMU from the host (QMP, the virtio-mem device over QMP, processes); it knows no adapter.
  {
    files: 'adapters/qemu-platform/',
    mayImport: ['adapters/qemu-platform/', 'adapters/core/', 'spec/'],
    nodeBuiltins: true,
    npmPackages: false,
    pure: false,
    why: 'the QEMU platform imports only itself, the adapter core, spec/ and Node — never an adapter',
  },
  // The QEMU adapter: as other adapters, plus the QEMU platform through its door.
  {
    files: 'adapters/qemu/',
    mayImport: [
      'adapters/core/',
      'adapters/qemu/',
      'adapters/qemu-platform/src/index',
      'adapters/device-session/',
      'adapters/virtio/',
      'spec/',
      'model/src/codec/',
      'model/src/driver/',
      'model/src/blocks/',
    ],
    nodeBuiltins: true,
    npmPackages: false,
    pure: false,
    why: "the qemu adapter imports only the contract, spec/, its own folder, the QEMU platform's door (adapters/qemu-platform/src/index), the shared device session, the model's codec/driver/blocks and Node",
  },
  // The guest adapter drives the QEMU that runs the guest: the QEMU platform through its door, never the QEMU adapter.
  {
    files: 'adapters/ssh-guest/',
    mayImport: [
      'adapters/core/',
      'adapters/ssh-guest/',
      'adapters/qemu-platform/src/index',
      'adapters/device-session/',
      'adapters/virtio/',
      'spec/',
      'model/src/codec/',
      'model/src/blocks/',
    ],
    nodeBuiltins: true,
    npmPackages: false,
    pure: false,
    why: "the ssh-guest adapter imports only the contract, spec/, its own folder, the QEMU platform's door (adapters/qemu-platform/src/index), the shared device session, the model's codec and blocks, and Node",
  },
  // The vhost-user back-end (`vmemct serve-vhost-user`) is a device server, not an adapter: it serves the model (through its ModelHost) over the socket with the vhost-user protocol helpers and the virtio layer.
  {
    files: 'adapters/vhost-user-server/',
    mayImport: [
      'adapters/core/',
      'adapters/vhost-user-server/',
      'adapters/vhost-user/',
      'adapters/virtio/',
      'spec/',
      'model/',
    ],
    nodeBuiltins: true,
    npmPackages: false,
    pure: false,
    why: 'the vhost-user back-end imports only the contract, spec/, the model, the vhost-user protocol helpers, the virtio layer, its own folder and Node',
  },
  // The exec benchmark (`npm run bench:exec`) measures the adapter against its baselines: the in-process model adapter and the runner over the corpus.
  {
    files: 'adapters/exec/bench/',
    mayImport: ['adapters/', 'conformance/src/loader/', 'conformance/src/runner/', 'spec/', 'model/'],
    nodeBuiltins: true,
    npmPackages: false,
    pure: false,
    why: 'the exec benchmark compares the exec adapter with the model adapter over the runner; it imports no CLI',
  },
  // The exec adapter: a harness in another process; for driver vectors the suite's device is the model adapter's driver-side device.
  {
    files: 'adapters/exec/',
    mayImport: ['adapters/core/', 'adapters/exec/', 'adapters/model/src/driver-device', 'spec/'],
    nodeBuiltins: true,
    npmPackages: false,
    pure: false,
    why: "the exec adapter imports only the contract, spec/, its own folder, the model adapter's driver-side device and Node",
  },
  // The served model (`vmemct serve-harness`) is a server, not an adapter: it serves the model (its ModelHost, its driver pump) over the harness protocol.
  {
    files: 'adapters/model-harness/',
    mayImport: ['adapters/model-harness/', 'adapters/virtio/', 'spec/', 'model/'],
    nodeBuiltins: true,
    npmPackages: false,
    pure: false,
    why: 'the served model imports only spec/, the model, the virtio layer, its own folder and Node',
  },
  // Other adapters act as the driver: the contract, spec/, the model's codec, blocks and reference driver, Node I/O.
  {
    files: 'adapters/<name>/',
    mayImport: [
      'adapters/core/',
      'adapters/<name>/',
      'adapters/virtio/',
      'spec/',
      'model/src/codec/',
      'model/src/driver/',
      'model/src/blocks/',
    ],
    nodeBuiltins: true,
    npmPackages: false,
    pure: false,
    why: "an adapter imports only the contract, spec/, its own folder, the model's codec/driver/blocks and Node",
  },
  // The CLI is the only place concrete adapters are wired by name.
  {
    files: 'conformance/src/cli/',
    mayImport: ['*'],
    nodeBuiltins: true,
    npmPackages: true,
    pure: false,
    why: 'the CLI may import anything',
  },
  // The loader reads vector files; what a step means comes from the step-kind registry, never from the runner.
  {
    files: 'conformance/src/loader/',
    mayImport: ['spec/', 'adapters/core/', 'conformance/src/loader/', 'conformance/src/steps/'],
    nodeBuiltins: true,
    npmPackages: true,
    pure: false,
    why: 'the loader imports spec/, the adapter contract, the step kinds and itself — not the runner',
  },
  // Judging: verdicts and findings, outcome-set, config and byte checks, the oracle, the driver-side request checks.
  {
    files: 'conformance/src/judge/',
    mayImport: [
      'spec/',
      'model/',
      'adapters/core/',
      'adapters/virtio/',
      'conformance/src/judge/',
      'conformance/src/loader/',
    ],
    nodeBuiltins: false,
    npmPackages: false,
    pure: false,
    why: "judging imports spec/, the model as oracle, the adapter contract, the loader's types and expressions, and itself — never the step kinds, the runner or an adapter",
  },
  // The step kinds: each declares its schema, normalisation, checks and execution against an adapter session.
  {
    files: 'conformance/src/steps/',
    mayImport: [
      'spec/',
      'model/',
      'adapters/core/',
      'conformance/src/steps/',
      'conformance/src/loader/',
      'conformance/src/judge/',
    ],
    nodeBuiltins: false,
    npmPackages: false,
    pure: false,
    why: "a step kind runs against the adapter contract (never a concrete adapter), with spec/, the model, the loader's types and the judging checks — never the runner",
  },
  // The vu.* checks speak the vhost-user protocol: its wire format (data, no I/O) and nothing else of the adapter; the front-end comes in through an interface.
  {
    files: 'conformance/src/suites/vhost-user/',
    mayImport: ['spec/', 'conformance/src/', 'adapters/core/', 'adapters/vhost-user/src/protocol'],
    nodeBuiltins: true,
    npmPackages: true,
    pure: false,
    why: "the vhost-user checks import what the runner may (spec/, the adapter core, the runner's types) and the protocol's wire format (adapters/vhost-user/src/protocol); the front-end is handed in by the CLI, never imported",
  },
  // The runner: spec/, the model as oracle, the adapter contract — never a concrete adapter.
  {
    files: 'conformance/src/',
    mayImport: ['spec/', 'model/', 'adapters/core/', 'conformance/src/'],
    nodeBuiltins: true,
    npmPackages: true,
    pure: false,
    why: 'the runner imports spec/, model/, the adapter contract and itself — never a concrete adapter',
  },
];

/** Folders the check reads (repo-relative). */
const SCANNED_ROOTS = ['spec', 'model', 'conformance', 'adapters'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist']);

/** Clocks, randomness, timers and the process: forbidden in `pure` layers (comments are stripped first). */
const IMPURE: readonly [RegExp, string][] = [
  [/(?<![\w$.])Date\s*\.\s*now\b/, 'Date.now'],
  [/(?<![\w$.])new\s+Date\s*\(/, 'new Date('],
  [/(?<![\w$.])Math\s*\.\s*random\b/, 'Math.random'],
  [/(?<![\w$.])setTimeout\b/, 'setTimeout'],
  [/(?<![\w$.])setInterval\b/, 'setInterval'],
  [/(?<![\w$.])setImmediate\b/, 'setImmediate'],
  [/(?<![\w$.])performance\s*\.\s*now\b/, 'performance.now'],
  [/(?<![\w$.])process\s*\./, 'process.'],
];

interface SourceFile {
  /** Repo-relative, `/`-separated. */
  readonly path: string;
  readonly source: string;
}

interface Violation {
  readonly file: string;
  readonly specifier: string;
  readonly rule: string;
}

function isTestFile(file: string): boolean {
  return file.endsWith('.test.ts') || file.split('/').slice(0, -1).includes('test');
}

/** Matches a `files` pattern against a repo-relative path; returns the `<name>` segment (or '') or undefined. */
function matchFiles(pattern: string, file: string): string | undefined {
  const parts = pattern.split('/');
  const folder = pattern.endsWith('/');
  const wanted = folder ? parts.slice(0, -1) : parts;
  const actual = file.split('/');
  if (folder ? actual.length <= wanted.length : actual.length !== wanted.length) return undefined;
  let name = '';
  for (let i = 0; i < wanted.length; i++) {
    if (wanted[i] === '<name>') name = actual[i];
    else if (wanted[i] !== actual[i]) return undefined;
  }
  return name;
}

/** Whether a resolved module (repo-relative, extension stripped) is covered by a folder (`x/`) or module (`x/index`) entry. */
function covers(entry: string, target: string): boolean {
  if (entry === '*') return true;
  if (entry.endsWith('/')) return target.startsWith(entry) || target === entry.slice(0, -1);
  return target === entry;
}

/** Every module specifier in a source, by walking the TypeScript syntax tree; `null` for a computed one. */
function extractSpecifiers(file: string, source: string): (string | null)[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const found: (string | null)[] = [];
  const literal = (node: ts.Node | undefined): string | null =>
    node !== undefined && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : null;
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) found.push(literal(node.moduleSpecifier));
    else if (ts.isExportDeclaration(node) && node.moduleSpecifier) found.push(literal(node.moduleSpecifier));
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      found.push(literal(node.moduleReference.expression));
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      found.push(literal(node.argument.literal));
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      const isRequireResolve =
        ts.isPropertyAccessExpression(callee) &&
        ts.isIdentifier(callee.expression) &&
        callee.expression.text === 'require';
      if (callee.kind === ts.SyntaxKind.ImportKeyword || isRequire || isRequireResolve)
        found.push(literal(node.arguments[0]));
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** The source without comments (string contents are kept). */
function stripComments(file: string, source: string): string {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  return ts.createPrinter({ removeComments: true }).printFile(sf);
}

/** Checks a set of sources against LAYERS; returns every violation. */
function checkLayering(files: readonly SourceFile[]): Violation[] {
  const violations: Violation[] = [];
  for (const { path: file, source } of files) {
    if (isTestFile(file)) continue;
    let layer: Layer | undefined;
    let name = '';
    for (const candidate of LAYERS) {
      const matched = matchFiles(candidate.files, file);
      if (matched !== undefined) {
        layer = candidate;
        name = matched;
        break;
      }
    }
    if (layer === undefined) {
      violations.push({
        file,
        specifier: '(file)',
        rule: 'no row of LAYERS covers this file; add one (and its line in ARCHITECTURE.md)',
      });
      continue;
    }
    const allowed = layer.mayImport.map((e) => e.replace('<name>', name));
    const denied = (layer.mustNot ?? []).map((e) => e.replace('<name>', name));

    for (const specifier of extractSpecifiers(file, source)) {
      const flag = (rule: string): void => void violations.push({ file, specifier: specifier ?? '(computed)', rule });
      if (specifier === null) {
        if (!allowed.includes('*')) flag(`a computed module specifier cannot be checked — ${layer.why}`);
        continue;
      }
      if (specifier.startsWith('.') || specifier.startsWith('/')) {
        const resolved = specifier.startsWith('/')
          ? specifier
          : path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
        const target = resolved.replace(/(\.d)?\.(ts|js|mjs|cjs|json)$/, '').replace(/\/$/, '');
        if (target.startsWith('../') || target === '..' || path.posix.isAbsolute(target)) {
          if (!allowed.includes('*')) flag(`resolves outside the repository — ${layer.why}`);
        } else if (denied.some((d) => covers(d, target))) {
          flag(`${target} is forbidden here — ${layer.why}`);
        } else if (!allowed.some((a) => covers(a, target))) {
          flag(`${target} is not allowed here — ${layer.why}`);
        }
      } else if (specifier.startsWith('node:') || isBuiltin(specifier)) {
        if (!layer.nodeBuiltins) flag(`Node built-in module — ${layer.why}`);
      } else if (!layer.npmPackages) {
        flag(`npm package — ${layer.why}`);
      }
    }

    if (layer.pure) {
      const code = stripComments(file, source);
      for (const [pattern, label] of IMPURE) {
        if (pattern.test(code))
          violations.push({
            file,
            specifier: label,
            rule: `${file.split('/')[0]}/ is pure: no clocks, randomness, timers or process`,
          });
      }
    }
  }
  return violations;
}

function format(violations: readonly Violation[]): string {
  return violations.map((v) => `${v.file}: ${v.specifier} → ${v.rule}`).join('\n');
}

/** The repository's sources, read from disk. */
function readRepository(root: string): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(rel);
      } else if (entry.isFile() && entry.name.endsWith('.ts')) {
        files.push({ path: rel, source: fs.readFileSync(path.join(root, rel), 'utf8') });
      }
    }
  };
  for (const top of SCANNED_ROOTS) if (fs.existsSync(path.join(root, top))) walk(top);
  return files;
}

const REPO_ROOT = path.resolve(__dirname, '..', '..');

describe('layering of the repository', () => {
  const files = readRepository(REPO_ROOT);

  test('should find the sources it checks', () => {
    expect(files.length).toBeGreaterThan(10);
    const paths = files.map((f) => f.path);
    expect(paths).toContain('spec/src/index.ts');
    expect(paths).toContain('model/src/index.ts');
    expect(paths).toContain('conformance/test/layering.test.ts');
    expect(paths.some((p) => p.includes('node_modules') || p.startsWith('dist/'))).toBe(false);
    expect(files.filter((f) => !isTestFile(f.path)).length).toBeGreaterThan(10);
  });

  test('should find the imports in the real sources', () => {
    const specifiers = files.flatMap((f) => extractSpecifiers(f.path, f.source));
    expect(specifiers).toContain('../../../spec/src/index');
    expect(specifiers.length).toBeGreaterThan(20);
  });

  test('should keep every import within the layers of ARCHITECTURE.md', () => {
    const violations = checkLayering(files);
    if (violations.length > 0) throw new Error(`layering violations (${violations.length}):\n${format(violations)}`);
  });

  test('should keep the runner out of what the loader, the step kinds and judging reach, even indirectly', () => {
    const byModule = new Map(files.map((f) => [f.path.replace(/\.ts$/, ''), f]));
    const reached = (start: string): Set<string> => {
      const seen = new Set<string>();
      const queue = [start];
      while (queue.length > 0) {
        const module = queue.pop()!;
        if (seen.has(module)) continue;
        seen.add(module);
        const file = byModule.get(module) ?? byModule.get(`${module}/index`);
        if (!file) continue;
        for (const specifier of extractSpecifiers(file.path, file.source)) {
          if (specifier === null || !specifier.startsWith('.')) continue;
          queue.push(path.posix.normalize(path.posix.join(path.posix.dirname(file.path), specifier)));
        }
      }
      return seen;
    };
    for (const start of [
      'conformance/src/loader/load',
      'conformance/src/steps/registry',
      'conformance/src/judge/checks',
    ]) {
      const intoRunner = [...reached(start)].filter((m) => m.startsWith('conformance/src/runner/'));
      expect({ start, intoRunner }).toEqual({ start, intoRunner: [] });
    }
  });

  test('should describe every folder row of the table in ARCHITECTURE.md', () => {
    const architecture = fs.readFileSync(path.join(__dirname, '..', '..', 'ARCHITECTURE.md'), 'utf8');
    const documented = (files: string): boolean =>
      files === 'adapters/<name>/' ? architecture.includes('| other adapters |') : architecture.includes(`\`${files}`);
    const missing = LAYERS.map((layer) => layer.files).filter((files) => !documented(files));
    expect(missing).toEqual([]);
  });
});

describe('the layering checker', () => {
  const check = (files: Record<string, string>): Violation[] =>
    checkLayering(Object.entries(files).map(([p, source]) => ({ path: p, source })));
  const flagged = (files: Record<string, string>): string[] => check(files).map((v) => `${v.file}: ${v.specifier}`);

  test('should flag a model device importing the model driver and spec/ importing fs', () => {
    const violations = check({
      'model/src/device/x.ts':
        "import { ReferenceDriver } from '../driver/driver';\nexport const x = ReferenceDriver;\n",
      'spec/src/y.ts': "import * as fs from 'fs';\nexport const y = fs;\n",
    });
    expect(violations.map((v) => `${v.file}: ${v.specifier}`).sort()).toEqual([
      'model/src/device/x.ts: ../driver/driver',
      'spec/src/y.ts: fs',
    ]);
    expect(violations.find((v) => v.file === 'model/src/device/x.ts')?.rule).toMatch(
      /model\/src\/driver\/driver.*forbidden/,
    );
    expect(format(violations)).toContain('spec/src/y.ts: fs → Node built-in module');
  });

  test('should find every form of import, export-from, require and dynamic import', () => {
    const source = [
      "import a from 'node:fs';",
      "import type { B } from 'os';",
      "import 'net';",
      "export * from 'child_process';",
      "export { c } from 'yaml';",
      "import d = require('ajv');",
      "const e = require('path');",
      "const f = import('http');",
      "type G = typeof import('crypto');",
      "const h = require.resolve('zlib');",
      '// import x from "in-a-comment";',
      "/* require('in-a-block-comment') */",
      'const s = "import z from \'in-a-string\'";',
    ].join('\n');
    expect(extractSpecifiers('spec/src/all.ts', source)).toEqual([
      'node:fs',
      'os',
      'net',
      'child_process',
      'yaml',
      'ajv',
      'path',
      'http',
      'crypto',
      'zlib',
    ]);
    expect(flagged({ 'spec/src/all.ts': source })).toHaveLength(10);
  });

  test('should let spec/ import only spec/', () => {
    expect(
      flagged({
        'spec/src/a.ts':
          "export * from './b';\nimport { c } from '../schemas/c.json';\nimport { d } from '../../spec/src/d';\n",
        'spec/src/e.ts':
          "import { Device } from '../../model/src/index';\nimport { parse } from 'yaml';\nimport x from '../../package.json';\n",
      }),
    ).toEqual(['spec/src/e.ts: ../../model/src/index', 'spec/src/e.ts: yaml', 'spec/src/e.ts: ../../package.json']);
  });

  test('should keep the model away from Node, packages, adapters and the runner', () => {
    expect(
      flagged({
        'model/src/loop.ts':
          "import { D } from './device/device';\nimport { R } from './driver/driver';\nimport { S } from '../../spec/src/index';\n",
        'model/src/index.ts': "export * from './device/device';\nexport * from './driver/driver';\n",
        'model/src/device/ok.ts':
          "import { enc } from '../codec/codec';\nimport { B } from '../blocks/bitmap';\nimport { P } from './profiles';\n",
        'model/src/driver/bad.ts':
          "import { D } from '../device/device';\nimport { all } from '../index';\nimport { run } from '../loop';\n",
        'model/src/blocks/bad.ts': "import { D } from '../device/device';\n",
        'model/src/other.ts':
          "import { readFileSync } from 'node:fs';\nimport YAML from 'yaml';\nimport { A } from '../../adapters/core/contract';\nimport { r } from '../../conformance/src/runner';\n",
      }),
    ).toEqual([
      'model/src/driver/bad.ts: ../device/device',
      'model/src/driver/bad.ts: ../index',
      'model/src/driver/bad.ts: ../loop',
      'model/src/blocks/bad.ts: ../device/device',
      'model/src/other.ts: node:fs',
      'model/src/other.ts: yaml',
      'model/src/other.ts: ../../adapters/core/contract',
      'model/src/other.ts: ../../conformance/src/runner',
    ]);
  });

  test('should flag clocks, randomness, timers and process in spec/ and model/ but not in comments', () => {
    const violations = check({
      'model/src/device/clock.ts':
        'export const t = Date.now();\nexport const r = Math.random();\nsetTimeout(() => 0, 1);\n',
      'spec/src/env.ts': 'export const e = process.env.X;\nexport const d = new Date(0);\nsetInterval(() => 0, 1);\n',
      'model/src/quiet.ts':
        '// Date.now() and Math.random() are banned\n/* process.exit() */\nexport const ok = device.process(request);\n',
      'conformance/src/runner.ts': 'export const started = Date.now();\n',
    });
    expect(violations.map((v) => `${v.file}: ${v.specifier}`)).toEqual([
      'model/src/device/clock.ts: Date.now',
      'model/src/device/clock.ts: Math.random',
      'model/src/device/clock.ts: setTimeout',
      'spec/src/env.ts: new Date(',
      'spec/src/env.ts: setInterval',
      'spec/src/env.ts: process.',
    ]);
  });

  test('should keep the contract to spec/ and the runner away from concrete adapters', () => {
    expect(
      flagged({
        'adapters/core/contract.ts':
          "import { S } from '../../spec/src/index';\nimport { T } from './types';\nimport { M } from '../../model/src/index';\nimport * as net from 'net';\n",
        'conformance/src/runner.ts':
          "import { A } from '../../adapters/core/contract';\nimport { M } from '../../model/src/index';\nimport { S } from '../../spec/src/index';\nimport { parse } from 'yaml';\nimport * as fs from 'node:fs';\nimport { Q } from '../../adapters/qemu/qemu';\nimport { MA } from '../../adapters/model';\n",
        'conformance/src/cli/main.ts':
          "import { Q } from '../../../adapters/qemu/qemu';\nimport { MA } from '../../../adapters/model/index';\nconst x = require(name);\n",
      }),
    ).toEqual([
      'adapters/core/contract.ts: ../../model/src/index',
      'adapters/core/contract.ts: net',
      'conformance/src/runner.ts: ../../adapters/qemu/qemu',
      'conformance/src/runner.ts: ../../adapters/model',
    ]);
  });

  test('should let concrete adapters use the codec, driver and blocks of the model but not the device or the barrel', () => {
    expect(
      flagged({
        'adapters/model/adapter.ts':
          "import { VirtioMemDevice } from '../../model/src/index';\nimport { A } from '../core/contract';\n",
        'adapters/qemu/qemu.ts':
          "import { enc } from '../../model/src/codec/codec';\nimport { R } from '../../model/src/driver/driver';\nimport { B } from '../../model/src/blocks/bitmap';\nimport { A } from '../core/contract';\nimport { q } from './qtest';\nimport * as net from 'node:net';\nimport { spawn } from 'child_process';\n",
        'adapters/qemu/bad.ts':
          "import { all } from '../../model/src/index';\nimport { D } from '../../model/src/device/device';\nimport { V } from '../vhost-user/peer';\nimport { r } from '../../conformance/src/runner';\nimport YAML from 'yaml';\n",
      }),
    ).toEqual([
      'adapters/qemu/bad.ts: ../../model/src/index',
      'adapters/qemu/bad.ts: ../../model/src/device/device',
      'adapters/qemu/bad.ts: ../vhost-user/peer',
      'adapters/qemu/bad.ts: ../../conformance/src/runner',
      'adapters/qemu/bad.ts: yaml',
    ]);
  });

  test('should let the QEMU adapters reach the QEMU platform only through its door, and the platform no adapter', () => {
    expect(
      flagged({
        'adapters/ssh-guest/src/a.ts':
          "import { Q } from '../../qemu-platform/src/index';\nimport { M } from '../../qemu-platform/src/memory-device';\nimport { P } from '../../qemu/src/qemu-process';\n",
        'adapters/qemu/src/b.ts':
          "import { Q } from '../../qemu-platform/src/index';\nimport { C } from '../../qemu-platform/src/qmp';\nimport { t } from './qtest';\n",
        'adapters/qemu-platform/src/c.ts':
          "import { sleep } from '../../core/src/sleep';\nimport { Q } from './qmp';\nimport { A } from '../../qemu/src/qemu-adapter';\nimport { G } from '../../ssh-guest/src/guest-link';\nimport { c } from '../../../model/src/codec/codec';\n",
        'adapters/vhost-user/src/d.ts': "import { F } from '../../qemu-platform/src/index';\n",
      }),
    ).toEqual([
      'adapters/ssh-guest/src/a.ts: ../../qemu-platform/src/memory-device',
      'adapters/ssh-guest/src/a.ts: ../../qemu/src/qemu-process',
      'adapters/qemu/src/b.ts: ../../qemu-platform/src/qmp',
      'adapters/qemu-platform/src/c.ts: ../../qemu/src/qemu-adapter',
      'adapters/qemu-platform/src/c.ts: ../../ssh-guest/src/guest-link',
      'adapters/qemu-platform/src/c.ts: ../../../model/src/codec/codec',
      'adapters/vhost-user/src/d.ts: ../../qemu-platform/src/index',
    ]);
  });

  test('should flag computed specifiers, imports leaving the repository and files no row covers', () => {
    expect(
      flagged({
        'model/src/dyn.ts':
          "const m = require(name);\nconst n = import(`./${x}`);\nimport { y } from '../../../outside';\n",
        'conformance/scripts/tool.ts': 'export const x = 1;\n',
      }),
    ).toEqual([
      'model/src/dyn.ts: (computed)',
      'model/src/dyn.ts: (computed)',
      'model/src/dyn.ts: ../../../outside',
      'conformance/scripts/tool.ts: (file)',
    ]);
  });

  test('should exempt test files', () => {
    expect(
      check({
        'model/src/device/device.test.ts':
          "import { R } from '../driver/driver';\nimport * as fs from 'fs';\nconst t = Date.now();\n",
        'spec/test/helper.ts': "import * as fs from 'node:fs';\nexport const now = process.hrtime();\n",
        'conformance/test/x.test.ts': "import { Q } from '../../adapters/qemu/qemu';\n",
      }),
    ).toEqual([]);
  });
});
