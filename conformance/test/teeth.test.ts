/**
 * "The suite has teeth": deliberately broken variants of the model device (and of the reference
 * driver) are run against the whole vector corpus, and every one of them must be caught — at
 * least one vector must end unexpected. The unmodified model (spec and qemu profiles) is the
 * control: it must pass the same corpus cleanly.
 *
 * The corpus is loaded from conformance/vectors/ at run time, so the matrix follows the corpus as
 * it grows. Set VMEMCT_TEETH_REPORT=<file> to write the mutant → killer-vectors matrix as JSON.
 *
 * Mutants only use the device's public surface: they override public methods (processChain,
 * setRequestedSize, deviceReset, readConfigBytes, writeMemory, notificationCount, …) or wrap
 * their results, or run the model with a profile tweaked into a nonconforming one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createModelAdapter, ModelAdapterOptions } from '../../adapters/model/src/model-adapter';
import {
  DescriptorChain,
  DeviceParams,
  DeviceProfile,
  DriverAction,
  HostResizeResult,
  InvariantViolation,
  MemoryAccessResult,
  ProcessResult,
  ReferenceDriver,
  RequestEvaluation,
  SPEC_PROFILE,
  VirtioMemConfig,
  VirtioMemDevice,
  VirtioMemRequest,
  decodeConfig,
  decodeRequest,
  encodeConfig,
  encodeRequest,
  encodeResponse,
  findDeviceProfile,
  readResponseType,
} from '../../model/src/index';
import {
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VIRTIO_MEM_RESP_ACK,
  VIRTIO_MEM_RESP_ERROR,
  VIRTIO_MEM_RESP_NACK,
  VIRTIO_MEM_STATE_MIXED,
  VIRTIO_MEM_STATE_PLUGGED,
  VirtioMemResponseLayout,
} from '../../spec/src/index';
import { RunResult, runVectors, selectVectors } from '../src/runner/run';
import { loadVectors } from '../src/loader/load';
import { formatProblem, Vector } from '../src/loader/types';

const VECTORS_DIR = path.join(__dirname, '..', 'vectors');

// ------------------------------------------------------------------------------------------------
// helpers for mutants

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The request a chain carries, when it has 24 readable bytes. */
function requestOf(chain: DescriptorChain): VirtioMemRequest | undefined {
  const decoded = decodeRequest(concat(chain.readable));
  return decoded.ok ? decoded.value : undefined;
}

/** A processed chain answered with `type` (and `state`), without touching the device. */
function answered(evaluation: RequestEvaluation, type: number, state = 0): ProcessResult {
  return {
    ...evaluation,
    used: { length: VirtioMemResponseLayout.size, written: encodeResponse({ type, state }) },
    response: { type, padding: new Uint8Array(6), state },
    notified: false,
    violations: [],
  };
}

function wasAcked(result: ProcessResult): boolean {
  return (
    result.used !== null &&
    readResponseType(result.used.written.subarray(0, result.used.length)) === VIRTIO_MEM_RESP_ACK
  );
}

function roundUp(value: bigint, unit: bigint): bigint {
  return ((value + unit - 1n) / unit) * unit;
}

function chainOf(request: Partial<VirtioMemRequest>): DescriptorChain {
  return { readable: [encodeRequest(request)], writableSizes: [VirtioMemResponseLayout.size] };
}

/** A device whose configuration, as the driver reads it, is passed through `view`. */
abstract class ConfigViewDevice extends VirtioMemDevice {
  protected abstract view(config: VirtioMemConfig): VirtioMemConfig;
  override readConfigBytes(): Uint8Array {
    return encodeConfig(this.view(this.readConfig()));
  }
}

// ------------------------------------------------------------------------------------------------
// device mutants

