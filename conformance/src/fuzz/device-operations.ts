/**
 * Device fuzzing's operations: seeded sequences of steps a driver and a host can take against a
 * device — requests of every type, valid and invalid, in chosen descriptor layouts, host
 * resizes, resets, BUSY injection, host busy and memory access — guided toward the places where
 * implementations disagree: the region's start and end, the usable end, the requested size, the
 * plugged edge, 0 and 65,535 blocks. Each operation is data, rendered as one vector step, so a
 * sequence is a vector the runner judges and a shrunk sequence is the vector a finding writes.
 *
 * Addresses and sizes are written as expressions over the configuration (`usable_end - block_size`)
 * so the rendered vector says which boundary an operation aims at.
 */
import type { Capability, DeviceSetup } from '../../../adapters/core/src/contract';
import {
  REQUEST_TYPE_NAMES,
  VIRTIO_MEM_REQ_PLUG,
  VIRTIO_MEM_REQ_STATE,
  VIRTIO_MEM_REQ_UNPLUG,
  VIRTIO_MEM_REQ_UNPLUG_ALL,
  VirtioMemRequestLayout,
  VirtioMemResponseLayout,
  formatHex,
} from '../../../spec/src/index';
import { encodeRequest } from '../../../model/src/index';
import { seededRandom } from '../differential/differential';
import { MemoryExpectation, StepKnowledge } from './device-knowledge';

/** The configuration names an address is measured from (each an expression name of vectors). */
export const ADDRESS_ANCHORS = ['addr', 'usable_end', 'region_end', 'plugged_end', 'requested_end'] as const;

/** One of {@link ADDRESS_ANCHORS}. */
export type AddressAnchor = (typeof ADDRESS_ANCHORS)[number];

/** How an anchor is written in a vector expression. */
const ANCHOR_EXPRESSIONS: Readonly<Record<AddressAnchor, string>> = {
  addr: 'addr',
  usable_end: 'usable_end',
  region_end: 'region_end',
  plugged_end: '(addr + plugged_size)',
  requested_end: '(addr + requested_size)',
};

/** A guest physical address: an anchor plus whole blocks plus bytes, or a fixed value far from the region. */
export type FuzzAddress =
  { readonly anchor: AddressAnchor; readonly blocks: number; readonly bytes: number } | { readonly fixed: bigint };

/** Block counts measured from the configuration, or a plain number (0 to 65,535). */
export type BlockCount = number | 'blocks' | 'usable_blocks' | 'requested_blocks' | 'plugged_blocks';

/** Sizes of the descriptors a request is split over. */
export interface FuzzLayout {
  readonly readable: readonly number[];
  readonly writable: readonly number[];
}

/** One fuzzing operation (one vector step). */
export type FuzzOperation =
  | {
      readonly kind: 'request';
      readonly type: number;
      readonly addr: FuzzAddress;
      readonly nbBlocks: BlockCount;
      readonly padding?: Uint8Array;
      readonly payloadPadding?: Uint8Array;
      readonly layout?: FuzzLayout;
    }
  /** A request shorter than the 24-byte structure, sent as raw bytes. */
  | { readonly kind: 'short-request'; readonly bytes: Uint8Array }
  /**
   * requested_size ← `blocks` whole blocks plus `bytes`; a nonzero `bytes`, or more blocks than
   * the region's `regionBlocks`, is a value the host may refuse.
   */
  | { readonly kind: 'resize'; readonly blocks: number; readonly bytes: number; readonly regionBlocks: number }
  | { readonly kind: 'device-reset' }
  | { readonly kind: 'system-reset' }
  | { readonly kind: 'inject-busy'; readonly count: number }
  | { readonly kind: 'host-busy'; readonly busy: boolean }
  | { readonly kind: 'read-memory'; readonly addr: FuzzAddress; readonly length: number }
  | { readonly kind: 'write-memory'; readonly addr: FuzzAddress; readonly data: Uint8Array };

