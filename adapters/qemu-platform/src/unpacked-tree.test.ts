import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { locateQemu } from './host-processes';
import { INSTALLED_LAUNCH, dataDirArguments, qemuLaunchFor } from './unpacked-tree';

describe('an unpacked QEMU tree', () => {
  let root: string;
  const binary = (): string => path.join(root, 'usr', 'bin', 'qemu-system-x86_64');
  const make = (...dirs: string[]): void => {
    for (const d of dirs) fs.mkdirSync(path.join(root, d), { recursive: true });
  };
  const isDirectory = (d: string): boolean => fs.existsSync(d) && fs.statSync(d).isDirectory();

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-tree-'));
    make('usr/bin');
    fs.writeFileSync(binary(), '#!/bin/sh\necho "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)"\n', {
      mode: 0o755,
    });
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test("QEMU's own data folder, then SeaBIOS's, then iPXE's, each with -L; the module folder in QEMU_MODULE_DIR", () => {
    make('usr/share/qemu', 'usr/share/seabios', 'usr/lib/ipxe/qemu', 'usr/lib/x86_64-linux-gnu/qemu');
    const launch = qemuLaunchFor(binary(), isDirectory, 'x64');
    expect(dataDirArguments(launch)).toEqual([
      '-L',
      path.join(root, 'usr/share/qemu'),
      '-L',
      path.join(root, 'usr/share/seabios'),
      '-L',
      path.join(root, 'usr/lib/ipxe/qemu'),
    ]);
    expect(launch.environment).toEqual({ QEMU_MODULE_DIR: path.join(root, 'usr/lib/x86_64-linux-gnu/qemu') });
  });

  test('only the folders that exist are passed; no module folder, no variable', () => {
    make('usr/share/qemu');
    expect(qemuLaunchFor(binary(), isDirectory, 'x64')).toEqual({
      dataDirs: [path.join(root, 'usr/share/qemu')],
      environment: {},
    });
  });

  test('the module folder follows the architecture', () => {
    make('usr/share/qemu', 'usr/lib/aarch64-linux-gnu/qemu');
    expect(qemuLaunchFor(binary(), isDirectory, 'arm64').environment).toEqual({
      QEMU_MODULE_DIR: path.join(root, 'usr/lib/aarch64-linux-gnu/qemu'),
    });
    expect(qemuLaunchFor(binary(), isDirectory, 'x64').environment).toEqual({});
  });

  test('without usr/share/qemu beside it the binary is not an unpacked tree', () => {
    make('usr/share/seabios');
    expect(qemuLaunchFor(binary(), isDirectory, 'x64')).toBe(INSTALLED_LAUNCH);
  });

  test('an installed QEMU (/usr/bin) or a binary outside usr/bin gets nothing', () => {
    expect(qemuLaunchFor('/usr/bin/qemu-system-x86_64', () => true, 'x64')).toBe(INSTALLED_LAUNCH);
    expect(qemuLaunchFor(path.join(root, 'qemu-system-x86_64'), () => true, 'x64')).toBe(INSTALLED_LAUNCH);
    expect(qemuLaunchFor(path.join(root, 'opt/bin/qemu-system-x86_64'), () => true, 'x64')).toBe(INSTALLED_LAUNCH);
  });

  test('locateQemu gives an unpacked binary its launch, also through a symbolic link to it', () => {
    make('usr/share/qemu', 'usr/share/seabios');
    const found = locateQemu(binary());
    expect(found.version).toBe('10.0.2');
    expect(found.launch.dataDirs).toEqual([
      path.join(fs.realpathSync(root), 'usr/share/qemu'),
      path.join(fs.realpathSync(root), 'usr/share/seabios'),
    ]);
    const link = path.join(root, 'qemu10');
    fs.symlinkSync(binary(), link);
    expect(locateQemu(link).launch.dataDirs).toEqual(found.launch.dataDirs);
  });
});