/** dev.plug.3: a PLUG at an address that is not a multiple of block_size is acknowledged (the block containing it is plugged). */
class AcksMisalignedPlug extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    const bs = this.readConfig().block_size;
    if (r && r.type === VIRTIO_MEM_REQ_PLUG && r.addr % bs !== 0n) {
      return super.processChain({
        readable: [encodeRequest({ ...r, addr: r.addr - (r.addr % bs) })],
        writableSizes: chain.writableSizes,
      });
    }
    return super.processChain(chain);
  }
}

/** dev.plug.7 / dev.cfg.3: plugged_size is not raised by an acknowledged PLUG. */
class ForgetsPluggedSizeOnPlug extends ConfigViewDevice {
  private hidden = 0n;
  override processChain(chain: DescriptorChain): ProcessResult {
    const before = this.readConfig().plugged_size;
    const result = super.processChain(chain);
    if (requestOf(chain)?.type === VIRTIO_MEM_REQ_PLUG && wasAcked(result))
      this.hidden += this.readConfig().plugged_size - before;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    const shown = c.plugged_size - this.hidden;
    return { ...c, plugged_size: shown > 0n ? shown : 0n };
  }
}

/** dev.cfg.8: usable_region_size shrinks with requested_size on a host resize down. */
class ShrinksUsableOnResizeDown extends ConfigViewDevice {
  private shrunk?: bigint;
  override setRequestedSize(size: bigint): HostResizeResult {
    const before = this.readConfig();
    const r = super.setRequestedSize(size);
    if (r.ok) this.shrunk = size < before.requested_size ? roundUp(size, before.block_size) : undefined;
    return r;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return this.shrunk !== undefined && this.shrunk < c.usable_region_size
      ? { ...c, usable_region_size: this.shrunk }
      : c;
  }
}

/** dev.init.2: a device reset (of a device that was in use) unplugs every block. */
class DeviceResetUnplugsAll extends VirtioMemDevice {
  override deviceReset(): InvariantViolation[] {
    const live = this.deviceStatus !== 0;
    const violations = super.deviceReset();
    if (live && this.pluggedRuns().length > 0) super.processChain(chainOf({ type: VIRTIO_MEM_REQ_UNPLUG_ALL }));
    return violations;
  }
}

/** dev.cfg.9: a host resize changes requested_size (and usable_region_size) without a config-change notification. */
class SilentResize extends VirtioMemDevice {
  private swallowed = 0;
  override setRequestedSize(size: bigint): HostResizeResult {
    const before = super.notificationCount;
    const r = super.setRequestedSize(size);
    this.swallowed += super.notificationCount - before;
    return r.ok ? { ...r, notified: false } : r;
  }
  override get notificationCount(): number {
    return super.notificationCount - this.swallowed;
  }
}

/** dev.plug.3 / dev.unplug.3: nb_blocks = 0 is answered NACK instead of ERROR. */
class NackForZeroBlocks extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const r = requestOf(chain);
    if (
      r &&
      (r.type === VIRTIO_MEM_REQ_PLUG || r.type === VIRTIO_MEM_REQ_UNPLUG) &&
      r.nb_blocks === 0 &&
      !this.needsReset
    ) {
      return answered(this.evaluate(chain), VIRTIO_MEM_RESP_NACK);
    }
    return super.processChain(chain);
  }
}

/** dev.unplug.6: a valid UNPLUG of plugged blocks is answered ERROR (and nothing is unplugged). */
class ErrorForValidUnplug extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    const c = evaluation.chosen;
    if (evaluation.request?.type === VIRTIO_MEM_REQ_UNPLUG && c.kind === 'response' && c.response === 'ACK')
      return answered(evaluation, VIRTIO_MEM_RESP_ERROR);
    return super.processChain(chain);
  }
}

