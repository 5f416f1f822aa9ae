/**
 * One fuzz case: a sequence of operations written as a device vector, loaded and run by the same
 * runner `vmemct run` uses. The runner's oracle is the reference model kept in step with the
 * device: every answer is judged against its set of conforming outcomes, every configuration and
 * notification against what the model allows. A difference is a `fail` finding — an answer
 * outside the conforming set — never merely a different conforming choice.
 */
import type { Adapter, DeviceSession, DeviceSetup } from '../../../adapters/core/src/contract';
import { RESPONSE_CODE_NAMES, formatHex } from '../../../spec/src/index';
import { readResponseType } from '../../../model/src/index';
import { loadVectorValue } from '../loader/load';
import { formatProblem } from '../loader/types';
import { runDeviceVector } from '../runner/device-run';
import { evaluateSetup } from '../runner/setup';
import type { Finding } from '../judge/verdicts';
import { FuzzOperation, operationStep, renderOperation } from './device-operations';
import { StepKnowledge } from './device-knowledge';

/** How a vector file of fuzz operations is headed and named. */
export interface FuzzVectorMeta {
  readonly id: string;
  readonly title: string;
  readonly requirements: readonly string[];
  /** Comment lines at the top of the file (without `# `). */
  readonly header?: readonly string[];
}

/** A bigint as a quoted hex string. */
function hex(value: bigint): string {
  return `'${formatHex(value)}'`;
}

/** The set-up's `plugged` field (with its leading comma), or nothing when no block is plugged at start. */
function pluggedField(setup: DeviceSetup): string {
  const runs = setup.plugged ?? [];
  return runs.length === 0
    ? ''
    : `, plugged: [${runs.map((r) => `{first: ${r.first}, count: ${r.count}}`).join(', ')}]`;
}

/** The steps of `ops`, each memory operation with the expectation the operations before it determine. */
function renderOperations(setup: DeviceSetup, ops: readonly FuzzOperation[]): string[] {
  const memory = new StepKnowledge(setup);
  return ops.flatMap((op) => {
    const lines = renderOperation(op, memory.expectation(op));
    memory.apply(op);
    return lines;
  });
}

/**
 * The value of {@link fuzzVectorText}'s file as YAML parses it (header comments aside), built
 * without text, and the lines of its vector and steps in that text.
 */
export function fuzzVectorValue(
  setup: DeviceSetup,
  ops: readonly FuzzOperation[],
  meta: FuzzVectorMeta,
): { value: unknown; lines: Record<string, number> } {
  const memory = new StepKnowledge(setup);
  const lines: Record<string, number> = {};
  const header = meta.header?.length ?? 0;
  lines['vectors/0'] = header + 3;
  let line = header + 10; // the first step's line: after format, vectors, id, title, requirements, target, tags, setup, steps
  const steps = ops.map((op, i) => {
    const step = operationStep(op, memory.expectation(op));
    memory.apply(op);
    lines[`vectors/0/steps/${i}`] = line;
    line += 'expect' in step ? 2 : 1;
    return step;
  });
  const plugged = setup.plugged ?? [];
  const value = {
    format: 'vmemct-vectors/1',
    vectors: [
      {
        id: meta.id,
        title: meta.title,
        requirements: [...meta.requirements],
        target: 'device',
        tags: ['fuzz'],
        setup: {
          block_size: formatHex(setup.block_size),
          region_size: formatHex(setup.region_size),
          addr: formatHex(setup.addr),
          requested_size: formatHex(setup.requested_size),
          node_id: setup.node_id,
          ...(plugged.length > 0 ? { plugged: plugged.map((r) => ({ first: r.first, count: r.count })) } : {}),
        },
        steps,
      },
    ],
  };
  return { value, lines };
}

