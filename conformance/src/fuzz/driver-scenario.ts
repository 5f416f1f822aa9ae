/**
 * Driver fuzzing's scenarios: a device set-up and a list of host-side steps (start, settle,
 * resize, injected answers, system reset, suspend), generated from a seed, and written as a
 * driver vector. The expectations of the vector are derived from the steps alone
 * ({@link expectationsOf}): only what every conforming driver shows in that scenario, so a
 * scenario shrunk by dropping steps gets the expectations that still hold.
 */
import type { Capability } from '../../../adapters/core/src/contract';
import type { FeatureName } from '../../../spec/src/index';

/** Block sizes the generator picks from, in MiB. */
export const FUZZ_BLOCK_SIZES_MIB = [2, 4, 128] as const;

/** Region sizes in blocks: small, medium, and one beyond the 65,535 blocks one request can address. */
export const FUZZ_REGION_BLOCKS = [4, 16, 100, 1024, 70_000] as const;

/** Request types an injection may target. */
export const FUZZ_REQUEST_TYPES = ['PLUG', 'UNPLUG', 'UNPLUG_ALL', 'STATE'] as const;

/** One request type name. */
export type FuzzRequestType = (typeof FUZZ_REQUEST_TYPES)[number];

/** The device a scenario's driver is attached to. */
export interface DriverFuzzSetup {
  readonly blockSizeMiB: number;
  readonly regionBlocks: number;
  readonly requestedBlocks: number;
  /** Runs plugged when the driver starts (needs `initial-plugged`). */
  readonly plugged: readonly { readonly first: number; readonly count: number }[];
  /** Offered features; undefined leaves them to the implementation. */
  readonly features?: readonly FeatureName[];
  readonly nodeId: number;
  /** Garbage in the configuration's padding bytes. */
  readonly configPadding?: readonly number[];
}

/** One host-side step of a scenario (the driver vector step it is written as). */
export type DriverFuzzStep =
  | { readonly kind: 'start' }
  | { readonly kind: 'settle'; readonly maxRequests?: number; readonly timeoutMs?: number }
  | { readonly kind: 'resize'; readonly blocks: number }
  | {
      readonly kind: 'inject';
      readonly response: 'ACK' | 'NACK' | 'BUSY' | 'ERROR';
      readonly count: number;
      readonly types?: readonly FuzzRequestType[];
      /** Bytes after the response type (ACK: garbage a driver must ignore). */
      readonly trailer?: readonly number[];
    }
  | { readonly kind: 'system-reset' }
  | { readonly kind: 'suspend' };

/** A set-up and its steps. */
export interface DriverScenario {
  readonly setup: DriverFuzzSetup;
  readonly steps: readonly DriverFuzzStep[];
}

/** The least time a driver lets pass after BUSY before asking again (the corpus's floor, drv.suite.2). */
export const RETRY_DELAY_FLOOR_MS = 10;

/** What a step's vector states, as YAML flow-mapping entries (`converged: true`, …). */
export type StepExpectation = readonly string[];

/**
 * The expectations of each step, derived from the scenario: after an unlimited settle a started
 * driver has gone quiet and converged (drv.op.8) unless a NACK or ERROR was injected (a driver may
 * then fall short or give up, drv.op.10); once BUSY was injected every settle keeps the
 * retry-delay floor (drv.suite.2), and once NACK was injected no PLUG is repeated without a
 * configuration change (drv.suite.3). Everything else the runner checks on every driver vector.
 */
export function expectationsOf(scenario: DriverScenario): StepExpectation[] {
  let started = false;
  let mayFallShort = false;
  let busy = false;
  let nack = false;
  return scenario.steps.map((step) => {
    switch (step.kind) {
      case 'start':
        started = true;
        return [];
      case 'inject':
        if (step.response === 'NACK' || step.response === 'ERROR') mayFallShort = true;
        if (step.response === 'NACK') nack = true;
        if (step.response === 'BUSY') busy = true;
        return [];
      case 'settle': {
        if (!started) return [];
        const out: string[] = [];
        const unlimited = step.maxRequests === undefined && step.timeoutMs === undefined;
        if (unlimited && !mayFallShort) out.push('settled: true', 'converged: true');
        if (busy) out.push(`retry_delay: {min_ms: ${RETRY_DELAY_FLOOR_MS}}`);
        if (nack) out.push('nack_repeats: {max: 0}');
        return out;
      }
      default:
        return [];
    }
  });
}

