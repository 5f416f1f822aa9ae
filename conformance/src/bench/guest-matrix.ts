/**
 * The live-guest suite as a kernel matrix: which kernels it runs, which driver vectors on each
 * (the whole corpus on the first kernel, a representative subset on the others, or the whole
 * corpus on every kernel), the subset's coverage of the corpus (every device set-up group and every
 * injected-answer kind), and the per-vector timing table with a same-run baseline beside each
 * figure. Used by `adapters/ssh-guest/test/driver-matrix.guest-test.ts` (`npm run test:guest`,
 * `npm run test:guest-matrix`) and `npm run bench:guest-drivers`.
 */
import { FEATURE_MASKS } from '../../../spec/src/index';
import type { Vector } from '../loader/types';
import { evaluateSetup } from '../runner/setup';

/** The kernels the suite runs when `VMEMCT_GUEST_KERNELS` is not set: bookworm's 6.1 and bookworm-backports' 6.12. */
export const DEFAULT_GUEST_KERNELS: readonly string[] = ['6.1', '6.12'];

/** The environment variable naming the kernels (comma-separated, the first gets the whole corpus). */
export const GUEST_KERNELS_VARIABLE = 'VMEMCT_GUEST_KERNELS';

/** The environment variable that asks for the whole corpus on every kernel (`full`). */
export const GUEST_MATRIX_VARIABLE = 'VMEMCT_GUEST_MATRIX';

/** The kernel `vmemct guest build` packs without `--kernel` (Debian bookworm's linux-image-amd64). */
export const BUILD_DEFAULT_KERNEL = '6.1';

/** The subset file, repo-relative: one vector id a line, `#` starts a comment. */
export const KERNEL_SUBSET_FILE = 'adapters/ssh-guest/guest-kernel-subset.txt';

/** A result: the value, or why not. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Which of the driver vectors one kernel runs. */
export type MatrixSelection = 'corpus' | 'subset';

/** One kernel of the matrix and what it runs. */
export interface MatrixKernel {
  /** The kernel series, as `guest build --kernel` names it (`6.1`, `6.12`). */
  readonly kernel: string;
  readonly selection: MatrixSelection;
}

const KERNEL_NAME = /^[0-9]+\.[0-9]+$/;

/**
 * The kernel list of `VMEMCT_GUEST_KERNELS` (undefined or empty: {@link DEFAULT_GUEST_KERNELS}):
 * comma-separated series such as `6.1,6.12`, no repeats.
 */
export function parseGuestKernels(text: string | undefined): Outcome<readonly string[]> {
  if (text === undefined || text.trim() === '') return { ok: true, value: DEFAULT_GUEST_KERNELS };
  const kernels = text.split(',').map((k) => k.trim());
  for (const k of kernels)
    if (!KERNEL_NAME.test(k))
      return { ok: false, reason: `${GUEST_KERNELS_VARIABLE}: '${k}' is not a kernel series such as 6.1 or 6.12` };
  const repeated = kernels.find((k, i) => kernels.indexOf(k) !== i);
  if (repeated) return { ok: false, reason: `${GUEST_KERNELS_VARIABLE}: ${repeated} is named twice` };
  return { ok: true, value: kernels };
}

/**
 * The matrix: the first kernel runs the whole driver corpus, the others the subset; with `full`
 * every kernel runs the whole corpus.
 */
export function matrixPlan(kernels: readonly string[], full: boolean): readonly MatrixKernel[] {
  return kernels.map((kernel, i) => ({ kernel, selection: full || i === 0 ? 'corpus' : 'subset' }));
}

/** `guest build` options that pack `kernel` (none for the kernel it packs by default). */
export function guestBuildKernelArguments(kernel: string): readonly string[] {
  return kernel === BUILD_DEFAULT_KERNEL ? [] : ['--kernel', kernel];
}

