/**
 * `vmemct qemu expectations`: the shipped expectation file for the QEMU that will run. The QEMU
 * is started with `--version`; its major.minor series picks `conformance/expectations/qemu-SERIES.yaml`
 * among the files the package ships, so a CI job that installs whatever QEMU its distribution
 * carries is judged against the known results of that version:
 *
 *     npx vmemct run --adapter qemu --target device --expectations "$(npx vmemct qemu expectations)"
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A shipped QEMU expectation file is named `qemu-MAJOR.MINOR.yaml`. */
const SHIPPED_FILE = /^qemu-([0-9]+)\.([0-9]+)\.yaml$/;

/** One shipped expectation file and the QEMU series it describes. */
export interface ShippedQemuExpectations {
  /** `7.2`, `10.0`. */
  readonly series: string;
  /** Absolute path of the file. */
  readonly file: string;
}

/** The QEMU expectation files in `dir` (the package's `conformance/expectations`), oldest series first. */
export function shippedQemuExpectations(dir: string): ShippedQemuExpectations[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((name) => ({ name, m: SHIPPED_FILE.exec(name) }))
    .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
    .map(({ name, m }) => ({ major: Number(m[1]), minor: Number(m[2]), file: path.join(dir, name) }))
    .sort((a, b) => a.major - b.major || a.minor - b.minor)
    .map((x) => ({ series: `${x.major}.${x.minor}`, file: x.file }));
}

/** The series of a QEMU version: `7.2.22` → `7.2`. */
export function qemuSeries(version: string): string {
  return version.split('.').slice(0, 2).join('.');
}

/** The expectation file of a QEMU version, or why there is none. */
export type ExpectationsChoice =
  | { readonly ok: true; readonly series: string; readonly file: string }
  | { readonly ok: false; readonly series: string; readonly known: readonly string[] };

/** Picks the shipped file whose series is the version's major.minor. */
export function expectationsForVersion(
  version: string,
  shipped: readonly ShippedQemuExpectations[],
): ExpectationsChoice {
  const series = qemuSeries(version);
  const match = shipped.find((s) => s.series === series);
  return match ? { ok: true, series, file: match.file } : { ok: false, series, known: shipped.map((s) => s.series) };
}