/** The most BUSY answers one `inject_busy` asks for (below the runner's retries of an unlisted BUSY). */
const MAX_INJECTED_BUSY = 2;

/** The coverage key of an operation: its kind, and for a request its type and where it aims. */
export function coverageKeys(op: FuzzOperation): string[] {
  if (op.kind === 'request') {
    const type = REQUEST_TYPE_NAMES[op.type] ?? 'unknown-type';
    const keys = [`request:${type}`];
    if ('anchor' in op.addr) keys.push(`aim:${op.addr.anchor}${op.addr.bytes !== 0 ? '+misaligned' : ''}`);
    else keys.push('aim:far');
    if (op.nbBlocks === 0) keys.push('blocks:0');
    else if (typeof op.nbBlocks === 'number' && op.nbBlocks >= 0xfff0) keys.push('blocks:65535');
    else if (typeof op.nbBlocks === 'string') keys.push(`blocks:${op.nbBlocks}`);
    if (op.layout) keys.push('layout:split');
    if (op.padding || op.payloadPadding) keys.push('padding:garbage');
    return keys;
  }
  return [`op:${op.kind}${op.kind === 'host-busy' ? (op.busy ? ':on' : ':off') : ''}`];
}

/** What an operation sequence may use: the adapter's capabilities. */
export interface GenerationLimits {
  readonly capabilities: readonly Capability[];
}

/**
 * `count` operations from `seed` for a device built from `setup`. Operations that break the
 * protocol (an unknown type, a short buffer) are followed by a device reset when the adapter can
 * reset, since a device may then stop answering until reset.
 */
