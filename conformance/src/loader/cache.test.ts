import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildVectorCache, loadVectors, portableVectorCache, readVectorCache } from './load';

const CORPUS = path.join(__dirname, '..', '..', 'vectors');

/** Vectors without functions or Maps, for deep comparison. */
function comparable(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    typeof x === 'bigint' ? `${x}n` : x instanceof Map ? [...x] : x instanceof Uint8Array ? [...x] : x,
  );
}

describe('the vector cache', () => {
  test('loading the corpus through the cache gives exactly the vectors (with lines) that parsing the YAML gives', () => {
    const { cache, problems } = buildVectorCache([CORPUS]);
    expect(problems).toEqual([]);
    const direct = loadVectors([CORPUS]);
    const cached = loadVectors([CORPUS], cache);
    expect(cached.problems).toEqual([]);
    expect(cached.vectors.length).toBe(direct.vectors.length);
    expect(comparable(cached.vectors)).toBe(comparable(direct.vectors));
  });

  test('an entry whose file changed is ignored: the file is parsed again and its problems reported', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-cache-'));
    try {
      const file = path.join(dir, 'v.yaml');
      const good =
        'format: vmemct-vectors/1\nvectors:\n  - id: vmem.dev.cache.one\n    title: PLUG of one block is acknowledged\n    requirements: [dev.plug.6]\n    target: device\n    setup: {requested_size: 8MiB}\n    steps:\n      - request: {type: PLUG, addr: addr, nb_blocks: 1}\n        expect: {response: ACK}\n';
      fs.writeFileSync(file, good);
      const { cache } = buildVectorCache([dir]);
      fs.writeFileSync(file, good.replace('response: ACK', 'reponse: ACK'));
      const loaded = loadVectors([dir], cache);
      expect(loaded.vectors).toEqual([]);
      expect(loaded.problems.map((p) => `${p.line}:${p.field}`)).toEqual(['10:vectors[0].steps[0].expect.reponse']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a cache written under one root matches the same files moved under another (an installed package)', () => {
    const built = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-cache-built-'));
    const installed = fs.mkdtempSync(path.join(os.tmpdir(), 'vmemct-cache-installed-'));
    try {
      const good =
        'format: vmemct-vectors/1\nvectors:\n  - id: vmem.dev.cache.moved\n    title: PLUG of one block is acknowledged\n    requirements: [dev.plug.6]\n    target: device\n    setup: {requested_size: 8MiB}\n    steps:\n      - request: {type: PLUG, addr: addr, nb_blocks: 1}\n        expect: {response: ACK}\n';
      for (const root of [built, installed]) {
        fs.mkdirSync(path.join(root, 'vectors'));
        fs.writeFileSync(path.join(root, 'vectors', 'v.yaml'), good);
      }
      const { cache } = buildVectorCache([path.join(built, 'vectors')]);
      const written = portableVectorCache(cache, built);
      expect(Object.keys(written.files)).toEqual([path.join('vectors', 'v.yaml')]);
      fs.writeFileSync(path.join(built, 'cache.json'), JSON.stringify(written));
      const read = readVectorCache(path.join(built, 'cache.json'), installed)!;
      expect(Object.keys(read.files)).toEqual([path.join(installed, 'vectors', 'v.yaml')]);
      // The entry is the one used: a cached value that differs from the YAML shows through.
      const entry = read.files[path.join(installed, 'vectors', 'v.yaml')]!;
      const marked = JSON.parse(JSON.stringify(entry.value).replace('PLUG of one block', 'from the cache'));
      const loaded = loadVectors([path.join(installed, 'vectors')], {
        format: read.format,
        files: { [path.join(installed, 'vectors', 'v.yaml')]: { ...entry, value: marked } },
      });
      expect(loaded.vectors.map((v) => v.title)).toEqual(['from the cache is acknowledged']);
    } finally {
      fs.rmSync(built, { recursive: true, force: true });
      fs.rmSync(installed, { recursive: true, force: true });
    }
  });
});
