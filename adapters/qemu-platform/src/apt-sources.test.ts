import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  debianArchiveMirrors,
  parseDeb822Sources,
  parseOneLineSources,
  parseOsRelease,
  renderSuiteSources,
} from './apt-sources';
import { readAptSources } from './qemu-fetch';

const DEB822 = `# Debian, as the installer writes it
Types: deb deb-src
# a comment inside a stanza
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://old.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
URIs: https://vendor.example/apt
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEYCQjIxYJKwYBBAHaRw8BAQdA
 -----END PGP PUBLIC KEY BLOCK-----
`;

describe('deb822 sources', () => {
  const entries = parseDeb822Sources(DEB822, '/etc/apt/sources.list.d/debian.sources');

  test('every stanza is read, comments skipped, with the line it starts on', () => {
    expect(entries.map((e) => e.uris)).toEqual([
      ['http://mirror.example/debian/'],
      ['http://security.example/debian-security'],
      ['http://old.example/debian'],
      ['https://vendor.example/apt'],
    ]);
    expect(entries[0]).toEqual({
      file: '/etc/apt/sources.list.d/debian.sources',
      line: 2,
      types: ['deb', 'deb-src'],
      uris: ['http://mirror.example/debian/'],
      suites: ['bookworm', 'bookworm-updates'],
      components: ['main', 'contrib'],
      signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
      enabled: true,
    });
    expect(entries[1]!.line).toBe(9);
  });

  test('Enabled: no marks a stanza disabled', () => {
    expect(entries.map((e) => e.enabled)).toEqual([true, true, false, true]);
  });

  test('an embedded key keeps its lines (" ." is an empty line)', () => {
    expect(entries[3]!.signedBy).toBe(
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEYCQjIxYJKwYBBAHaRw8BAQdA\n-----END PGP PUBLIC KEY BLOCK-----',
    );
  });

  test('field names are case-insensitive; a stanza without Types or URIs is not a source', () => {
    const parsed = parseDeb822Sources('types: deb\nuris: http://a.example/debian\nsuites: trixie\n\nSuites: x\n', 'f');
    expect(parsed).toHaveLength(1);
    expect(parsed[0]!.suites).toEqual(['trixie']);
  });
});

describe('one-line sources', () => {
  const LIST = [
    '# comment',
    'deb http://mirror.example/debian bookworm main',
    'deb-src http://mirror.example/debian bookworm main',
    'deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://updates.example/debian bookworm-updates main # trailing',
    'deb [ trusted=yes ] http://bare.example/debian bookworm-backports main',
    'deb http://security.example/debian-security bookworm-security main',
    'not a source line',
  ].join('\n');
  const entries = parseOneLineSources(LIST, '/etc/apt/sources.list');

  test('type, [options], URI, suite and components are read; comments and other lines skipped', () => {
    expect(entries.map((e) => [e.types[0], e.uris[0], e.suites[0], e.line])).toEqual([
      ['deb', 'http://mirror.example/debian', 'bookworm', 2],
      ['deb-src', 'http://mirror.example/debian', 'bookworm', 3],
      ['deb', 'http://updates.example/debian', 'bookworm-updates', 4],
      ['deb', 'http://bare.example/debian', 'bookworm-backports', 5],
      ['deb', 'http://security.example/debian-security', 'bookworm-security', 6],
    ]);
    expect(entries[2]!.signedBy).toBe('/usr/share/keyrings/x.gpg');
    expect(entries[2]!.components).toEqual(['main']);
    expect(entries[0]!.signedBy).toBeUndefined();
  });

  test('the archive mirrors are those serving bookworm or bookworm-updates, binary, not security', () => {
    expect(debianArchiveMirrors(entries, 'bookworm')).toEqual([
      { uri: 'http://mirror.example/debian' },
      { uri: 'http://updates.example/debian', signedBy: '/usr/share/keyrings/x.gpg' },
    ]);
  });
});