export function generateFuzzOperations(
  seed: number,
  count: number,
  setup: DeviceSetup,
  limits: GenerationLimits,
): FuzzOperation[] {
  const random = seededRandom(seed);
  const pick = (n: number): number => Math.floor(random() * n);
  const can = (c: Capability): boolean => limits.capabilities.includes(c);
  const regionBlocks = Number(setup.region_size / setup.block_size);
  const blockBytes = Number(setup.block_size);
  const ops: FuzzOperation[] = [];
  let hostBusy = false;

  const small = (): number => (random() < 0.5 ? pick(3) : pick(9)) * (random() < 0.5 ? -1 : 1);
  const address = (): FuzzAddress => {
    const r = random();
    if (r < 0.03) return { fixed: 0xffff_ffff_ffff_f000n - BigInt(pick(4)) * setup.block_size };
    if (r < 0.05) return { fixed: setup.addr - setup.block_size * BigInt(1 + pick(4)) };
    // Half the requests land inside the requested size, where blocks change state; the rest near a boundary.
    const requestedBlocks = Math.max(1, Number(setup.requested_size / setup.block_size));
    if (r < 0.5)
      return { anchor: 'addr', blocks: pick(requestedBlocks), bytes: random() < 0.03 ? 1 + pick(blockBytes - 1) : 0 };
    const anchor = ADDRESS_ANCHORS[pick(ADDRESS_ANCHORS.length)]!;
    const blocks = anchor === 'addr' && random() < 0.5 ? pick(regionBlocks) : small();
    const bytes = random() < 0.06 ? 1 + pick(blockBytes - 1) : 0;
    return { anchor, blocks, bytes };
  };
  const blockCount = (): BlockCount => {
    const r = random();
    if (r < 0.6) return 1 + pick(4);
    if (r < 0.68) return 0;
    if (r < 0.76) return 0xffff - pick(2);
    if (r < 0.84) return (['blocks', 'usable_blocks', 'requested_blocks', 'plugged_blocks'] as const)[pick(4)]!;
    return 1 + pick(regionBlocks);
  };
  const garbage = (): Uint8Array | undefined =>
    random() < 0.05 ? Uint8Array.from({ length: 6 }, () => 1 + pick(255)) : undefined;
  const layout = (): { layout: FuzzLayout; breaksProtocol: boolean } | undefined => {
    if (!can('raw-descriptor-layout') || random() > 0.08) return undefined;
    const size = VirtioMemRequestLayout.size;
    const cut = 1 + pick(size - 1);
    const readable = random() < 0.5 ? [cut, size - cut] : [size];
    const resp = VirtioMemResponseLayout.size;
    const w = pick(5);
    const writable = [[resp], [2, resp - 2], [resp + 6], [resp - 1 - pick(resp - 1)], []][w]!;
    return { layout: { readable, writable }, breaksProtocol: w >= 3 };
  };
  // Memory probes: a pattern written into a certainly plugged block, sometimes a device reset, the
  // pattern read back — the content a conforming device must keep (see StepKnowledge).
  const memory = new StepKnowledge(setup);
  let known = 0;
  const probe = (): boolean => {
    for (; known < ops.length; known++) memory.apply(ops[known]!);
    const plugged = memory.pluggedBlocks();
    if (!can('memory-access') || plugged.length === 0) return false;
    const addr: FuzzAddress = {
      anchor: 'addr',
      blocks: plugged[pick(plugged.length)]!,
      bytes: pick(blockBytes - 64),
    };
    const data = Uint8Array.from({ length: 1 + pick(16) }, () => pick(256));
    ops.push({ kind: 'write-memory', addr, data });
    if (can('device-reset') && random() < 0.5) ops.push({ kind: 'device-reset' });
    ops.push({ kind: 'read-memory', addr, length: data.length });
    return true;
  };
  if (random() < 0.5) probe();
  const resetAfterViolation = (): void => {
    if (can('device-reset')) ops.push({ kind: 'device-reset' });
  };

  while (ops.length < count) {
    const r = random();
    if (r < 0.74) {
      const type = [
        VIRTIO_MEM_REQ_PLUG,
        VIRTIO_MEM_REQ_PLUG,
        VIRTIO_MEM_REQ_UNPLUG,
        VIRTIO_MEM_REQ_STATE,
        VIRTIO_MEM_REQ_STATE,
        VIRTIO_MEM_REQ_UNPLUG_ALL,
      ][pick(6)]!;
      const laid = layout();
      ops.push({
        kind: 'request',
        type,
        addr:
          type === VIRTIO_MEM_REQ_UNPLUG_ALL && random() < 0.7 ? { anchor: 'addr', blocks: 0, bytes: 0 } : address(),
        nbBlocks: type === VIRTIO_MEM_REQ_UNPLUG_ALL && random() < 0.7 ? 0 : blockCount(),
        padding: garbage(),
        payloadPadding: garbage(),
        layout: laid?.layout,
      });
      if (laid?.breaksProtocol) resetAfterViolation();
    } else if (r < 0.76) {
      ops.push({ kind: 'request', type: 4 + pick(0xfffb), addr: address(), nbBlocks: blockCount() });
      resetAfterViolation();
    } else if (r < 0.775) {
      const full = encodeRequest({ type: VIRTIO_MEM_REQ_STATE, addr: setup.addr, nb_blocks: 1 });
      ops.push({ kind: 'short-request', bytes: full.slice(0, 1 + pick(VirtioMemRequestLayout.size - 1)) });
      resetAfterViolation();
    } else if (r < 0.86) {
      if (!can('host-resize')) continue;
      const requested = Number(setup.requested_size / setup.block_size);
      const anchors = [0, requested, regionBlocks, pick(regionBlocks + 1)];
      const blocks = Math.max(0, anchors[pick(anchors.length)]! + small());
      ops.push({ kind: 'resize', blocks, bytes: random() < 0.05 ? 4096 : 0, regionBlocks });
    } else if (r < 0.89) {
      if (can('device-reset')) ops.push({ kind: 'device-reset' });
    } else if (r < 0.9) {
      if (!can('system-reset')) continue;
      ops.push({ kind: 'system-reset' });
      // Half the time, ask at once whether the blocks came back unplugged (dev.op.7).
      for (; known < ops.length; known++) memory.apply(ops[known]!);
      const span = memory.unpluggedSpan();
      if (span > 0 && random() < 0.5)
        ops.push({
          kind: 'request',
          type: VIRTIO_MEM_REQ_STATE,
          addr: { anchor: 'addr', blocks: 0, bytes: 0 },
          nbBlocks: span,
        });
    } else if (r < 0.93) {
      if (can('inject-busy')) ops.push({ kind: 'inject-busy', count: 1 + pick(MAX_INJECTED_BUSY) });
    } else if (r < 0.94) {
      if (!can('host-busy')) continue;
      hostBusy = !hostBusy;
      ops.push({ kind: 'host-busy', busy: hostBusy });
    } else {
      if (!can('memory-access')) continue;
      if (random() < 0.5 && probe()) continue;
      const addr: FuzzAddress = { anchor: 'addr', blocks: pick(regionBlocks), bytes: pick(blockBytes - 64) };
      if (random() < 0.5) ops.push({ kind: 'read-memory', addr, length: 1 + pick(16) });
      else ops.push({ kind: 'write-memory', addr, data: Uint8Array.from({ length: 1 + pick(16) }, () => pick(256)) });
    }
  }
  return ops.slice(0, count);
}

