#!/usr/bin/env node
/*
 * Builds the vhost-user native helper (vhostfd.node) with the node-gyp that npm bundles, against
 * the headers of the Node that runs this script (no download: works offline). Needs a C compiler,
 * make and python3. Only the vhost-user adapter and back-end use the result.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const prefix = path.resolve(path.dirname(process.execPath), '..');
const headers = path.join(prefix, 'include', 'node', 'node_api.h');
const candidates = [
  process.env.npm_config_node_gyp,
  path.join(
    path.dirname(process.execPath),
    '..',
    'lib',
    'node_modules',
    'npm',
    'node_modules',
    'node-gyp',
    'bin',
    'node-gyp.js',
  ),
].filter(Boolean);
const nodeGyp = candidates.find((c) => fs.existsSync(c));
if (!nodeGyp) {
  console.error('vhostfd: node-gyp not found (it comes with npm); set npm_config_node_gyp to its node-gyp.js');
  process.exit(2);
}
const args = [nodeGyp, 'rebuild', '--silent', '-C', __dirname];
if (fs.existsSync(headers)) args.push(`--nodedir=${prefix}`);
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    'vhostfd: the build failed; it needs a C compiler, make and python3 (Debian: apt-get install g++ make python3)',
  );
  process.exit(result.status ?? 2);
}
