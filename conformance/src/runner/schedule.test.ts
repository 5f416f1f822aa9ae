import * as path from 'node:path';
import type { Adapter, DeviceSetup, DriverOptions, Target } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { loadVectors } from '../loader/load';
import { runVectors, scheduleVectors } from './run';

const corpus = loadVectors([path.join(__dirname, '..', '..', 'vectors', 'driver')]).vectors;
/** Driver vectors of three region sizes, interleaved in corpus order. */
const IDS = [
  'vmem.drv.bug.requested-beyond-region',
  'vmem.drv.op.grow-to-requested',
  'vmem.drv.op.whole-region',
  'vmem.drv.op.shrink-to-requested',
  'vmem.drv.op.large-blocks',
  'vmem.drv.op.resize-to-zero',
];
const selected = IDS.map((id) => corpus.find((v) => v.id === id)!);

/** The model adapter, grouping driver vectors by region size and recording the order it opens them in. */
function groupingModel(opened: bigint[]): Adapter {
  const model = createModelAdapter();
  return {
    info: model.info,
    openDevice: (setup) => model.openDevice(setup),
    openDriver: (setup, options) => {
      opened.push(setup.region_size);
      return model.openDriver!(setup, options);
    },
    scheduleKey: (target: Target, setup: DeviceSetup) =>
      target === 'driver' && setup.region_size !== 1n << 30n ? `region ${setup.region_size}` : undefined,
    prepare: async (_target: Target, setup: DeviceSetup) => void opened.push(-setup.region_size),
    dispose: () => model.dispose(),
  };
}

describe('running vectors grouped by the adapter’s schedule key', () => {
  it('keeps the selection order when the adapter has no key', () => {
    const model = createModelAdapter();
    expect(scheduleVectors(model, selected).map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('runs each group together, groups by their first vector, unkeyed vectors in place; reports in corpus order', async () => {
    expect(selected.every((v) => v !== undefined)).toBe(true);
    const opened: bigint[] = [];
    const adapter = groupingModel(opened);
    // 0: 256 MiB, 1: default, 2: 256 MiB, 3: default, 4: 16 GiB, 5: default.
    expect(scheduleVectors(adapter, selected).map((e) => e.index)).toEqual([0, 2, 1, 3, 4, 5]);
    const progress: string[] = [];
    const run = await runVectors(adapter, selected, corpus, {
      onResult: (r, done, total) => progress.push(`${done}/${total} ${r.vector.id}`),
    });
    const MiB = 1n << 20n;
    // Each vector is prepared (negative) before it opens.
    expect(opened).toEqual(
      [256n * MiB, 256n * MiB, 1024n * MiB, 1024n * MiB, 16384n * MiB, 1024n * MiB].flatMap((r) => [-r, r]),
    );
    expect(progress[1]).toBe(`2/6 ${IDS[2]}`);
    expect(run.results.map((r) => r.vector.id)).toEqual(IDS);
    await adapter.dispose();
  });
});

describe('a multi-device vector as the adapter groups and prepares it', () => {
  it('passes its devices (each set-up laid over the vector’s, with the step actions) in the options', () => {
    const twoNodes = corpus.find((v) => v.id === 'vmem.drv.numa.two-nodes')!;
    const seen: { setup: DeviceSetup; options: DriverOptions }[] = [];
    const adapter: Pick<Adapter, 'scheduleKey'> = {
      scheduleKey: (_target, setup, options) => {
        seen.push({ setup, options });
        return undefined;
      },
    };
    scheduleVectors(adapter, [twoNodes]);
    const devices = seen[0]!.options.devices!;
    expect(devices.map((d) => [d.name, d.setup.addr, d.setup.node_id, d.setup.block_size])).toEqual([
      ['vm0', 4n << 30n, 0, 2n << 20n],
      ['vm1', 5n << 30n, 1, 2n << 20n],
    ]);
    expect(devices[1]!.options.stepActions?.map((a) => a.kind)).toEqual(
      seen[0]!.options.stepActions?.map((a) => a.kind),
    );
    // A single-device vector has none.
    scheduleVectors(adapter, [selected[0]!]);
    expect(seen[1]!.options.devices).toBeUndefined();
  });
});