/** An address as a vector expression (its YAML text: a fixed value is quoted). */
function addressExpression(a: FuzzAddress): string {
  return 'fixed' in a ? `'${addressValue(a)}'` : addressValue(a);
}

/** An address as the string a vector's YAML holds. */
function addressValue(a: FuzzAddress): string {
  if ('fixed' in a) return formatHex(a.fixed);
  let text = ANCHOR_EXPRESSIONS[a.anchor];
  if (a.blocks !== 0)
    text += ` ${a.blocks < 0 ? '-' : '+'} ${Math.abs(a.blocks) === 1 ? '' : `${Math.abs(a.blocks)} * `}block_size`;
  if (a.bytes !== 0) text += ` + ${a.bytes}`;
  return text;
}

function hexBytes(b: Uint8Array): string {
  return `'${Buffer.from(b).toString('hex')}'`;
}

/**
 * An operation as the lines of one vector step (indented for a vector's `steps:` list); a memory
 * operation's expectation is `memory` (derived from the operations before it).
 */
export function renderOperation(
  op: FuzzOperation,
  memory: MemoryExpectation = { kind: 'open' },
  indent = '      ',
): string[] {
  switch (op.kind) {
    case 'request': {
      const type = REQUEST_TYPE_NAMES[op.type] ?? String(op.type);
      const fields = [`type: ${type}`, `addr: ${addressExpression(op.addr)}`, `nb_blocks: ${op.nbBlocks}`];
      if (op.padding) fields.push(`padding: ${hexBytes(op.padding)}`);
      if (op.payloadPadding) fields.push(`payload_padding: ${hexBytes(op.payloadPadding)}`);
      if (op.layout)
        fields.push(
          `layout: {readable: [${op.layout.readable.join(', ')}], writable: [${op.layout.writable.join(', ')}]}`,
        );
      const line = `${indent}- request: {${fields.join(', ')}}`;
      return memory.kind === 'unplugged-after-system-reset'
        ? [line, `${indent}  expect: {state: {UNPLUGGED: pass, PLUGGED: non-strict, MIXED: non-strict}}`]
        : [line];
    }
    case 'short-request':
      return [`${indent}- request: {raw: ${hexBytes(op.bytes)}}`];
    case 'resize': {
      const blocks = op.blocks === 0 ? '0' : op.blocks === 1 ? 'block_size' : `${op.blocks} * block_size`;
      const line = `${indent}- resize: ${op.bytes === 0 ? blocks : `${blocks} + ${op.bytes}`}`;
      // A value that is no multiple of block_size, or beyond the region, is one the host may refuse.
      const mayRefuse = op.bytes !== 0 || op.blocks > op.regionBlocks;
      return mayRefuse ? [line, `${indent}  expect: {resize: {applied: pass, refused: pass}}`] : [line];
    }
    case 'device-reset':
      return [`${indent}- device_reset: true`];
    case 'system-reset':
      return [`${indent}- system_reset: true`];
    case 'inject-busy':
      return [`${indent}- inject_busy: ${op.count}`];
    case 'host-busy':
      return [`${indent}- host_busy: ${op.busy}`];
    // Unplugged memory may refuse an access (dev.op.4 with UNPLUGGED_INACCESSIBLE); either answer is
    // judged by what follows. In certainly plugged blocks the access must go through, and a read of
    // bytes written there returns them (see StepKnowledge).
    case 'read-memory': {
      const data = memory.kind === 'plugged' && memory.data ? `, data: ${hexBytes(memory.data)}` : '';
      return [
        `${indent}- read_memory: {addr: ${addressExpression(op.addr)}, length: ${op.length}}`,
        `${indent}  expect: {access: ${memory.kind === 'plugged' ? 'ok' : '{ok: pass, refused: pass}'}${data}}`,
      ];
    }
    case 'write-memory':
      return [
        `${indent}- write_memory: {addr: ${addressExpression(op.addr)}, data: ${hexBytes(op.data)}}`,
        `${indent}  expect: {access: ${memory.kind === 'plugged' ? 'ok' : '{ok: pass, refused: pass}'}}`,
      ];
  }
}