/** The requirement IDs a scenario's expectations rest on (with those of the runner's own checks). */
export function requirementsOf(scenario: DriverScenario): string[] {
  const ids = new Set<string>(['drv.op.8', 'drv.op.9']);
  for (const e of expectationsOf(scenario).flat()) {
    if (e.startsWith('retry_delay')) ids.add('drv.suite.2');
    if (e.startsWith('nack_repeats')) ids.add('drv.suite.3');
  }
  return [...ids];
}

// ------------------------------------------------------------------ generation

/** A seeded source of choices. */
export interface Chooser {
  /** A number in [0, 1). */
  readonly random: () => number;
}

function pick<T>(c: Chooser, items: readonly T[]): T {
  return items[Math.floor(c.random() * items.length)]!;
}

function below(c: Chooser, n: number): number {
  return Math.floor(c.random() * n);
}

function chance(c: Chooser, p: number): boolean {
  return c.random() < p;
}

/** A block count near a boundary: 0, 1, the region end, one short of it, around 65,535, the current target ± 1, or any. */
function boundaryBlocks(c: Chooser, region: number, current: number): number {
  const candidates = [0, 1, region, region - 1, current + 1, current - 1, 65_535, 65_536, below(c, region + 1)];
  const n = pick(c, candidates);
  return Math.max(0, Math.min(region, n));
}

function randomBytes(c: Chooser, n: number): number[] {
  return Array.from({ length: n }, () => (chance(c, 0.3) ? pick(c, [0x00, 0xff]) : below(c, 256)));
}

function generateSetup(c: Chooser, can: ReadonlySet<Capability>): DriverFuzzSetup {
  const regionBlocks = chance(c, 0.08) ? 70_000 : pick(c, FUZZ_REGION_BLOCKS.slice(0, 4));
  const plugged: { first: number; count: number }[] = [];
  if (can.has('initial-plugged') && chance(c, 0.3)) {
    let at = below(c, Math.min(regionBlocks, 8));
    for (let runs = 1 + below(c, 3); runs > 0 && at < regionBlocks; runs--) {
      const count = 1 + below(c, Math.min(regionBlocks - at, 6));
      plugged.push({ first: at, count });
      at += count + 1 + below(c, 4);
    }
  }
  const features: FeatureName[] | undefined = chance(c, 0.5)
    ? [
        'VERSION_1',
        ...(['ACPI_PXM', 'UNPLUGGED_INACCESSIBLE', 'PERSISTENT_SUSPEND'] as const).filter(() => chance(c, 0.5)),
      ]
    : undefined;
  return {
    blockSizeMiB: pick(c, FUZZ_BLOCK_SIZES_MIB),
    regionBlocks,
    requestedBlocks: chance(c, 0.5) ? 0 : boundaryBlocks(c, regionBlocks, 0),
    plugged,
    features,
    nodeId: chance(c, 0.2) ? pick(c, [1, 7, 65_535]) : 0,
    configPadding: chance(c, 0.25) ? randomBytes(c, 6) : undefined,
  };
}

function generateInject(c: Chooser): DriverFuzzStep {
  const response = pick(c, ['ACK', 'ACK', 'BUSY', 'BUSY', 'BUSY', 'NACK', 'ERROR'] as const);
  const pool: readonly FuzzRequestType[] =
    response === 'ACK' ? ['PLUG', 'UNPLUG', 'UNPLUG_ALL'] : response === 'NACK' ? ['PLUG'] : FUZZ_REQUEST_TYPES;
  const types = chance(c, 0.3) ? undefined : pool.filter(() => chance(c, 0.5));
  return {
    kind: 'inject',
    response,
    count: response === 'ACK' ? 1 + below(c, 1000) : 1 + below(c, 5),
    types: types && types.length > 0 ? types : response === 'ACK' ? ['PLUG'] : undefined,
    trailer: response === 'ACK' || chance(c, 0.4) ? randomBytes(c, 8) : undefined,
  };
}

/** A settle: mostly unlimited, sometimes bounded by a few requests or by a time (virtual on the model). */
function generateSettle(c: Chooser): DriverFuzzStep {
  const r = c.random();
  if (r < 0.15) return { kind: 'settle', maxRequests: 1 + below(c, 8) };
  if (r < 0.22) return { kind: 'settle', timeoutMs: pick(c, [1, 100, 60_000, 3_600_000]) };
  return { kind: 'settle' };
}

