/**
 * Build step: parses and validates the shipped corpus once and writes `dist/vector-cache.json`,
 * so `vmemct run` starts without parsing YAML or compiling schemas. Usage:
 * `node dist/conformance/src/loader/build-cache.js ROOT`. Files with problems are left out of the
 * cache (the run then loads them from YAML and reports the problems itself). Files are keyed
 * relative to ROOT, so the cache holds wherever the package is installed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildVectorCache, portableVectorCache } from './load';

const root = path.resolve(process.argv[2] ?? '.');
const { cache } = buildVectorCache([path.join(root, 'conformance', 'vectors')]);
fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
fs.writeFileSync(path.join(root, 'dist', 'vector-cache.json'), JSON.stringify(portableVectorCache(cache, root)));
