import { parseHostControl } from './host-control-file';

describe('host-control files', () => {
  test('read hooks with the line of each argument, and the timeout', () => {
    const text = [
      'timeout_ms: 2500',
      'resize: [ch-remote, --api-socket, /run/ch.sock, resize, --memory, "{requested_size}"]',
      'system_reset:',
      '  - ch-remote',
      '  - reboot',
    ].join('\n');
    const { templates, problems } = parseHostControl('ch.yaml', text);
    expect(problems).toEqual([]);
    expect(templates!.timeoutMs).toBe(2500);
    expect(templates!.hooks.resize!.argv[5]).toBe('{requested_size}');
    expect(templates!.hooks.system_reset!.sites[1]).toEqual({ file: 'ch.yaml', line: 5, field: 'system_reset[1]' });
  });

  test('read JSON too', () => {
    const { templates } = parseHostControl('fc.json', '{"resize": ["curl", "{requested_size_mib}"]}');
    expect(templates!.hooks.resize!.argv).toEqual(['curl', '{requested_size_mib}']);
  });

  test('name file, line and field of an unknown placeholder, an unknown hook and a malformed one', () => {
    const text = ['resize:', '  - vmm', '  - "--size={size_mib}"', 'reboot: [vmm, reset]', 'suspend: vmm suspend'].join(
      '\n',
    );
    const { templates, problems } = parseHostControl('bad.yaml', text);
    expect(templates).toBeUndefined();
    expect(problems).toEqual([
      expect.objectContaining({
        file: 'bad.yaml',
        line: 3,
        field: 'resize[1]',
        reason: expect.stringMatching(/unknown placeholder \{size_mib\}/),
      }),
      expect.objectContaining({
        file: 'bad.yaml',
        line: 4,
        field: 'reboot',
        reason: expect.stringMatching(/unknown hook/),
      }),
      expect.objectContaining({
        file: 'bad.yaml',
        line: 5,
        field: 'suspend',
        reason: expect.stringMatching(/non-empty list/),
      }),
    ]);
  });

  test('refuse a file with no hook, and a bad timeout', () => {
    expect(parseHostControl('e.yaml', 'timeout_ms: 0').problems.map((p) => p.field)).toEqual(['timeout_ms']);
    expect(parseHostControl('e.yaml', 'timeout_ms: 10').problems[0]!.reason).toMatch(/names no hook/);
  });
});