/**
 * A scenario of `3 + up to 14` steps from `c`, using only the host actions the adapter can
 * perform (`can`): the driver starts, then host actions alternate with settles.
 */
export function generateScenario(c: Chooser, can: ReadonlySet<Capability>): DriverScenario {
  const setup = generateSetup(c, can);
  const steps: DriverFuzzStep[] = [{ kind: 'start' }];
  let target = setup.requestedBlocks;
  const actions: (() => DriverFuzzStep)[] = [];
  if (can.has('host-resize'))
    actions.push(() => {
      target = boundaryBlocks(c, setup.regionBlocks, target);
      return { kind: 'resize', blocks: target };
    });
  if (can.has('inject-responses')) actions.push(() => generateInject(c));
  if (can.has('system-reset')) actions.push(() => ({ kind: 'system-reset' }));
  if (can.has('suspend')) actions.push(() => ({ kind: 'suspend' }));
  const length = 2 + below(c, 14);
  while (steps.length < length) {
    if (actions.length > 0 && chance(c, 0.6)) steps.push(pick(c, actions)());
    else steps.push(generateSettle(c));
  }
  steps.push({ kind: 'settle' });
  return { setup, steps };
}

// ------------------------------------------------------------------ the vector file

function hex(bytes: readonly number[]): string {
  return `"${bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ')}"`;
}

function blocksExpr(n: number): string {
  return n === 0 ? '0' : `${n} * block_size`;
}

function setupYaml(s: DriverFuzzSetup): string {
  const fields = [
    `block_size: ${s.blockSizeMiB}MiB`,
    `region_size: ${blocksExpr(s.regionBlocks)}`,
    'addr: 4GiB',
    `requested_size: ${blocksExpr(s.requestedBlocks)}`,
  ];
  if (s.plugged.length > 0)
    fields.push(`plugged: [${s.plugged.map((r) => `{first: ${r.first}, count: ${r.count}}`).join(', ')}]`);
  if (s.features) fields.push(`features: [${s.features.join(', ')}]`);
  if (s.nodeId !== 0) fields.push(`node_id: ${s.nodeId}`);
  if (s.configPadding) fields.push(`config_padding: ${hex(s.configPadding)}`);
  return `{${fields.join(', ')}}`;
}

function stepYaml(step: DriverFuzzStep): string {
  switch (step.kind) {
    case 'start':
      return 'start: true';
    case 'settle': {
      const limits = [
        ...(step.maxRequests === undefined ? [] : [`max_requests: ${step.maxRequests}`]),
        ...(step.timeoutMs === undefined ? [] : [`timeout_ms: ${step.timeoutMs}`]),
      ];
      return limits.length === 0 ? 'settle: true' : `settle: {${limits.join(', ')}}`;
    }
    case 'resize':
      return `resize: ${blocksExpr(step.blocks)}`;
    case 'system-reset':
      return 'system_reset: true';
    case 'suspend':
      return 'suspend: true';
    case 'inject': {
      const fields = [`response: ${step.response}`, `count: ${step.count}`];
      if (step.types) fields.push(`types: [${step.types.join(', ')}]`);
      if (step.trailer) fields.push(`trailer: ${hex(step.trailer)}`);
      return `inject: {${fields.join(', ')}}`;
    }
  }
}

/** What the vector file says about itself besides the scenario. */
export interface VectorHeader {
  readonly id: string;
  readonly title: string;
  readonly requirements: readonly string[];
  readonly description?: string;
}

/** The scenario as a complete driver vector file (one vector), with its derived expectations. */
export function scenarioYaml(scenario: DriverScenario, header: VectorHeader): string {
  const expectations = expectationsOf(scenario);
  const lines = [
    'format: vmemct-vectors/1',
    'vectors:',
    `  - id: ${header.id}`,
    `    title: ${JSON.stringify(header.title)}`,
    `    requirements: [${header.requirements.join(', ')}]`,
    '    target: driver',
    '    tags: [fuzz]',
  ];
  if (header.description) lines.push(`    description: ${JSON.stringify(header.description)}`);
  lines.push(`    setup: ${setupYaml(scenario.setup)}`, '    steps:');
  scenario.steps.forEach((step, i) => {
    lines.push(`      - ${stepYaml(step)}`);
    const e = expectations[i]!;
    if (e.length > 0) lines.push(`        expect: {${e.join(', ')}}`);
  });
  return `${lines.join('\n')}\n`;
}
