import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildVectorCache, loadVectors } from './load';

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
});