/** dev.state.7: STATE over a mix of plugged and unplugged blocks reports PLUGGED. */
class StateSaysPluggedForMixed extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    if (
      result.request?.type === VIRTIO_MEM_REQ_STATE &&
      result.response &&
      result.response.state === VIRTIO_MEM_STATE_MIXED &&
      wasAcked(result)
    ) {
      return answered(result, VIRTIO_MEM_RESP_ACK, VIRTIO_MEM_STATE_PLUGGED);
    }
    return result;
  }
}

/** dev.plug.4: a PLUG covering already plugged blocks is acknowledged (the unplugged ones among them get plugged). */
class AcksPlugOfPluggedBlocks extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    const c = evaluation.chosen;
    const r = evaluation.request;
    if (
      r &&
      r.type === VIRTIO_MEM_REQ_PLUG &&
      c.kind === 'response' &&
      c.response === 'ERROR' &&
      c.requirements.includes('dev.plug.4')
    ) {
      const cfg = this.readConfig();
      const first = Number((r.addr - cfg.addr) / cfg.block_size);
      for (let i = first; i < first + r.nb_blocks; i++) {
        if (!this.isPlugged(i))
          super.processChain(
            chainOf({ type: VIRTIO_MEM_REQ_PLUG, addr: cfg.addr + BigInt(i) * cfg.block_size, nb_blocks: 1 }),
          );
      }
      return answered(evaluation, VIRTIO_MEM_RESP_ACK);
    }
    return super.processChain(chain);
  }
}

/** dev.unplugall.5: an acknowledged UNPLUG ALL leaves plugged_size at its old value. */
class UnplugAllKeepsPluggedSize extends ConfigViewDevice {
  private ghost = 0n;
  override processChain(chain: DescriptorChain): ProcessResult {
    const before = this.readConfig().plugged_size;
    const result = super.processChain(chain);
    if (requestOf(chain)?.type === VIRTIO_MEM_REQ_UNPLUG_ALL && wasAcked(result)) this.ghost += before;
    return result;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return { ...c, plugged_size: c.plugged_size + this.ghost };
  }
}

/** dev.cfg.10 (SHOULD NOT): every acknowledged PLUG raises a config-change notification. */
class NotifiesOnEveryPlug extends VirtioMemDevice {
  private extra = 0;
  override processChain(chain: DescriptorChain): ProcessResult {
    const result = super.processChain(chain);
    if (result.request?.type === VIRTIO_MEM_REQ_PLUG && wasAcked(result)) {
      this.extra++;
      return { ...result, notified: true };
    }
    return result;
  }
  override get notificationCount(): number {
    return super.notificationCount + this.extra;
  }
}

/** dev.cfg.5: block_size reads as 1.5 × the real block size (not a power of two). */
class BlockSizeNotPowerOfTwo extends ConfigViewDevice {
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return { ...c, block_size: (c.block_size * 3n) / 2n };
  }
}

/** dev.plug.2 / dev.unplug.2 / dev.state.2 …: nonzero padding in a request is answered ERROR instead of being ignored. */
class ErrorOnGarbagePadding extends VirtioMemDevice {
  override processChain(chain: DescriptorChain): ProcessResult {
    const evaluation = this.evaluate(chain);
    if (
      evaluation.request &&
      evaluation.request.type <= VIRTIO_MEM_REQ_STATE &&
      evaluation.nonzeroPadding.length > 0 &&
      !this.needsReset
    ) {
      return answered(evaluation, VIRTIO_MEM_RESP_ERROR);
    }
    return super.processChain(chain);
  }
}

/** dev.cfg.4: a host resize up raises requested_size but usable_region_size stays where it was. */
class UsableBelowRequestedAfterResize extends ConfigViewDevice {
  private frozen?: bigint;
  override setRequestedSize(size: bigint): HostResizeResult {
    const usableBefore = this.readConfig().usable_region_size;
    const r = super.setRequestedSize(size);
    if (r.ok && r.usableAfter > usableBefore && this.frozen === undefined) this.frozen = usableBefore;
    return r;
  }
  protected view(c: VirtioMemConfig): VirtioMemConfig {
    return this.frozen !== undefined ? { ...c, usable_region_size: this.frozen } : c;
  }
}

