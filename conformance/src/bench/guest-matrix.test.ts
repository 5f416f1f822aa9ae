import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadVectorText, loadVectors } from '../loader/load';
import {
  DEFAULT_GUEST_KERNELS,
  KERNEL_SUBSET_FILE,
  formatTimingTable,
  groupTotals,
  guestBuildKernelArguments,
  injectionKindsOf,
  kernelExpectationsFile,
  matrixPlan,
  parseGuestKernels,
  parseVectorList,
  setupGroupOf,
  subsetGaps,
  timingRows,
} from './guest-matrix';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const corpus = loadVectors([path.join(ROOT, 'conformance', 'vectors')]).vectors;

function vector(setup: string, steps: string) {
  const text = `format: vmemct-vectors/1\nvectors:\n  - id: vmem.drv.test.one\n    title: a test vector\n    requirements: [drv.op.1]\n    target: driver\n    setup: ${setup}\n    steps:\n${steps}`;
  const loaded = loadVectorText('t.yaml', text);
  expect(loaded.problems).toEqual([]);
  return loaded.vectors[0]!;
}

describe('the kernel list', () => {
  it('defaults to 6.1 and 6.12 and reads a comma-separated list', () => {
    expect(parseGuestKernels(undefined)).toEqual({ ok: true, value: DEFAULT_GUEST_KERNELS });
    expect(DEFAULT_GUEST_KERNELS).toEqual(['6.1', '6.12']);
    expect(parseGuestKernels(' ')).toEqual({ ok: true, value: ['6.1', '6.12'] });
    expect(parseGuestKernels('6.12, 6.1')).toEqual({ ok: true, value: ['6.12', '6.1'] });
    expect(parseGuestKernels('6.1')).toEqual({ ok: true, value: ['6.1'] });
  });

  it('refuses names that are not kernel series, and repeats', () => {
    expect(parseGuestKernels('6.1,latest')).toEqual({
      ok: false,
      reason: "VMEMCT_GUEST_KERNELS: 'latest' is not a kernel series such as 6.1 or 6.12",
    });
    expect(parseGuestKernels('6.1,,6.12').ok).toBe(false);
    expect(parseGuestKernels('6.1,6.1')).toEqual({ ok: false, reason: 'VMEMCT_GUEST_KERNELS: 6.1 is named twice' });
  });

  it('runs the corpus on the first kernel and the subset on the others, or the corpus on all', () => {
    expect(matrixPlan(['6.1', '6.12', '7.0'], false)).toEqual([
      { kernel: '6.1', selection: 'corpus' },
      { kernel: '6.12', selection: 'subset' },
      { kernel: '7.0', selection: 'subset' },
    ]);
    expect(matrixPlan(['6.1', '6.12'], true).map((p) => p.selection)).toEqual(['corpus', 'corpus']);
  });

  it('builds the default kernel without --kernel and names the others', () => {
    expect(guestBuildKernelArguments('6.1')).toEqual([]);
    expect(guestBuildKernelArguments('6.12')).toEqual(['--kernel', '6.12']);
    expect(kernelExpectationsFile('6.12')).toBe('conformance/expectations/linux-6.12.yaml');
  });
});

describe('the vector list', () => {
  it('reads ids, skipping comments and blank lines', () => {
    expect(parseVectorList('f.txt', '# c\n\nvmem.drv.a  # why\n  vmem.drv.b\n')).toEqual({
      ok: true,
      value: ['vmem.drv.a', 'vmem.drv.b'],
    });
  });

  it('names the file and line of a bad or repeated id', () => {
    expect(parseVectorList('f.txt', 'vmem.drv.a\nnot an id\n')).toEqual({
      ok: false,
      reason: "f.txt:2: 'not an id' is not a vector id",
    });
    expect(parseVectorList('f.txt', 'vmem.drv.a\n\nvmem.drv.a\n')).toEqual({
      ok: false,
      reason: 'f.txt:3: vmem.drv.a is listed twice',
    });
  });
});