/** The expectation file of a kernel, repo-relative. */
export function kernelExpectationsFile(kernel: string): string {
  return `conformance/expectations/linux-${kernel}.yaml`;
}

/** The vector ids of a list file (one a line; `#` comments and blank lines ignored), or the first bad line. */
export function parseVectorList(file: string, text: string): Outcome<readonly string[]> {
  const ids: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const id = lines[i]!.replace(/#.*/, '').trim();
    if (id === '') continue;
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(id))
      return { ok: false, reason: `${file}:${i + 1}: '${id}' is not a vector id` };
    if (ids.includes(id)) return { ok: false, reason: `${file}:${i + 1}: ${id} is listed twice` };
    ids.push(id);
  }
  return { ok: true, value: ids };
}

/**
 * The device set-up group of a vector: what a guest's device is booted with (block size, region
 * size and address, node, unplugged-inaccessible, a requested size above the region; each device's
 * for a multi-device vector), so vectors of one group share a boot. A set-up that does not evaluate
 * is its own group, named by the reason.
 */
export function setupGroupOf(vector: Pick<Vector, 'setup' | 'devices'>): string {
  // A multi-device vector's guest has every device it declares.
  if (vector.devices) return vector.devices.map((d) => `${d.name}: ${setupGroupOf({ setup: d.setup })}`).join('; ');
  const evaluated = evaluateSetup(vector);
  if (!evaluated.ok) return `set-up not evaluated: ${evaluated.reason}`;
  const s = evaluated.setup;
  const inaccessible = ((s.features ?? 0n) & FEATURE_MASKS.UNPLUGGED_INACCESSIBLE) !== 0n;
  return [
    `block ${bytes(s.block_size)} region ${bytes(s.region_size)} at ${bytes(s.addr)} node ${s.node_id}`,
    ...(inaccessible ? ['unplugged-inaccessible'] : []),
    ...(s.requested_size > s.region_size ? ['requested above the region'] : []),
  ].join(' ');
}

/** The injected-answer kinds of a vector's `inject` steps: the response, `with trailer` when one is written. */
export function injectionKindsOf(vector: Vector): readonly string[] {
  const kinds: string[] = [];
  for (const step of vector.steps) {
    const action = step.action as { kind: string; response?: string; trailer?: Uint8Array };
    if (action.kind !== 'inject') continue;
    const kind = `${action.response}${action.trailer ? ' with trailer' : ''}`;
    if (!kinds.includes(kind)) kinds.push(kind);
  }
  return kinds;
}

/** What a subset misses of a corpus: ids it names that no live driver vector has, set-up groups and injection kinds it has no vector of. */
export interface SubsetGaps {
  readonly unknownIds: readonly string[];
  readonly setupGroups: readonly string[];
  readonly injectionKinds: readonly string[];
}

/** The gaps of `subset` over the live (not retired) driver vectors of `corpus`. */
export function subsetGaps(corpus: readonly Vector[], subset: readonly string[]): SubsetGaps {
  const drivers = corpus.filter((v) => v.target === 'driver' && !v.retired);
  const chosen = drivers.filter((v) => subset.includes(v.id));
  const covered = (of: (v: Vector) => readonly string[]): Set<string> => new Set(chosen.flatMap(of));
  const missing = (of: (v: Vector) => readonly string[]): string[] => {
    const have = covered(of);
    return [...new Set(drivers.flatMap(of))].filter((x) => !have.has(x));
  };
  return {
    unknownIds: subset.filter((id) => !drivers.some((v) => v.id === id)),
    setupGroups: missing((v) => [setupGroupOf(v)]),
    injectionKinds: missing(injectionKindsOf),
  };
}

/** One vector's result in a run's JSON report (the fields the timing table reads). */
export interface TimedResult {
  readonly id: string;
  readonly verdict: string;
  readonly durationMs: number;
}

