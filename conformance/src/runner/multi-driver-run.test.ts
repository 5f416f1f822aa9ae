import * as path from 'node:path';
import type { Adapter } from '../../../adapters/core/src/contract';
import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { execAdapterInfo } from '../../../adapters/exec/src/exec-adapter';
import { servedHello } from '../../../adapters/model-harness/src/harness-session';
import { ReferenceDriver } from '../../../model/src/index';
import { RecordingAdapter } from '../differential/transcript';
import { loadVectorText, loadVectors } from '../loader/load';
import { formatProblem } from '../loader/types';
import { runVectors } from './run';

const TWO_NODES = path.join(__dirname, '../../vectors/driver/multi-device.yaml');

/** A two-device vector around `steps` (YAML lines, indented as steps of the list). */
function twoDevices(steps: string, extra = ''): string {
  return `format: vmemct-vectors/1
vectors:
  - id: vmem.drv.numa.test
    title: A two-device test vector
    requirements: [drv.op.8]
    target: driver
    setup: {features: [VERSION_1, ACPI_PXM]}
${extra}    devices:
      - name: left
        setup: {addr: 4GiB, node_id: 0}
      - name: right
        setup: {addr: 5GiB, node_id: 1}
    steps:
${steps}`;
}

async function runText(adapter: Adapter, text: string) {
  const loaded = loadVectorText('t.yaml', text);
  expect(loaded.problems.map(formatProblem)).toEqual([]);
  return runVectors(adapter, loaded.vectors, loaded.vectors);
}