/** A complete vector file holding one device vector of `ops` on a device built from `setup`. */
export function fuzzVectorText(setup: DeviceSetup, ops: readonly FuzzOperation[], meta: FuzzVectorMeta): string {
  return [
    ...(meta.header ?? []).map((line) => `# ${line}`),
    'format: vmemct-vectors/1',
    'vectors:',
    `  - id: ${meta.id}`,
    `    title: ${JSON.stringify(meta.title)}`,
    `    requirements: [${meta.requirements.join(', ')}]`,
    '    target: device',
    '    tags: [fuzz]',
    `    setup: {block_size: ${hex(setup.block_size)}, region_size: ${hex(setup.region_size)}, addr: ${hex(setup.addr)}, requested_size: ${hex(setup.requested_size)}, node_id: ${setup.node_id}${pluggedField(setup)}}`,
    ...(ops.length === 0 ? ['    steps: []'] : ['    steps:', ...renderOperations(setup, ops)]),
    '',
  ].join('\n');
}

/** How a fuzz case (never written) is named. */
const CASE_META: FuzzVectorMeta = { id: 'vmem.dev.fuzz.case', title: 'fuzz case', requirements: ['dev.cfg.3'] };

/** The fuzzer could not drive the implementation (it threw, or the runner reported an error). */
export class FuzzAdapterError extends Error {
  override readonly name = 'FuzzAdapterError';
}

/** What one case showed. */
export interface CaseOutcome {
  /** The first finding outside the conforming set, if any. */
  readonly difference?: Finding;
  readonly findings: readonly Finding[];
}

/** Counts completions by response type while the runner drives the session. */
function countingOutcomes(session: DeviceSession, coverage: Map<string, number>): DeviceSession {
  const bump = (key: string): void => {
    coverage.set(key, (coverage.get(key) ?? 0) + 1);
  };
  return new Proxy(session, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (key !== 'submit' || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const completion = await (value as DeviceSession['submit']).apply(target, args as [never]);
        if (completion.kind === 'no-used-entry') bump('outcome:no-used-entry');
        else {
          const code = readResponseType(completion.written.subarray(0, completion.length));
          bump(
            code === undefined ? 'outcome:short-response' : `outcome:${RESPONSE_CODE_NAMES[code] ?? 'unknown-code'}`,
          );
        }
        return completion;
      };
    },
  });
}

/**
 * Runs `ops` as one vector on a fresh device of `adapter`; the first `fail` finding (or, when
 * `strict`, the first `fail` or `non-strict` one, as `vmemct run --strict` counts them) is the
 * difference. Configuration-generation judging is off: it is a transport matter, not the
 * device's virtio-mem behaviour, and a device that breaks it would break it in every case.
 */
export async function runFuzzCase(
  adapter: Adapter,
  setup: DeviceSetup,
  ops: readonly FuzzOperation[],
  coverage?: Map<string, number>,
  strict = false,
): Promise<CaseOutcome> {
  // Built as a value, not text: a YAML parse per case was most of the time a case took on the model.
  const built = fuzzVectorValue(setup, ops, CASE_META);
  const loaded = loadVectorValue('fuzz-case.yaml', built.value, built.lines);
  const vector = loaded.vectors[0];
  if (loaded.problems.length > 0 || !vector)
    throw new Error(`a fuzz case does not load: ${loaded.problems.map(formatProblem).join('; ')}`);
  const evaluated = evaluateSetup(vector);
  if (!evaluated.ok) throw new Error(`a fuzz case's set-up does not evaluate: ${evaluated.reason}`);
  let findings: Finding[];
  let session: DeviceSession;
  try {
    session = await adapter.openDevice(evaluated.setup);
  } catch (e) {
    throw new FuzzAdapterError(`${adapter.info.implementation} could not open a device: ${(e as Error).message}`);
  }
  try {
    const observed = coverage ? countingOutcomes(session, coverage) : session;
    findings = await runDeviceVector(vector, observed, evaluated.setup, { configGeneration: false });
  } catch (e) {
    throw new FuzzAdapterError(`${adapter.info.implementation} failed while being driven: ${(e as Error).message}`);
  } finally {
    await session.close();
  }
  const broken = findings.find((f) => f.verdict === 'error' || f.verdict === 'timeout');
  if (broken)
    throw new FuzzAdapterError(
      `${adapter.info.implementation} could not be judged (step ${broken.step}, ${broken.check}): ${broken.message}`,
    );
  return {
    difference: findings.find((f) => f.verdict === 'fail' || (strict && f.verdict === 'non-strict')),
    findings,
  };
}
