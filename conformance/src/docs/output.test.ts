import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SITE_MARKER, checkOutputFolder, writeSite } from './output';

describe('checkOutputFolder and writeSite', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-output-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a new or empty folder, or a previous output, is writable; someone else’s only with force', () => {
    expect(checkOutputFolder(path.join(dir, 'new'), false)).toEqual({ kind: 'writable' });
    const site = path.join(dir, 'site');
    writeSite(site, new Map([['index.html', 'x']]));
    expect(fs.readdirSync(site).sort()).toEqual([SITE_MARKER, 'index.html']);
    expect(checkOutputFolder(site, false)).toEqual({ kind: 'writable' });
    const other = path.join(dir, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'index.html'), 'mine');
    expect(checkOutputFolder(other, false)).toMatchObject({ kind: 'refused', reason: expect.stringContaining(`--out ${other}: the folder is not empty`) });
    expect(() => writeSite(other, new Map([['index.html', 'x']]))).toThrow(/not a previous vmemct docs output/);
    expect(fs.readFileSync(path.join(other, 'index.html'), 'utf8')).toBe('mine');
    expect(checkOutputFolder(other, true)).toEqual({ kind: 'writable' });
    expect(checkOutputFolder(path.join(other, 'index.html'), true)).toMatchObject({ kind: 'refused', reason: expect.stringContaining('not a folder') });
  });

  test('the root and the home folder are refused even with force', () => {
    expect(checkOutputFolder('/', true)).toMatchObject({ kind: 'refused', reason: expect.stringContaining('the root folder') });
    expect(checkOutputFolder(path.join(os.tmpdir(), '..', '..', '..'), true)).toMatchObject({ kind: 'refused' });
    expect(checkOutputFolder(os.homedir(), true)).toMatchObject({ kind: 'refused', reason: expect.stringContaining('home folder') });
  });
});