/** dev.init.3: a device reset (of a device in use) scrambles the contents of plugged memory. */
class DeviceResetAltersPluggedMemory extends VirtioMemDevice {
  private readonly written: { addr: bigint; length: number }[] = [];
  override writeMemory(addr: bigint, data: Uint8Array): MemoryAccessResult {
    const r = super.writeMemory(addr, data);
    if (r.ok && data.length > 0) this.written.push({ addr, length: data.length });
    return r;
  }
  override deviceReset(): InvariantViolation[] {
    const live = this.deviceStatus !== 0;
    const violations = super.deviceReset();
    if (!live) return violations;
    const c = this.readConfig();
    const spots = [...this.written];
    // Also the start of every plugged block (the first 4096 plugged blocks at most).
    let budget = 4096;
    for (const run of this.pluggedRuns()) {
      for (let b = run.first; b < run.first + run.count && budget > 0; b++, budget--) {
        spots.push({
          addr: c.addr + BigInt(b) * c.block_size,
          length: Number(c.block_size < 64n ? c.block_size : 64n),
        });
      }
    }
    for (const s of spots) {
      const r = super.readMemory(s.addr, s.length);
      if (r.ok)
        super.writeMemory(
          s.addr,
          r.data.map((byte) => byte ^ 0xa5),
        );
    }
    return violations;
  }
}

// ------------------------------------------------------------------------------------------------
// driver mutants

/** drv.op.8: once idle, the driver never reacts again (a resize goes unanswered). */
class DriverIgnoresResize extends ReferenceDriver {
  private sleeping = false;
  override next(): DriverAction {
    if (this.sleeping) return { kind: 'idle', reason: 'mutant: asleep for good' };
    const action = super.next();
    if (action.kind === 'idle') this.sleeping = true;
    return action;
  }
}

/**
 * drv.op.9 (SHOULD): the first PLUG asks for one block more than requested_size allows. (Only the
 * first: a driver that overshoots on every PLUG never converges and spins through resyncs up to
 * the request limit, which makes the run slow without adding anything.)
 */
class DriverPlugsBeyondRequested extends ReferenceDriver {
  private overshot = false;
  override next(): DriverAction {
    const action = super.next();
    if (
      !this.overshot &&
      action.kind === 'request' &&
      action.request.type === VIRTIO_MEM_REQ_PLUG &&
      action.request.nb_blocks < 0xffff
    ) {
      this.overshot = true;
      const request = { ...action.request, nb_blocks: action.request.nb_blocks + 1 };
      return { ...action, request, bytes: encodeRequest(request) };
    }
    return action;
  }
}

/** drv.init.2 (SHOULD): memory found plugged at start is ignored; no UNPLUG ALL or STATE first. */
class DriverSkipsUnplugAllAtInit extends ReferenceDriver {
  private first = true;
  override onConfig(bytes: Uint8Array): void {
    if (this.first) {
      this.first = false;
      const d = decodeConfig(bytes);
      if (d.ok && d.value.plugged_size > 0n) return super.onConfig(encodeConfig({ ...d.value, plugged_size: 0n }));
    }
    super.onConfig(bytes);
  }
}

/** drv.op.1: the initialisation write after a PLUG goes to the last block of the region, which is not plugged. */
class DriverWritesUnpluggedMemory extends ReferenceDriver {
  private seen?: VirtioMemConfig;
  override onConfig(bytes: Uint8Array): void {
    const d = decodeConfig(bytes);
    if (d.ok) this.seen = d.value;
    super.onConfig(bytes);
  }
  override next(): DriverAction {
    const action = super.next();
    if (action.kind === 'write-memory' && this.seen) {
      return { ...action, addr: this.seen.addr + this.seen.region_size - BigInt(action.length) };
    }
    return action;
  }
}

