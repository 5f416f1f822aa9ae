#!/usr/bin/env node
'use strict';
// Entry point of the `vmemct` command: runs the compiled CLI from dist/ (built by `npm ci`).
let cli;
try {
  cli = require('../../dist/conformance/src/cli/main.js');
} catch (error) {
  if (error && error.code === 'MODULE_NOT_FOUND') {
    process.stderr.write(
      'vmemct: the project is not built; run `npm ci` (or `npm run build`) in the repository first\n',
    );
    process.exit(2);
  }
  throw error;
}
// A reader that goes away early (`vmemct list | head`) ends the output, not in a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error && error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}
cli.main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
