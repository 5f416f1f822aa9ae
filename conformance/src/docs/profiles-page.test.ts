import { DEVICE_PROFILES, QEMU_10_0_PROFILE, QEMU_7_2_PROFILE } from '../../../model/src/index';
import { changedKnobs, profileKnobs, profilesPage } from './profiles-page';

describe('the profiles page', () => {
  const html = profilesPage();

  test('has one column per profile and none for an alias', () => {
    const header = /<h2>Side by side<\/h2>\s*<div class="scroll">\s*<table>\s*<thead><tr>(.*?)<\/tr>/s.exec(html)![1]!;
    const columns = [...header.matchAll(/<th>(.*?)<\/th>/g)].map((m) => m[1]);
    expect(columns).toEqual(['choice', ...Object.keys(DEVICE_PROFILES).map((n) => `<code>${n}</code>`)]);
    expect(columns).not.toContain('<code>qemu</code>');
    expect(html).toContain('<code>--profile qemu</code> is <code>qemu-7.2</code>');
  });

  test('lists the knobs changed from QEMU 7.2 to 10.0 first, marked, with the new values highlighted', () => {
    const changed = changedKnobs(QEMU_7_2_PROFILE, QEMU_10_0_PROFILE);
    expect(changed.sort()).toEqual(['defaultFeatures', 'platformCanSuspend', 'suspendWithoutPersistence', 'unplugAllWhileBusy']);
    const section = /<h2 id="qemu-versions">.*?<\/table>/s.exec(html)![0];
    const rows = [...section.matchAll(/<tr><td><code>(\w+)<\/code>(.*?)<\/td>(.*?)<\/tr>/g)];
    expect(rows.map((r) => r[1])).toHaveLength(profileKnobs(QEMU_7_2_PROFILE).length);
    // The changed knobs are the first rows, each marked, and only they are.
    expect(new Set(rows.slice(0, changed.length).map((r) => r[1]))).toEqual(new Set(changed));
    for (const [, knob, mark, cells] of rows) {
      expect({ knob, marked: mark!.includes('changed') }).toEqual({ knob, marked: changed.includes(knob as never) });
      expect({ knob, highlighted: cells!.includes('<mark>') }).toEqual({ knob, highlighted: changed.includes(knob as never) });
    }
    expect(section).toContain('<mark>ack-when-empty</mark>');
  });

  test('shows each QEMU value beside a link to that version of the source', () => {
    const section = /<h2 id="qemu-versions">.*?<\/table>/s.exec(html)![0];
    const cells = [...section.matchAll(/<tr>(.*?)<\/tr>/gs)].slice(1).map((r) => [...r[1]!.matchAll(/<td>(.*?)<\/td>/gs)].map((c) => c[1]!));
    for (const [, on72, on100] of cells) {
      expect(on72).toContain('<a href="https://github.com/qemu/qemu/blob/v7.2.0/');
      expect(on100).toContain('<a href="https://github.com/qemu/qemu/blob/v10.0.2/');
    }
  });
});
