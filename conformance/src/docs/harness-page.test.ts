import Ajv2020 from 'ajv/dist/2020';
import {
  HARNESS_CALL_NAMES,
  HARNESS_COMMANDS,
  HARNESS_OPS,
  HARNESS_PROTOCOL,
  HARNESS_SCHEMAS,
  encodeHello,
} from '../../../spec/src/index';
import { HARNESS_SCHEMAS_FILE, harnessPage, harnessSchemasFile } from './harness-page';
import { buildSite } from './site';

describe('the harness page', () => {
  const html = harnessPage();

  test('lists every command under its target with the capability that enables it, and every call', () => {
    for (const op of HARNESS_OPS) {
      const spec = HARNESS_COMMANDS[op];
      const needs = 'capability' in spec ? `<code>${spec.capability}</code>` : 'core';
      expect(html).toMatch(new RegExp(`<tr><td><code>${op}</code></td><td>${needs}</td>`));
      expect(html).toContain(`<h3 id="op-${op}">`);
    }
    for (const call of HARNESS_CALL_NAMES) expect(html).toContain(`<h3 id="call-${call}">`);
    expect(html).toContain(`<code>${HARNESS_PROTOCOL}</code>`);
  });

  test('describes each field with its wire form and presence, conditional ones with their condition', () => {
    expect(html).toMatch(/<tr><td><code>requested_size<\/code><\/td><td>64-bit: string, &quot;0x…&quot; hex or decimal<\/td><td>required<\/td>/);
    expect(html).toMatch(/<tr><td><code>length<\/code><\/td><td>integer number<\/td><td>when <code>used<\/code> is <code>true<\/code><\/td>/);
    expect(html).toMatch(/<tr><td><code>config<\/code><\/td><td>bytes: hex string \(56 bytes\)<\/td>/);
  });

  test('the site publishes the page and the schemas file, which holds schemas that validate', () => {
    const site = buildSite({ vectors: [], vectorFiles: new Map(), results: [] });
    expect(site.get('harness.html')).toBe(html);
    expect(site.get('index.html')).toContain('<a href="harness.html">');
    const published = JSON.parse(site.get(HARNESS_SCHEMAS_FILE)!);
    expect(published).toEqual(JSON.parse(harnessSchemasFile()));
    expect(published.schemas).toHaveLength(HARNESS_SCHEMAS.length);
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
    for (const schema of published.schemas) ajv.addSchema(schema);
    const hello = encodeHello({ hello: HARNESS_PROTOCOL, implementation: 'x', version: '1', targets: { device: [] } });
    expect(ajv.validate('https://vmemct.dev/schemas/harness/hello.json', hello)).toBe(true);
    expect(ajv.validate('https://vmemct.dev/schemas/harness/hello.json', { ...hello, targets: 'device' })).toBe(false);
  });
});
