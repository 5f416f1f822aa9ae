/**
 * The `vmemct` executable for tests that start it as a child process: every source file
 * transpiled (no type check: tsc checks the tree) into a scratch tree, not the repository's
 * dist/, so suites running beside each other never read a half-written build.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '../../..');
const SOURCE_DIRS = ['spec', 'model', 'adapters', 'conformance'];

function sources(dir: string, out: string[]): string[] {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'test' && entry.name !== 'dist') sources(full, out);
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts'))
      out.push(full);
  }
  return out;
}

/** A compiled tree with `conformance/bin/vmemct.js`; returns the executable and a clean-up. */
export function transpiledCli(): { readonly bin: string; readonly remove: () => void } {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-cli-'));
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    esModuleInterop: true,
    resolveJsonModule: true,
  };
  for (const dir of SOURCE_DIRS)
    for (const file of sources(path.join(ROOT, dir), [])) {
      const js = ts.transpileModule(fs.readFileSync(file, 'utf8'), { compilerOptions: options, fileName: file });
      const target = path.join(scratch, 'dist', path.relative(ROOT, file)).replace(/\.ts$/, '.js');
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, js.outputText);
    }
  fs.writeFileSync(path.join(scratch, 'package.json'), fs.readFileSync(path.join(ROOT, 'package.json')));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(scratch, 'node_modules'));
  const bin = path.join(scratch, 'conformance/bin/vmemct.js');
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'conformance/bin/vmemct.js'), bin);
  return { bin, remove: () => fs.rmSync(scratch, { recursive: true, force: true }) };
}
