import { createModelAdapter } from '../../../adapters/model/src/model-adapter';
import { loadVectorText } from '../loader/load';
import { runDeviceVector } from '../runner/device-run';
import { evaluateSetup } from '../runner/setup';
import { sessionMethod } from './session-method';

describe('sessionMethod', () => {
  test('should hand back the method bound to its session', () => {
    const session = {
      count: 0,
      bump(this: { count: number }, by: number) {
        this.count += by;
        return this.count;
      },
      missing: undefined as (() => void) | undefined,
    };
    const bump = sessionMethod(session as { bump?: (by: number) => number }, 'bump', 3);
    expect(bump.kind).toBe('continue');
    if (bump.kind === 'continue') expect(bump.value(2)).toBe(2);
    expect(session.count).toBe(2);
    expect(sessionMethod(session, 'missing', 3)).toEqual({
      kind: 'stop',
      finding: {
        verdict: 'unsupported',
        step: 3,
        check: 'step',
        message: "the adapter's session has no missing() (it declares the capability this step needs)",
      },
    });
  });

  test('a session that lacks a declared capability ends the vector unsupported, naming the method', async () => {
    const file = [
      'format: vmemct-vectors/1',
      'vectors:',
      '  - id: vmem.dev.probe.reset',
      '    title: a device reset',
      '    requirements: [dev.init.1]',
      '    target: device',
      '    steps: [{device_reset: true}]',
      '',
    ].join('\n');
    const loaded = loadVectorText('reset.yaml', file);
    expect(loaded.problems).toEqual([]);
    const vector = loaded.vectors[0]!;
    const evaluated = evaluateSetup(vector);
    if (!evaluated.ok) throw new Error(evaluated.reason);
    const adapter = createModelAdapter();
    const real = await adapter.openDevice(evaluated.setup);
    // The same session without its deviceReset method.
    const session = new Proxy(real, { get: (t, p) => (p === 'deviceReset' ? undefined : Reflect.get(t, p, t)) });
    try {
      const findings = await runDeviceVector(vector, session, evaluated.setup);
      expect(findings).toContainEqual(
        expect.objectContaining({
          verdict: 'unsupported',
          step: 1,
          message: expect.stringMatching(/no deviceReset\(\)/),
        }),
      );
    } finally {
      await real.close();
      await adapter.dispose();
    }
  });
});