/**
 * Values from `min` up to `n` (excluded), smallest first, closing in on `n` by halves: `min`,
 * then `n − (n − min)/2`, `n − (n − min)/4`, …, `n − 1` — a shrinker that takes the first value
 * that still fails bisects toward the smallest one.
 */
function smallerValues(n: number, min: number): number[] {
  if (n <= min) return [];
  const values = [min];
  for (let d = Math.floor((n - min) / 2); d >= 1; d = Math.floor(d / 2)) if (n - d > min) values.push(n - d);
  return [...new Set(values)];
}

/** Signed values closer to 0 than `n`, smallest magnitude first. */
function closerToZero(n: number): number[] {
  return smallerValues(Math.abs(n), 0).map((v) => v * Math.sign(n));
}

/**
 * Simpler variants of one operation, simplest first (for shrinking: smaller values, fewer
 * extras). An empty list: nothing simpler.
 */
export function simplerOperations(op: FuzzOperation): FuzzOperation[] {
  const out: FuzzOperation[] = [];
  const simplerAddress = (a: FuzzAddress): FuzzAddress[] => {
    if ('fixed' in a) return [];
    const list: FuzzAddress[] = [];
    if (a.anchor !== 'addr') list.push({ anchor: 'addr', blocks: a.blocks, bytes: a.bytes });
    for (const bytes of smallerValues(a.bytes, 0)) list.push({ ...a, bytes });
    for (const blocks of closerToZero(a.blocks)) list.push({ ...a, blocks });
    return list;
  };
  if (op.kind === 'request') {
    if (op.layout) out.push({ ...op, layout: undefined });
    if (op.padding) out.push({ ...op, padding: undefined });
    if (op.payloadPadding) out.push({ ...op, payloadPadding: undefined });
    if (typeof op.nbBlocks === 'string') out.push({ ...op, nbBlocks: 1 });
    else for (const nbBlocks of smallerValues(op.nbBlocks, 1)) out.push({ ...op, nbBlocks });
    for (const addr of simplerAddress(op.addr)) out.push({ ...op, addr });
  } else if (op.kind === 'resize') {
    if (op.bytes !== 0) out.push({ ...op, bytes: 0 });
    for (const blocks of smallerValues(op.blocks, 0)) out.push({ ...op, blocks });
  } else if (op.kind === 'inject-busy') {
    if (op.count > 1) out.push({ ...op, count: 1 });
  } else if (op.kind === 'read-memory' || op.kind === 'write-memory') {
    for (const addr of simplerAddress(op.addr)) out.push({ ...op, addr });
    if (op.kind === 'read-memory' && op.length > 1) out.push({ ...op, length: 1 });
    if (op.kind === 'write-memory' && op.data.length > 1) out.push({ ...op, data: op.data.slice(0, 1) });
  }
  return out;
}