describe('multi-device driver vectors', () => {
  it('load each device with its own set-up over the vector one, and resolve step devices to indexes', () => {
    const loaded = loadVectorText(
      't.yaml',
      twoDevices(`      - start: true
      - resize: 64MiB
        device: right
      - settle: true
        device: 0
      - settle: true
`),
    );
    expect(loaded.problems).toEqual([]);
    const v = loaded.vectors[0]!;
    expect(v.devices!.map((d) => [d.name, d.setup.node_id])).toEqual([
      ['left', 0],
      ['right', 1],
    ]);
    expect(v.devices![1]!.setup.features).toBe(v.setup.features);
    expect(v.steps.map((s) => s.device)).toEqual([undefined, 1, 0, undefined]);
    expect(v.needs).toContain('multi-device');
  });

  it('refuse an undeclared device, a device on a single-device vector, duplicates and devices on a device vector', () => {
    const unknown = loadVectorText('t.yaml', twoDevices(`      - start: true\n        device: middle\n`));
    expect(unknown.problems.map(formatProblem)).toEqual([
      "t.yaml:15: vectors[0].steps[0].device: no device named 'middle' (declared: left, right)",
    ]);
    const index = loadVectorText('t.yaml', twoDevices(`      - start: true\n        device: 2\n`));
    expect(index.problems.map((p) => p.reason)).toEqual(['no device with index 2 (declared: left, right)']);
    const single = loadVectorText(
      't.yaml',
      `format: vmemct-vectors/1
vectors:
  - id: vmem.drv.one.device
    title: One device only
    requirements: [drv.op.8]
    target: driver
    steps:
      - start: true
        device: left
`,
    );
    expect(single.problems.map((p) => `${p.line} ${p.field}: ${p.reason}`)).toEqual([
      '9 vectors[0].steps[0].device: this vector declares no devices (a `devices:` list); drop `device:`',
    ]);
    const duplicate = loadVectorText(
      't.yaml',
      twoDevices('      - start: true\n').replace('name: right', 'name: left'),
    );
    expect(duplicate.problems.map((p) => p.reason)).toEqual(["duplicate device name 'left'"]);
    const badSetup = loadVectorText(
      't.yaml',
      twoDevices('      - start: true\n').replace('addr: 5GiB', 'addr: 5 GiB +'),
    );
    expect(badSetup.problems.map((p) => p.field)).toEqual(['vectors[0].devices[1].setup.addr']);
  });

  it('pass the shipped two-node vector on the model, each device plugged and each node holding its memory', async () => {
    const { vectors, problems } = loadVectors([TWO_NODES]);
    expect(problems).toEqual([]);
    const run = await runVectors(createModelAdapter(), vectors, vectors);
    expect(run.results.map((r) => [r.vector.id, r.verdict])).toEqual([['vmem.drv.numa.two-nodes', 'pass']]);
  });

  it('judge each device on its own, naming the device in its findings', async () => {
    const run = await runText(
      createModelAdapter(),
      twoDevices(`      - start: true
      - resize: 64MiB
        device: right
      - settle: true
        expect: {config: {plugged_size: 64MiB}}
`),
    );
    const findings = run.results[0]!.findings;
    expect(run.results[0]!.verdict).toBe('fail');
    expect(findings.map((f) => [f.device, f.check])).toEqual([['left', 'config.plugged_size']]);
    expect(findings[0]!.message).toMatch(/^\[left\] /);
  });

  it('give a device the requests the driver sent it while another device was settled', async () => {
    // The settle of `left` lets the driver run for both; `right`'s PLUGs reach `right`'s settle.
    const run = await runText(
      createModelAdapter(),
      twoDevices(`      - start: true
      - resize: 32MiB
      - settle: true
        device: left
        expect: {converged: true, request_types: {includes: [PLUG]}}
      - settle: true
        device: right
        expect: {converged: true, request_types: {includes: [PLUG]}, config: {plugged_size: 32MiB}}
      - node_memory: {0: 32MiB, 1: 32MiB}
`),
    );
    expect(run.results[0]!.findings).toEqual([]);
    expect(run.results[0]!.verdict).toBe('pass');
  });

  it('fail node_memory when the driver puts a device memory on another node', async () => {
    class IgnoresNode extends ReferenceDriver {
      override get memoryNode(): number | undefined {
        return 0;
      }
    }
    const { vectors } = loadVectors([TWO_NODES]);
    const run = await runVectors(createModelAdapter({ driverFactory: () => new IgnoresNode() }), vectors, vectors);
    const checks = run.results[0]!.findings.map((f) => [f.check, f.observed, f.device]);
    expect(checks).toEqual([
      ['node-memory.0', '0x28000000', undefined],
      ['node-memory.1', '0x0', undefined],
    ]);
  });

  it('are unsupported, with the reason, on an adapter that opens one device per driver', async () => {
    const model = createModelAdapter();
    const single: Adapter = {
      info: {
        ...model.info,
        capabilities: model.info.capabilities.filter((c) => c !== 'multi-device'),
        missingCapabilities: { 'multi-device': 'one device per guest' },
      },
      openDevice: (s) => model.openDevice(s),
      openDriver: (s, o) => model.openDriver!(s, o),
      dispose: () => model.dispose(),
    };
    const { vectors } = loadVectors([TWO_NODES]);
    const run = await runVectors(single, vectors, vectors);
    expect(run.results[0]!.verdict).toBe('unsupported');
    expect(run.results[0]!.findings[0]!.message).toBe('the model adapter lacks: multi-device (one device per guest)');
  });

  it('are unsupported over the harness protocol, which gives a driver session one device', async () => {
    const hello = servedHello({ version: '0' }) as Record<string, unknown>;
    expect((hello.targets as { driver: string[] }).driver).not.toContain('multi-device');
    const info = execAdapterInfo(
      { hello: 'vmemct-harness/1', implementation: 'h', version: '1', targets: { driver: ['suspend'] } },
      'here',
    );
    const model = createModelAdapter();
    const exec: Adapter = {
      info,
      openDevice: (s) => model.openDevice(s),
      openDriver: (s, o) => model.openDriver!(s, o),
      dispose: async () => undefined,
    };
    const { vectors } = loadVectors([TWO_NODES]);
    const run = await runVectors(exec, vectors, vectors);
    expect(run.results[0]!.verdict).toBe('unsupported');
    expect(run.results[0]!.findings[0]!.message).toContain(
      'multi-device (the harness protocol (vmemct-harness/1) gives a driver session exactly one device)',
    );
  });

  it('record each device session under its name in transcripts', async () => {
    const recording = new RecordingAdapter(createModelAdapter());
    const { vectors } = loadVectors([TWO_NODES]);
    recording.beginVector('v');
    await runVectors(recording, vectors, vectors);
    const calls = recording.transcripts.get('v')!.map((r) => r.call);
    expect(calls[0]).toMatch(/^openDrivers \[vm0\] .*; \[vm1\] /);
    expect(calls).toContain('[vm1] resize 0x18000000');
    const nodeReads = recording.transcripts.get('v')!.filter((r) => r.call === '[vm0] nodeMemory');
    expect(nodeReads.map((r) => r.result)).toEqual(['', 'node 0 0x10000000, node 1 0x18000000', '']);
  });
});
