import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdapterError, AdapterTimeoutError } from '../../core/src/contract';
import { ArgvHostControl, checkTemplate, expandTemplate, runHook } from './argv-host-control';
import type { ArgvTemplate, HostControlTemplates } from './argv-host-control';
import { hostCapabilities } from './host-control';

const MiB = 1n << 20n;

function template(...argv: string[]): ArgvTemplate {
  return { argv, sites: argv.map((_a, i) => ({ file: 'hooks.yaml', line: 3, field: `resize[${i}]` })) };
}

describe('argv templates', () => {
  test('fill each placeholder with the number in its unit, leaving other braces alone', () => {
    const t = template('curl', '-d', '{"requested_size_mib": {requested_size_mib}}', '{requested_size}');
    expect(expandTemplate(t, { requested_size: 384n * MiB })).toEqual([
      'curl',
      '-d',
      '{"requested_size_mib": 384}',
      String(384n * MiB),
    ]);
  });

  test('refuse a size that is not a whole number of the unit asked, naming file, line and field', () => {
    const t = template('vmm', '{requested_size_gib}');
    expect(() => expandTemplate(t, { requested_size: 1536n * MiB })).toThrow(
      /^hooks\.yaml:3: resize\[1\]: requested_size 1610612736 is not a whole number of GIB/,
    );
  });

  test('find placeholders a hook does not offer', () => {
    expect(checkTemplate('resize', template('vmm', '{requested_size_mb}'))).toEqual([
      {
        site: { file: 'hooks.yaml', line: 3, field: 'resize[1]' },
        reason: expect.stringMatching(/unknown placeholder \{requested_size_mb\}: 'resize' takes \{requested_size\}/),
      },
    ]);
    expect(checkTemplate('system_reset', template('vmm', '{requested_size}'))).toHaveLength(1);
    expect(checkTemplate('resize', template('vmm', '{requested_size_kib}', '{"a": 1}'))).toEqual([]);
  });
});

describe('hooks', () => {
  const node = process.execPath;

  test('a hook that exits 0 succeeds; its arguments reach it unchanged, with no shell', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-hook-'));
    const out = path.join(dir, 'args.json');
    try {
      await runHook(
        'resize',
        [
          node,
          '-e',
          `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.argv.slice(1)))`,
          '$(id)',
          'a b;c',
        ],
        5000,
      );
      expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toEqual(['$(id)', 'a b;c']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a hook that exits non-zero is an error carrying the end of its stderr', async () => {
    const run = runHook('resize', [node, '-e', 'console.error("no such VM"); process.exit(4)'], 5000);
    await expect(run).rejects.toThrow(/hook 'resize' .* exited with 4/);
    await expect(run).rejects.toMatchObject({ diagnostics: expect.stringContaining('no such VM') });
    await expect(run).rejects.not.toBeInstanceOf(AdapterTimeoutError);
  });

  test('a hook that hangs is a timeout, and it is killed', async () => {
    const started = Date.now();
    const run = runHook('system_reset', [node, '-e', 'console.error("waiting"); setInterval(() => {}, 1000)'], 300);
    await expect(run).rejects.toBeInstanceOf(AdapterTimeoutError);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('a program that does not exist is an error naming it', async () => {
    await expect(runHook('suspend', ['/nonexistent/vmm-ctl'], 5000)).rejects.toThrow(
      /hook 'suspend' \(\/nonexistent\/vmm-ctl\) cannot start/,
    );
  });
});

describe('ArgvHostControl', () => {
  const templates = (hooks: HostControlTemplates['hooks']): HostControlTemplates => ({
    file: 'hooks.yaml',
    timeoutMs: 5000,
    hooks,
  });

  test('offers exactly the actions its file has hooks for, and says why the others are missing', () => {
    const host = new ArgvHostControl(
      templates({ resize: template(process.execPath, '-e', ''), host_busy: template(process.execPath, '-e', '') }),
    );
    expect(host.resize).toBeDefined();
    expect(host.systemReset).toBeUndefined();
    expect(host.hostBusy).toBeUndefined();
    const caps = hostCapabilities(host);
    expect(caps.offered).toEqual(['host-resize']);
    expect(caps.missing['host-busy']).toBe("hooks.yaml has no 'host_release' hook");
    expect(caps.missing['system-reset']).toBe("hooks.yaml has no 'system_reset' hook");
    expect(caps.missing.suspend).toBe("hooks.yaml has no 'suspend' hook");
  });

  test('resize runs its hook with the size filled in and reports it applied', async () => {
    const host = new ArgvHostControl(
      templates({
        resize: template(
          process.execPath,
          '-e',
          'process.exit(process.argv[1] === "256" ? 0 : 9)',
          '{requested_size_mib}',
        ),
      }),
    );
    await expect(host.resize!(256n * MiB)).resolves.toEqual({ kind: 'applied' });
    await expect(host.resize!(128n * MiB)).rejects.toBeInstanceOf(AdapterError);
  });

  test('{total_size} is the base size plus the requested size', async () => {
    const host = new ArgvHostControl({
      ...templates({
        resize: template(
          process.execPath,
          '-e',
          'process.exit(process.argv[1] === "1280" ? 0 : 9)',
          '{total_size_mib}',
        ),
      }),
      baseSize: 1024n * MiB,
    });
    await expect(host.resize!(256n * MiB)).resolves.toEqual({ kind: 'applied' });
  });
});
