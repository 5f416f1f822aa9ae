/** No published page refers to anything outside the site but the public sources it cites on purpose. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadVectors } from '../loader/load';
import { buildSite } from './site';
import { PUBLIC_CITATIONS, outsideReferences } from './site-references';
import { NAV, page } from './html';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('outsideReferences', () => {
  test('finds none in the site built from the shipped corpus, whose only outside links are the QEMU sources it cites', () => {
    const vectors = loadVectors([path.join(ROOT, 'conformance', 'vectors')]).vectors.map((v) => ({ ...v, source: { ...v.source, file: path.relative(ROOT, v.source.file) } }));
    const files = new Map([...new Set(vectors.map((v) => v.source.file))].map((f) => [f, fs.readFileSync(path.join(ROOT, f), 'utf8')] as const));
    const site = buildSite({ vectors, vectorFiles: files, results: [] });
    expect(outsideReferences(site)).toEqual([]);
    const external = [...site.values()].flatMap((html) => [...html.matchAll(/href="(https?:[^"]*)"/g)].map((m) => m[1]!));
    expect(external.length).toBeGreaterThan(10);
    for (const url of external) expect(PUBLIC_CITATIONS.some((c) => url.startsWith(c.prefix))).toBe(true);
  });

  test('reports links, embeds and URLs to other hosts, links out of the site, source paths, internal notes and foreign section numbers', () => {
    const body = [
      '<p><a href="https://example.com/x">x</a> <a href="other.html">in the site</a> <a href="#top">here</a></p>',
      '<script src="https://cdn.example/lib.js"></script><img src="../outside.png">',
      '<p>see https://example.org/page and https://github.com/qemu/qemu/blob/v7.2.0/hw/virtio/virtio-mem.c</p>',
      '<p>as model/src/device/chain.ts does (requests.ts), facts §6.7, bug class 3</p>',
      '<p>VIRTIO 1.4 §5.15.6.2 and §2.4 but §6.1 and §5.8</p>',
      '<a href="missing.html">gone</a>',
    ].join('\n');
    const pages = new Map([
      ['index.html', page('t', 'index.html', body)],
      ['other.html', page('o', 'other.html', '')],
      ...NAV.filter((n) => n.href !== 'index.html').map((n) => [n.href, page(n.label, n.href, '')] as [string, string]),
      ['style.css', 'body { background: url(https://example.com/bg.png); }\n.x { background: url(data-in-site.png); }'],
      ['data.json', '{"$id": "https://example.com/schema"}'],
    ]);
    const found = outsideReferences(pages).map((r) => `${r.page}:${r.kind}:${r.text}`);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^index\.html:link:https:\/\/example\.com\/x$/),
        'index.html:link:https://cdn.example/lib.js',
        'index.html:link:../outside.png',
        'index.html:url:https://example.org/page',
        'index.html:source-path:model/src',
        'index.html:source-path:chain.ts',
        'index.html:source-path:requests.ts',
        'index.html:internal-note:facts §',
        'index.html:internal-note:bug class',
        'index.html:section:§6.7',
        'index.html:section:§6.1',
        'index.html:section:§5.8',
        'index.html:link:missing.html',
        'style.css:link:https://example.com/bg.png',
        'style.css:link:data-in-site.png',
      ]),
    );
    expect(found).toHaveLength(15);
    // The page frame itself (navigation, stylesheet) stays inside the site; the cited QEMU source is allowed.
    expect(found.join('\n')).not.toMatch(/style\.css$|other\.html$|qemu\/qemu|§5\.15|§2\.4|data\.json/m);
  });
});
