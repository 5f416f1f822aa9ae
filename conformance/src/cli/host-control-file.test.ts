import * as path from 'node:path';
import { expandTemplate } from '../../../adapters/device-session/src/argv-host-control';
import { loadHostControlFile, parseHostControl } from './host-control-file';

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

  test('{total_size…} is base_size plus the requested size, and needs base_size', () => {
    const ok = parseHostControl(
      'ch.yaml',
      'base_size: 1073741824\nresize: [ch-remote, resize, --memory, "{total_size}"]',
    );
    expect(ok.templates!.baseSize).toBe(1n << 30n);
    const bad = parseHostControl('ch.yaml', 'resize: [ch-remote, resize, --memory, "{total_size_mib}"]');
    expect(bad.problems).toEqual([
      expect.objectContaining({ line: 1, field: 'resize[3]', reason: expect.stringMatching(/needs base_size/) }),
    ]);
  });

  test('refuse a file with no hook, and a bad timeout', () => {
    expect(parseHostControl('e.yaml', 'timeout_ms: 0').problems.map((p) => p.field)).toEqual(['timeout_ms']);
    expect(parseHostControl('e.yaml', 'timeout_ms: 10').problems[0]!.reason).toMatch(/names no hook/);
  });
});

describe('the example host-control files', () => {
  const dir = path.join(__dirname, '..', '..', '..', 'examples', 'host-control');

  test.each(['cloud-hypervisor.yaml', 'firecracker.yaml'])('%s loads, and fills its resize hook', (name) => {
    const templates = loadHostControlFile(path.join(dir, name));
    const argv = expandTemplate(templates.hooks.resize!, {
      requested_size: 512n << 20n,
      ...(templates.baseSize === undefined ? {} : { total_size: templates.baseSize + (512n << 20n) }),
    });
    expect(argv.join(' ')).toMatch(
      name.startsWith('cloud') ? /resize --memory 1610612736$/ : /"requested_size_mib": 512\}$/,
    );
  });
});