/**
 * Variants of a whole sequence in which every address `addr + N * block_size` with the same N
 * moves together to a smaller N (two requests on one block stay on one block while both move),
 * largest N first, smallest replacement first.
 */
export function jointlySmallerAddresses(ops: readonly FuzzOperation[]): FuzzOperation[][] {
  const blocksOf = (op: FuzzOperation): number | undefined =>
    (op.kind === 'request' || op.kind === 'read-memory' || op.kind === 'write-memory') &&
    'anchor' in op.addr &&
    op.addr.anchor === 'addr'
      ? op.addr.blocks
      : undefined;
  const distinct = [...new Set(ops.map(blocksOf).filter((b): b is number => b !== undefined && b > 0))];
  const variants: FuzzOperation[][] = [];
  for (const from of distinct.sort((a, b) => b - a))
    for (const to of smallerValues(from, 0))
      variants.push(
        ops.map((op) =>
          blocksOf(op) === from && 'addr' in op && 'anchor' in op.addr
            ? { ...op, addr: { ...op.addr, blocks: to } }
            : op,
        ),
      );
  return variants;
}

/** One vector step as the value YAML gives for it: what {@link renderOperation}'s lines parse to. */
export type StepValue = Record<string, unknown>;

/** Both answers of an access pass; or it must go through. */
function accessValue(memory: MemoryExpectation): unknown {
  return memory.kind === 'plugged' ? 'ok' : { ok: 'pass', refused: 'pass' };
}

/**
 * An operation as the value of one vector step, built without YAML text: exactly what the lines
 * of {@link renderOperation} parse to (a test holds the two together), so a fuzz case is loaded
 * without a YAML parse while the written finding stays text.
 */
export function operationStep(op: FuzzOperation, memory: MemoryExpectation = { kind: 'open' }): StepValue {
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  switch (op.kind) {
    case 'request': {
      const request: Record<string, unknown> = {
        type: REQUEST_TYPE_NAMES[op.type] ?? op.type,
        addr: addressValue(op.addr),
        nb_blocks: op.nbBlocks,
      };
      if (op.padding) request.padding = hex(op.padding);
      if (op.payloadPadding) request.payload_padding = hex(op.payloadPadding);
      if (op.layout) request.layout = { readable: [...op.layout.readable], writable: [...op.layout.writable] };
      return memory.kind === 'unplugged-after-system-reset'
        ? { request, expect: { state: { UNPLUGGED: 'pass', PLUGGED: 'non-strict', MIXED: 'non-strict' } } }
        : { request };
    }
    case 'short-request':
      return { request: { raw: hex(op.bytes) } };
    case 'resize': {
      const blocks = op.blocks === 0 ? '0' : op.blocks === 1 ? 'block_size' : `${op.blocks} * block_size`;
      const resize = op.bytes !== 0 ? `${blocks} + ${op.bytes}` : op.blocks === 0 ? 0 : blocks;
      const mayRefuse = op.bytes !== 0 || op.blocks > op.regionBlocks;
      return mayRefuse ? { resize, expect: { resize: { applied: 'pass', refused: 'pass' } } } : { resize };
    }
    case 'device-reset':
      return { device_reset: true };
    case 'system-reset':
      return { system_reset: true };
    case 'inject-busy':
      return { inject_busy: op.count };
    case 'host-busy':
      return { host_busy: op.busy };
    case 'read-memory':
      return {
        read_memory: { addr: addressValue(op.addr), length: op.length },
        expect: {
          access: accessValue(memory),
          ...(memory.kind === 'plugged' && memory.data ? { data: hex(memory.data) } : {}),
        },
      };
    case 'write-memory':
      return {
        write_memory: { addr: addressValue(op.addr), data: hex(op.data) },
        expect: { access: accessValue(memory) },
      };
  }
}
