import * as path from 'node:path';
import {
  QEMU_PACKAGES,
  aptDownloadArgv,
  aptUpdateArgv,
  inSeries,
  privateAptFolders,
  privateAptLayout,
  privateAptOptions,
  upstreamVersion,
} from './debian-archive';

const DIR = '/cache/qemu-10.0.partial-7/apt';

/** The `-o KEY=VALUE` settings of an argument vector. */
function settings(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  argv.forEach((a, i) => {
    if (a !== '-o') return;
    const [key, ...value] = argv[i + 1]!.split('=');
    out.set(key!, value.join('='));
  });
  return out;
}

describe('the private apt configuration', () => {
  const layout = privateAptLayout(DIR);

  test('every folder and file apt writes lies in the private folder; the dpkg status is empty', () => {
    const s = settings(privateAptOptions(layout, false));
    for (const key of [
      'Dir::Etc::sourcelist',
      'Dir::Etc::sourceparts',
      'Dir::Etc::preferences',
      'Dir::Etc::preferencesparts',
      'Dir::State::Lists',
      'Dir::Cache',
      'Dir::Cache::archives',
      'Dir::Cache::pkgcache',
      'Dir::Cache::srcpkgcache',
    ]) {
      expect(path.isAbsolute(s.get(key)!)).toBe(true);
      expect(s.get(key)!.startsWith(`${DIR}/`)).toBe(true);
    }
    expect(s.get('Dir::State::status')).toBe('/dev/null');
    expect(s.get('Debug::NoLocking')).toBe('1');
    expect([...s.values()].some((v) => v.startsWith('/etc/') || v.startsWith('/var/'))).toBe(false);
  });

  test('the download sandbox stays with root only when running as root', () => {
    expect(settings(privateAptOptions(layout, true)).get('APT::Sandbox::User')).toBe('root');
    expect(settings(privateAptOptions(layout, false)).has('APT::Sandbox::User')).toBe(false);
  });

  test('the sources file is in the parts folder; the partial folders apt needs are created', () => {
    expect(path.dirname(layout.sourcesFile)).toBe(layout.sourceParts);
    expect(layout.sourcesFile.endsWith('.sources')).toBe(true);
    expect(privateAptFolders(layout)).toEqual(
      expect.arrayContaining([path.join(layout.lists, 'partial'), path.join(layout.archives, 'partial')]),
    );
  });

  test('update and download are argument vectors: apt-get, the options, then the command', () => {
    const update = aptUpdateArgv('/usr/bin/apt-get', layout, true);
    expect(update[0]).toBe('/usr/bin/apt-get');
    expect(update[update.length - 1]).toBe('update');
    expect(update.slice(1, -1)).toEqual(['-q', ...privateAptOptions(layout, true)]);
    const names = QEMU_PACKAGES.map((p) => p.name);
    const download = aptDownloadArgv('/usr/bin/apt-get', layout, false, names);
    expect(download.slice(-5)).toEqual([
      'download',
      'qemu-system-x86',
      'qemu-system-common',
      'qemu-system-data',
      'seabios',
    ]);
    expect(download.slice(1, -5)).toEqual(['-q', ...privateAptOptions(layout, false)]);
  });
});

describe('Debian versions', () => {
  test('the upstream version drops epoch, revision and suffixes', () => {
    expect(upstreamVersion('1:10.0.2+ds-2+deb13u1~bpo12+1')).toBe('10.0.2');
    expect(upstreamVersion('1:7.2+dfsg-7+deb12u7')).toBe('7.2');
    expect(upstreamVersion('1.16.3-2~bpo12+1')).toBe('1.16.3');
  });

  test('a version is in a series when it is the series or a point release of it', () => {
    expect(inSeries('10.0.2', '10.0')).toBe(true);
    expect(inSeries('10.0', '10.0')).toBe(true);
    expect(inSeries('10.1.0', '10.0')).toBe(false);
    expect(inSeries('10.00.1', '10.0')).toBe(false);
    expect(inSeries('1.0.2', '10.0')).toBe(false);
  });
});