describe('set-up groups and injection kinds', () => {
  it('groups by what the device is booted with', () => {
    const steps = '      - start: true\n';
    expect(setupGroupOf(vector('{block_size: 2MiB, region_size: 1GiB, addr: 4GiB, requested_size: 0}', steps))).toBe(
      'block 2MiB region 1GiB at 4GiB node 0',
    );
    expect(
      setupGroupOf(
        vector(
          '{block_size: 2MiB, region_size: 256MiB, addr: 4097MiB, requested_size: 512MiB, node_id: 3, features: [UNPLUGGED_INACCESSIBLE]}',
          steps,
        ),
      ),
    ).toBe('block 2MiB region 256MiB at 4097MiB node 3 unplugged-inaccessible requested above the region');
  });

  it('names each injected response once, with trailer when one is written', () => {
    const v = vector(
      '{block_size: 2MiB, region_size: 1GiB, addr: 4GiB, requested_size: 0}',
      [
        '      - start: true',
        '      - inject: {response: NACK, count: 2, types: [PLUG]}',
        '      - inject: {response: NACK, count: 1}',
        '      - inject: {response: ACK, count: 1, trailer: "ff"}',
        '',
      ].join('\n'),
    );
    expect(injectionKindsOf(v)).toEqual(['NACK', 'ACK with trailer']);
  });
});

describe('the kernel subset', () => {
  const list = parseVectorList(KERNEL_SUBSET_FILE, fs.readFileSync(path.join(ROOT, KERNEL_SUBSET_FILE), 'utf8'));

  it('has a vector of every set-up group and every injection kind of the driver corpus', () => {
    expect(list.ok).toBe(true);
    if (!list.ok) return;
    expect(subsetGaps(corpus, list.value)).toEqual({ unknownIds: [], setupGroups: [], injectionKinds: [] });
    // Representative, not the corpus again.
    const drivers = corpus.filter((v) => v.target === 'driver' && !v.retired);
    expect(list.value.length).toBeLessThan(drivers.length / 2);
  });

  it('names what a subset misses', () => {
    const gaps = subsetGaps(corpus, ['vmem.drv.op.grow-to-requested', 'vmem.drv.no-such-vector']);
    expect(gaps.unknownIds).toEqual(['vmem.drv.no-such-vector']);
    expect(gaps.setupGroups).toContain('block 2MiB region 256GiB at 4GiB node 0');
    expect(gaps.setupGroups).not.toContain('block 2MiB region 1GiB at 4GiB node 0');
    expect(gaps.injectionKinds).toEqual(expect.arrayContaining(['NACK', 'BUSY', 'ERROR', 'ACK with trailer']));
  });
});

describe('the timing table', () => {
  const groups: Record<string, string> = { a: 'g1', b: 'g1', c: 'g2' };
  const rows = timingRows(
    [
      { id: 'a', verdict: 'pass', durationMs: 1500 },
      { id: 'b', verdict: 'unsupported', durationMs: 2 },
      { id: 'c', verdict: 'fail', durationMs: 20_000 },
    ],
    [
      { id: 'a', verdict: 'pass', durationMs: 4.25 },
      { id: 'c', verdict: 'pass', durationMs: 12 },
    ],
    (id) => groups[id]!,
  );

  it('puts the baseline time of the same vector beside each figure, and totals per group', () => {
    expect(rows.map((r) => [r.id, r.group, r.ms, r.baselineMs])).toEqual([
      ['a', 'g1', 1500, 4.25],
      ['b', 'g1', 2, undefined],
      ['c', 'g2', 20_000, 12],
    ]);
    expect(groupTotals(rows)).toEqual([
      { group: 'g1', vectors: 2, ran: 1, ms: 1502, baselineMs: 4.25 },
      { group: 'g2', vectors: 1, ran: 1, ms: 20_000, baselineMs: 12 },
    ]);
  });

  it('prints a line per vector and per group, and the sum', () => {
    const text = formatTimingTable('T', 'model', rows);
    expect(text.split('\n')).toEqual([
      'T',
      'vector  verdict            ms  model ms',
      'a       pass             1500       4.3',
      'b       unsupported       2.0         —',
      'c       fail            20000        12',
      '',
      'per set-up group: vectors, ran, total ms, model total ms',
      '  g1: 2 vectors, 1 ran, 1502 ms (model 4.3 ms)',
      '  g2: 1 vectors, 1 ran, 20000 ms (model 12 ms)',
      '  all: 3 vectors, 2 ran, 21502 ms (model 16 ms)',
      '',
    ]);
  });
});