/** A row of the timing table: a vector on the guest and the same vector in the baseline run. */
export interface TimingRow {
  readonly id: string;
  readonly group: string;
  readonly verdict: string;
  readonly ms: number;
  readonly baselineMs: number | undefined;
}

/** The rows of the timing table: each guest result with its set-up group and the baseline's time for the same vector. */
export function timingRows(
  guest: readonly TimedResult[],
  baseline: readonly TimedResult[],
  groupOf: (id: string) => string,
): readonly TimingRow[] {
  const base = new Map(baseline.map((r) => [r.id, r.durationMs]));
  return guest.map((r) => ({
    id: r.id,
    group: groupOf(r.id),
    verdict: r.verdict,
    ms: r.durationMs,
    baselineMs: base.get(r.id),
  }));
}

/** Totals of one set-up group. */
export interface GroupTotal {
  readonly group: string;
  readonly vectors: number;
  /** Vectors that ran (any verdict but unsupported). */
  readonly ran: number;
  readonly ms: number;
  readonly baselineMs: number;
}

/** Per-group totals, in the order groups first appear. */
export function groupTotals(rows: readonly TimingRow[]): readonly GroupTotal[] {
  const totals = new Map<string, { vectors: number; ran: number; ms: number; baselineMs: number }>();
  for (const r of rows) {
    const t = totals.get(r.group) ?? { vectors: 0, ran: 0, ms: 0, baselineMs: 0 };
    t.vectors++;
    if (r.verdict !== 'unsupported') t.ran++;
    t.ms += r.ms;
    t.baselineMs += r.baselineMs ?? 0;
    totals.set(r.group, t);
  }
  return [...totals].map(([group, t]) => ({ group, ...t }));
}

/**
 * The table as text: a line per vector (id, verdict, ms on the guest, ms of the baseline), then a
 * line per set-up group (vectors, how many ran, total ms beside the baseline's total) and the sum.
 */
export function formatTimingTable(title: string, baselineName: string, rows: readonly TimingRow[]): string {
  const idWidth = Math.max(6, ...rows.map((r) => r.id.length));
  const ms = (n: number | undefined): string => (n === undefined ? '—' : n < 10 ? n.toFixed(1) : n.toFixed(0));
  const lines = [
    title,
    `${'vector'.padEnd(idWidth)}  ${'verdict'.padEnd(11)} ${'ms'.padStart(9)}  ${baselineName} ms`,
    ...rows.map(
      (r) =>
        `${r.id.padEnd(idWidth)}  ${r.verdict.padEnd(11)} ${ms(r.ms).padStart(9)}  ${ms(r.baselineMs).padStart(8)}`,
    ),
    '',
    `per set-up group: vectors, ran, total ms, ${baselineName} total ms`,
  ];
  const totals = groupTotals(rows);
  for (const t of totals)
    lines.push(
      `  ${t.group}: ${t.vectors} vectors, ${t.ran} ran, ${ms(t.ms)} ms (${baselineName} ${ms(t.baselineMs)} ms)`,
    );
  const sum = (f: (t: GroupTotal) => number): number => totals.reduce((a, t) => a + f(t), 0);
  lines.push(
    `  all: ${sum((t) => t.vectors)} vectors, ${sum((t) => t.ran)} ran, ${ms(sum((t) => t.ms))} ms (${baselineName} ${ms(sum((t) => t.baselineMs))} ms)`,
  );
  return `${lines.join('\n')}\n`;
}

const UNITS: readonly [bigint, string][] = [
  [1n << 40n, 'TiB'],
  [1n << 30n, 'GiB'],
  [1n << 20n, 'MiB'],
  [1n << 10n, 'KiB'],
];

/** A byte count in the largest binary unit that divides it (`4GiB`, `2MiB`, `123`). */
function bytes(n: bigint): string {
  for (const [size, unit] of UNITS) if (n !== 0n && n % size === 0n) return `${n / size}${unit}`;
  return String(n);
}