// ------------------------------------------------------------------------------------------------
// the matrix

type DeviceClass = new (params: DeviceParams, profile: DeviceProfile) => VirtioMemDevice;

interface Mutant {
  readonly name: string;
  readonly target: 'device' | 'driver';
  /** SHOULD-level breakage: only strict mode makes it unexpected. */
  readonly strict: boolean;
  readonly adapter: ModelAdapterOptions;
}

function deviceMutant(name: string, cls: DeviceClass, strict = false): Mutant {
  return {
    name,
    target: 'device',
    strict,
    adapter: { deviceFactory: (params, profile) => new cls(params, profile), implementation: `mutant:${name}` },
  };
}

function profileMutant(name: string, tweak: Partial<DeviceProfile>, strict = false): Mutant {
  return {
    name,
    target: 'device',
    strict,
    adapter: { profile: { ...SPEC_PROFILE, ...tweak, name: `spec-mutant-${name}` }, implementation: `mutant:${name}` },
  };
}

function driverMutant(name: string, cls: new () => ReferenceDriver, strict = false): Mutant {
  return {
    name,
    target: 'driver',
    strict,
    adapter: { driverFactory: () => new cls(), implementation: `mutant:${name}` },
  };
}

const MUTANTS: readonly Mutant[] = [
  deviceMutant('plug ACKs a misaligned addr and plugs', AcksMisalignedPlug),
  deviceMutant('plugged_size not updated after PLUG', ForgetsPluggedSizeOnPlug),
  deviceMutant('usable_region_size shrinks on resize down', ShrinksUsableOnResizeDown),
  deviceMutant('device reset unplugs all blocks', DeviceResetUnplugsAll),
  deviceMutant('no notification on host resize', SilentResize),
  deviceMutant('NACK instead of ERROR for nb_blocks = 0', NackForZeroBlocks),
  deviceMutant('ERROR instead of ACK for a valid UNPLUG', ErrorForValidUnplug),
  deviceMutant('STATE reports PLUGGED for mixed blocks', StateSaysPluggedForMixed),
  deviceMutant('ACKs PLUG of already plugged blocks', AcksPlugOfPluggedBlocks),
  deviceMutant('UNPLUG ALL leaves plugged_size nonzero', UnplugAllKeepsPluggedSize),
  deviceMutant('notifies on every PLUG (SHOULD NOT, strict)', NotifiesOnEveryPlug, true),
  deviceMutant('config block_size not a power of two', BlockSizeNotPowerOfTwo),
  deviceMutant('garbage request padding answered ERROR', ErrorOnGarbagePadding),
  deviceMutant('usable_region_size < requested_size after resize', UsableBelowRequestedAfterResize),
  deviceMutant('device reset alters plugged memory', DeviceResetAltersPluggedMemory),
  profileMutant('profile: UNPLUG ALL sets usable_region_size to 0', { unplugAllUsable: 'zero' }),
  profileMutant('profile: request must sit in one descriptor', { layoutStrictness: 'single-descriptor' }),
  profileMutant('profile: system reset keeps blocks (SHOULD, strict)', { systemReset: 'keep' }, true),
  driverMutant('driver never reacts to a resize', DriverIgnoresResize),
  driverMutant('driver plugs beyond requested_size (SHOULD, strict)', DriverPlugsBeyondRequested, true),
  driverMutant('driver skips UNPLUG ALL at init (SHOULD, strict)', DriverSkipsUnplugAllAtInit, true),
  driverMutant('driver writes unplugged memory', DriverWritesUnpluggedMemory),
];

// ------------------------------------------------------------------------------------------------

const loaded = loadVectors([VECTORS_DIR]);
const corpus: readonly Vector[] = loaded.vectors;
const byTarget = (target: 'device' | 'driver'): Vector[] => selectVectors(corpus, { target });