describe('archive mirrors of deb822 sources', () => {
  const entries = parseDeb822Sources(DEB822, 'f');

  test('security suites, disabled stanzas and other suites are skipped; a trailing slash is dropped', () => {
    expect(debianArchiveMirrors(entries, 'bookworm')).toEqual([
      { uri: 'http://mirror.example/debian', signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg' },
    ]);
  });

  test('another release finds no mirror', () => {
    expect(debianArchiveMirrors(entries, 'trixie')).toEqual([]);
  });

  test('a mirror named twice appears once; CD-ROMs are not mirrors', () => {
    const twice = parseOneLineSources(
      'deb http://m.example/debian bookworm main\ndeb http://m.example/debian/ bookworm-updates main\ndeb cdrom:[Debian]/ bookworm main\n',
      'f',
    );
    expect(debianArchiveMirrors(twice, 'bookworm')).toEqual([{ uri: 'http://m.example/debian' }]);
  });
});

describe('the private sources file', () => {
  test('one stanza per key, the backports suite, component main; a parse of it gives the mirrors back', () => {
    const mirrors = [
      { uri: 'http://a.example/debian', signedBy: '/k.gpg' },
      { uri: 'http://b.example/debian', signedBy: '/k.gpg' },
      { uri: 'http://c.example/debian' },
    ];
    const text = renderSuiteSources(mirrors, 'bookworm-backports');
    expect(text).toBe(
      'Types: deb\nURIs: http://a.example/debian http://b.example/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /k.gpg\n\n' +
        'Types: deb\nURIs: http://c.example/debian\nSuites: bookworm-backports\nComponents: main\n',
    );
    const back = parseDeb822Sources(text, 'x');
    expect(back.flatMap((e) => e.uris)).toEqual(mirrors.map((m) => m.uri));
    expect(back.every((e) => e.suites.join() === 'bookworm-backports')).toBe(true);
  });

  test('an embedded key is written on continuation lines and reads back unchanged', () => {
    const key = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----';
    const text = renderSuiteSources([{ uri: 'http://a.example/debian', signedBy: key }], 'bookworm-backports');
    expect(text).toContain('Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n');
    expect(parseDeb822Sources(text, 'x')[0]!.signedBy).toBe(key);
  });

  test('no mirror, no text', () => {
    expect(renderSuiteSources([], 'bookworm-backports')).toBe('');
  });
});

describe('reading an apt folder', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-apt-'));
    fs.mkdirSync(path.join(dir, 'sources.list.d'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('sources.list, *.list and *.sources are read; disabled and other files are not', () => {
    fs.writeFileSync(path.join(dir, 'sources.list'), 'deb http://one.example/debian bookworm main\n');
    fs.writeFileSync(path.join(dir, 'sources.list.d', 'b.list'), 'deb http://two.example/debian bookworm main\n');
    fs.writeFileSync(
      path.join(dir, 'sources.list.d', 'a.sources'),
      'Types: deb\nURIs: http://three.example/debian\nSuites: bookworm-updates\n',
    );
    for (const ignored of ['c.list.disabled-by-farm', 'd.sources.disabled', 'e.list.save', 'f.sources~'])
      fs.writeFileSync(path.join(dir, 'sources.list.d', ignored), 'deb http://ignored.example/debian bookworm main\n');
    const entries = readAptSources(dir);
    expect(entries.map((e) => e.uris[0])).toEqual([
      'http://one.example/debian',
      'http://three.example/debian',
      'http://two.example/debian',
    ]);
    expect(entries.map((e) => path.basename(e.file))).toEqual(['sources.list', 'a.sources', 'b.list']);
  });

  test('an apt folder without sources gives no entry', () => {
    expect(readAptSources(path.join(dir, 'nothing-here'))).toEqual([]);
  });
});

describe('os-release', () => {
  test('quoted and plain values; comments and other lines skipped', () => {
    const values = parseOsRelease(
      '# comment\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=\'debian\'\nnot a line\n',
    );
    expect(values.get('VERSION_CODENAME')).toBe('bookworm');
    expect(values.get('PRETTY_NAME')).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(values.get('ID')).toBe('debian');
    expect(values.size).toBe(3);
  });
});