/** Ids the unmodified model ends unexpected with, per target and strictness (subtracted from killers). */
const baselineUnexpected = new Map<string, Set<string>>();

async function baseline(target: 'device' | 'driver', strict: boolean): Promise<Set<string>> {
  const key = `${target}:${strict}`;
  let ids = baselineUnexpected.get(key);
  if (!ids) {
    const run = await runVectors(createModelAdapter(), byTarget(target), corpus, { strict });
    ids = new Set(run.results.filter((r) => r.unexpected).map((r) => r.vector.id));
    baselineUnexpected.set(key, ids);
  }
  return ids;
}

interface MatrixRow {
  readonly mutant: string;
  readonly target: 'device' | 'driver';
  readonly strict: boolean;
  readonly vectorsRun: number;
  readonly killers: readonly { readonly id: string; readonly verdict: string; readonly check: string }[];
}

const matrix: MatrixRow[] = [];

afterAll(() => {
  const file = process.env.VMEMCT_TEETH_REPORT;
  if (file) {
    fs.writeFileSync(
      file,
      `${JSON.stringify({ corpus: { vectors: corpus.length, files: loaded.files.length }, mutants: matrix }, null, 2)}\n`,
    );
  }
});

describe('the corpus', () => {
  test('loads without problems', () => {
    expect(loaded.problems.map(formatProblem)).toEqual([]);
    expect(corpus.length).toBeGreaterThan(0);
  });
});

describe('control: the unmodified model passes the whole corpus', () => {
  const all = (): Vector[] => selectVectors(corpus, {});

  test('spec profile: zero unexpected, exit 0', async () => {
    const run = await runVectors(createModelAdapter(), all(), corpus);
    expect(unexpectedSummary(run)).toEqual([]);
    expect(run.stale).toEqual([]);
    expect(run.exitCode).toBe(0);
  });

  test('qemu profile: zero unexpected, exit 0', async () => {
    const qemu = findDeviceProfile('qemu');
    expect(qemu).toBeDefined();
    const run = await runVectors(createModelAdapter({ profile: qemu }), all(), corpus);
    expect(unexpectedSummary(run)).toEqual([]);
    expect(run.exitCode).toBe(0);
  });
});

describe('the suite has teeth: every mutant is caught by at least one vector', () => {
  test.each(MUTANTS.map((m) => [m.name, m] as const))('%s', async (_name, mutant) => {
    const selected = byTarget(mutant.target);
    const clean = await baseline(mutant.target, mutant.strict);
    const run = await runVectors(createModelAdapter(mutant.adapter), selected, corpus, { strict: mutant.strict });
    const killers = run.results
      .filter((r) => r.unexpected && !clean.has(r.vector.id))
      .map((r) => ({
        id: r.vector.id,
        verdict: r.verdict,
        check: r.findings.find((f) => f.verdict === r.verdict)?.check ?? '',
      }));
    matrix.push({
      mutant: mutant.name,
      target: mutant.target,
      strict: mutant.strict,
      vectorsRun: selected.length,
      killers,
    });

    const status =
      killers.length > 0
        ? `killed by ${killers.map((k) => `${k.id} [${k.verdict}: ${k.check}]`).join(', ')}`
        : `SURVIVED: none of ${selected.length} ${mutant.target} vectors (strict: ${mutant.strict}) ended unexpected`;
    expect(status).toMatch(/^killed by /);
    // Caught by a conformance finding, not merely by crashing the harness.
    const conformanceKill = killers.some((k) => k.verdict === 'fail' || k.verdict === 'non-strict');
    expect(conformanceKill ? 'conformance finding' : `only harness verdicts: ${status}`).toBe('conformance finding');
  });
});

function unexpectedSummary(run: RunResult): string[] {
  return run.results
    .filter((r) => r.unexpected)
    .map((r) => `${r.vector.id}: ${r.verdict}: ${r.findings.map((f) => `${f.check}: ${f.message}`).join('; ')}`);
}
